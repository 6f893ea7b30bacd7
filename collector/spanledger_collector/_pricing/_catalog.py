"""The price catalog: prices each usage fact from genai-prices and the cloud catalog."""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Callable, Iterable
from datetime import datetime, timezone
from decimal import Decimal
from importlib import resources
from operator import itemgetter
from pathlib import Path

from spanledger.semconv import SpanledgerEgressBoundaryValues as Boundary
from spanledger.semconv import SpanledgerMeterValues as Meter

from .._store import UsageFact, with_estimate
from .._store._compiled import columns
from ._cloud_catalog import CloudCatalog, LlmPrice, PricePeriod, load_cloud_catalog, period_at
from ._estimate import Estimate
from ._llm import (
    GENAI_PRICES_VERSION,
    TokenRate,
    UnknownLlmPrice,
    bedrock_model_id,
    genai_provider_id,
    load_genai_prices,
    model_aliases,
)
from ._rates import (
    COST_QUANTUM,
    EARLIEST,
    ESTIMATE_FIELDS_FROM,
    EXACT,
    LATEST,
    ZERO,
    ZERO_AT_COST_SCALE,
    EndpointSeconds,
    InstanceSeconds,
    NegotiatedTokens,
    Rate,
    Transfer,
    Unpriced,
    midnight,
    new_tuple,
)

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
# A fact's price key: everything its price depends on but its quantity and start time.
_PRICE_KEY_FIELDS = tuple(
    UsageFact._fields.index(name)
    for name in ("meter", "resource_id", "provider", "region", "model", "boundary", "accelerator_type")
)
_price_key = itemgetter(*_PRICE_KEY_FIELDS)
# priced_all's loop for the facts of a rate with a slope or steps (most facts), in C (_store/_columns.c); it
# leaves the others to the Python loop, which is its reference and the fallback where the module is not built.
_price_flat: Callable[[list[UsageFact], dict[tuple[str | None, ...], Rate]], list[UsageFact | None]] | None = (
    None
    if columns is None
    else columns.flat_pricer(
        with_estimate,
        _PRICE_KEY_FIELDS,
        UsageFact._fields.index("start_time"),
        UsageFact._fields.index("quantity"),
        ZERO,
        ZERO_AT_COST_SCALE,
        EXACT,
        COST_QUANTUM,
    )
)
# Rates are small; the bound keeps a collector that sees arbitrary model names from clients at a fixed size.
_MAX_RATES = 4096


class _Unpriced(Exception):
    """The usage has no known price; the message is the reason, which holds over ``[valid_from, valid_until)``."""

    def __init__(self, reason: str, valid_from: datetime = EARLIEST, valid_until: datetime = LATEST) -> None:
        super().__init__(reason)
        self.valid_from = valid_from
        self.valid_until = valid_until


