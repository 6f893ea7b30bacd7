"""Rates: how one price key's usage is priced over a time interval, so that pricing a fact is a dict lookup,
an interval check, one to three Decimal operations and one tuple (see docs/pricing.md).

A price key is everything about a fact that its price depends on except its quantity and start time (the
meter, resource, provider, region, model, boundary, accelerator type). A rate holds the prices that key
resolved to and the interval, as naive UTC datetimes, over which they hold; each rate does the arithmetic
the catalog has always done, in the same order (a token line through zero: one fused operation with the same
result), so its estimates are the same Decimals. ``tests/test_pricing_rate_cache.py`` checks that.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from datetime import date, datetime, time
from decimal import Context, Decimal, Inexact, InvalidOperation, Overflow
from typing import NamedTuple

from .._store import UsageFact, with_estimate

__all__ = [
    "COST_QUANTUM",
    "EARLIEST",
    "ESTIMATE_FIELDS_FROM",
    "EXACT",
    "LATEST",
    "ZERO",
    "ZERO_AT_COST_SCALE",
    "EndpointSeconds",
    "Fraction",
    "InstanceSeconds",
    "NegotiatedTokens",
    "Piece",
    "Rate",
    "Steps",
    "Transfer",
    "Unpriced",
    "midnight",
    "new_tuple",
]

EARLIEST = datetime.min
LATEST = datetime.max
# usage_facts.estimated_cost is DECIMAL(38, 12).
COST_QUANTUM = Decimal("1e-12")
# Decimal arithmetic that raises rather than rounds; a token line is evaluated in it (see Rate.slope).
EXACT = Context(prec=28, traps=[Inexact, InvalidOperation, Overflow])
ZERO = Decimal(0)
ZERO_AT_COST_SCALE = ZERO.quantize(COST_QUANTUM)
_SECONDS_PER_HOUR = Decimal(3600)
_MILLION = Decimal(1_000_000)
# A fact's estimate is its last four fields, from this index on.
ESTIMATE_FIELDS_FROM = UsageFact._fields.index("estimated_cost")
# Estimate(...) runs Python code; building the tuple directly is several times cheaper.
new_tuple = tuple.__new__


class Piece(NamedTuple):
    """One linear piece of a rate: quantities up to ``upto`` (inclusive; None: no bound) cost
    ``slope * quantity + intercept`` exactly (before quantizing to the cost scale)."""

    upto: Decimal | None
    slope: Decimal
    intercept: Decimal


class Fraction(NamedTuple):
    """A rate as ``quantity * numerator / divisor`` (``divisor`` a whole number), for engines that price in SQL.

    :meth:`Rate.priced` divides step by step in Decimal's 28-digit context; the engine rounds the exact quotient
    once (half-even) to the cost scale. The two differ only for a quotient within the 28th significant digit of
    a rounding tie without being one: with these divisors (GPUs x 3600, bytes per GB) and prices of a few
    decimals, a non-tie quotient's digits past the 12th place end in a repeating digit or stop within about 20
    places, so that takes a cost of thousands or more per fact and digits that line up; no test has found one.
    """

    numerator: Decimal
    divisor: Decimal
    currency: str


def midnight(day: date) -> datetime:
    return datetime.combine(day, time())


class Steps(NamedTuple):
    """How a rate's :meth:`~Rate.priced` prices every fact: its quantity multiplied (``"*"``) or divided (``"/"``)
    by each operand in turn, with Python's operators (in the thread's Decimal context), the cost quantized to
    the cost scale, in ``currency``."""

    currency: str
    operations: tuple[tuple[str, Decimal | int], ...]


class Rate(ABC):
    """Prices the facts of one price key whose start time is in ``[valid_from, valid_until)`` (naive UTC)."""

    __slots__ = ("slope", "steps", "valid_from", "valid_until", "version")

    def __init__(self, version: str, valid_from: datetime = EARLIEST, valid_until: datetime = LATEST) -> None:
        self.version = version
        self.valid_from = valid_from
        self.valid_until = valid_until
        self.slope: Decimal | None = None
        """Set where :meth:`priced` gives a fact of a non-negative quantity the cost (in USD)
        ``slope.fma(quantity, ZERO_AT_COST_SCALE, EXACT)`` quantized to the cost scale, unless that raises
        ``ArithmeticError``: the catalog prices such facts inline (``PriceCatalog.priced_all``)."""
        self.steps: Steps | None = None
        """Set by a :class:`SteppedRate`, whose :meth:`priced` applies them; the compiled ``PriceCatalog.priced_all``
        applies the same steps (tests/test_pricing_rate_cache.py checks the two against each other)."""

    @abstractmethod
    def priced(self, fact: UsageFact) -> UsageFact:
        """A fact of this rate's key that started within its interval, with its estimate fields set.

        The estimate is (cost quantized to the store's scale, currency, catalog version, None), or
        (None, None, catalog version, the reason it is unpriced).
        """


class Unpriced(Rate):
    __slots__ = ("reason",)

    def __init__(
        self, reason: str, version: str, valid_from: datetime = EARLIEST, valid_until: datetime = LATEST
    ) -> None:
        super().__init__(version, valid_from, valid_until)
        self.reason = reason

    def priced(self, fact: UsageFact) -> UsageFact:
        return with_estimate(fact, None, None, self.version, self.reason)


class SteppedRate(Rate):
    """A rate whose price is its :class:`Steps`, one definition for the Python path here and the compiled one."""

    __slots__ = ()

    def __init__(
        self, steps: Steps, version: str, valid_from: datetime = EARLIEST, valid_until: datetime = LATEST
    ) -> None:
        super().__init__(version, valid_from, valid_until)
        self.steps = steps

    def priced(self, fact: UsageFact) -> UsageFact:
        steps = self.steps
        assert steps is not None  # set at init
        cost = fact.quantity
        for operator, operand in steps.operations:
            cost = cost * operand if operator == "*" else cost / operand
        return with_estimate(fact, cost.quantize(COST_QUANTUM), steps.currency, self.version, None)


class NegotiatedTokens(SteppedRate):
    """A negotiated price per million tokens from the overrides file."""

    __slots__ = ("_per_mtok",)

    def __init__(self, per_mtok: Decimal, version: str) -> None:
        super().__init__(Steps("USD", (("*", per_mtok), ("/", _MILLION))), version)
        self._per_mtok = per_mtok

    def pieces(self) -> list[Piece]:
        """The rate as one line (for engines that price in SQL): ``q * per_mtok / 10**6`` of an integer q is
        exact in Decimal, so it equals ``q * (per_mtok / 10**6)``."""
        return [Piece(None, self._per_mtok / _MILLION, Decimal(0))]


class InstanceSeconds(SteppedRate):
    """Accelerator-seconds at the per-accelerator share of an instance's hourly price."""

    __slots__ = ("_currency", "_gpus", "_hourly")

    def __init__(
        self, hourly: Decimal, gpus: int, currency: str, version: str, valid_from: datetime, valid_until: datetime
    ) -> None:
        steps = Steps(currency, (("*", hourly), ("/", gpus), ("/", _SECONDS_PER_HOUR)))
        super().__init__(steps, version, valid_from, valid_until)
        self._hourly = hourly
        self._gpus = gpus
        self._currency = currency

    def fraction(self) -> Fraction:
        return Fraction(self._hourly, self._gpus * _SECONDS_PER_HOUR, self._currency)


class EndpointSeconds(SteppedRate):
    """Endpoint-seconds at a hosting instance's hourly price."""

    __slots__ = ("_currency", "_hourly")

    def __init__(
        self, hourly: Decimal, currency: str, version: str, valid_from: datetime, valid_until: datetime
    ) -> None:
        super().__init__(Steps(currency, (("*", hourly), ("/", _SECONDS_PER_HOUR))), version, valid_from, valid_until)
        self._hourly = hourly
        self._currency = currency

    def fraction(self) -> Fraction:
        return Fraction(self._hourly, _SECONDS_PER_HOUR, self._currency)


class Transfer(SteppedRate):
    """Bytes at a price per GB."""

    __slots__ = ("_bytes_per_gb", "_currency", "_per_gb")

    def __init__(
        self,
        bytes_per_gb: Decimal,
        per_gb: Decimal,
        currency: str,
        version: str,
        valid_from: datetime,
        valid_until: datetime,
    ) -> None:
        super().__init__(Steps(currency, (("/", bytes_per_gb), ("*", per_gb))), version, valid_from, valid_until)
        self._bytes_per_gb = bytes_per_gb
        self._per_gb = per_gb
        self._currency = currency

    def fraction(self) -> Fraction:
        return Fraction(self._per_gb, self._bytes_per_gb, self._currency)
