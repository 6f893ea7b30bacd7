"""The ``clickhouse`` store exporter (issue 16) on chdb: config validation, otel_traces rows as the contrib
exporter writes them, usage facts identical to DuckDB's, retries and two replicas stored once, kill -9."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import duckdb
import pytest
from collector_fixtures import collector_config, launch
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, ArrayValue, KeyValue, KeyValueList
from spanledger_collector._clickhouse_factory import log_replica_id
from spanledger_collector._config import BatchSettings, ConfigError
from spanledger_collector._engine._ddl import Names
from spanledger_collector._engine._install import init
from spanledger_collector._graph import load_settings, parse_settings
from spanledger_collector._pipeline import Pipeline
from spanledger_collector._registry import STORES
from spanledger_collector._service import CollectorService
from spanledger_collector._store import USAGE_FACTS
from spanledger_collector._store._clickhouse_client import open_clickhouse
from spanledger_collector._store._clickhouse_schema import holds_init_views
from spanledger_collector._store._location import StoreAddress, parse_store_address
from spanledger_collector._store._otel_traces import OtelTraceRows, attribute_text
from test_clickhouse_views import create_otel_traces
from test_collector_service import genai_trace

FACT_COLUMNS = ", ".join(USAGE_FACTS.column_names)


def _config(tmp_path: Path, endpoint: str, **extra: Any) -> dict[str, Any]:
    config = collector_config(tmp_path, store=False)
    config["processors"]["spanledger_cost"] = {}
    traces = config["service"]["pipelines"]["traces"]
    traces["processors"].append("spanledger_cost")
    config["exporters"]["clickhouse"] = {"endpoint": endpoint, **extra}
    traces["exporters"].append("clickhouse")
    return config


def _chdb_config(tmp_path: Path, address: StoreAddress, replica: str = "a", **extra: Any) -> dict[str, Any]:
    return _config(
        tmp_path,
        f"chdb:{address.path}",
        database=address.database,
        replica_id=replica,
        request_log=str(tmp_path / f"requests-{replica}"),
        **extra,
    )


@contextmanager
def _service(config: dict[str, Any]) -> Iterator[tuple[CollectorService, str]]:
    service = CollectorService(parse_settings(config))
    addresses = service.start()
    try:
        yield service, f"http://{addresses['otlp.http']}/v1/traces"
    finally:
        service.shutdown()


def _query(service: CollectorService, sql: str) -> list[tuple[Any, ...]]:
    assert service.store is not None
    client = service.store.store.cursor()
    try:
        return [tuple(row) for row in client.query(sql).result_rows]
    finally:
        client.close()


# --- config ---


@pytest.mark.parametrize(
    ("extra", "key", "message"),
    [
        ({"endpoint": "clickhouse.internal:8123"}, "endpoint", "expected http"),
        ({"endpoint": "https://writer:s3cret@ch:8443"}, "endpoint", "SPANLEDGER_CLICKHOUSE_PASSWORD"),
        ({"endpoint": "https://ch:8443/ledger"}, "endpoint", "give the database in `database`"),
        ({"endpoint": "chdb:/tmp/x", "cluster": "prod"}, "cluster", "no users or clusters"),
        ({"endpoint": "chdb:/tmp/x", "password": "p"}, "password", "no users or clusters"),
        ({"endpoint": "http://ch:8123", "ttl": "1500ms"}, "ttl", "whole number of seconds"),
        ({"endpoint": "http://ch:8123", "tls": {}}, "tls", "unknown key"),
        ({"endpoint": "tcp://default:s3cret@ch:9000"}, "endpoint", "expected http"),  # contrib's DSN form
        ({"endpoint": "http://ch:8123", "database": 'x"."otel_traces'}, "database", "not a plain name"),
        ({"endpoint": "http://ch:8123", "traces_table": "otel-traces"}, "traces_table", "not a plain name"),
        ({"endpoint": "http://ch:8123", "traces_table": "otel_traces FINAL"}, "traces_table", "not a plain name"),
        ({"endpoint": "http://ch:8123", "cluster": "prod'x"}, "cluster", "not a plain name"),
        ({"endpoint": "http://ch:8123", "create_schema": False, "ttl": "720h"}, "ttl", "create_schema: false"),
        ({"endpoint": "http://ch:8123", "create_schema": False, "cluster": "c"}, "cluster", "create_schema: false"),
        ({"endpoint": "http://ch:8123", "password": 731904285516}, "password", "quote it"),
    ],
)
def test_a_config_it_cannot_honour_is_refused_naming_the_key(
    tmp_path: Path, extra: dict[str, Any], key: str, message: str
) -> None:
    config = _config(tmp_path, "http://unused:8123")
    config["exporters"]["clickhouse"] = extra
    with pytest.raises(ConfigError, match=message) as raised:
        parse_settings(config)
    assert f"clickhouse.{key}" in str(raised.value)
    assert "s3cret" not in str(raised.value) and "731904285516" not in str(raised.value)


@pytest.mark.parametrize("password", ["731904285516", "0x1F2E", "007", "12:30:45", "null", "~", "[hunter2]", "true"])
def test_a_password_from_the_environment_is_its_text_whatever_yaml_would_make_of_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, password: str
) -> None:
    """As otelcol: a key that reads a string takes the variable's text (a number, a time or ``null`` to YAML)."""
    monkeypatch.setenv("CLICKHOUSE_PASSWORD", password)
    monkeypatch.setenv("INGEST_TOKEN", password)
    path = tmp_path / "collector.yaml"
    path.write_text(
        "extensions:\n  bearertokenauth: {token: '${env:INGEST_TOKEN}'}\n"
        "receivers:\n  otlp:\n    protocols:\n"
        "      http: {endpoint: 127.0.0.1:0, auth: {authenticator: bearertokenauth}}\n"
        "exporters:\n  clickhouse: {endpoint: 'http://ch:8123', password: '${env:CLICKHOUSE_PASSWORD}'}\n"
        "service:\n  extensions: [bearertokenauth]\n"
        "  pipelines: {traces: {receivers: [otlp], exporters: [clickhouse]}}\n"
    )
    settings = load_settings(path)
    assert settings.exporters["clickhouse"].password == password
    assert password not in repr(settings.exporters["clickhouse"])
    assert settings.extensions["bearertokenauth"].tokens == (password,)


