"""Token prices from genai-prices' bundled data (never its network updater)."""

from __future__ import annotations

import re
from bisect import bisect_left
from datetime import date, datetime, time, timedelta, timezone
from decimal import Decimal
from typing import Any, NamedTuple

import genai_prices
from genai_prices.data_snapshot import get_snapshot
from genai_prices.types import ModelInfo, ModelPrice, StartDateConstraint, TieredPrices, TimeOfDateConstraint
from spanledger import semconv

from .._store import UsageFact, with_estimate
from ._rates import COST_QUANTUM, EARLIEST, EXACT, LATEST, ZERO, ZERO_AT_COST_SCALE, Piece, Rate, midnight

__all__ = [
    "GENAI_PRICES_VERSION",
    "PROVIDER_IDS",
    "PriceChanges",
    "TokenRate",
    "UnknownLlmPrice",
    "bedrock_model_id",
    "calc_genai_price",
    "genai_provider_id",
    "load_genai_prices",
    "model_aliases",
]

GENAI_PRICES_VERSION: str = genai_prices.__version__

# gen_ai.provider.name (and, for facts from AWS spans, cloud.provider "aws") -> genai-prices provider id.
# A name missing here is not guessed at: a self-hosted model under an unknown provider must not be priced
# as if it were bought from someone else.
PROVIDER_IDS: dict[str, str] = {
    semconv.GenAiProviderNameValues.OPENAI.value: "openai",
    semconv.GenAiProviderNameValues.ANTHROPIC.value: "anthropic",
    semconv.GenAiProviderNameValues.AWS_BEDROCK.value: "aws",
    "aws": "aws",
    semconv.GenAiProviderNameValues.AZURE_AI_OPENAI.value: "azure",
    semconv.GenAiProviderNameValues.AZURE_AI_INFERENCE.value: "azure",
    semconv.GenAiProviderNameValues.GCP_GEMINI.value: "google",
    semconv.GenAiProviderNameValues.GCP_VERTEX_AI.value: "google",
    semconv.GenAiProviderNameValues.GCP_GEN_AI.value: "google",
    semconv.GenAiProviderNameValues.MISTRAL_AI.value: "mistral",
    semconv.GenAiProviderNameValues.GROQ.value: "groq",
    semconv.GenAiProviderNameValues.COHERE.value: "cohere",
    semconv.GenAiProviderNameValues.DEEPSEEK.value: "deepseek",
    semconv.GenAiProviderNameValues.X_AI.value: "x-ai",
    semconv.GenAiProviderNameValues.PERPLEXITY.value: "perplexity",
    "fireworks": "fireworks",
    "together": "together",
    "openrouter": "openrouter",
    "cerebras": "cerebras",
}


# Vertex AI names stable model versions with a numeric suffix ("gemini-2.5-flash-001") and Anthropic models
# with "@date" ("claude-sonnet-4-5@20250929"); responses may name publishers' resource paths.
_VERSION_SUFFIX = re.compile(r"-\d{3}$")
_RESOURCE_PREFIX = re.compile(r"^(?:.*/)?(?:publishers/[^/]+/)?models/")


def model_aliases(model: str) -> list[str]:
    """``model`` and the names genai-prices may know it by (resource path, Vertex version suffixes dropped)."""
    names = [model]
    bare = _RESOURCE_PREFIX.sub("", model)
    for name in (bare, bare.split("@", 1)[0]):
        if name not in names:
            names.append(name)
    unversioned = _VERSION_SUFFIX.sub("", names[-1])
    if unversioned not in names:
        names.append(unversioned)
    return names


class UnknownLlmPrice(Exception):
    """No token price is known; the message is the unpriced reason."""


def genai_provider_id(provider_name: str | None) -> str | None:
    """The genai-prices provider for a ``gen_ai.provider.name``; ``None`` lets genai-prices match the model."""
    if provider_name is None:
        return None
    provider_id = PROVIDER_IDS.get(provider_name.lower())
    if provider_id is None:
        raise UnknownLlmPrice(f"unknown_provider: {provider_name}")
    return provider_id


def bedrock_model_id(model: str) -> str:
    """``arn:aws:bedrock:...:inference-profile/us.anthropic...`` -> ``us.anthropic...`` (ids pass through)."""
    if not model.startswith("arn:"):
        return model
    if ":application-inference-profile/" in model:
        raise UnknownLlmPrice(
            f"unmapped_application_inference_profile: {model} (map it to a model under resources: in the "
            "price overrides file)"
        )
    return model.rsplit("/", 1)[-1]


def _usage(meter_class: str, quantity: Decimal) -> genai_prices.Usage:
    if meter_class == "input":
        return genai_prices.Usage(input_tokens=quantity)
    if meter_class == "cache_read":
        # genai-prices counts cached tokens inside input_tokens; the fact's quantity is all cached.
        return genai_prices.Usage(input_tokens=quantity, cache_read_tokens=quantity)
    if meter_class == "cache_write":
        return genai_prices.Usage(input_tokens=quantity, cache_write_tokens=quantity)
    return genai_prices.Usage(output_tokens=quantity)


