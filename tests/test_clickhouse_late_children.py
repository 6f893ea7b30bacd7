"""Counted once across requests on ClickHouse (issues 15 and 16): the late-children scenarios of
test_collector_late_children.py through the DuckDB store and the ClickHouse store (chdb) give the same
retractions and the same counted facts."""

from __future__ import annotations

import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from collector_fixtures import collector_config
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.trace.v1.trace_pb2 import ResourceSpans, ScopeSpans, Span
from opentelemetry.sdk.trace import ReadableSpan
from spanledger.semconv import SpanledgerMeterValues as Meter
from spanledger_collector._decode._producers import RECENT
from spanledger_collector._store import (
    COUNTED_USAGE_FACTS,
    USAGE_FACTS,
    AncestryCheck,
    CandidateSpan,
    DuckDBStore,
    SpanColumns,
    StoreBatch,
    UsageFact,
    UsageRetraction,
)
from spanledger_collector._store._clickhouse import ClickHouseStore
from spanledger_collector._store._clickhouse_schema import ClickHouseSchema
from spanledger_collector._store._location import StoreAddress
from test_clickhouse_store import _chdb_config, _query, _service
from test_collector_late_children import CALLS, _agent_trace, _trace_id

INPUT = Meter.LLM_INPUT_TOKENS.value
FACT_COLUMNS = ", ".join(USAGE_FACTS.column_names)
# Span ids as OTLP carries them (8 bytes, lower-case hex in both stores).
AGENT, OWNER, CHAT = "00000000000000a1", "00000000000000b2", "00000000000000c3"
_END = time.time_ns() // 1_000_000_000 * 1_000_000_000
"""When every span of these requests ended (the same for both stores' batches)."""


def _request(trace_id: str, span: str, parent: str | None, end: int) -> bytes:
    """An OTLP request of one span (what the ClickHouse store keeps in otel_traces)."""
    proto = Span(
        trace_id=bytes.fromhex(trace_id),
        span_id=bytes.fromhex(span),
        parent_span_id=bytes.fromhex(parent) if parent else b"",
        name=span,
        start_time_unix_nano=end - 1000,
        end_time_unix_nano=end,
    )
    request = ExportTraceServiceRequest(resource_spans=[ResourceSpans(scope_spans=[ScopeSpans(spans=[proto])])])
    return bytes(request.SerializeToString())


def _batch(trace_id: str, span: str, parent: str | None, digest: bytes, *, owner: bool) -> StoreBatch:
    """One request's batch as the decoder leaves it when its memory knows none of the span's relatives."""
    end = _END
    columns = SpanColumns()
    for name, value in (("trace_id", trace_id), ("span_id", span), ("parent_span_id", parent), ("name", span),
                        ("kind", 0), ("service", None), ("start_time_unix_nano", end - 1000),
                        ("end_time_unix_nano", end), ("status_code", 0), ("unmeasured", None)):  # fmt: skip
        getattr(columns, name).append(value)
    moment = datetime.fromtimestamp(end / 1e9, timezone.utc).replace(tzinfo=None, microsecond=0)
    fact = UsageFact(trace_id, span, INPUT, moment, moment, Decimal(100), "{token}")
    batch = StoreBatch(columns, [fact], digest=digest, requests=[_request(trace_id, span, parent, end)])
    batch.ancestry = [AncestryCheck(trace_id, span, INPUT, owner)]
    if not owner:
        batch.candidates = [CandidateSpan(trace_id, span)]
    return batch


# (span, parent, owner) in the order the requests arrive, each in a request of its own.
SCENARIOS = {
    "ancestors first": [(AGENT, None, False), (OWNER, AGENT, True), (CHAT, OWNER, False)],
    "descendants first": [(CHAT, OWNER, False), (OWNER, AGENT, True), (AGENT, None, False)],
    "a candidate over a candidate": [(AGENT, None, False), (CHAT, AGENT, False)],
    "a child under its owner": [(OWNER, None, True), (CHAT, OWNER, False)],
}