def test_the_replica_id_is_kept_in_the_request_log(tmp_path: Path) -> None:
    """A UUID made once per log, not the host name and path (which cloned machines and containers share)."""
    fresh = tmp_path / "fresh"
    first = log_replica_id(fresh)
    assert uuid.UUID(first) and log_replica_id(fresh) == first and log_replica_id(tmp_path / "other") != first
    older = tmp_path / "older"  # a log from before the file: it keeps the id its committed position is under
    older.mkdir()
    (older / "1.log").write_bytes(b"")
    assert log_replica_id(older) == f"{socket.gethostname()}:{older.resolve()}" == log_replica_id(older)


def test_a_traces_table_of_another_schema_is_refused_at_start(tmp_path: Path, clickhouse_address: StoreAddress) -> None:
    """An older exporter's table (no ScopeName/ScopeVersion) would refuse every insert and stall the replica."""
    client = open_clickhouse(clickhouse_address, create_database=True)
    try:
        client.command(
            "CREATE TABLE otel_traces (Timestamp DateTime64(9), TraceId String, SpanId String) "
            "ENGINE = MergeTree ORDER BY TraceId"
        )
    finally:
        client.close()
    refused = pytest.raises(ConfigError, match=r"clickhouse\.traces_table: .* has no column ParentSpanId, TraceState")
    with refused, _service(_chdb_config(tmp_path, clickhouse_address)):
        pass
    absent = pytest.raises(ConfigError, match=r"clickhouse\.traces_table: the table spans .* does not exist")
    with absent, _service(_chdb_config(tmp_path, clickhouse_address, create_schema=False, traces_table="spans")):
        pass