def calc_genai_price(
    meter_class: str, quantity: Decimal, model: str, provider_id: str | None, when: datetime
) -> Decimal:
    """Price ``quantity`` tokens of one class with ``genai_prices.calc_price`` (the reference, ~80 µs a call)."""
    try:
        calculation = genai_prices.calc_price(
            _usage(meter_class, quantity), model, provider_id=provider_id, genai_request_timestamp=when
        )
    except LookupError:
        raise UnknownLlmPrice(f"unknown_model: {model} ({provider_id or 'any provider'})") from None
    except ValueError as exc:
        raise UnknownLlmPrice(f"price_error: {model}: {exc}") from None
    return calculation.total_price


class _Line(NamedTuple):
    """The price of one token class under one ``ModelPrice`` within one tier: ``slope * quantity + intercept``."""

    model_price: object  # held so that the id() in the cache key stays this object's
    slope: Decimal
    intercept: Decimal


# Keyed by the id of a ModelPrice of genai-prices' bundled data, so bounded by that data.
_TIER_STARTS: dict[int, tuple[object, list[int]]] = {}
_LINES: dict[tuple[int, str, int], _Line | None] = {}


def _tier_starts(model_price: Any) -> list[int]:
    cached = _TIER_STARTS.get(id(model_price))
    if cached is not None and cached[0] is model_price:
        return cached[1]
    starts = sorted(
        {tier.start for value in vars(model_price).values() if isinstance(value, TieredPrices) for tier in value.tiers}
    )
    _TIER_STARTS[id(model_price)] = (model_price, starts)
    return starts


def _fit_line(model_price: Any, meter_class: str, starts: list[int], tier: int) -> _Line | None:
    """Fit the line through two quantities of ``tier`` and check it at a third; ``None`` if it does not fit."""
    low = starts[tier - 1] + 1 if tier else 0
    high = starts[tier] if tier < len(starts) else low + 1_000_000
    if high - low < 2:
        return None
    try:
        first, second, check = (
            model_price.calc_price(_usage(meter_class, Decimal(quantity)))["total_price"]
            for quantity in (low, low + 1, high)
        )
        slope = EXACT.subtract(second, first)
        intercept = EXACT.subtract(first, EXACT.multiply(slope, Decimal(low)))
        if EXACT.add(EXACT.multiply(slope, Decimal(high)), intercept) != check:
            return None
    except (ArithmeticError, ValueError, LookupError):
        return None
    return _Line(model_price, slope, intercept)


def _line(model_price: Any, meter_class: str, starts: list[int], tier: int) -> _Line | None:
    key = (id(model_price), meter_class, tier)
    line = _LINES.get(key)
    if line is None or line.model_price is not model_price:
        line = _LINES[key] = _fit_line(model_price, meter_class, starts, tier)
    return line


def _utc_time_of_day(value: time) -> time:
    """A constraint's time of day as a naive UTC time (naive times are UTC, as in genai-prices)."""
    if value.tzinfo is None:
        return value
    return datetime.combine(date(1970, 1, 1), value).astimezone(timezone.utc).time()


class PriceChanges(NamedTuple):
    """When a model's prices can change: at the midnights (UTC) of ``days``, and every day at ``times`` (naive
    UTC, sorted, distinct). ``known`` is False for a model with a kind of constraint this does not know."""

    days: tuple[datetime, ...]
    times: tuple[time, ...]
    known: bool = True

    def days_around(self, utc: datetime) -> tuple[datetime, datetime]:
        """The interval between date changes that holds ``utc`` (naive): the prices at one time of day are
        the same on each of its days."""
        return (
            max((day for day in self.days if day <= utc), default=EARLIEST),
            min((day for day in self.days if day > utc), default=LATEST),
        )


def _price_changes(info: ModelInfo) -> PriceChanges:
    """``get_prices`` depends only on which of the model's constraints are active, and each constraint's
    activity changes only at its start date's midnight or at its daily start and end times (all UTC)."""
    if isinstance(info.prices, ModelPrice):
        return PriceChanges((), ())
    days: set[datetime] = set()
    times: set[time] = set()
    for conditional in info.prices:
        constraint = conditional.constraint
        if isinstance(constraint, StartDateConstraint):
            days.add(midnight(constraint.start_date))
        elif isinstance(constraint, TimeOfDateConstraint):
            times.update(_utc_time_of_day(moment) for moment in (constraint.start_time, constraint.end_time))
        elif constraint is not None:
            return PriceChanges((), (), known=False)
    return PriceChanges(tuple(sorted(days)), tuple(sorted(times)))


