"""The ClickHouse foundation (issue 16): ``--store`` values, the guarded client, and the schema on chdb."""

from __future__ import annotations

import decimal
import importlib.util
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from spanledger_collector._store import DATA_READS, USAGE_FACTS, DataRead, Kind, Table, UsageFact
from spanledger_collector._store._clickhouse_client import ClickHouseUnavailableError, open_clickhouse
from spanledger_collector._store._clickhouse_schema import (
    LOG_POSITIONS,
    OTEL_TRACES,
    ROW_KEYS,
    ClickHouseSchema,
    ttl_clause,
)
from spanledger_collector._store._location import (
    PASSWORD_ENV,
    StoreAddress,
    StoreAddressError,
    StoreEngine,
    parse_store_address,
    redacted,
)
from spanledger_collector.billing._engine import ClickHouseEngine, Window

# The columns of the OTel Collector contrib clickhouseexporter's otel_traces (internal/sqltemplates/traces_table.sql),
# as ClickHouse describes them.
EXPORTER_OTEL_TRACES = [
    ("Timestamp", "DateTime64(9)"),
    ("TraceId", "String"),
    ("SpanId", "String"),
    ("ParentSpanId", "String"),
    ("TraceState", "String"),
    ("SpanName", "LowCardinality(String)"),
    ("SpanKind", "LowCardinality(String)"),
    ("ServiceName", "LowCardinality(String)"),
    ("ResourceAttributes", "Map(LowCardinality(String), String)"),
    ("ScopeName", "String"),
    ("ScopeVersion", "String"),
    ("SpanAttributes", "Map(LowCardinality(String), String)"),
    ("Duration", "UInt64"),
    ("StatusCode", "LowCardinality(String)"),
    ("StatusMessage", "String"),
    ("Events.Timestamp", "Array(DateTime64(9))"),
    ("Events.Name", "Array(LowCardinality(String))"),
    ("Events.Attributes", "Array(Map(LowCardinality(String), String))"),
    ("Links.TraceId", "Array(String)"),
    ("Links.SpanId", "Array(String)"),
    ("Links.TraceState", "Array(String)"),
    ("Links.Attributes", "Array(Map(LowCardinality(String), String))"),
]


# --- --store values ---


def test_a_plain_value_is_a_duckdb_path() -> None:
    assert parse_store_address("./spanledger.duckdb") == StoreAddress(StoreEngine.DUCKDB, path="./spanledger.duckdb")
    assert not parse_store_address(":memory:").is_clickhouse


@pytest.mark.parametrize("value", ["chdb:/var/lib/spanledger", "chdb:///var/lib/spanledger"])
def test_chdb_names_a_directory(value: str) -> None:
    address = parse_store_address(value, database="ledger")
    assert (address.engine, address.path, address.database) == (StoreEngine.CHDB, "/var/lib/spanledger", "ledger")
    assert str(address) == "chdb:/var/lib/spanledger"


def test_a_server_url_gives_host_port_tls_user_and_database() -> None:
    plain = parse_store_address("clickhouse+http://reader@ch.internal/ledger")
    assert (plain.host, plain.port, plain.secure, plain.username, plain.database) == (
        "ch.internal",
        8123,
        False,
        "reader",
        "ledger",
    )
    tls = parse_store_address("clickhouse+https://ch.internal:9440", database="from_config")
    assert (tls.port, tls.secure, tls.username, tls.database) == (9440, True, "default", "from_config")
    assert parse_store_address("clickhouse+https://ch.internal").port == 8443
    assert str(plain) == "clickhouse+http://reader@ch.internal:8123/ledger"


def test_an_ipv6_server_keeps_its_brackets_when_shown() -> None:
    address = parse_store_address("clickhouse+https://reader@[fd00::12]:8443/ledger")
    assert (address.host, address.port) == ("fd00::12", 8443)
    assert str(address) == "clickhouse+https://reader@[fd00::12]:8443/ledger"
    assert parse_store_address(str(address)) == address


