"""The price catalog: prices each usage fact from genai-prices and the cloud catalog."""

from __future__ import annotations

import hashlib
from datetime import datetime, timezone
from decimal import Decimal
from importlib import resources
from pathlib import Path

from spanledger.semconv import SpanledgerEgressBoundaryValues as Boundary
from spanledger.semconv import SpanledgerMeterValues as Meter

from .._store import UsageFact
from ._cloud_catalog import CloudCatalog, InstancePrice, load_cloud_catalog, price_at
from ._estimate import Estimate
from ._llm import GENAI_PRICES_VERSION, UnknownLlmPrice, bedrock_model_id, genai_price, genai_provider_id

__all__ = ["PriceCatalog", "load_catalog"]

_TOKEN_METERS: dict[str, str] = {
    Meter.LLM_INPUT_TOKENS.value: "input",
    Meter.LLM_CACHE_READ_TOKENS.value: "cache_read",
    Meter.LLM_CACHE_WRITE_TOKENS.value: "cache_write",
    Meter.LLM_OUTPUT_TOKENS.value: "output",
}
_BYTE_METERS: dict[str, str] = {Meter.EGRESS_BYTES.value: "egress", Meter.INGRESS_BYTES.value: "ingress"}
_LLM_PRICE_KEYS: dict[str, str] = {
    "input": "input_per_mtok",
    "cache_read": "cache_read_per_mtok",
    "cache_write": "cache_write_per_mtok",
    "output": "output_per_mtok",
}
# The cloud catalog holds AWS prices; usage on another cloud is unpriced rather than priced as AWS.
# Providers are cloud.provider (aws) or gen_ai.provider.name (aws.sagemaker, aws.bedrock).
_CLOUD_PROVIDERS_PRICED = frozenset({"aws"})
_SECONDS_PER_HOUR = Decimal(3600)
_MILLION = Decimal(1_000_000)
# usage_facts.estimated_cost is DECIMAL(38, 12).
_COST_QUANTUM = Decimal("1e-12")
_USD = "USD"


class _Unpriced(Exception):
    """The usage has no known price; the message is the reason."""