class PriceCatalog:
    """Prices usage facts. Build it with :func:`load_catalog`; its methods are safe to call from any thread.

    Each fact is priced by the :class:`~._rates.Rate` of its price key, found in a bounded cache without a
    lock; a fact of a new key, or one outside its key's cached interval, has its rate resolved afresh (the
    reference path). Start times are naive UTC on the fast path; aware ones are right but slower, and ones
    with a non-zero UTC offset are never cached (cloud periods have always followed their local date).
    """

    def __init__(self, cloud: CloudCatalog, overrides_digest: str | None = None) -> None:
        self._cloud = cloud
        version = f"{cloud.version}+genai-prices-{GENAI_PRICES_VERSION}"
        self.version = version if overrides_digest is None else f"{version}+overrides-{overrides_digest}"
        self._rates: dict[tuple[str | None, ...], Rate] = {}
        self._rates_lock = threading.Lock()
        load_genai_prices()

    def estimate(self, fact: UsageFact) -> Estimate:
        """The estimated cost of one usage fact; unknown prices are unpriced with a reason, never zero."""
        return new_tuple(Estimate, self.priced(fact)[ESTIMATE_FIELDS_FROM:])

    def priced_all(
        self, facts: Iterable[UsageFact], failed: Callable[[UsageFact, Exception], UsageFact]
    ) -> list[UsageFact]:
        """Each fact priced as :meth:`priced` prices it (the collector's entry point, a request's facts at once).

        A fact that :meth:`priced` would raise on is replaced by ``failed(fact, error)``, called while the
        error is handled; the others are still priced.
        """
        if _price_flat is None:
            return self._priced_each(facts, failed)
        facts = facts if type(facts) is list else list(facts)
        out = _price_flat(facts, self._rates)
        if None in out:
            left = [index for index, priced in enumerate(out) if priced is None]
            # The facts C left, in order: they see the cache, and call failed, as they would have. C's facts
            # only read the cache; one that comes after a fact here which replaces its key's rate (another
            # interval) was priced at the rate replaced, which prices it the same (the cache's invariant).
            for index, priced in zip(left, self._priced_each([facts[index] for index in left], failed), strict=True):
                out[index] = priced
        return out  # type: ignore[return-value]  # no None left

    def _priced_each(
        self, facts: Iterable[UsageFact], failed: Callable[[UsageFact, Exception], UsageFact]
    ) -> list[UsageFact]:
        """:meth:`priced_all` in Python, one fact after the other: the reference of ``_price_flat``."""
        # priced() inlined, and Rate.priced for the rates with a slope (flat token prices, most facts): one
        # call for a request's facts rather than three or four per fact (processor, catalog, rate,
        # with_estimate), about a tenth of the stage. tests/test_pricing_rate_cache.py checks this against
        # priced() fact by fact.
        rates_get = self._rates.get
        estimated = with_estimate
        out: list[UsageFact] = []
        append = out.append
        for fact in facts:
            try:
                rate = rates_get(_price_key(fact))
                if rate is not None:
                    try:
                        current = rate.valid_from <= fact.start_time < rate.valid_until
                    except TypeError:  # an aware start time: the cached intervals are naive UTC
                        current = False
                    if current:
                        slope = rate.slope
                        quantity = fact.quantity
                        if slope is not None and quantity >= ZERO:
                            try:
                                cost = slope.fma(quantity, ZERO_AT_COST_SCALE, EXACT)
                            except ArithmeticError:
                                pass  # the rate prices it another way
                            else:
                                append(estimated(fact, cost.quantize(COST_QUANTUM), "USD", rate.version, None))
                                continue
                        append(rate.priced(fact))
                        continue
                append(self._priced_afresh(fact))
            except Exception as error:
                append(failed(fact, error))
        return out

    def priced(self, fact: UsageFact) -> UsageFact:
        """``fact`` with the fields of its :meth:`estimate` set (one fact; see :meth:`priced_all`)."""
        rate = self._rates.get(_price_key(fact))
        if rate is not None:
            try:
                if rate.valid_from <= fact.start_time < rate.valid_until:
                    return rate.priced(fact)
            except TypeError:  # an aware start time: the cached intervals are naive UTC
                pass
        return self._priced_afresh(fact)

    def rate(self, fact: UsageFact) -> Rate:
        """The rate that prices ``fact`` (its price key at its start time; naive is UTC), as :meth:`priced`
        uses it; for engines that price in SQL (``_engine._prices``)."""
        start = fact.start_time
        return self._rate(fact, start if start.tzinfo else start.replace(tzinfo=timezone.utc))

    def _priced_afresh(self, fact: UsageFact) -> UsageFact:
        start = fact.start_time
        offset = start.utcoffset()
        if offset:
            # Cloud price periods follow the start time's own date, so the UTC intervals do not apply.
            return self._rate(fact, start).priced(fact)
        naive = start.replace(tzinfo=None)
        key = _price_key(fact)
        rate = self._rates.get(key)
        if rate is None or not rate.valid_from <= naive < rate.valid_until:
            rate = self._rate(fact, start if offset is not None else start.replace(tzinfo=timezone.utc))
            with self._rates_lock:
                if key not in self._rates and len(self._rates) >= _MAX_RATES:
                    del self._rates[next(iter(self._rates))]  # the oldest
                self._rates[key] = rate
        return rate.priced(fact)

    def _rate(self, fact: UsageFact, when: datetime) -> Rate:
        """The rate of the fact's price key at ``when`` (aware)."""
        try:
            return self._priced_rate(fact, when)
        except UnknownLlmPrice as exc:
            return Unpriced(str(exc), self.version)
        except _Unpriced as exc:
            return Unpriced(str(exc), self.version, exc.valid_from, exc.valid_until)

    def _priced_rate(self, fact: UsageFact, when: datetime) -> Rate:
        if fact.meter in _TOKEN_METERS:
            return self._tokens(fact, _TOKEN_METERS[fact.meter], when)
        if fact.meter == Meter.ACCELERATOR_SECONDS.value:
            self._check_cloud(fact)
            return self._accelerator_seconds(fact, when)
        if fact.meter == Meter.ENDPOINT_SECONDS.value:
            self._check_cloud(fact)
            return self._endpoint_seconds(fact, when)
        if fact.meter in _BYTE_METERS:
            self._check_cloud(fact)
            return self._bytes(fact, _BYTE_METERS[fact.meter], when)
        raise _Unpriced(f"unknown_meter: {fact.meter}")

    def _check_cloud(self, fact: UsageFact) -> None:
        if fact.provider is not None and fact.provider.lower().split(".")[0] not in _CLOUD_PROVIDERS_PRICED:
            raise _Unpriced(f"no_cloud_catalog: {fact.provider}")

    def _tokens(self, fact: UsageFact, token_class: str, when: datetime) -> Rate:
        mapping = self._cloud.resources.get(fact.resource_id) if fact.resource_id else None
        model = (mapping.model if mapping is not None else None) or fact.model
        if model is None and fact.resource_id is not None and fact.resource_id.startswith("arn:aws:bedrock:"):
            model = fact.resource_id
        if not model:
            raise _Unpriced("no_model")
        model = bedrock_model_id(model)
        provider_id = genai_provider_id(fact.provider)
        negotiated = self._listed_token_price(self._cloud.llm, model, fact.provider, token_class)
        if negotiated is not None:
            return NegotiatedTokens(negotiated, self.version)
        try:
            return TokenRate(token_class, model, provider_id, when, self.version)
        except UnknownLlmPrice:
            fallback = self._listed_token_price(self._cloud.llm_fallback, model, fact.provider, token_class)
            if fallback is None:
                raise
            return NegotiatedTokens(fallback, self.version)

    @staticmethod
    def _listed_token_price(
        prices: list[LlmPrice], model: str, provider: str | None, token_class: str
    ) -> Decimal | None:
        names = [name.lower() for name in model_aliases(model)]
        for price in prices:
            if price.model in names and (price.provider is None or price.provider == provider):
                return price.per_mtok.get(_LLM_PRICE_KEYS[token_class])
        return None

    def _price_in_region(
        self, periods: tuple[PricePeriod, ...], priced: str, fact: UsageFact, when: datetime
    ) -> tuple[Decimal, datetime, datetime]:
        """The price of the fact's region at ``when``, with the naive UTC interval over which it holds."""
        region = fact.region or self._cloud.default_region
        period, valid_from, valid_until = period_at(periods, when.date())
        price = None if period is None else period.by_region.get(region)
        # Before the first period there is none: the gap until it holds, as a period does.
        interval = (
            EARLIEST if valid_from is None else midnight(valid_from),
            LATEST if valid_until is None else midnight(valid_until),
        )
        if price is None:
            # The reason holds over the whole interval (the cache keeps one rate for it): it names no fact's day.
            before = f" before {valid_until}" if period is None and valid_until is not None else ""
            raise _Unpriced(f"no_price_for_region: {priced} in {region}{before}", *interval)
        return price, *interval

    def _accelerator_seconds(self, fact: UsageFact, when: datetime) -> Rate:
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
        hourly, valid_from, valid_until = self._price_in_region(price.hourly, f"instance {instance_type}", fact, when)
        return InstanceSeconds(hourly, price.gpus, self._cloud.currency, self.version, valid_from, valid_until)

    def _endpoint_seconds(self, fact: UsageFact, when: datetime) -> Rate:
        mapping = self._cloud.resources.get(fact.resource_id) if fact.resource_id else None
        if mapping is None or mapping.instance_type is None:
            raise _Unpriced(
                f"unknown_endpoint_instance_type: {fact.resource_id} (map it to an instance_type under resources: "
                "in the price overrides file)"
            )
        price = self._cloud.sagemaker.get(mapping.instance_type)
        if price is None:
            raise _Unpriced(f"no_instance_price: {mapping.instance_type}")
        hourly, valid_from, valid_until = self._price_in_region(
            price.hourly, f"sagemaker {mapping.instance_type}", fact, when
        )
        return EndpointSeconds(hourly, self._cloud.currency, self.version, valid_from, valid_until)

    def _bytes(self, fact: UsageFact, direction: str, when: datetime) -> Rate:
        if fact.boundary is None or fact.boundary == Boundary.UNKNOWN.value:
            raise _Unpriced("unknown_boundary")
        periods = self._cloud.data_transfer.get((direction, fact.boundary))
        if periods is None:
            raise _Unpriced(f"no_transfer_price: {direction} {fact.boundary}")
        per_gb, valid_from, valid_until = self._price_in_region(periods, f"{direction} {fact.boundary}", fact, when)
        return Transfer(self._cloud.bytes_per_gb, per_gb, self._cloud.currency, self.version, valid_from, valid_until)


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