def test_a_database_init_set_up_is_refused_at_start(tmp_path: Path, clickhouse_address: StoreAddress) -> None:
    """Where ``spanledger clickhouse init`` runs over an OTel Collector's spans, usage_facts is init's view: the
    store's schema would replace init's windowed views and its rows have no table there."""
    client = open_clickhouse(clickhouse_address, create_database=True)
    try:
        create_otel_traces(client, clickhouse_address.database)
        init(client, Names(database=clickhouse_address.database), catalog_models=False)
        before = client.query("SHOW CREATE TABLE usage_facts_window").result_rows
    finally:
        client.close()
    refused = pytest.raises(
        ConfigError, match=r"exporters\.clickhouse\.database: .* holds `spanledger clickhouse init`"
    )
    with refused, _service(_chdb_config(tmp_path, clickhouse_address)):
        pass
    client = open_clickhouse(clickhouse_address)
    try:
        assert client.query("SHOW CREATE TABLE usage_facts_window").result_rows == before
        # an init stopped half way (its usage_reports made first, no usage_facts view yet) is init's too
        client.command("DROP VIEW usage_facts")
        assert holds_init_views(client, clickhouse_address.database)
        client.command("DROP TABLE usage_reports")
        assert not holds_init_views(client, clickhouse_address.database)
    finally:
        client.close()


def test_a_server_endpoint_is_read_into_a_tls_address(tmp_path: Path) -> None:
    config = _config(
        tmp_path,
        "https://ch.internal:8443",
        database="ledger",
        username="writer",
        password="from-env",
        cluster="prod",
        ttl="720h",
    )
    settings = parse_settings(config).exporters["clickhouse"]
    assert str(settings.address) == "clickhouse+https://writer@ch.internal:8443/ledger"
    assert settings.password == "from-env" and "from-env" not in repr(settings.address)
    schema = settings.schema()
    assert (schema.cluster, schema.ttl.days, schema.database) == ("prod", 30, "ledger")


@pytest.mark.parametrize(
    ("store", "exporter", "expected"),
    [
        ("x.duckdb", "spanledger_store", {"path": "x.duckdb"}),
        ("chdb:/var/lib/ch", "clickhouse", {"endpoint": "chdb:/var/lib/ch", "database": "default"}),
        (
            "clickhouse+https://writer@ch:8443/ledger",
            "clickhouse",
            {"endpoint": "https://ch:8443", "database": "ledger", "username": "writer"},
        ),
    ],
)
def test_collector_store_replaces_the_default_store(store: str, exporter: str, expected: dict[str, str]) -> None:
    settings = load_settings(None, store=store)
    assert list(settings.exporters) == [exporter]
    traces = next(pipeline for pipeline in settings.pipelines if pipeline.signal == "traces")
    assert traces.exporters == (exporter,)
    if exporter == "clickhouse":
        assert str(settings.exporters[exporter].address) == str(parse_store_address(store))
    else:
        assert settings.exporters[exporter].path == expected["path"]


def test_collector_store_is_refused_with_a_config_or_a_bad_value(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="with --config"):
        load_settings(tmp_path / "c.yaml", store="chdb:/x")
    with pytest.raises(ConfigError, match=r"--store: .*unknown scheme"):
        load_settings(None, store="mysql://h/db")


# --- otel_traces rows ---


def _value(**kind: Any) -> AnyValue:
    return AnyValue(**kind)


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (_value(string_value="plain"), "plain"),
        (_value(bool_value=True), "true"),
        (_value(int_value=-42), "-42"),
        (_value(double_value=1.0), "1"),
        (_value(double_value=0.1), "0.1"),
        (_value(double_value=1e-7), "1e-7"),
        (_value(double_value=1e21), "1e+21"),
        (_value(double_value=123456789012345680.0), "123456789012345680"),
        (_value(bytes_value=b"\x00\xff"), "AP8="),
        (
            _value(
                array_value=ArrayValue(values=[_value(string_value="a"), _value(int_value=1), _value(double_value=2.5)])
            ),
            '["a",1,2.5]',
        ),
        (
            _value(
                kvlist_value=KeyValueList(
                    values=[KeyValue(key="z", value=_value(bool_value=False)), KeyValue(key="a", value=_value())]
                )
            ),
            '{"a":null,"z":false}',
        ),
        (_value(), ""),
    ],
)
def test_attribute_values_are_text_as_pdata_writes_them(value: AnyValue, text: str) -> None:
    assert attribute_text(value) == text