class PriceCatalog:
    """Prices usage facts. Build it with :func:`load_catalog`; ``estimate`` is safe to call from any thread."""

    def __init__(self, cloud: CloudCatalog, overrides_digest: str | None = None) -> None:
        self._cloud = cloud
        version = f"{cloud.version}+genai-prices-{GENAI_PRICES_VERSION}"
        self.version = version if overrides_digest is None else f"{version}+overrides-{overrides_digest}"

    def estimate(self, fact: UsageFact) -> Estimate:
        """The estimated cost of one usage fact; unknown prices are unpriced with a reason, never zero."""
        try:
            cost, currency = self._price(fact)
        except (_Unpriced, UnknownLlmPrice) as exc:
            return Estimate(None, None, self.version, str(exc))
        return Estimate(cost.quantize(_COST_QUANTUM), currency, self.version)

    def _price(self, fact: UsageFact) -> tuple[Decimal, str]:
        when = fact.start_time if fact.start_time.tzinfo else fact.start_time.replace(tzinfo=timezone.utc)
        if fact.meter in _TOKEN_METERS:
            return self._tokens(fact, _TOKEN_METERS[fact.meter], when), _USD
        if fact.meter == Meter.ACCELERATOR_SECONDS.value:
            self._check_cloud(fact)
            return self._accelerator_seconds(fact, when), self._cloud.currency
        if fact.meter == Meter.ENDPOINT_SECONDS.value:
            self._check_cloud(fact)
            return self._endpoint_seconds(fact, when), self._cloud.currency
        if fact.meter in _BYTE_METERS:
            self._check_cloud(fact)
            return self._bytes(fact, _BYTE_METERS[fact.meter], when), self._cloud.currency
        raise _Unpriced(f"unknown_meter: {fact.meter}")

    def _check_cloud(self, fact: UsageFact) -> None:
        if fact.provider is not None and fact.provider.lower().split(".")[0] not in _CLOUD_PROVIDERS_PRICED:
            raise _Unpriced(f"no_cloud_catalog: {fact.provider}")

    def _tokens(self, fact: UsageFact, token_class: str, when: datetime) -> Decimal:
        mapping = self._cloud.resources.get(fact.resource_id) if fact.resource_id else None
        model = (mapping.model if mapping is not None else None) or fact.model
        if model is None and fact.resource_id is not None and fact.resource_id.startswith("arn:aws:bedrock:"):
            model = fact.resource_id
        if not model:
            raise _Unpriced("no_model")
        model = bedrock_model_id(model)
        provider_id = genai_provider_id(fact.provider)
        negotiated = self._negotiated_token_price(model, fact.provider, token_class)
        if negotiated is not None:
            return fact.quantity * negotiated / _MILLION
        return genai_price(token_class, fact.quantity, model, provider_id, when)

    def _negotiated_token_price(self, model: str, provider: str | None, token_class: str) -> Decimal | None:
        for price in self._cloud.llm:
            if price.model == model.lower() and (price.provider is None or price.provider == provider):
                return price.per_mtok.get(_LLM_PRICE_KEYS[token_class])
        return None

    def _region(self, fact: UsageFact) -> str:
        return fact.region or self._cloud.default_region

    def _hourly(self, kind: str, instance_type: str, price: InstancePrice, fact: UsageFact, when: datetime) -> Decimal:
        hourly = price_at(price.hourly, when, self._region(fact))
        if hourly is None:
            raise _Unpriced(f"no_price_for_region: {kind} {instance_type} in {self._region(fact)} at {when.date()}")
        return hourly

    def _accelerator_seconds(self, fact: UsageFact, when: datetime) -> Decimal:
        mapping = self._cloud.resources.get(fact.resource_id) if fact.resource_id else None
        instance_type = mapping.instance_type if mapping is not None else None
        if instance_type is None:
            if not fact.accelerator_type:
                raise _Unpriced("no_accelerator_type")
            instance_type = next(
                (rule.instance_type for rule in self._cloud.accelerators if rule.pattern.search(fact.accelerator_type)),
                None,
            )
            if instance_type is None:
                raise _Unpriced(f"unknown_accelerator: {fact.accelerator_type}")
        price = self._cloud.instances.get(instance_type)
        if price is None:
            raise _Unpriced(f"no_instance_price: {instance_type}")
        hourly = self._hourly("instance", instance_type, price, fact, when)
        return fact.quantity * hourly / price.gpus / _SECONDS_PER_HOUR

    def _endpoint_seconds(self, fact: UsageFact, when: datetime) -> Decimal:
        mapping = self._cloud.resources.get(fact.resource_id) if fact.resource_id else None
        if mapping is None or mapping.instance_type is None:
            raise _Unpriced(
                f"unknown_endpoint_instance_type: {fact.resource_id} (map it to an instance_type under resources: "
                "in the price overrides file)"
            )
        price = self._cloud.sagemaker.get(mapping.instance_type)
        if price is None:
            raise _Unpriced(f"no_instance_price: {mapping.instance_type}")
        hourly = self._hourly("sagemaker", mapping.instance_type, price, fact, when)
        return fact.quantity * hourly / _SECONDS_PER_HOUR

    def _bytes(self, fact: UsageFact, direction: str, when: datetime) -> Decimal:
        if fact.boundary is None or fact.boundary == Boundary.UNKNOWN.value:
            raise _Unpriced("unknown_boundary")
        periods = self._cloud.data_transfer.get((direction, fact.boundary))
        if periods is None:
            raise _Unpriced(f"no_transfer_price: {direction} {fact.boundary}")
        per_gb = price_at(periods, when, self._region(fact))
        if per_gb is None:
            region = self._region(fact)
            raise _Unpriced(f"no_price_for_region: {direction} {fact.boundary} in {region} at {when.date()}")
        return fact.quantity / self._cloud.bytes_per_gb * per_gb


def load_catalog(overrides: Path | None = None) -> PriceCatalog:
    """The bundled catalog, with the user's overrides file (negotiated rates) on top when given.

    Raises ``ConfigError`` naming the file and key when the overrides file is invalid.
    """
    bundled = resources.files(__package__).joinpath("data").joinpath("aws-catalog.yaml")
    with resources.as_file(bundled) as bundled_path:
        cloud = load_cloud_catalog(bundled_path)
    if overrides is None:
        return PriceCatalog(cloud)
    cloud = load_cloud_catalog(overrides, base=cloud)
    digest = hashlib.sha256(overrides.read_bytes()).hexdigest()[:12]
    return PriceCatalog(cloud, digest)
