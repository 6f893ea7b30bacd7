"""The cloud price catalog: instance, SageMaker hosting and data-transfer prices by region and date.

The bundled catalog (``data/aws-catalog.yaml``) documents the file shape. A user's overrides file has the
same shape; its entries replace the bundled entries of the same name (negotiated rates).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

import yaml

from .._component import ConfigError

__all__ = [
    "AcceleratorRule",
    "CloudCatalog",
    "InstancePrice",
    "LlmPrice",
    "PricePeriod",
    "ResourceMapping",
    "load_cloud_catalog",
    "period_at",
]

_TOP_LEVEL_KEYS = frozenset(
    {
        "version",
        "currency",
        "default_region",
        "bytes_per_gb",
        "instances",
        "sagemaker",
        "accelerators",
        "data_transfer",
        "resources",
        "llm",
        "llm_fallback",
    }
)
_DIRECTIONS = ("egress", "ingress")
_LLM_PRICE_KEYS = ("input_per_mtok", "cache_read_per_mtok", "cache_write_per_mtok", "output_per_mtok")


@dataclass(frozen=True)
class PricePeriod:
    valid_from: date
    by_region: Mapping[str, Decimal]


@dataclass(frozen=True)
class InstancePrice:
    hourly: tuple[PricePeriod, ...]
    gpus: int = 1


@dataclass(frozen=True)
class AcceleratorRule:
    pattern: re.Pattern[str]
    instance_type: str


@dataclass(frozen=True)
class ResourceMapping:
    """What a ``cloud.resource_id`` is, when the span cannot say (an endpoint's instance type)."""

    instance_type: str | None = None
    model: str | None = None


@dataclass(frozen=True)
class LlmPrice:
    """Negotiated token prices per million tokens; a missing class falls back to genai-prices."""

    provider: str | None
    model: str
    per_mtok: Mapping[str, Decimal]


@dataclass
class CloudCatalog:
    version: str
    currency: str
    default_region: str
    bytes_per_gb: Decimal
    instances: dict[str, InstancePrice] = field(default_factory=dict)
    sagemaker: dict[str, InstancePrice] = field(default_factory=dict)
    accelerators: list[AcceleratorRule] = field(default_factory=list)
    data_transfer: dict[tuple[str, str], tuple[PricePeriod, ...]] = field(default_factory=dict)
    resources: dict[str, ResourceMapping] = field(default_factory=dict)
    llm: list[LlmPrice] = field(default_factory=list)
    llm_fallback: list[LlmPrice] = field(default_factory=list)
    """Token prices for models genai-prices lacks (after genai-prices, unlike ``llm``)."""


def period_at(periods: tuple[PricePeriod, ...], day: date) -> tuple[PricePeriod | None, date | None, date | None]:
    """The latest period that started on or before ``day``, with the days it holds from and until (exclusive).

    A ``None`` bound is open: no period starts on or before ``day`` (or after it).
    """
    current: PricePeriod | None = None
    until: date | None = None
    for period in periods:
        if period.valid_from <= day:
            if current is None or period.valid_from >= current.valid_from:
                current = period
        elif until is None or period.valid_from < until:
            until = period.valid_from
    return current, (None if current is None else current.valid_from), until


def load_cloud_catalog(path: Path, base: CloudCatalog | None = None) -> CloudCatalog:
    """Read a catalog file; with ``base``, the file is an overrides file layered on top of it."""
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read the price catalog: {exc}") from exc
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML: {exc}") from exc
    if raw is None and base is not None:
        raw = {}
    return _Parser(path).catalog(_mapping(raw, str(path)), base)


def _mapping(value: object, where: str) -> dict[str, Any]:
    if not isinstance(value, dict) or not all(isinstance(key, str) for key in value):
        raise ConfigError(f"{where}: expected a mapping")
    return value


def _list(value: object, where: str) -> list[Any]:
    if not isinstance(value, list):
        raise ConfigError(f"{where}: expected a list")
    return value


def _text(value: object, where: str) -> str:
    if not isinstance(value, str) or not value:
        raise ConfigError(f"{where}: expected a non-empty string")
    return value


class _Parser:
    def __init__(self, path: Path) -> None:
        self._path = path

    def _where(self, key: str) -> str:
        return f"{self._path}: {key}"

    def catalog(self, raw: dict[str, Any], base: CloudCatalog | None) -> CloudCatalog:
        unknown = sorted(set(raw) - _TOP_LEVEL_KEYS)
        if unknown:
            raise ConfigError(f"{self._where(unknown[0])}: unknown key (expected one of {sorted(_TOP_LEVEL_KEYS)})")
        scalars: dict[str, object] = (
            {}
            if base is None
            else {
                "version": base.version,
                "currency": base.currency,
                "default_region": base.default_region,
                "bytes_per_gb": base.bytes_per_gb,
            }
        )
        for name in ("version", "currency", "default_region", "bytes_per_gb"):
            if name in raw:
                scalars[name] = raw[name]
            elif name not in scalars:
                raise ConfigError(f"{self._where(name)}: required")
        catalog = CloudCatalog(
            version=_text(scalars["version"], self._where("version")),
            currency=_text(scalars["currency"], self._where("currency")),
            default_region=_text(scalars["default_region"], self._where("default_region")),
            bytes_per_gb=self._decimal(scalars["bytes_per_gb"], "bytes_per_gb"),
        )
        if base is not None:
            catalog.instances.update(base.instances)
            catalog.sagemaker.update(base.sagemaker)
            catalog.data_transfer.update(base.data_transfer)
            catalog.resources.update(base.resources)
            catalog.llm.extend(base.llm)
            catalog.llm_fallback.extend(base.llm_fallback)
        for name, entry in _mapping(raw.get("instances", {}), self._where("instances")).items():
            catalog.instances[name] = self._instance(entry, f"instances.{name}")
        for name, entry in _mapping(raw.get("sagemaker", {}), self._where("sagemaker")).items():
            catalog.sagemaker[name] = self._instance(entry, f"sagemaker.{name}")
        # Overrides' accelerator rules are tried before the bundled ones.
        catalog.accelerators = [
            self._accelerator(entry, f"accelerators[{index}]")
            for index, entry in enumerate(_list(raw.get("accelerators", []), self._where("accelerators")))
        ] + (base.accelerators if base is not None else [])
        transfer = _mapping(raw.get("data_transfer", {}), self._where("data_transfer"))
        for direction, boundaries in transfer.items():
            if direction not in _DIRECTIONS:
                raise ConfigError(f"{self._where('data_transfer.' + direction)}: expected one of {_DIRECTIONS}")
            for boundary, periods in _mapping(boundaries, self._where(f"data_transfer.{direction}")).items():
                key = f"data_transfer.{direction}.{boundary}"
                catalog.data_transfer[(direction, boundary)] = self._periods(periods, key)
        for resource_id, entry in _mapping(raw.get("resources", {}), self._where("resources")).items():
            catalog.resources[resource_id] = self._resource(entry, f"resources.{resource_id}")
        # Overrides' token prices are found before the bundled ones.
        llm_entries = _list(raw.get("llm", []), self._where("llm"))
        catalog.llm[:0] = [self._llm(entry, f"llm[{index}]") for index, entry in enumerate(llm_entries)]
        fallback_entries = _list(raw.get("llm_fallback", []), self._where("llm_fallback"))
        catalog.llm_fallback[:0] = [
            self._llm(entry, f"llm_fallback[{index}]") for index, entry in enumerate(fallback_entries)
        ]
        return catalog

    def _decimal(self, value: object, key: str) -> Decimal:
        if isinstance(value, Decimal):
            return value
        if isinstance(value, bool) or not isinstance(value, (str, int)):
            raise ConfigError(f'{self._where(key)}: expected a price as a string ("1.25") or an integer')
        try:
            number = Decimal(str(value))
        except InvalidOperation:
            raise ConfigError(f"{self._where(key)}: {value!r} is not a number") from None
        if not number.is_finite() or number < 0:
            raise ConfigError(f"{self._where(key)}: {value!r} must be a non-negative number")
        return number

    def _periods(self, value: object, key: str) -> tuple[PricePeriod, ...]:
        periods = []
        for index, entry in enumerate(_list(value, self._where(key))):
            entry_key = f"{key}[{index}]"
            fields = dict(_mapping(entry, self._where(entry_key)))
            valid_from = fields.pop("valid_from", None)
            if isinstance(valid_from, str):
                try:
                    valid_from = date.fromisoformat(valid_from)
                except ValueError:
                    valid_from = None
            if not isinstance(valid_from, date):
                raise ConfigError(f"{self._where(entry_key + '.valid_from')}: expected a date (YYYY-MM-DD)")
            by_region = {region: self._decimal(price, f"{entry_key}.{region}") for region, price in fields.items()}
            periods.append(PricePeriod(valid_from, by_region))
        return tuple(periods)

    def _instance(self, value: object, key: str) -> InstancePrice:
        fields = _mapping(value, self._where(key))
        unknown = sorted(set(fields) - {"gpus", "accelerator", "hourly"})
        if unknown:
            raise ConfigError(f"{self._where(key + '.' + unknown[0])}: unknown key")
        gpus = fields.get("gpus", 1)
        if isinstance(gpus, bool) or not isinstance(gpus, int) or gpus < 1:
            raise ConfigError(f"{self._where(key + '.gpus')}: expected a positive integer")
        if "hourly" not in fields:
            raise ConfigError(f"{self._where(key + '.hourly')}: required")
        return InstancePrice(self._periods(fields["hourly"], f"{key}.hourly"), gpus)

    def _accelerator(self, value: object, key: str) -> AcceleratorRule:
        fields = _mapping(value, self._where(key))
        pattern = _text(fields.get("pattern"), self._where(key + ".pattern"))
        try:
            compiled = re.compile(pattern, re.IGNORECASE)
        except re.error as exc:
            raise ConfigError(f"{self._where(key + '.pattern')}: {exc}") from None
        return AcceleratorRule(compiled, _text(fields.get("instance_type"), self._where(key + ".instance_type")))

    def _resource(self, value: object, key: str) -> ResourceMapping:
        fields = _mapping(value, self._where(key))
        unknown = sorted(set(fields) - {"instance_type", "model"})
        if unknown or not fields:
            raise ConfigError(f"{self._where(key)}: expected instance_type and/or model")
        return ResourceMapping(
            instance_type=_text(fields["instance_type"], self._where(key + ".instance_type"))
            if "instance_type" in fields
            else None,
            model=_text(fields["model"], self._where(key + ".model")) if "model" in fields else None,
        )

    def _llm(self, value: object, key: str) -> LlmPrice:
        fields = _mapping(value, self._where(key))
        unknown = sorted(set(fields) - {"provider", "model", *_LLM_PRICE_KEYS})
        if unknown:
            raise ConfigError(f"{self._where(key + '.' + unknown[0])}: unknown key (prices are per million tokens)")
        provider = fields.get("provider")
        return LlmPrice(
            provider=_text(provider, self._where(key + ".provider")) if provider is not None else None,
            model=_text(fields.get("model"), self._where(key + ".model")).lower(),
            per_mtok={name: self._decimal(fields[name], f"{key}.{name}") for name in _LLM_PRICE_KEYS if name in fields},
        )