def test_a_span_becomes_the_exporters_row() -> None:
    spans = genai_trace()
    request = ExportTraceServiceRequest.FromString(_encode(spans))
    rows = OtelTraceRows()
    rows.add_request(request)
    assert len(rows) == len(spans)
    by_name = {row[5]: row for row in zip(*rows.columns, strict=True)}
    retrieve = by_name["retrieve"]
    span = next(span for span in spans if span.name == "retrieve")
    assert retrieve[0] == span.start_time and retrieve[12] == span.end_time - span.start_time
    assert retrieve[1] == f"{span.context.trace_id:032x}" and retrieve[2] == f"{span.context.span_id:016x}"
    assert retrieve[6] == "SPAN_KIND_INTERNAL" and retrieve[13] == "STATUS_CODE_UNSET"
    assert retrieve[7] == "rag-api" and retrieve[9] == "test"
    assert len(retrieve[15]) == len(retrieve[16]) == len(retrieve[17]) == 2  # two data-read events
    assert by_name["workflow"][3] == ""  # a root span has no parent


def _encode(spans: Any) -> bytes:
    from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans

    return bytes(encode_spans(spans).SerializeToString())


# --- the store in the collector ---


def test_the_collector_stores_what_duckdb_stores(tmp_path: Path, clickhouse_address: StoreAddress) -> None:
    """The same spans through a DuckDB collector and a ClickHouse one: the same usage facts, to the last digit."""
    spans = genai_trace() + genai_trace(workflow="summarize", tenant="globex")
    duckdb_config = collector_config(tmp_path)
    duckdb_config["processors"]["spanledger_cost"] = {}
    duckdb_config["service"]["pipelines"]["traces"]["processors"].append("spanledger_cost")
    with _service(duckdb_config) as (service, endpoint):
        assert OTLPSpanExporter(endpoint=endpoint).export(spans).name == "SUCCESS"
    with duckdb.connect(str(tmp_path / "spanledger.duckdb"), read_only=True) as connection:
        expected = connection.execute(f"SELECT {FACT_COLUMNS} FROM usage_facts ORDER BY ALL").fetchall()
        expected_reads = connection.execute("SELECT count(*) FROM data_reads").fetchall()[0][0]
    with _service(_chdb_config(tmp_path, clickhouse_address)) as (service, endpoint):
        assert OTLPSpanExporter(endpoint=endpoint).export(spans).name == "SUCCESS"
        assert service.store is not None and service.store.writer.flush()
        stored = _query(service, f"SELECT {FACT_COLUMNS} FROM usage_facts FINAL ORDER BY ALL")
        assert stored == [tuple(row) for row in expected] and len(stored) > 10
        assert _query(service, "SELECT count() FROM data_reads FINAL") == [(expected_reads,)]
        assert _query(service, "SELECT count() FROM otel_traces") == [(len(spans),)]
        assert _query(service, "SELECT count() FROM otel_traces_trace_id_ts") == [(2,)]


@contextmanager
def _second_replica(first: CollectorService, config: dict[str, Any]) -> Iterator[Pipeline]:
    """Replica ``b``: its own store client, request log, replica id and writer, fed by a pipeline of the first
    service's processors. (One process holds one metrics registry, so a second whole service cannot start here.)"""
    settings = parse_settings(config)
    opened = STORES["clickhouse"].create("clickhouse", settings.exporters["clickhouse"], BatchSettings())
    traces = next(pipeline for pipeline in settings.pipelines if pipeline.signal == "traces")
    pipeline = Pipeline(
        "traces", "traces", processors=[first.processors[p] for p in traces.processors], writer=opened.writer
    )
    opened.writer.start(lambda request: pipeline.stored_batch(request.body))
    try:
        yield pipeline
    finally:
        opened.writer.shutdown()
        opened.close()


def test_a_retried_request_is_stored_once_by_either_replica(tmp_path: Path, clickhouse_address: StoreAddress) -> None:
    """Two collector replicas writing one store. chdb runs in-process (two processes cannot share a chdb
    directory), so both replicas live in this process and share the engine; each has its own client, request
    log and replica id, as two processes on a server would."""
    spans = genai_trace()
    other = genai_trace(workflow="summarize")
    with (
        _service(_chdb_config(tmp_path, clickhouse_address, "a")) as (a, endpoint_a),
        _second_replica(a, _chdb_config(tmp_path, clickhouse_address, "b")) as b,
    ):
        assert OTLPSpanExporter(endpoint=endpoint_a).export(spans).name == "SUCCESS"
        assert a.store is not None and a.store.writer.flush()
        # The client retries the same request (its ack was lost) through the load balancer, reaching b.
        assert b.writer is not None
        b.consume_traces(_encode(spans))
        b.consume_traces(_encode(other))
        assert b.writer.flush()
        assert OTLPSpanExporter(endpoint=endpoint_a).export(spans).name == "SUCCESS"
        assert a.store.writer.flush()
        assert _query(a, "SELECT count() FROM otel_traces") == [(len(spans) + len(other),)]
        assert _query(a, "SELECT count() FROM usage_facts") == _query(a, "SELECT count() FROM usage_facts FINAL")
        positions = "SELECT replica_id, committed_seq FROM request_log_position FINAL ORDER BY 1"
        assert _query(a, positions) == [("a", 2), ("b", 2)]


