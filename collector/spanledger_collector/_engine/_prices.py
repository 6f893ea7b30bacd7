"""The engine's price tables, from the collector's own catalog: token rates as linear pieces SQL can apply
(``llm_token_prices``), the other meters' rates as fractions (``cloud_prices``).

Each token row is one piece of one :class:`~.._pricing._rates.Rate` (``Rate.pieces``): the same Decimals the
cost processor multiplies, so ``roundBankers(slope * quantity + intercept, 12)`` in ClickHouse equals the
collector's ``quantize`` (half-even). Token rows are written for every model genai-prices lists under each
provider spanledger maps, and for every (meter, provider, model) already in ``usage_reports`` over the times it
was used. A ``cloud_prices`` row is one rate (``Rate.fraction``: accelerator-, endpoint-seconds, bytes) of a
price key already in ``usage_reports``, over the times it was used: ``quantity * numerator / divisor`` rounded
once is the processor's estimate (``_rates.Fraction``). A model or resource first seen after ``init`` is
unpriced (``not_in_price_table``) until ``init`` runs again.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from datetime import datetime, timezone
from decimal import Decimal
from pathlib import Path
from typing import Any, NamedTuple

from genai_prices.data_snapshot import get_snapshot
from spanledger.semconv import SpanledgerResourceTypeValues as ResourceType

from .._pricing import _llm
from .._pricing._catalog import PriceCatalog, load_catalog
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

__all__ = ["CloudKey", "PriceKey", "catalog_keys", "cloud_price_rows", "load_prices", "price_rows"]

_FIRST = datetime(1900, 1, 1)
_LAST = datetime(2299, 12, 31)
_BELOW_ALL = Decimal(-1)
_ABOVE_ALL = Decimal(10) ** 28
_SLOPE_SCALE = 30
COLUMNS = (
    "meter", "provider", "model", "valid_from", "valid_until", "above", "upto", "slope", "intercept", "currency",
    "catalog_version", "unpriced_reason", "loaded_at",
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


def _pieces(rate: Rate) -> list[Piece] | None:
    if isinstance(rate, (NegotiatedTokens, _llm.TokenRate)):
        return rate.pieces()
    return None


def _fits(number: Decimal) -> bool:
    exponent = number.as_tuple().exponent
    return isinstance(exponent, int) and -exponent <= _SLOPE_SCALE and abs(number) < Decimal(10) ** 40


def _rows(key: PriceKey, rate: Rate, loaded_at: datetime) -> Iterator[tuple[Any, ...]]:
    common = (key.meter, NO_PROVIDER if key.provider is None else key.provider, key.model,
              _clamp(rate.valid_from), _clamp(rate.valid_until))  # fmt: skip
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


def _fact(key: PriceKey, start: datetime) -> UsageFact:
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


def price_rows(
    catalog: PriceCatalog, keys: dict[PriceKey, tuple[datetime, datetime]], loaded_at: datetime
) -> list[tuple[Any, ...]]:
    """The rows of each key's rates over ``[first, last]`` (its facts' start times, naive UTC)."""
    rows: list[tuple[Any, ...]] = []
    for key, (first, last) in keys.items():
        start = first
        while True:
            rate = catalog.rate(_fact(key, start))
            rows.extend(_rows(key, rate, loaded_at))
            if rate.valid_until > last or rate.valid_until <= start:
                break
            start = rate.valid_until
    return rows


def _fraction(rate: Rate) -> Fraction | None:
    if isinstance(rate, (InstanceSeconds, EndpointSeconds, Transfer)):
        return rate.fraction()
    return None


def _cloud_rows(key: CloudKey, rate: Rate, loaded_at: datetime) -> Iterator[tuple[Any, ...]]:
    common = (
        *(NULL_KEY if value is None else value for value in key),
        _clamp(rate.valid_from),
        _clamp(rate.valid_until),
    )
    if isinstance(rate, Unpriced):
        yield (*common, None, None, None, rate.version, rate.reason, loaded_at)
        return
    fraction = _fraction(rate)
    if fraction is None or fraction.divisor != fraction.divisor.to_integral_value() or not _fits(fraction.numerator):
        return  # no exact fraction: left out, so the fact reads as not_in_price_table rather than a wrong cost
    yield (*common, fraction.numerator, int(fraction.divisor), fraction.currency, rate.version, None, loaded_at)


def cloud_price_rows(
    catalog: PriceCatalog, keys: dict[CloudKey, tuple[datetime, datetime]], loaded_at: datetime
) -> list[tuple[Any, ...]]:
    """The rows of each key's rates over ``[first, last]`` (its facts' start times, naive UTC)."""
    rows: list[tuple[Any, ...]] = []
    for key, (first, last) in keys.items():
        start = first
        while True:
            fact = UsageFact(
                trace_id="", span_id="", meter=key.meter, start_time=start, end_time=start, quantity=Decimal(1),
                unit="", resource_id=key.resource_id, provider=key.provider, region=key.region,
                boundary=key.boundary, accelerator_type=key.accelerator_type,
            )  # fmt: skip
            rate = catalog.rate(fact)
            rows.extend(_cloud_rows(key, rate, loaded_at))
            if rate.valid_until > last or rate.valid_until <= start:
                break
            start = rate.valid_until
    return rows


def load_prices(client: Any, names: Names, *, catalog_models: bool = True, price_overrides: Path | None = None) -> int:
    """Create the price tables and fill them with the rows of the keys seen so far and (``catalog_models``) of
    every model the catalog lists; ``price_overrides``: the overrides file on top of the bundled catalog
    (negotiated rates, SageMaker endpoints' instance types), as the ``spanledger_cost`` processor's
    ``price_overrides``.

    Each run replaces the tables' rows (:func:`_replace`): rows of an earlier catalog (a genai-prices release
    that moved a tier's start, an overrides file since changed) would otherwise stay beside the new ones and
    overlap them."""
    catalog = load_catalog(price_overrides)
    now = datetime.now(timezone.utc).replace(tzinfo=None)
    keys: dict[PriceKey, tuple[datetime, datetime]] = (
        {key: (now, now) for key in catalog_keys()} if catalog_models else {}
    )
    seen = client.query(
        f"SELECT meter, provider, model, min(start_time), max(start_time) FROM {quoted(names.database)}."
        f"{quoted(names.usage_reports)} FINAL WHERE meter IN {{meters:Array(String)}} "
        "GROUP BY meter, provider, ifNull(model, '') AS model",
        parameters={"meters": list(TOKEN_METERS)},
    ).result_rows
    for meter, provider, model, first, last in seen:
        key = PriceKey(meter, provider, model)
        known = keys.get(key)
        keys[key] = (first, last) if known is None else (min(first, known[0]), max(last, known[1]))
    rows = price_rows(catalog, keys, now)
    _replace(client, names.database, names.prices, "llm_token_prices.sql", rows, COLUMNS)
    cloud_keys = {
        CloudKey(*key): (first, last)
        for *key, first, last in client.query(
            f"SELECT meter, provider, resource_id, accelerator_type, region, boundary, min(start_time), "
            f"max(start_time) FROM {quoted(names.database)}.{quoted(names.usage_reports)} FINAL "
            "WHERE meter NOT IN {meters:Array(String)} "
            "GROUP BY meter, provider, resource_id, accelerator_type, region, boundary",
            parameters={"meters": list(TOKEN_METERS)},
        ).result_rows
    }
    cloud_rows = cloud_price_rows(catalog, cloud_keys, now)
    _replace(client, names.database, names.cloud_prices, "cloud_prices.sql", cloud_rows, CLOUD_COLUMNS)
    return len(rows) + len(cloud_rows)


def _replace(
    client: Any, database: str, table: str, ddl: str, rows: Sequence[Sequence[Any]], columns: Sequence[str]
) -> None:
    """``table`` (made by ``ddl`` when missing) holding exactly ``rows``: written to a table of their own, then
    swapped in with ``EXCHANGE TABLES`` (atomic: readers see the old rows or the new, never none)."""
    loading = f"{table}_loading"

    def create(name: str) -> None:
        client.command(
            sql_file(ddl).format(
                database=quoted(database), table=quoted(name), timestamp=Kind.TIMESTAMP.clickhouse_type
            )
        )

    create(table)
    client.command(f"DROP TABLE IF EXISTS {quoted(database)}.{quoted(loading)}")
    create(loading)
    if rows:
        client.insert(loading, rows, database=database, column_names=list(columns))  # names quoted by the client
    client.command(f"EXCHANGE TABLES {quoted(database)}.{quoted(table)} AND {quoted(database)}.{quoted(loading)}")
    client.command(f"DROP TABLE {quoted(database)}.{quoted(loading)}")