def test_the_password_comes_from_the_environment_and_is_never_shown(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(PASSWORD_ENV, "s3cret")
    address = parse_store_address("clickhouse+https://writer@ch.internal/ledger")
    assert address.password() == "s3cret"
    assert "s3cret" not in str(address) and "s3cret" not in repr(address)


def test_a_password_in_the_url_is_refused_without_repeating_it() -> None:
    with pytest.raises(StoreAddressError, match=PASSWORD_ENV) as raised:
        parse_store_address("clickhouse+https://writer:s3cret@ch.internal/ledger")
    assert "s3cret" not in str(raised.value)
    assert "writer:***@ch.internal" in str(raised.value)


@pytest.mark.parametrize(
    ("value", "password"),
    [
        ("clickhouse+https://writer:pa/ss9w0rd@ch.internal:8443/ledger", "pa/ss9w0rd"),  # urllib reads 'pa' as a port
        ("clickhouse+https://writer:ab@Secret9@ch.internal/ledger", "ab@Secret9"),
        ("clickhouse+https://writer:Qz9:Wx7@ch.internal/ledger", "Qz9:Wx7"),
        ("tcp://default:Sup3rSecret@ch:9000", "Sup3rSecret"),  # the contrib exporter's DSN forms
        ("clickhouse://default:Sup3rSecret@ch:9000/otel", "Sup3rSecret"),
    ],
)
def test_no_piece_of_a_password_is_shown_whatever_it_holds(value: str, password: str) -> None:
    with pytest.raises(StoreAddressError) as raised:
        parse_store_address(value)
    message = str(raised.value)
    pieces = {password, *password.replace("@", "/").replace(":", "/").split("/")} - {""}
    assert not any(piece in message for piece in pieces), message
    assert redacted(value).count("***") == 1 and password not in redacted(value)


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("", "empty"),
        ("chdb:", "needs a directory"),
        ("postgres://db/x", "unknown scheme"),
        ("clickhouse+ftp://host/db", "clickhouse\\+http or clickhouse\\+https"),
        ("clickhouse+http:///db", "no host"),
        ("clickhouse+http://host/a/b", "one name"),
        ("clickhouse+http://host:99999/db", "clickhouse\\+http://host:99999/db"),
    ],
)
def test_a_bad_value_is_an_error_naming_it(value: str, message: str) -> None:
    with pytest.raises(StoreAddressError, match=message):
        parse_store_address(value)


# --- the client ---


@pytest.mark.parametrize(
    ("value", "missing", "extra"),
    [("chdb:/tmp/x", "chdb", "chdb"), ("clickhouse+http://h/db", "clickhouse_connect", "clickhouse")],
)
def test_a_missing_extra_names_the_install_command(
    monkeypatch: pytest.MonkeyPatch, value: str, missing: str, extra: str
) -> None:
    find_spec = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name: None if name == missing else find_spec(name))
    with pytest.raises(ClickHouseUnavailableError, match=rf"pip install 'spanledger\[{extra}\]'"):
        open_clickhouse(parse_store_address(value))


def test_a_duckdb_path_opens_no_clickhouse_client() -> None:
    with pytest.raises(ValueError, match="DuckDB file"):
        open_clickhouse(parse_store_address("x.duckdb"))


# --- the schema on chdb ---


def _describe(client: Any, table: str) -> list[tuple[str, str]]:
    return [(row[0], row[1]) for row in client.query(f"DESCRIBE TABLE {table}").result_rows]


def _create(client: Any, schema: ClickHouseSchema) -> None:
    for statement in schema.statements():
        client.command(statement)