class _Stores:
    """The same writes and reads on a DuckDB store and a ClickHouse store."""

    def __init__(self, tmp_path: Path, address: StoreAddress) -> None:
        self.duckdb = DuckDBStore(tmp_path / "store.duckdb")
        self.clickhouse = ClickHouseStore(address, replica_id="a", schema=ClickHouseSchema(address.database))

    def write(
        self, trace_id: str, span: str, parent: str | None, digest: bytes, *, owner: bool, new: bool = True
    ) -> tuple[StoreBatch, StoreBatch]:
        """The request's batch (:func:`_batch`) written to each store (a batch of its own each: the store fills
        it in); ``new``: whether the stores take it as a new request (else a retry, skipped)."""
        written = []
        for store in (self.duckdb, self.clickhouse):
            batch = _batch(trace_id, span, parent, digest, owner=owner)
            assert store.append([batch]) == ([batch] if new else [])
            store.commit()
            written.append(batch)
        return written[0], written[1]

    def counted(self) -> tuple[list[tuple[Any, ...]], list[tuple[Any, ...]]]:
        sql = f"SELECT {FACT_COLUMNS} FROM {COUNTED_USAGE_FACTS} ORDER BY span_id"
        with self.duckdb.cursor() as cursor:
            in_duckdb = cursor.execute(sql).fetchall()
        client = self.clickhouse.cursor()
        try:
            in_clickhouse = [tuple(row) for row in client.query(sql).result_rows]
        finally:
            client.close()
        return in_duckdb, in_clickhouse

    def close(self) -> None:
        self.duckdb.close()
        self.clickhouse.close()


@pytest.fixture
def stores(tmp_path: Path, clickhouse_address: StoreAddress) -> Iterator[_Stores]:
    both = _Stores(tmp_path, clickhouse_address)
    yield both
    both.close()


@pytest.mark.parametrize("order", SCENARIOS.values(), ids=list(SCENARIOS))
def test_the_store_check_retracts_the_same_rows_in_both_stores(
    stores: _Stores, order: list[tuple[str, str | None, bool]]
) -> None:
    trace_id = "ab" * 16
    found = []
    for n, (span, parent, owner) in enumerate(order):
        in_duckdb, in_clickhouse = stores.write(trace_id, span, parent, bytes([n]), owner=owner)
        assert in_clickhouse.retractions == in_duckdb.retractions
        assert in_clickhouse.retracted == in_duckdb.retracted
        found += in_duckdb.retractions
    assert found  # every scenario retracts something
    counted_duckdb, counted_clickhouse = stores.counted()
    assert counted_clickhouse == counted_duckdb and len(counted_duckdb) == 1
    # A retried request (the last one again) is skipped by both: nothing retracted twice.
    span, parent, owner = order[-1]
    again = stores.write(trace_id, span, parent, bytes([len(order) - 1]), owner=owner, new=False)
    assert [batch.retractions for batch in again] == [[], []]


def test_a_replay_after_a_crash_before_the_digests_retracts_nothing_twice(stores: _Stores) -> None:
    """The rows of the children's request were inserted, its digests never: the request log stores it again.
    The retractions collapse on the fact they name; the replay finds nothing more to retract."""
    trace_id = "cd" * 16
    stores.write(trace_id, AGENT, None, b"1", owner=False)
    first, _ = stores.write(trace_id, CHAT, AGENT, b"2", owner=False)
    assert first.retractions == [UsageRetraction(trace_id, AGENT, INPUT, CHAT)]
    client = stores.clickhouse.cursor()
    try:
        client.command("TRUNCATE TABLE received_requests")
        replay = _batch(trace_id, CHAT, AGENT, b"2", owner=False)
        assert stores.clickhouse.append([replay]) == [replay]
        stores.clickhouse.commit()
        assert replay.retractions == []  # the agent's fact is retracted already: not counted again
        assert client.query("SELECT count() FROM usage_retractions FINAL").result_rows == [(1,)]
        assert client.query("SELECT count() FROM usage_candidates FINAL").result_rows == [(2,)]
    finally:
        client.close()
    counted_duckdb, counted_clickhouse = stores.counted()
    assert counted_clickhouse == counted_duckdb == [counted_duckdb[0]] and counted_duckdb[0][1] == CHAT


def test_the_counted_facts_view_has_duckdbs_columns(stores: _Stores) -> None:
    """The answers and the allocation read the view through one name in either engine: the same columns."""
    stores.write("ef" * 16, AGENT, None, b"1", owner=False)
    with stores.duckdb.cursor() as cursor:
        columns = [row[0] for row in cursor.execute(f"DESCRIBE {COUNTED_USAGE_FACTS}").fetchall()]
    client = stores.clickhouse.cursor()
    try:
        described = client.query(f"DESCRIBE TABLE {COUNTED_USAGE_FACTS}").result_rows
    finally:
        client.close()
    assert [row[0] for row in described] == columns == list(USAGE_FACTS.column_names)