def _prices_interval(changes: PriceChanges, when: datetime) -> tuple[datetime, datetime]:
    """The naive UTC interval around ``when`` over which the model's ``get_prices`` returns the same prices."""
    utc = when.astimezone(timezone.utc).replace(tzinfo=None)
    if not changes.known:
        return utc, utc  # a kind of constraint this does not know: price every fact afresh
    start, until = changes.days_around(utc)
    days = [utc.date()]
    if days[0] > date.min:
        days.append(days[0] - timedelta(days=1))
    if days[0] < date.max:
        days.append(days[0] + timedelta(days=1))
    for moment in (datetime.combine(day, time_of_day) for day in days for time_of_day in changes.times):
        if until > moment > utc:
            until = moment
        elif start < moment <= utc:
            start = moment
    return start, until


class TokenRate(Rate):
    """One token class of one genai-prices model, over an interval where the model's prices do not change.

    Equal to :func:`calc_genai_price` (``genai_prices.calc_price``) at a fraction of its cost: within one
    price period and tier a class's price is linear in its quantity (price x count / per, plus any
    per-request price), so the line is computed once with genai-prices itself, checked at a third point,
    and evaluated with exact Decimal arithmetic; anything else (an inexact result, a tier too narrow to fit,
    a line that does not fit) falls back to ``calc_price``.

    ``changes`` says when the model's prices can change (engines that price in SQL write one row per part of
    the day from it: ``_engine._prices.periods``).
    """

    __slots__ = ("_lines", "_meter_class", "_model", "_provider_id", "_starts", "changes")

    def __init__(self, meter_class: str, model: str, provider_id: str | None, when: datetime, version: str) -> None:
        """``when`` is an aware datetime; raises :class:`UnknownLlmPrice` when genai-prices has no such model."""
        snapshot = get_snapshot()
        for name in model_aliases(model):
            try:
                _, info = snapshot.find_provider_model(name, None, provider_id, None)
            except LookupError:
                continue
            model = name
            break
        else:
            raise UnknownLlmPrice(f"unknown_model: {model} ({provider_id or 'any provider'})")
        changes = _price_changes(info)
        super().__init__(version, *_prices_interval(changes, when))
        self.changes = changes
        model_price = info.get_prices(when)
        self._meter_class = meter_class
        self._model = model
        self._provider_id = provider_id
        self._starts = _tier_starts(model_price)
        self._lines = [_line(model_price, meter_class, self._starts, tier) for tier in range(len(self._starts) + 1)]
        # The common case, priced inline: no tiers, and a line through zero (no per-request price).
        line = self._lines[0]
        self.slope = line.slope if not self._starts and line is not None and not line.intercept else None

    def cost(self, quantity: Decimal, when: datetime) -> Decimal:
        """The cost of ``quantity`` tokens at ``when`` (within the interval; naive is UTC).

        Raises :class:`UnknownLlmPrice` when genai-prices cannot price it.
        """
        # genai-prices applies a tier when the input tokens exceed its start
        line = self._lines[bisect_left(self._starts, quantity) if self._starts else 0]
        if line is not None and quantity >= 0:
            try:
                return EXACT.add(EXACT.multiply(line.slope, quantity), line.intercept)
            except ArithmeticError:
                pass
        when = when if when.tzinfo else when.replace(tzinfo=timezone.utc)
        return calc_genai_price(self._meter_class, quantity, self._model, self._provider_id, when)

    def pieces(self) -> list[Piece] | None:
        """The rate's lines by tier (for engines that price in SQL), or None where a tier has no exact line
        (genai-prices prices it with ``calc_price``)."""
        if any(line is None for line in self._lines):
            return None
        uptos = [Decimal(start) for start in self._starts] + [None]
        return [Piece(upto, line.slope, line.intercept) for upto, line in zip(uptos, self._lines, strict=True) if line]

    def priced(self, fact: UsageFact) -> UsageFact:
        slope = self.slope
        quantity = fact.quantity
        if slope is not None and quantity >= ZERO:
            # cost(), in one fused operation: adding zero (at the cost's scale, which saves most of the
            # quantize work) to the exact product gives the same value, Inexact trap and sign.
            try:
                cost = slope.fma(quantity, ZERO_AT_COST_SCALE, EXACT)
            except ArithmeticError:
                pass
            else:
                return with_estimate(fact, cost.quantize(COST_QUANTUM), "USD", self.version, None)
        try:
            cost = self.cost(quantity, fact.start_time)
        except UnknownLlmPrice as exc:
            return with_estimate(fact, None, None, self.version, str(exc))
        return with_estimate(fact, cost.quantize(COST_QUANTUM), "USD", self.version, None)


def load_genai_prices() -> None:
    """Load genai-prices' bundled data now (~30 ms), rather than while pricing the first fact."""
    get_snapshot()