def test_otel_traces_is_the_exporters_table(clickhouse_client: Any) -> None:
    _create(clickhouse_client, ClickHouseSchema(clickhouse_client.database, ttl=timedelta(days=7)))
    assert _describe(clickhouse_client, OTEL_TRACES) == EXPORTER_OTEL_TRACES
    created = clickhouse_client.command(f"SHOW CREATE TABLE {OTEL_TRACES}")
    assert "ORDER BY (ServiceName, SpanName, toDateTime(Timestamp))" in created
    assert "TTL toDateTime(Timestamp) + toIntervalDay(7)" in created
    assert _describe(clickhouse_client, f"{OTEL_TRACES}_trace_id_ts") == [
        ("TraceId", "String"),
        ("Start", "DateTime"),
        ("End", "DateTime"),
    ]


def _clickhouse_type(kind: Kind, nullable: bool) -> str:
    if not nullable:
        return kind.clickhouse_type
    if kind is Kind.NAME:
        return "LowCardinality(Nullable(String))"
    return f"Nullable({kind.clickhouse_type})"


@pytest.mark.parametrize("table", [USAGE_FACTS, DATA_READS], ids=lambda table: table.name)
def test_each_row_table_is_its_field_table(clickhouse_client: Any, table: Table) -> None:
    _create(clickhouse_client, ClickHouseSchema(clickhouse_client.database))
    assert _describe(clickhouse_client, table.name) == [
        (field.name, _clickhouse_type(field.kind, field.nullable)) for field in table.fields
    ]
    created = clickhouse_client.command(f"SHOW CREATE TABLE {table.name}")
    assert "ENGINE = ReplacingMergeTree" in created
    assert f"ORDER BY ({', '.join(ROW_KEYS[table.name].key)})" in created


def test_the_schema_can_be_created_twice(clickhouse_client: Any) -> None:
    schema = ClickHouseSchema(clickhouse_client.database)
    _create(clickhouse_client, schema)
    _create(clickhouse_client, schema)
    tables = {name for (name,) in clickhouse_client.query("SHOW TABLES").result_rows}
    assert {OTEL_TRACES, USAGE_FACTS.name, DATA_READS.name, LOG_POSITIONS} <= tables
    assert "spans" not in tables  # spans live only in otel_traces


FACTS = [
    UsageFact(
        "0af7651916cd43dd8448eb211c80319c",
        "b7ad6b7169203331",
        "llm.input_tokens",
        datetime(2026, 12, 1, 8, 0, 0, 123456),
        datetime(2026, 12, 1, 8, 0, 1, 999999),
        Decimal("12345678901234567890123456789.123456789"),
        "{token}",
        model="gpt-4o",
        tenant="acme",
        estimated_cost=Decimal("0.000000000001"),
        currency="USD",
    ),
    UsageFact(
        "0af7651916cd43dd8448eb211c80319c",
        "b7ad6b7169203331",
        "llm.output_tokens",
        datetime(1970, 1, 1),
        datetime(2099, 12, 31, 23, 59, 59),
        Decimal("0.000000001"),
        "{token}",
        estimated_cost=Decimal("-99999999999999999999999999.999999999999"),
        unpriced_reason=None,
    ),
]
READS = [
    DataRead(
        "0af7651916cd43dd8448eb211c80319c",
        "b7ad6b7169203331",
        0,
        datetime(2026, 12, 1, 8, 0, 0, 1),
        "s3://bucket/key",
        "s3",
        datetime(2026, 11, 30),
        123.456,
        2**62,
        "last_modified",
        None,
        "acme",
        None,
    ),
    DataRead("0af7651916cd43dd8448eb211c80319c", "00f067aa0ba902b7", 3, datetime(2026, 12, 1), *([None] * 9)),
]


def test_facts_and_reads_round_trip_exactly(clickhouse_client: Any) -> None:
    _create(clickhouse_client, ClickHouseSchema(clickhouse_client.database))
    for table, rows in ((USAGE_FACTS, FACTS), (DATA_READS, READS)):
        clickhouse_client.insert(table.name, rows, column_names=list(table.column_names))
        stored = clickhouse_client.query(
            f"SELECT * FROM {table.name} ORDER BY {', '.join(ROW_KEYS[table.name].key)}"
        ).result_rows
        key = ROW_KEYS[table.name].key
        assert [tuple(row) for row in stored] == sorted(rows, key=lambda row: tuple(getattr(row, k) for k in key))
    # Naive datetimes are UTC on the way in and out, whatever the session's time zone.
    epoch = clickhouse_client.command(
        "SELECT toUnixTimestamp(start_time) FROM usage_facts WHERE meter = 'llm.output_tokens'"
    )
    assert int(epoch) == 0


