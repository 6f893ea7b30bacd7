"""The cloud price catalog: instance, SageMaker hosting and data-transfer prices by region and date.

The bundled catalog (``data/aws-catalog.yaml``) documents the file shape. A user's overrides file has the
same shape; its entries replace the bundled entries of the same name (negotiated rates).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal
from pathlib import Path

import yaml

from .._component import ConfigError
from .._config_reader import ConfigSection, load_yaml

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
    """Read a catalog file; with ``base``, the file is an overrides file layered on top of it.

    Read with the collector's strict config reader: an error names the file and the key
    (``overrides.yaml: instances.p5.48xlarge.gpus: ...``).
    """
    try:
        raw = load_yaml(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read the price catalog: {exc}") from exc
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML: {exc}") from exc
    if raw is None and base is None:
        raise ConfigError(f"{path}: the price catalog is empty")
    return _catalog(ConfigSection(raw, "", source=str(path)), base)


def _catalog(root: ConfigSection, base: CloudCatalog | None) -> CloudCatalog:
    def scalar(name: str, inherited: str | None) -> str:
        value = root.text(name, inherited)
        if value is None:
            raise root.fail(name, "required")
        return value

    if base is None and not root.has("bytes_per_gb"):
        raise root.fail("bytes_per_gb", "required")
    bytes_per_gb = root.decimal("bytes_per_gb", base.bytes_per_gb if base is not None else None)
    catalog = CloudCatalog(
        version=scalar("version", base.version if base is not None else None),
        currency=scalar("currency", base.currency if base is not None else None),
        default_region=scalar("default_region", base.default_region if base is not None else None),
        bytes_per_gb=bytes_per_gb,
    )
    if base is not None:
        catalog.instances.update(base.instances)
        catalog.sagemaker.update(base.sagemaker)
        catalog.data_transfer.update(base.data_transfer)
        catalog.resources.update(base.resources)
        catalog.llm.extend(base.llm)
        catalog.llm_fallback.extend(base.llm_fallback)
    for name, entry in root.section("instances").sections():
        catalog.instances[name] = _instance(entry)
    for name, entry in root.section("sagemaker").sections():
        catalog.sagemaker[name] = _instance(entry)
    # Overrides' accelerator rules are tried before the bundled ones.
    catalog.accelerators = [_accelerator(entry) for entry in root.section_list("accelerators")] + (
        base.accelerators if base is not None else []
    )
    transfer = root.section("data_transfer")
    for direction, boundaries in transfer.sections():
        if direction not in _DIRECTIONS:
            raise transfer.fail(direction, f"expected one of {_DIRECTIONS}")
        for boundary in list(boundaries.values):
            catalog.data_transfer[(direction, boundary)] = _periods(boundaries, boundary)
        boundaries.done()
    transfer.done()
    for resource_id, entry in root.section("resources").sections():
        catalog.resources[resource_id] = _resource(entry)
    # Overrides' token prices are found before the bundled ones.
    catalog.llm[:0] = [_llm(entry) for entry in root.section_list("llm")]
    catalog.llm_fallback[:0] = [_llm(entry) for entry in root.section_list("llm_fallback")]
    root.done()
    return catalog


def _periods(section: ConfigSection, name: str) -> tuple[PricePeriod, ...]:
    periods = []
    for entry in section.section_list(name):
        valid_from = entry.day("valid_from")
        by_region = {region: entry.decimal(region) for region in entry.rest()}
        periods.append(PricePeriod(valid_from, by_region))
    return tuple(periods)


def _instance(section: ConfigSection) -> InstancePrice:
    gpus = section.integer("gpus", 1, minimum=1)
    section.get("accelerator")  # documentation only: which accelerator the instance type carries
    if not section.has("hourly"):
        raise section.fail("hourly", "required")
    hourly = _periods(section, "hourly")
    section.done()
    return InstancePrice(hourly, gpus)


def _accelerator(section: ConfigSection) -> AcceleratorRule:
    rule = AcceleratorRule(section.pattern("pattern", re.IGNORECASE), section.required_text("instance_type"))
    section.done()
    return rule


def _resource(section: ConfigSection) -> ResourceMapping:
    if not section.values:
        raise section.fail("", "expected instance_type and/or model")
    mapping = ResourceMapping(instance_type=section.text("instance_type"), model=section.text("model"))
    section.done()
    return mapping


def _llm(section: ConfigSection) -> LlmPrice:
    price = LlmPrice(
        provider=section.text("provider"),
        model=section.required_text("model").lower(),
        per_mtok={name: section.decimal(name) for name in _LLM_PRICE_KEYS if section.has(name)},
    )
    section.done()
    return price
