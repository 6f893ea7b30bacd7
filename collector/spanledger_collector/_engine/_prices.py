"""The engine's price tables, from the collector's own catalog: token rates as linear pieces SQL can apply
(``llm_token_prices``), the other meters' rates as fractions (``cloud_prices``).

Each token row is one piece of one :class:`~.._pricing._rates.Rate` (``Rate.pieces``): the same Decimals the
cost processor multiplies, so ``roundBankers(slope * quantity + intercept, 12)`` in ClickHouse equals the
collector's ``quantize`` (half-even). Token rows are written for every model genai-prices lists under each
provider spanledger maps, and for every (meter, provider, model) already in ``usage_reports``. A
``cloud_prices`` row is one rate (``Rate.fraction``: accelerator-, endpoint-seconds, bytes) of a price key
already in ``usage_reports``: ``quantity * numerator / divisor`` rounded once is the processor's estimate
(``_rates.Fraction``). Each key's rows cover every time the tables can hold (:func:`periods`), so a price
change the catalog already knows of (a dated price, an off-peak hour) applies without another ``init``; a
model or resource first seen after ``init`` is unpriced (``not_in_price_table``) until ``init`` runs again.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterable, Iterator, Sequence
from datetime import datetime, time, timedelta, timezone
from decimal import Decimal
from functools import partial
from typing import Any, NamedTuple

from genai_prices.data_snapshot import get_snapshot
from spanledger.semconv import SpanledgerResourceTypeValues as ResourceType

from .._pricing import _llm
from .._pricing._catalog import PriceCatalog
from .._pricing._rates import (
    EndpointSeconds,
    Fraction,
    InstanceSeconds,
    NegotiatedTokens,
    Piece,
    Rate,
    Transfer,
    Unpriced,
)
from .._store import UsageFact
from .._store._schema import Kind
from ._ddl import NO_PROVIDER, NULL_KEY, TOKEN_METERS, Names, quoted, sql_file

__all__ = [
    "CloudKey",
    "Period",
    "PriceKey",
    "catalog_keys",
    "cloud_price_rows",
    "load_prices",
    "periods",
    "price_fact",
    "price_rows",
]

_FIRST = datetime(1900, 1, 1)
_LAST = datetime(2299, 12, 31)
_BELOW_ALL = Decimal(-1)
_ABOVE_ALL = Decimal(10) ** 28
_SLOPE_SCALE = 30
_DAY_NS = 86_400 * 10**9
COLUMNS = (
    "meter", "provider", "model", "valid_from", "valid_until", "day_from", "day_until", "above", "upto", "slope",
    "intercept", "currency", "catalog_version", "unpriced_reason", "loaded_at",
)  # fmt: skip


CLOUD_COLUMNS = (
    "meter", "provider", "resource_id", "accelerator_type", "region", "boundary", "valid_from", "valid_until",
    "numerator", "divisor", "currency", "catalog_version", "unpriced_reason", "loaded_at",
)  # fmt: skip


class PriceKey(NamedTuple):
    meter: str
    provider: str | None
    model: str


class CloudKey(NamedTuple):
    """What a non-token fact's price depends on besides its start time (the catalog's price key, less the model,
    which only token rates read)."""

    meter: str
    provider: str | None
    resource_id: str | None
    accelerator_type: str | None
    region: str | None
    boundary: str | None


def _clamp(moment: datetime) -> datetime:
    return min(max(moment, _FIRST), _LAST)


class Period(NamedTuple):
    """One rate of one price key: facts starting in ``[valid_from, valid_until)`` at a time of the UTC day in
    ``[day_from, day_until)`` (nanoseconds) are priced by ``rate``."""

    rate: Rate
    valid_from: datetime
    valid_until: datetime
    day_from: int = 0
    day_until: int = _DAY_NS


def _nanos_of_day(moment: time) -> int:
    return ((moment.hour * 60 + moment.minute) * 60 + moment.second) * 10**9 + moment.microsecond * 1000


def periods(catalog: PriceCatalog, fact_at: Callable[[datetime], UsageFact]) -> Iterator[Period]:
    """Every rate of one price key from 1900 to 2299 (``fact_at``: a fact of the key starting at a naive UTC
    time), so that the rows hold for facts of any time, before ``init`` or long after it.

    A rate whose prices change at times of day (genai-prices' time-of-day constraints) is written once for the
    days between two date changes, one period per part of the day, rather than once per interval: every day
    of those years would be ~10^5 intervals a key. A price whose changes are not known (a kind of constraint
    the collector does not know) ends the key's periods: its facts read as ``not_in_price_table``."""
    start = _FIRST
    while start < _LAST:
        rate = catalog.rate(fact_at(start))
        if rate.valid_until <= start:
            return
        changes = rate.changes if isinstance(rate, _llm.TokenRate) else None
        if changes is None or not changes.times:
            yield Period(rate, _clamp(rate.valid_from), _clamp(rate.valid_until))
            start = rate.valid_until
            continue
        days_from, days_until = changes.days_around(start)
        bounds = [_nanos_of_day(moment) for moment in changes.times if moment != time()]
        for day_from, day_until in zip([0, *bounds], [*bounds, _DAY_NS], strict=True):
            moment = datetime.combine(start.date(), time()) + timedelta(microseconds=day_from // 1000)
            yield Period(catalog.rate(fact_at(moment)), _clamp(days_from), _clamp(days_until), day_from, day_until)
        start = days_until


def _pieces(rate: Rate) -> list[Piece] | None:
    if isinstance(rate, (NegotiatedTokens, _llm.TokenRate)):
        return rate.pieces()
    return None


def _fits(number: Decimal) -> bool:
    exponent = number.as_tuple().exponent
    return isinstance(exponent, int) and -exponent <= _SLOPE_SCALE and abs(number) < Decimal(10) ** 40


def _rows(key: PriceKey, period: Period, loaded_at: datetime) -> Iterator[tuple[Any, ...]]:
    rate = period.rate
    common = (key.meter, NO_PROVIDER if key.provider is None else key.provider, key.model,
              period.valid_from, period.valid_until, period.day_from, period.day_until)  # fmt: skip
    if isinstance(rate, Unpriced):
        yield (*common, _BELOW_ALL, _ABOVE_ALL, None, None, None, rate.version, rate.reason, loaded_at)
        return
    pieces = _pieces(rate)
    if pieces is None or not all(_fits(piece.slope) and _fits(piece.intercept) for piece in pieces):
        return  # no exact line: left out, so the fact reads as not_in_price_table rather than a wrong cost
    above = _BELOW_ALL
    for piece in pieces:
        upto = _ABOVE_ALL if piece.upto is None else piece.upto
        yield (*common, above, upto, piece.slope, piece.intercept, "USD", rate.version, None, loaded_at)
        above = upto


def price_fact(key: PriceKey, start: datetime) -> UsageFact:
    """A fact of ``key`` starting at ``start`` (what the catalog's rate of the key at that time reads)."""
    return UsageFact(
        trace_id="", span_id="", meter=key.meter, start_time=start, end_time=start, quantity=Decimal(1),
        unit="{token}", resource_type=ResourceType.LLM_MODEL.value, provider=key.provider, model=key.model or None,
    )  # fmt: skip


def catalog_keys() -> Iterator[PriceKey]:
    """Every model genai-prices lists under a provider spanledger maps a ``gen_ai.provider.name`` to."""
    by_id: dict[str, list[str]] = {}
    for name, provider_id in _llm.PROVIDER_IDS.items():
        by_id.setdefault(provider_id, []).append(name)
    for provider in get_snapshot().providers:
        for name in by_id.get(provider.id, ()):
            for model in provider.models:
                for meter in TOKEN_METERS:
                    yield PriceKey(meter, name, model.id)


def price_rows(catalog: PriceCatalog, keys: Iterable[PriceKey], loaded_at: datetime) -> list[tuple[Any, ...]]:
    """The rows of each key's rates (:func:`periods`)."""
    rows: list[tuple[Any, ...]] = []
    for key in keys:
        for period in periods(catalog, partial(price_fact, key)):
            rows.extend(_rows(key, period, loaded_at))
    return rows


def _fraction(rate: Rate) -> Fraction | None:
    if isinstance(rate, (InstanceSeconds, EndpointSeconds, Transfer)):
        return rate.fraction()
    return None


def _cloud_rows(key: CloudKey, period: Period, loaded_at: datetime) -> Iterator[tuple[Any, ...]]:
    rate = period.rate
    common = (*(NULL_KEY if value is None else value for value in key), period.valid_from, period.valid_until)
    if isinstance(rate, Unpriced):
        yield (*common, None, None, None, rate.version, rate.reason, loaded_at)
        return
    fraction = _fraction(rate)
    if fraction is None or fraction.divisor != fraction.divisor.to_integral_value() or not _fits(fraction.numerator):
        return  # no exact fraction: left out, so the fact reads as not_in_price_table rather than a wrong cost
    yield (*common, fraction.numerator, int(fraction.divisor), fraction.currency, rate.version, None, loaded_at)


def _cloud_fact(key: CloudKey, start: datetime) -> UsageFact:
    return UsageFact(
        trace_id="", span_id="", meter=key.meter, start_time=start, end_time=start, quantity=Decimal(1), unit="",
        resource_id=key.resource_id, provider=key.provider, region=key.region, boundary=key.boundary,
        accelerator_type=key.accelerator_type,
    )  # fmt: skip


def cloud_price_rows(catalog: PriceCatalog, keys: Iterable[CloudKey], loaded_at: datetime) -> list[tuple[Any, ...]]:
    """The rows of each key's rates (:func:`periods`: the cloud catalog's are whole days)."""
    rows: list[tuple[Any, ...]] = []
    for key in keys:
        for period in periods(catalog, partial(_cloud_fact, key)):
            rows.extend(_cloud_rows(key, period, loaded_at))
    return rows


def load_prices(client: Any, names: Names, catalog: PriceCatalog, *, catalog_models: bool = True) -> int:
    """Create the price tables and fill them with ``catalog``'s rows of the keys seen so far and
    (``catalog_models``) of every model the catalog lists (``_pricing._catalog.load_catalog``, with the
    ``spanledger_cost`` processor's ``price_overrides`` file: negotiated rates, SageMaker endpoints' instance
    types).

    Each run replaces the tables' rows (:func:`_replace`): rows of an earlier catalog (a genai-prices release
    that moved a tier's start, an overrides file since changed) would otherwise stay beside the new ones and
    overlap them."""
    now = datetime.now(timezone.utc).replace(tzinfo=None)
    keys: set[PriceKey] = set(catalog_keys()) if catalog_models else set()
    keys.update(
        PriceKey(*key)
        for key in client.query(
            f"SELECT DISTINCT meter, provider, ifNull(model, '') FROM {quoted(names.database)}."
            f"{quoted(names.usage_reports)} FINAL WHERE meter IN {{meters:Array(String)}}",
            parameters={"meters": list(TOKEN_METERS)},
        ).result_rows
    )
    rows = price_rows(catalog, keys, now)
    _replace(client, names.database, names.prices, "llm_token_prices.sql", rows, COLUMNS)
    cloud_keys = [
        CloudKey(*key)
        for key in client.query(
            f"SELECT DISTINCT meter, provider, resource_id, accelerator_type, region, boundary "
            f"FROM {quoted(names.database)}.{quoted(names.usage_reports)} FINAL "
            "WHERE meter NOT IN {meters:Array(String)}",
            parameters={"meters": list(TOKEN_METERS)},
        ).result_rows
    ]
    cloud_rows = cloud_price_rows(catalog, cloud_keys, now)
    _replace(client, names.database, names.cloud_prices, "cloud_prices.sql", cloud_rows, CLOUD_COLUMNS)
    return len(rows) + len(cloud_rows)


def _replace(
    client: Any, database: str, table: str, ddl: str, rows: Sequence[Sequence[Any]], columns: Sequence[str]
) -> None:
    """``table`` (made by ``ddl`` when missing) holding exactly ``rows``: written to a table of their own, then
    swapped in with ``EXCHANGE TABLES`` (atomic: readers see the old rows or the new, never none). The loading
    table's name is this run's, so two ``init`` runs at once (an hourly cron overlapping) each swap in a whole
    table rather than drop or fill the other's."""
    loading = f"{table}_loading_{uuid.uuid4().hex[:12]}"

    def create(name: str) -> None:
        client.command(
            sql_file(ddl).format(
                database=quoted(database), table=quoted(name), timestamp=Kind.TIMESTAMP.clickhouse_type
            )
        )

    create(table)
    create(loading)
    try:
        if rows:
            client.insert(loading, rows, database=database, column_names=list(columns))  # names quoted by the client
        client.command(f"EXCHANGE TABLES {quoted(database)}.{quoted(table)} AND {quoted(database)}.{quoted(loading)}")
    finally:
        client.command(f"DROP TABLE IF EXISTS {quoted(database)}.{quoted(loading)}")