def test_a_replayed_insert_collapses_on_the_row_identity(clickhouse_client: Any) -> None:
    _create(clickhouse_client, ClickHouseSchema(clickhouse_client.database))
    for _ in range(3):  # a client retry, then a request-log replay
        clickhouse_client.insert(USAGE_FACTS.name, FACTS, column_names=list(USAGE_FACTS.column_names))
    assert clickhouse_client.command("SELECT count() FROM usage_facts") == 3 * len(FACTS)
    assert clickhouse_client.command("SELECT count() FROM usage_facts FINAL") == len(FACTS)
    [(total,)] = clickhouse_client.query("SELECT sum(estimated_cost) FROM usage_facts FINAL").result_rows
    with decimal.localcontext(prec=60):  # exact: Python's default 28 digits would round the sum
        assert total == sum(fact.estimated_cost for fact in FACTS if fact.estimated_cost is not None)


def test_the_window_views_give_the_rows_of_a_window_and_of_a_trace(clickhouse_client: Any) -> None:
    _create(clickhouse_client, ClickHouseSchema(clickhouse_client.database))
    for _ in range(2):  # a replayed insert: each row once through the views
        for table, rows in ((USAGE_FACTS, FACTS), (DATA_READS, READS)):
            clickhouse_client.insert(table.name, rows, column_names=list(table.column_names))

    def window(view: str, since: str, until: str, trace: str = "") -> list[tuple[Any, ...]]:
        query = f"SELECT * FROM {view}(since={{since:String}}, until={{until:String}}, trace={{trace:String}})"
        rows = clickhouse_client.query(query, parameters={"since": since, "until": until, "trace": trace})
        return sorted(tuple(row) for row in rows.result_rows)

    ever = ("1900-01-01", "2299-12-31 23:59:59")
    assert window("usage_facts_window", *ever) == sorted(FACTS)
    assert window("data_reads_window", *ever) == sorted(READS)
    trace = FACTS[0].trace_id
    assert window("usage_facts_window", *ever, trace) == sorted(fact for fact in FACTS if fact.trace_id == trace)
    reader = ClickHouseEngine(clickhouse_client)  # the answers read the view's own query inline
    for within, view in ((reader.facts_within, "usage_facts_window"), (reader.reads_within, "data_reads_window")):
        assert within(Window()).startswith("(SELECT ")
        assert sorted(reader.rows(f"SELECT * FROM {within(Window(trace_id=trace))}")) == window(view, *ever, trace)
    # a view whose definer's grants reach its tables is called, not read inline
    clickhouse_client.command("ALTER TABLE usage_facts_window MODIFY SQL SECURITY DEFINER")
    definer = ClickHouseEngine(clickhouse_client).facts_within(Window(trace_id=trace))
    assert definer.startswith("usage_facts_window(since=")
    assert sorted(reader.rows(f"SELECT * FROM {definer}")) == window("usage_facts_window", *ever, trace)
    # a fact of a span that ended before it started is in a window holding its start (the answers and the
    # dashboard filter on start_time)
    backwards = FACTS[0]._replace(span_id="b" * 16, end_time=FACTS[0].start_time - timedelta(seconds=5))
    clickhouse_client.insert(USAGE_FACTS.name, [backwards], column_names=list(USAGE_FACTS.column_names))
    start = backwards.start_time.strftime("%Y-%m-%d %H:%M:%S.%f")
    assert tuple(backwards) in window("usage_facts_window", start, start)
    # ISO 8601, Unix seconds; a fact overlapping the window's start is in it
    assert window("usage_facts_window", "1900-01-01T00:00:00Z", "4102444800") == sorted([*FACTS, backwards])
    for fact in FACTS:
        moment = fact.end_time.strftime("%Y-%m-%dT%H:%M:%S.%fZ")
        assert tuple(fact) in window("usage_facts_window", moment, "2299-12-31T00:00:00Z")
        assert tuple(fact) not in window("usage_facts_window", "1900-01-01", "1900-01-02")