def test_rows_stored_again_collapse_in_the_row_tables(tmp_path: Path, clickhouse_address: StoreAddress) -> None:
    """What a crash between a block's rows and its digests leaves: the same rows inserted again. Usage facts
    and data reads, read with FINAL, count once (otel_traces keeps the exporter's MergeTree: it holds both)."""
    spans = genai_trace()
    with _service(_chdb_config(tmp_path, clickhouse_address)) as (service, endpoint):
        assert OTLPSpanExporter(endpoint=endpoint).export(spans).name == "SUCCESS"
        assert service.store is not None and service.store.writer.flush()
        once = _query(service, f"SELECT {FACT_COLUMNS} FROM usage_facts FINAL ORDER BY ALL")
        reads = _query(service, "SELECT count() FROM data_reads FINAL")
        client = service.store.store.cursor()
        client.command("TRUNCATE TABLE received_requests")  # as if the digests never made it
        client.close()
        assert OTLPSpanExporter(endpoint=endpoint).export(spans).name == "SUCCESS"
        assert service.store.writer.flush()
        assert _query(service, "SELECT count() FROM usage_facts") == [(2 * len(once),)]
        assert _query(service, f"SELECT {FACT_COLUMNS} FROM usage_facts FINAL ORDER BY ALL") == once
        assert _query(service, "SELECT count() FROM data_reads FINAL") == reads
        assert _query(service, "SELECT count() FROM otel_traces") == [(2 * len(spans),)]


# --- kill -9 ---


def _chdb_rows(path: Path, database: str, sql: str) -> str:
    """Query a chdb directory from a process of its own (this one may hold another chdb directory open)."""
    script = (
        "import sys, clickhouse_connect\n"
        "client = clickhouse_connect.get_client(interface='chdb', path=sys.argv[1], database=sys.argv[2])\n"
        "print(client.query(sys.argv[3]).result_rows)\n"
    )
    return subprocess.run(
        [sys.executable, "-c", script, str(path), database, sql],
        capture_output=True,
        text=True,
        check=True,
        timeout=300,
    ).stdout.strip()


@pytest.mark.slow
def test_a_replica_killed_with_sigkill_loses_nothing_acknowledged(tmp_path: Path) -> None:
    chdb_path = tmp_path / "ch"
    config = _config(
        tmp_path,
        f"chdb:{chdb_path}",
        database="ledger",
        replica_id="a",
        commit_interval="1h",  # nothing committed before the kill: everything is in the request log
    )
    collector = launch(tmp_path, config)
    acknowledged = 0
    try:
        endpoint = f"http://{collector.addresses['otlp.http']}/v1/traces"
        exporter = OTLPSpanExporter(endpoint=endpoint)
        for index in range(20):
            if exporter.export(genai_trace(workflow=f"w{index}")).name == "SUCCESS":
                acknowledged += 1
    finally:
        os.kill(collector.process.pid, signal.SIGKILL)
        collector.process.wait(timeout=30)
    assert acknowledged == 20
    restarted = launch(tmp_path, config)
    time.sleep(0.5)
    assert restarted.stop() == 0
    traces = _chdb_rows(chdb_path, "ledger", "SELECT count(DISTINCT TraceId) FROM otel_traces")
    workflows = _chdb_rows(
        chdb_path, "ledger", "SELECT count(DISTINCT workflow) FROM usage_facts FINAL WHERE workflow LIKE 'w%'"
    )
    assert (traces, workflows) == (f"[({acknowledged},)]", f"[({acknowledged},)]")