def test_stored_until_is_the_latest_span_end_in_either_store(stores: _Stores) -> None:
    assert stores.duckdb.stored_until() is None and stores.clickhouse.stored_until() is None
    stores.write("12" * 16, AGENT, None, b"1", owner=False)
    until = stores.duckdb.stored_until()
    assert until is not None and stores.clickhouse.stored_until() == until


# --- through collectors: the late-children test's agent trace ---


@contextmanager
def _fresh_memory() -> Iterator[None]:
    """The decoder's memory of recent spans as a newly started process has it (the collectors here run in this
    process, one after the other)."""
    RECENT.__init__()  # type: ignore[misc]
    try:
        yield
    finally:
        RECENT.__init__()  # type: ignore[misc]


def _rows(service: Any, sql: str) -> list[tuple[Any, ...]]:
    """``sql``'s rows from the service's store, DuckDB or ClickHouse."""
    store = service.store.store
    if isinstance(store, ClickHouseStore):
        return _query(service, sql)
    with store.cursor() as cursor:
        return [tuple(row) for row in cursor.execute(sql).fetchall()]


def _export(endpoint: str, spans: Sequence[ReadableSpan]) -> None:
    assert OTLPSpanExporter(endpoint=endpoint).export(spans).name == "SUCCESS"


_RETRACTIONS = "SELECT span_id, meter, retracted_by_span_id FROM usage_retractions{final} ORDER BY ALL"
_COUNTED = f"SELECT {FACT_COLUMNS} FROM {COUNTED_USAGE_FACTS} ORDER BY ALL"


@pytest.mark.parametrize("restart", [False, True], ids=["one collector", "a restart between the requests"])
def test_a_parent_in_an_earlier_request_is_counted_once_in_both_stores(
    tmp_path: Path, clickhouse_address: StoreAddress, restart: bool
) -> None:
    """The agent span, then its two chat calls in later requests; with ``restart`` the collector that stored the
    agent is gone before the calls arrive (its memory with it: the store check retracts)."""
    agent, children = _agent_trace()
    results = []
    (tmp_path / "duckdb").mkdir()
    duckdb_config = collector_config(tmp_path / "duckdb")
    duckdb_config["processors"]["spanledger_cost"] = {}  # as _chdb_config's pipeline
    duckdb_config["service"]["pipelines"]["traces"]["processors"].append("spanledger_cost")
    for config in (duckdb_config, _chdb_config(tmp_path, clickhouse_address)):
        final = "" if "spanledger_store" in config["exporters"] else " FINAL"
        with _fresh_memory():
            with _service(config) as (service, endpoint):
                _export(endpoint, agent)
                if not restart:
                    _export(endpoint, children[:1])
                    _export(endpoint, children[1:])
                assert service.store is not None and service.store.writer.flush()
            if restart:
                RECENT.__init__()  # type: ignore[misc]
                with _service(config) as (service, endpoint):
                    _export(endpoint, children[:1])
                    _export(endpoint, children[1:])
                    assert service.store is not None and service.store.writer.flush()
                    results.append((_rows(service, _RETRACTIONS.format(final=final)), _rows(service, _COUNTED)))
            else:
                with _service(config) as (service, _):
                    results.append((_rows(service, _RETRACTIONS.format(final=final)), _rows(service, _COUNTED)))
    (duckdb_retractions, duckdb_counted), (clickhouse_retractions, clickhouse_counted) = results
    agent_id = f"{agent[0].context.span_id:016x}"  # type: ignore[union-attr]
    assert [row[:2] for row in duckdb_retractions] == [(agent_id, INPUT), (agent_id, Meter.LLM_OUTPUT_TOKENS.value)]
    assert clickhouse_retractions == duckdb_retractions
    assert clickhouse_counted == duckdb_counted
    input_tokens = sum(row[5] for row in duckdb_counted if row[2] == INPUT and row[0] == _trace_id(agent))
    assert input_tokens == sum(i for i, _ in CALLS)


def test_a_retention_window_keeps_the_late_children_tables(clickhouse_address: StoreAddress) -> None:
    """Retractions and candidates have no time column: with a ``ttl`` they are kept (a few rows per late child)."""
    statements = ClickHouseSchema(clickhouse_address.database, ttl=timedelta(days=30)).statements()
    for table in ("usage_retractions", "usage_candidates"):
        (create,) = [s for s in statements if s.startswith("CREATE TABLE") and f'"{table}"' in s]
        assert "ReplacingMergeTree" in create and "TTL" not in create and "PARTITION" not in create