def test_a_replicas_log_position_keeps_its_highest(clickhouse_client: Any) -> None:
    _create(clickhouse_client, ClickHouseSchema(clickhouse_client.database))
    rows = [("replica-a", 7), ("replica-b", 3), ("replica-a", 5)]
    clickhouse_client.insert(LOG_POSITIONS, rows, column_names=["replica_id", "committed_seq"])
    positions = clickhouse_client.query(f"SELECT replica_id, committed_seq FROM {LOG_POSITIONS} FINAL ORDER BY 1")
    assert positions.result_rows == [("replica-a", 7), ("replica-b", 3)]


# --- a cluster: statements only (no cluster can run here) ---


def test_a_cluster_schema_runs_on_cluster_with_replicated_local_and_distributed_tables() -> None:
    statements = ClickHouseSchema("ledger", cluster="prod").statements()
    assert all('ON CLUSTER "prod"' in statement for statement in statements)
    created = "\n".join(statements)
    for table in (OTEL_TRACES, USAGE_FACTS.name, DATA_READS.name, LOG_POSITIONS):
        assert f'"ledger"."{table}_local"' in created
        assert f"Distributed('prod', 'ledger', '{table}_local'," in created
    assert "ENGINE = ReplicatedMergeTree()" in created
    assert "ENGINE = ReplicatedReplacingMergeTree()" in created
    assert "ReplacingMergeTree(" not in created.replace("ReplicatedReplacingMergeTree(", "")
    # The trace-id lookup the trace answer and Grafana's trace view read, under its plain name on every shard.
    assert "Distributed('prod', 'ledger', 'otel_traces_local_trace_id_ts', cityHash64(TraceId))" in created
    assert '"ledger"."otel_traces_trace_id_ts" ON CLUSTER' in created


class _Recording:
    """A client that records the commands sent to it (no cluster runs here)."""

    def __init__(self) -> None:
        self.commands: list[str] = []
        self.database = ""

    def command(self, sql: str, **_: Any) -> None:
        self.commands.append(sql)

    def close(self) -> None:
        pass


def test_on_a_cluster_the_database_is_created_on_every_node(monkeypatch: pytest.MonkeyPatch) -> None:
    from spanledger_collector._store import _clickhouse_client

    recording = _Recording()

    class _Connect:
        @staticmethod
        def get_client(**_: Any) -> _Recording:
            return recording

    monkeypatch.setattr(_clickhouse_client, "_clickhouse_connect", lambda address: _Connect)
    address = parse_store_address("clickhouse+https://writer@ch.internal/ledger")
    open_clickhouse(address, create_database=True, on_cluster="prod")
    assert recording.commands == ['CREATE DATABASE IF NOT EXISTS "ledger" ON CLUSTER "prod"']
    assert recording.database == "ledger"


@pytest.mark.parametrize(
    ("ttl", "clause"),
    [
        (timedelta(days=30), "TTL t + toIntervalDay(30)"),
        (timedelta(hours=36), "TTL t + toIntervalHour(36)"),
        (timedelta(minutes=90), "TTL t + toIntervalMinute(90)"),
        (timedelta(seconds=61), "TTL t + toIntervalSecond(61)"),
        (None, ""),
    ],
)
def test_the_ttl_is_written_in_its_largest_whole_unit(ttl: timedelta | None, clause: str) -> None:
    assert ttl_clause(ttl, "t") == clause


def test_a_ttl_below_a_second_is_refused() -> None:
    with pytest.raises(ValueError, match="whole number of seconds"):
        ttl_clause(timedelta(milliseconds=1500), "t")
