"""``spanledger clickhouse init`` on chdb (the real ClickHouse engine, in-process): the same spans go through the
collector's Python decoder and attribution pass (as the ``spanledger_usage`` processor stores them) and, as the
OTel Collector's clickhouse exporter writes them, into ``otel_traces`` and through the materialized views; the
usage facts (estimates included) and data reads are equal exactly."""

from __future__ import annotations

import dataclasses
import random
import threading
from datetime import datetime, time, timedelta
from decimal import Decimal
from functools import partial
from importlib import resources
from pathlib import Path
from typing import Any

import pytest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import KeyValue
from opentelemetry.proto.resource.v1.resource_pb2 import Resource
from opentelemetry.proto.trace.v1.trace_pb2 import ResourceSpans, ScopeSpans, Span
from opentelemetry.trace import SpanKind
from spanledger import semconv
from spanledger.semconv import SpanledgerMeterValues as Meter
from spanledger_collector._cli import main
from spanledger_collector._config import ConfigError
from spanledger_collector._decode import MAX_TOKENS, DecodedTraces, decode_traces_python
from spanledger_collector._decode._attribution import Attribution, AttributionMemory, attribute
from spanledger_collector._decode._producers import RECENT
from spanledger_collector._decode._usage_sources import USAGE_SOURCES
from spanledger_collector._engine._ddl import NOT_IN_PRICE_TABLE, Names
from spanledger_collector._engine._install import InitError, init, one_server_only
from spanledger_collector._engine._prices import catalog_keys, load_prices, periods, price_fact
from spanledger_collector._pricing._catalog import load_catalog
from spanledger_collector._pricing._llm import TokenRate
from spanledger_collector._pricing._rates import Unpriced
from spanledger_collector._processors._usage import UsageSettings
from spanledger_collector._store import UsageFact
from spanledger_collector._store._clickhouse_client import open_clickhouse
from spanledger_collector._store._clickhouse_schema import WINDOW, WINDOW_VIEWS, ClickHouseSchema
from spanledger_collector._store._location import StoreAddress
from spanledger_collector._store._otel_traces import OTEL_TRACES_COLUMNS, OtelTraceRows
from spanledger_collector.billing._answers import trace_lineage
from spanledger_collector.billing._engine import ClickHouseEngine, Window
from test_collector_producers import (
    AWS,
    CONVERSE,
    DIALECT_SPANS,
    HTTP_CLIENT,
    INVOKE_ENDPOINT,
    S3_GET,
    Node,
    _encoded,
    _request,
    _spans,
    _value,
)
from test_collector_speedups import NUMBER_SPELLINGS

CATALOG = load_catalog()
TOKEN_FIELDS = ("input_tokens", "uncached_input_tokens", "cache_read_tokens", "cache_write_tokens",
                "output_tokens", "total_tokens")  # fmt: skip


OTEL_TRACES_DDL = (
    resources.files("spanledger_collector._store") / "sql" / "clickhouse" / "otel_traces.sql"
).read_text()


def create_otel_traces(client: Any, database: str, *, trace_bounds: bool = True) -> None:
    """``otel_traces`` as the OTel Collector's clickhouse exporter creates it (its templates, defaults), with its
    ``otel_traces_trace_id_ts`` table and the view filling it unless not ``trace_bounds``."""
    templates = ("otel_traces.sql", "otel_traces_trace_id_ts.sql", "otel_traces_trace_id_ts_mv.sql")
    for template in templates if trace_bounds else templates[:1]:
        ddl = (resources.files("spanledger_collector._store") / "sql" / "clickhouse" / template).read_text()
        client.command(ddl.format(database=database, table="otel_traces", cluster="", engine="MergeTree()", ttl=""))


def insert_spans(client: Any, database: str, requests: list[bytes]) -> None:
    """One insert (the exporter batches 8,192 spans), rows as the exporter writes them."""
    rows = OtelTraceRows()
    for request in requests:
        rows.add_request(ExportTraceServiceRequest.FromString(request))
    client.insert(f"{database}.otel_traces", rows.columns, column_names=OTEL_TRACES_COLUMNS, column_oriented=True)


@pytest.fixture
def engine(clickhouse_client: Any, clickhouse_address: StoreAddress) -> tuple[Any, Names]:
    """chdb with the exporter's otel_traces and ``init`` run over it (prices of the models seen only: fast)."""
    create_otel_traces(clickhouse_client, clickhouse_address.database)
    names = Names(database=clickhouse_address.database)
    init(clickhouse_client, names, catalog_models=False)
    return clickhouse_client, names


def _insert(client: Any, names: Names, requests: list[bytes]) -> None:
    insert_spans(client, names.database, requests)


def _engine_estimate(fact: UsageFact) -> UsageFact:
    """The fact as the engine prices it: every meter from the price tables, the collector's numbers."""
    return CATALOG.priced(fact)


def _collector(requests: list[bytes], attribution: Attribution | None = None) -> list[DecodedTraces]:
    """What the collector stores of each request: the Python decoder, then the ``spanledger_usage`` processor's
    attribution pass with its default lists (one memory over the requests, as one processor keeps)."""
    RECENT.clear()
    memory, decoded = AttributionMemory(), []
    for request in requests:
        traces = decode_traces_python(request)
        attribute(traces, request, attribution or UsageSettings().attribution, memory)
        decoded.append(traces)
    return decoded


def _python_facts(requests: list[bytes], attribution: Attribution | None = None) -> list[tuple[Any, ...]]:
    facts = [fact for decoded in _collector(requests, attribution) for fact in decoded.batch.facts]
    return sorted(tuple(_engine_estimate(fact)) for fact in facts)


def _engine_facts(client: Any, names: Names) -> list[tuple[Any, ...]]:
    return sorted(tuple(row) for row in client.query(f"SELECT * FROM {names.database}.usage_facts").result_rows)


def _python_reads(requests: list[bytes]) -> list[tuple[Any, ...]]:
    return sorted(tuple(read) for decoded in _collector(requests) for read in decoded.batch.data_reads)


def _engine_reads(client: Any, names: Names) -> list[tuple[Any, ...]]:
    return sorted(tuple(row) for row in client.query(f"SELECT * FROM {names.database}.data_reads FINAL").result_rows)


def _assert_same(engine: tuple[Any, Names], requests: list[bytes]) -> None:
    client, names = engine
    _insert(client, names, requests)
    init(client, names, catalog_models=False)  # prices the models seen (as a re-run does)
    python, engine = _python_facts(requests), _engine_facts(client, names)
    assert python, "the workload gives no facts"
    differences = [(p, e) for p, e in zip(python, engine, strict=False) if p != e]
    for python_fact, engine_fact in differences[:3]:
        print("python", python_fact, "\nengine", engine_fact)
    assert len(python) == len(engine) and not differences, (len(python), len(engine), differences[:3])
    assert _python_reads(requests) == _engine_reads(client, names)
    _assert_windows_agree(client, names)


_EVER = ("1900-01-01 00:00:00", "2299-12-31 23:59:59")


def _window(client: Any, view: str, since: str, until: str, trace: str = "") -> list[tuple[Any, ...]]:
    """The view's rows for the window; the same as its query's read inline with the window bound (the answers')."""
    query = f"SELECT * FROM {view}(since={{since:String}}, until={{until:String}}, trace={{trace:String}})"
    parameters = {"since": since, "until": until, "trace": trace}
    called = sorted(tuple(row) for row in client.query(query, parameters=parameters).result_rows)
    database, name = view.split(".")
    own = client.query(
        "SELECT as_select FROM system.tables WHERE database = {database:String} AND name = {name:String}",
        parameters={"database": database, "name": name},
    ).result_rows[0][0]
    inline = WINDOW.bound(own, since=since, until=until, trace=trace)
    assert called == sorted(tuple(row) for row in client.query(f"SELECT * FROM ({inline})").result_rows), view
    return called


def _assert_windows_agree(client: Any, names: Names) -> None:
    """The windowed views give the whole views' rows of the window: every row, one trace's, and random windows."""
    database = names.database
    facts, reads = f"{database}.{names.usage_facts_window}", f"{database}.{names.data_reads_window}"
    all_facts, all_reads = _engine_facts(client, names), _engine_reads(client, names)
    assert _window(client, facts, *_EVER) == all_facts
    assert _window(client, reads, *_EVER) == all_reads
    rng = random.Random(7)
    traces = sorted({row[0] for row in all_facts} | {row[0] for row in all_reads})
    for trace in rng.sample(traces, min(len(traces), 2)):
        assert _window(client, facts, *_EVER, trace) == [row for row in all_facts if row[0] == trace], trace
        assert _window(client, reads, *_EVER, trace) == [row for row in all_reads if row[0] == trace], trace
    times = sorted({row[3] for row in all_facts} | {row[4] for row in all_facts})
    for _ in range(2):
        since, until = sorted(rng.sample(times, 2)) if len(times) > 1 else (times[0], times[0])
        moments = (since.strftime("%Y-%m-%d %H:%M:%S.%f"), until.strftime("%Y-%m-%d %H:%M:%S.%f"))
        assert _window(client, facts, *moments) == [row for row in all_facts if row[4] >= since and row[3] <= until]
        assert _window(client, reads, *moments) == [row for row in all_reads if since <= row[3] <= until]


OWN = {**DIALECT_SPANS["otel-genai"], semconv.SPANLEDGER_USAGE_OWNER: True}


def test_each_dialect_and_spanledger_spans_give_the_decoders_facts(engine: tuple[Any, Names]) -> None:
    requests = [_request(Node(dialect, attributes)) for dialect, attributes in sorted(DIALECT_SPANS.items())]
    _assert_same(engine, [*requests, _request(Node("spanledger", OWN))])


def test_http_and_aws_calls_of_other_producers_give_the_decoders_facts_and_reads(engine: tuple[Any, Names]) -> None:
    """Bytes on the wire of HTTP client spans, the resource AWS bills, Bedrock's input with its cache tokens,
    SageMaker endpoint time and S3 object reads, as the collector reads them from upstream instrumentations."""
    calls = {
        "POST": HTTP_CLIENT,
        "POST old names": {"http.method": "POST", semconv.HTTP_URL: "https://Old.Example.com:8443/v1?q=1",
                           semconv.HTTP_REQUEST_BODY_SIZE: 10},
        "S3.GetObject": S3_GET,
        "S3.GetObject access point": {**S3_GET, semconv.AWS_S3_BUCKET: "arn:aws:s3:us-east-1:123:accesspoint/ap"},
        "S3.PutObject": {**S3_GET, semconv.RPC_METHOD: "PutObject", semconv.HTTP_REQUEST_BODY_SIZE: 7},
        "chat": CONVERSE,
        "chat profile": {**CONVERSE, semconv.GEN_AI_REQUEST_MODEL: "us.amazon.nova-lite-v1:0"},
        "chat named": {**CONVERSE, semconv.CLOUD_RESOURCE_ID: "arn:aws:bedrock:us-east-1:1:custom-model/x"},
        "InvokeEndpoint": INVOKE_ENDPOINT,
        "InvokeEndpointAsync": {**INVOKE_ENDPOINT, semconv.RPC_METHOD: "InvokeEndpointAsync"},
        "DescribeEndpoint": {**AWS, semconv.RPC_SERVICE: "SageMaker", semconv.RPC_METHOD: "DescribeEndpoint"},
    }  # fmt: skip
    clients = tuple(Node(name, attributes, kind=SpanKind.CLIENT) for name, attributes in calls.items())
    server = Node("served", HTTP_CLIENT, kind=SpanKind.SERVER)  # a server span's body sizes are not its egress
    requests = [_request(Node("handler", {}, (*clients, server))), _request(Node("owner", OWN, clients[:3]))]
    _assert_same(engine, requests)
    client, names = engine
    meters = {row[0] for row in client.query(f"SELECT meter FROM {names.database}.usage_facts").result_rows}
    assert {Meter.EGRESS_BYTES.value, Meter.INGRESS_BYTES.value, Meter.ENDPOINT_SECONDS.value} <= meters
    assert client.query(f"SELECT count() FROM {names.database}.data_reads").result_rows[0][0] == 3


def test_counted_once_matches_the_decoder(engine: tuple[Any, Names]) -> None:
    genai, openinference = DIALECT_SPANS["otel-genai"], DIALECT_SPANS["openinference"]
    only_output = {semconv.GEN_AI_USAGE_OUTPUT_TOKENS: 7}
    _assert_same(engine, [
        _request(Node("agent", openinference, (Node("llm", genai),))),  # a roll-up
        _request(Node("agent", {}, (Node("a", genai), Node("b", openinference)))),  # siblings both count
        _request(Node("framework", genai, (Node("owner", OWN),))),  # the owner decides
        _request(Node("owner", OWN, (Node("inner", genai),))),  # an owner above has the meters
        _request(Node("agent", genai, (Node("gap", {}, (Node("llm", only_output),)),))),  # only output rolled up
    ])  # fmt: skip


def test_accelerator_endpoint_and_byte_estimates_are_the_cost_processors(engine: tuple[Any, Names]) -> None:
    """Priced in the engine (``cloud_prices``) to the last of 12 decimals: GPU seconds on 8-GPU instances (a
    divisor of 8 x 3600), byte counts over 2^30 a GB, and the unpriced reasons the catalog gives."""
    gpu = {semconv.SPANLEDGER_USAGE_OWNER: True, semconv.SPANLEDGER_ACCELERATOR_TYPE: "NVIDIA H100 80GB HBM3",
           semconv.CLOUD_PROVIDER: "aws", semconv.CLOUD_REGION: "us-east-1"}  # fmt: skip
    bytes_ = {semconv.SPANLEDGER_USAGE_OWNER: True, semconv.CLOUD_PROVIDER: "aws"}
    requests = [
        _request(Node("gpu", {**gpu, semconv.SPANLEDGER_ACCELERATOR_TIME: seconds}))
        for seconds in (2.5, 0.000001, 1234.567891, 86399.999999, 7)
    ] + [
        _request(Node("egress", {**bytes_, semconv.SPANLEDGER_EGRESS_BYTES: count,
                                 semconv.SPANLEDGER_INGRESS_BYTES: count // 3,
                                 semconv.SPANLEDGER_EGRESS_BOUNDARY: boundary}))
        for count, boundary in ((1, "internet"), (123_456_789_012, "internet"), (2**29, "inter_region"),
                                (5_000, "unknown"), (77, "intra_az"))
    ] + [
        _request(Node("tpu", {**gpu, semconv.SPANLEDGER_ACCELERATOR_TYPE: "tpu",
                              semconv.SPANLEDGER_ACCELERATOR_TIME: 3})),
        _request(Node("endpoint", {semconv.SPANLEDGER_USAGE_OWNER: True, semconv.SPANLEDGER_OCCUPANCY_START: 1.7e9,
                                   semconv.SPANLEDGER_OCCUPANCY_END: 1.7e9 + 1.5,
                                   semconv.CLOUD_RESOURCE_ID: "arn:aws:sagemaker:us-east-1:1:endpoint/e"})),
    ]  # fmt: skip
    _assert_same(engine, requests)
    client, names = engine
    priced = client.query(
        f"SELECT meter, count() FROM {names.database}.usage_facts WHERE estimated_cost > 0 GROUP BY meter"
    ).result_rows
    assert {meter for meter, _ in priced} >= {Meter.ACCELERATOR_SECONDS.value, Meter.EGRESS_BYTES.value}, priced


def test_the_windows_read_the_spans_between_the_exporters_trace_bounds_and_the_answers_read_them(
    engine: tuple[Any, Names],
) -> None:
    client, names = engine
    created = client.query(f"SHOW CREATE TABLE {names.database}.{names.usage_facts_window}").result_rows[0][0]
    assert f"{names.database}.otel_traces_trace_id_ts" in created
    assert (names.usage_facts_window, names.data_reads_window) == WINDOW_VIEWS  # one name on both installs
    requests = [_request(Node("agent", DIALECT_SPANS["openinference"], (Node("llm", OWN),)))]
    _assert_same(engine, requests)
    # The answers read each windowed view's own query inline, the window bound as literals
    reader = ClickHouseEngine(client)
    trace = _engine_facts(client, names)[0][0]
    relation = reader.facts_within(Window(datetime(2000, 1, 1), datetime(2100, 1, 1), trace))
    assert relation.startswith("(") and "{since:String}" not in relation
    assert "'2000-01-01 00:00:00.000000'" in relation and f"'{trace}'" in relation
    assert sorted(reader.rows(f"SELECT * FROM {relation}")) == _window(
        client, f"{names.database}.{names.usage_facts_window}", "2000-01-01", "2100-01-01", trace
    )
    assert reader.rows(f"SELECT count() FROM {reader.reads_within(Window())}") == [(len(_engine_reads(client, names)),)]


def test_a_retried_batch_is_counted_once(engine: tuple[Any, Names]) -> None:
    requests = [_request(Node("agent", DIALECT_SPANS["openinference"], (Node("llm", OWN),)))]
    _assert_same(engine, requests)
    client, names = engine
    before = _engine_facts(client, names)
    _insert(client, names, requests)  # the exporter retried the batch: every row is in otel_traces twice
    assert _engine_facts(client, names) == before


def test_init_backfills_the_spans_already_stored(clickhouse_client: Any, clickhouse_address: StoreAddress) -> None:
    client, database = clickhouse_client, clickhouse_address.database
    create_otel_traces(client, database, trace_bounds=False)  # and the windows read the spans without bounds
    requests = [_request(Node("agent", DIALECT_SPANS["openinference"], (Node("llm", OWN),)))]
    insert_spans(client, database, requests)  # before init: the views never see these rows
    names = Names(database=database)
    init(client, names, catalog_models=False)
    assert _engine_facts(client, names) == []
    init(client, names, catalog_models=False, backfill_existing=True)
    init(client, names, catalog_models=False, backfill_existing=True)  # again: no duplicates
    assert _engine_facts(client, names) == _python_facts(requests)
    assert "trace_bounds" not in client.query(f"SHOW CREATE TABLE {database}.usage_facts_window").result_rows[0][0]
    _assert_windows_agree(client, names)


def test_windows_walk_every_span_when_the_bounds_table_lacks_some_traces(
    clickhouse_client: Any, clickhouse_address: StoreAddress
) -> None:
    """Spans stored before the exporter's bounds table existed (then backfilled) have no bounds row: the windows
    must not bound the walk by the other traces' bounds (counted once would then count the roll-ups too)."""
    client, database = clickhouse_client, clickhouse_address.database
    create_otel_traces(client, database, trace_bounds=False)
    genai = DIALECT_SPANS["otel-genai"]
    before = [_request(Node("framework", genai, (Node("llm", genai),))) for _ in range(3)]
    insert_spans(client, database, before)
    for template in ("otel_traces_trace_id_ts.sql", "otel_traces_trace_id_ts_mv.sql"):
        ddl = (resources.files("spanledger_collector._store") / "sql" / "clickhouse" / template).read_text()
        client.command(ddl.format(database=database, table="otel_traces", cluster="", engine="MergeTree()", ttl=""))
    names = Names(database=database)
    init(client, names, catalog_models=False, backfill_existing=True)
    after = [_request(Node("agent", genai, (Node("gap", {}, (Node("llm", genai),)),)))]
    insert_spans(client, database, after)
    assert client.query(f"SELECT uniqExact(TraceId) FROM {database}.otel_traces_trace_id_ts").result_rows == [(1,)]
    assert _engine_facts(client, names) == _python_facts(before + after)
    _assert_windows_agree(client, names)
    for request in (before[0], after[0]):  # `spanledger trace`: with no bounds row as with one, every span
        trace = ExportTraceServiceRequest.FromString(request).resource_spans[0].scope_spans[0].spans[0].trace_id
        assert len(_lineage_spans(client, trace.hex())) == len(_spans_of(request)), trace.hex()


def _spans_of(request: bytes) -> list[Span]:
    return [span for resource in ExportTraceServiceRequest.FromString(request).resource_spans
            for scope in resource.scope_spans for span in scope.spans]  # fmt: skip


def _lineage_spans(client: Any, trace: str) -> list[str]:
    """The span names of ``spanledger trace``'s tree, as the CLI reads them (the client's database)."""

    def names(nodes: list[dict[str, Any]]) -> list[str]:
        return [name for node in nodes for name in (node.get("name"), *names(node["children"])) if name]

    return names(trace_lineage(ClickHouseEngine(client), trace)["tree"])


def test_the_trace_answer_reads_spans_without_the_bounds_table(
    clickhouse_client: Any, clickhouse_address: StoreAddress
) -> None:
    """An exporter's traces table without its trace-id table (init reads it unbounded): the spans are read whole."""
    client, database = clickhouse_client, clickhouse_address.database
    create_otel_traces(client, database, trace_bounds=False)
    request = _request(Node("agent", DIALECT_SPANS["openinference"], (Node("llm", OWN),)))
    insert_spans(client, database, [request])
    init(client, Names(database=database), catalog_models=False)
    assert sorted(_lineage_spans(client, _spans_of(request)[0].trace_id.hex())) == ["agent", "llm"]


def test_spans_beyond_the_bounds_datetime_are_walked_whole(engine: tuple[Any, Names]) -> None:
    """The exporter's bounds are DateTime (1970 to 2106-02-07): a trace of 2150 has a saturated bounds row, which must
    not bound the walk (the roll-up would count twice) nor hide the trace's spans."""
    client, names = engine
    requests = []
    for year in (2026, 2150):
        request = ExportTraceServiceRequest.FromString(
            _request(Node("framework", DIALECT_SPANS["otel-genai"], (Node("llm", DIALECT_SPANS["otel-genai"]),)))
        )
        shift = int(datetime(year, 1, 1).timestamp()) * 10**9 - min(
            span.start_time_unix_nano for span in _spans_of(request.SerializeToString())
        )
        for span in request.resource_spans[0].scope_spans[0].spans:
            span.start_time_unix_nano += shift
            span.end_time_unix_nano += shift
        requests.append(request.SerializeToString())
    _assert_same(engine, requests)
    saturated = client.query(f"SELECT max(End) FROM {names.database}.otel_traces_trace_id_ts").result_rows[0][0]
    assert saturated.year == 2106
    assert sorted(_lineage_spans(client, _spans_of(requests[1])[0].trace_id.hex())) == ["framework", "llm"]


def test_a_model_first_seen_after_init_is_unpriced_until_init_runs_again(engine: tuple[Any, Names]) -> None:
    client, names = engine
    _insert(client, names, [_request(Node("spanledger", OWN))])
    reasons = {row[0] for row in client.query(f"SELECT unpriced_reason FROM {names.database}.usage_facts").result_rows}
    assert reasons == {NOT_IN_PRICE_TABLE}
    init(client, names, catalog_models=False)
    costs = client.query(f"SELECT estimated_cost FROM {names.database}.usage_facts").result_rows
    assert costs and all(isinstance(cost, Decimal) and cost > 0 for (cost,) in costs)


def _calls_at(attributes: dict[str, Any], moments: list[str], first_trace: int) -> bytes:
    """A span of ``attributes`` starting at each of ``moments`` (UTC, nanoseconds after the point)."""
    spans = []
    for index, moment in enumerate(moments):
        when, _, nanos = moment.partition("+")
        start = int(datetime.fromisoformat(when + "+00:00").timestamp()) * 10**9 + int(nanos or 0)
        spans.append(Span(trace_id=(first_trace + index).to_bytes(16, "big"), span_id=b"\x01" * 8, name="chat",
                          start_time_unix_nano=start, end_time_unix_nano=start + 10**9,
                          attributes=_attributes(attributes)))  # fmt: skip
    request = ExportTraceServiceRequest(resource_spans=[ResourceSpans(scope_spans=[ScopeSpans(spans=spans)])])
    return request.SerializeToString()


def test_prices_the_catalog_knows_hold_long_after_init(engine: tuple[Any, Names]) -> None:
    """Off-peak hours (DeepSeek's, every day) and dated prices (one from 2027-01-01) price the facts of any day
    and time of day after one ``init`` as the collector does, on each side of every change, to the nanosecond;
    so do the cloud catalog's periods (a GPU's two prices), and its gaps (before its first period, a region it
    never prices) give the collector's reasons."""
    client, names = engine
    deepseek = {**OWN, semconv.GEN_AI_PROVIDER_NAME: "deepseek", semconv.GEN_AI_REQUEST_MODEL: "deepseek-v4-flash",
                semconv.GEN_AI_RESPONSE_MODEL: "deepseek-v4-flash"}  # fmt: skip
    gemini = {**OWN, semconv.GEN_AI_PROVIDER_NAME: "gcp.gemini", semconv.GEN_AI_REQUEST_MODEL: "gemini-3.6-flash",
              semconv.GEN_AI_RESPONSE_MODEL: "gemini-3.6-flash"}  # fmt: skip
    cloud = {semconv.SPANLEDGER_USAGE_OWNER: True, semconv.CLOUD_PROVIDER: "aws"}
    gpu = {**cloud, semconv.SPANLEDGER_ACCELERATOR_TYPE: "NVIDIA H100 80GB HBM3", semconv.CLOUD_REGION: "us-east-1",
           semconv.SPANLEDGER_ACCELERATOR_TIME: 2.5}  # fmt: skip
    egress = {**cloud, semconv.CLOUD_REGION: "xx-nowhere-1", semconv.SPANLEDGER_EGRESS_BYTES: 7,
              semconv.SPANLEDGER_EGRESS_BOUNDARY: "internet"}  # fmt: skip
    models = (deepseek, gemini, gpu, egress)
    before = [_calls_at(model, ["2026-12-07T12:00:00"], index) for index, model in enumerate(models, 1)]
    _insert(client, names, before)
    init(client, names, catalog_models=False)  # once: the rest arrive after it
    days = ("2026-08-16", "2026-08-17", "2026-09-09", "2026-09-10", "2027-03-01", "2031-06-30")
    hours = ("00:00:00", "00:59:59+999999999", "01:00:00", "03:59:59+999999999", "04:00:00", "05:00:00",
             "06:00:00", "09:59:59+999999999", "10:00:00", "23:59:59+999999999")  # fmt: skip
    after = [
        _calls_at(deepseek, [f"{day}T{hour}" for day in days for hour in hours], 100),
        _calls_at(gemini, ["2026-12-31T23:59:59+999999999", "2027-01-01T00:00:00", "2031-06-30T12:00:00"], 1000),
        _calls_at(gpu, ["2020-01-01T00:00:00", "2024-06-01T00:00:00", "2031-06-30T12:00:00"], 2000),
        _calls_at(egress, ["2020-01-01T00:00:00", "2031-06-30T12:00:00"], 3000),
    ]
    _insert(client, names, after)
    python = _python_facts(before + after)
    assert len({fact[-4] for fact in python if fact[-4] is not None}) >= 6, "the workload spans several prices"
    reasons = {fact[-1] for fact in python}
    assert {reason.split(":")[0] for reason in reasons if reason} == {"no_price_for_region"}, reasons
    assert _engine_facts(client, names) == python


def test_attribution_follows_the_lists_up_the_trace_as_the_collector_does(engine: tuple[Any, Names]) -> None:
    lists = UsageSettings().attribution
    genai = DIALECT_SPANS["otel-genai"]
    root = {lists.tenant[0]: "t-root", lists.workflow[1]: "agent"}
    middle = {lists.tenant[1]: "t-middle", lists.workflow[2]: "flow"}
    split = _spans(Node("root", {lists.tenant[0]: "earlier"}, (Node("llm", genai),)))  # the child ends first
    requests = [
        # per name in list order, nearest first: the root's first-listed names beat the middle's later ones
        _request(Node("root", root, (Node("middle", middle, (Node("llm", genai),)),))),
        # spanledger's names win, an empty one included; the other field is still looked up
        _request(Node("root", root, (Node("llm", {**genai, semconv.SPANLEDGER_TENANT_ID: ""}),))),
        _request(Node("owner", {**OWN, **middle})),  # on the span itself
        _request(Node("llm", genai)),  # nothing listed: NULL
        _encoded(split[1:]),  # the parent, in an earlier request than its child
        _encoded(split[:1]),
    ]
    _assert_same(engine, requests)
    attributed = {(fact.workflow, fact.tenant) for decoded in _collector(requests) for fact in decoded.batch.facts}
    assert attributed == {("agent", "t-root"), ("agent", ""), ("flow", "t-middle"), (None, None), (None, "earlier")}
    # init with other lists (--workflow-attributes/--tenant-attributes): the processor's with the same lists
    client, names = engine
    other = Attribution(workflow=(lists.workflow[2],), tenant=())
    init(client, dataclasses.replace(names, attribution=other), catalog_models=False)
    assert _engine_facts(client, names) == _python_facts(requests, other)


def test_numbers_sent_as_strings_are_read_as_the_decoder_reads_them(engine: tuple[Any, Names]) -> None:
    """Each spelling on every number the views parse (seconds, times, bytes), and on the ints (a token count, an HTTP
    body size), which no string is: the decoder reads only ``_usage.NUMBER_TEXT``, the views too."""
    numbers = (semconv.SPANLEDGER_ACCELERATOR_TIME, semconv.SPANLEDGER_EGRESS_BYTES, semconv.SPANLEDGER_INGRESS_BYTES,
               semconv.SPANLEDGER_OCCUPANCY_START, semconv.GEN_AI_USAGE_OUTPUT_TOKENS)  # fmt: skip
    reads = ((semconv.SPANLEDGER_DATA_AGE, semconv.SPANLEDGER_DATA_LAST_MODIFIED, semconv.SPANLEDGER_DATA_BYTES),
             (semconv.SPANLEDGER_DATA_LAST_MODIFIED,))  # fmt: skip
    start = 1_790_000_000 * 10**9
    spans = []
    for index, spelling in enumerate(NUMBER_SPELLINGS):
        owner = {**OWN, semconv.SPANLEDGER_RESOURCE_TYPE: "sagemaker_endpoint",
                 semconv.SPANLEDGER_OCCUPANCY_END: 1.8e9, **dict.fromkeys(numbers, spelling)}  # fmt: skip
        client = {**HTTP_CLIENT, semconv.HTTP_REQUEST_BODY_SIZE: spelling, semconv.GEN_AI_USAGE_INPUT_TOKENS: spelling}
        events = [Span.Event(time_unix_nano=start, name=semconv.EVENT_SPANLEDGER_DATA_READ,
                             attributes=_attributes(dict.fromkeys(keys, spelling))) for keys in reads]  # fmt: skip
        spans += [
            Span(trace_id=(2 * index + 1).to_bytes(16, "big"), span_id=b"\x01" * 8, name="owner",
                 start_time_unix_nano=start, end_time_unix_nano=start + 10**9, attributes=_attributes(owner),
                 events=events),
            Span(trace_id=(2 * index + 2).to_bytes(16, "big"), span_id=b"\x02" * 8, name="POST",
                 kind=Span.SpanKind.SPAN_KIND_CLIENT, start_time_unix_nano=start, end_time_unix_nano=start + 10**9,
                 attributes=_attributes(client)),
        ]  # fmt: skip
    request = ExportTraceServiceRequest(resource_spans=[ResourceSpans(scope_spans=[ScopeSpans(spans=spans)])])
    _assert_same(engine, [request.SerializeToString()])
    client, names = engine
    seconds = client.query(
        f"SELECT count() FROM {names.database}.usage_facts WHERE meter = '{Meter.ACCELERATOR_SECONDS.value}'"
    ).result_rows[0][0]
    assert seconds == sum(1 for read in NUMBER_SPELLINGS.values() if read is not None and 0 < read < 10**18)


# --- the differential fuzz: random traces in every dialect, with edge values -------------------------------

_PROVIDERS = ["openai", "openai.chat", "anthropic", "google.vertex.chat", "google.generative-ai", "mistralai",
              "aws", "aws.bedrock", "aws.sagemaker", "azure", "xai", "vertex_ai", "az.ai.openai", "", "acme",
              "OpenAI"]  # fmt: skip
_MODELS = ["gpt-4o-mini", "gpt-4o-mini-2024-07-18", "gpt-4o", "claude-3-5-sonnet-latest", "gemini-2.5-flash",
           "o3-mini", "", "no-such-model"]  # fmt: skip
_NAMES = ["a", "b", "", "ü"]


def _sources(*fields: str) -> list[str]:
    return [source.name for source in USAGE_SOURCES if source.field in fields]


# Numbers sent as strings: none is a plain decimal integer, which the views count as a token count where the decoder
# refuses it (types are lost in otel_traces, docs/clickhouse.md).
_SPELLINGS = list(NUMBER_SPELLINGS)


def _or_spelled(rng: random.Random, values: list[float]) -> Any:
    """One of the values, or (as often as each) one of the spellings."""
    return rng.choice([*values, rng.choice(_SPELLINGS)])


def _tokens(rng: random.Random) -> Any:
    return _or_spelled(rng, [0, 1, 5, 120, 1000, MAX_TOKENS, MAX_TOKENS + 1, -1, rng.randrange(0, 10**6)])


def _number(rng: random.Random) -> Any:
    return _or_spelled(rng, [0, 1, 2.5, 0.1, 1e-7, 1.234567890123, -3.0, 1e25, float("nan"), float("inf"), 1e-10,
                             rng.random() * 100, rng.randrange(0, 10**12)])  # fmt: skip


def _attributes(values: dict[str, Any]) -> list[KeyValue]:
    return [KeyValue(key=key, value=_value(value)) for key, value in values.items()]


def _span_attributes(rng: random.Random) -> dict[str, Any]:
    kind = rng.random()
    values: dict[str, Any] = {}
    if kind < 0.35:  # spanledger's own span
        if rng.random() < 0.9:
            values[semconv.SPANLEDGER_USAGE_OWNER] = rng.random() < 0.85
        for key in (semconv.GEN_AI_USAGE_INPUT_TOKENS, semconv.GEN_AI_USAGE_CACHE_READ_INPUT_TOKENS,
                    semconv.GEN_AI_USAGE_CACHE_WRITE_INPUT_TOKENS, semconv.GEN_AI_USAGE_CACHE_CREATION_INPUT_TOKENS,
                    semconv.GEN_AI_USAGE_OUTPUT_TOKENS):  # fmt: skip
            if rng.random() < 0.5:
                values[key] = _tokens(rng)
        for key in (semconv.SPANLEDGER_ACCELERATOR_TIME, semconv.SPANLEDGER_EGRESS_BYTES,
                    semconv.SPANLEDGER_INGRESS_BYTES, semconv.SPANLEDGER_OCCUPANCY_START,
                    semconv.SPANLEDGER_OCCUPANCY_END):  # fmt: skip
            if rng.random() < 0.2:
                values[key] = _number(rng)
        if rng.random() < 0.3:
            values[semconv.SPANLEDGER_OCCUPANCY_START] = 1.7e9 + rng.random()
            values[semconv.SPANLEDGER_OCCUPANCY_END] = 1.7e9 + rng.random()
        for key, choices in ((semconv.SPANLEDGER_RESOURCE_TYPE, ["sagemaker_endpoint", "gpu_instance", "x"]),
                             (semconv.SPANLEDGER_ACCELERATOR_TYPE, ["NVIDIA H100 80GB HBM3", "", "tpu"]),
                             (semconv.SPANLEDGER_EGRESS_BOUNDARY, ["internet", "inter_region", "", "unknown"]),
                             (semconv.GEN_AI_PROVIDER_NAME, _PROVIDERS), (semconv.CLOUD_PROVIDER, ["aws", "gcp"]),
                             (semconv.GEN_AI_REQUEST_MODEL, _MODELS), (semconv.GEN_AI_RESPONSE_MODEL, _MODELS),
                             (semconv.SPANLEDGER_WORKFLOW_NAME, _NAMES), (semconv.GEN_AI_WORKFLOW_NAME, _NAMES),
                             (semconv.SPANLEDGER_TENANT_ID, _NAMES), (semconv.CLOUD_REGION, ["us-east-1", ""]),
                             (semconv.CLOUD_RESOURCE_ID, ["arn:aws:sagemaker:us-east-1:1:endpoint/e"]),
                             (semconv.CLOUD_ACCOUNT_ID, ["123"])):  # fmt: skip
            if rng.random() < 0.3:
                values[key] = rng.choice(choices)
    elif kind < 0.9:  # another producer's span, in a mix of dialects
        for key in _sources(*TOKEN_FIELDS):
            if rng.random() < 0.12:
                values[key] = _tokens(rng)
        for key in _sources("provider"):
            if rng.random() < 0.2:
                values[key] = rng.choice(_PROVIDERS)
        for key in _sources("request_model", "response_model"):
            if rng.random() < 0.2:
                values[key] = rng.choice(_MODELS)
        for key in _sources("workflow", "tenant", "region"):
            if rng.random() < 0.1:
                values[key] = rng.choice(_NAMES)
        if rng.random() < 0.05:
            values[semconv.SPANLEDGER_USAGE_OWNER] = False
    return values


def _events(rng: random.Random, start: int) -> list[Span.Event]:
    events = []
    for _ in range(rng.choice([0, 0, 0, 1, 2])):
        name = rng.choice([semconv.EVENT_SPANLEDGER_DATA_READ, semconv.EVENT_SPANLEDGER_DATA_READ, "other"])
        values: dict[str, Any] = {}
        for key, make in ((semconv.SPANLEDGER_DATA_SOURCE, lambda: rng.choice(["s3://b/k", ""])),
                          (semconv.SPANLEDGER_DATA_SOURCE_KIND, lambda: rng.choice(["s3", "http"])),
                          (semconv.SPANLEDGER_DATA_AGE, lambda: _number(rng)),
                          (semconv.SPANLEDGER_DATA_LAST_MODIFIED,
                           lambda: _or_spelled(rng, [1.7e9 + rng.random(), 5, -1.5])),
                          (semconv.SPANLEDGER_DATA_BYTES, lambda: _or_spelled(rng, [0, 10, -1, 2**62, 3.7])),
                          (semconv.SPANLEDGER_DATA_STALENESS_METHOD, lambda: "etag")):  # fmt: skip
            if rng.random() < 0.5:
                values[key] = make()
        events.append(Span.Event(time_unix_nano=start + rng.randrange(0, 10**9), name=name,
                                 attributes=_attributes(values)))  # fmt: skip
    return events


def _random_request(rng: random.Random, traces: int) -> bytes:
    resource = {semconv.SERVICE_NAME: rng.choice(["svc", "other"])}
    for key, choices in ((semconv.CLOUD_PROVIDER, ["aws", "gcp"]), (semconv.GEN_AI_PROVIDER_NAME, _PROVIDERS),
                         (semconv.SPANLEDGER_WORKFLOW_NAME, _NAMES), (semconv.SPANLEDGER_TENANT_ID, _NAMES),
                         (semconv.CLOUD_REGION, ["us-west-2"])):  # fmt: skip
        if rng.random() < 0.3:
            resource[key] = rng.choice(choices)
    spans = []
    for _ in range(traces):
        trace_id = rng.randbytes(16)
        ids: list[bytes] = []
        for _ in range(rng.randint(1, 6)):
            span_id = rng.randbytes(8)
            parent = rng.choice([b"", *ids, *ids, rng.randbytes(8)]) if ids else b""
            start = rng.randrange(1_790_000_000, 1_792_000_000) * 10**9 + rng.randrange(10**9)
            # end >= start: the exporter stores Duration unsigned, so an earlier end is lost (docs/clickhouse.md)
            end = start + rng.choice([rng.randrange(10**10), 0])
            spans.append(Span(trace_id=trace_id, span_id=span_id, parent_span_id=parent, name="s",
                              start_time_unix_nano=start, end_time_unix_nano=end,
                              attributes=_attributes(_span_attributes(rng)), events=_events(rng, start)))  # fmt: skip
            ids.append(span_id)
    request = ExportTraceServiceRequest(resource_spans=[ResourceSpans(
        resource=Resource(attributes=_attributes(resource)), scope_spans=[ScopeSpans(spans=spans)])])  # fmt: skip
    return request.SerializeToString()


@pytest.mark.timeout(600)  # 200 requests through the decoder and chdb; minutes on a loaded 2-core box
def test_random_traces_in_every_dialect_give_the_decoders_facts_exactly(engine: tuple[Any, Names]) -> None:
    rng = random.Random(16)
    requests = [_random_request(rng, traces=rng.randint(1, 8)) for _ in range(200)]
    _assert_same(engine, requests)
    client, names = engine
    meters = {row[0] for row in client.query(f"SELECT DISTINCT meter FROM {names.database}.usage_facts").result_rows}
    assert meters == {meter.value for meter in Meter}, "the workload covers every meter"


# --- init ----------------------------------------------------------------------------------------------------


@pytest.mark.slow  # prices every model of the catalog (~45 s on a shared 2-core box)
@pytest.mark.timeout(900)
def test_init_is_idempotent_and_the_cli_reports_what_it_did(
    engine: tuple[Any, Names], clickhouse_address: StoreAddress, capsys: pytest.CaptureFixture[str]
) -> None:
    client, names = engine
    _insert(client, names, [_request(Node("spanledger", OWN))])
    init(client, names, catalog_models=False)
    before = _engine_facts(client, names)
    assert main(["clickhouse", "init", "--store", f"chdb:{clickhouse_address.path}", "--database", names.database]) == 0
    assert "price rows loaded" in capsys.readouterr().out
    assert _engine_facts(client, names) == before


def test_init_refuses_a_data_reads_table_of_an_earlier_install(engine: tuple[Any, Names]) -> None:
    client, names = engine
    client.command(f"DROP VIEW {names.database}.data_reads")
    client.command(f"CREATE TABLE {names.database}.data_reads (trace_id String) ENGINE = MergeTree ORDER BY ()")
    with pytest.raises(InitError, match=f"{names.database}.data_reads is a table .MergeTree.*drop or rename it"):
        init(client, names, catalog_models=False)


def test_init_names_the_missing_table_or_column(
    clickhouse_client: Any, clickhouse_address: StoreAddress, capsys: pytest.CaptureFixture[str]
) -> None:
    client, database = clickhouse_client, clickhouse_address.database
    with pytest.raises(InitError, match=f"table {database}.otel_traces does not exist"):
        init(client, Names(database=database))
    client.command(
        f"CREATE TABLE {database}.otel_traces (TraceId String, SpanId String) ENGINE = MergeTree ORDER BY ()"
    )
    with pytest.raises(InitError, match="otel_traces has no column Timestamp"):
        init(client, Names(database=database))
    client.command(f"DROP TABLE {database}.otel_traces")
    json_schema = "\n".join(  # the exporter's json: true schema: attributes as JSON, without the maps' indexes
        line for line in OTEL_TRACES_DDL.splitlines() if "mapKeys" not in line and "mapValues" not in line
    ).replace("Map(LowCardinality(String), String)", "JSON")
    client.command(json_schema.format(database=database, table="otel_traces", cluster="", engine="MergeTree()", ttl=""))
    with pytest.raises(InitError, match=r"column ResourceAttributes is JSON, .*the exporter's json: true schema"):
        init(client, Names(database=database))
    assert main(["clickhouse", "init", "--store", f"chdb:{clickhouse_address.path}", "--database", "nowhere"]) == 1
    assert "database 'nowhere' does not exist" in capsys.readouterr().err
    own = semconv.SPANLEDGER_TENANT_ID
    assert main(["clickhouse", "init", "--store", f"chdb:{clickhouse_address.path}", "--tenant-attributes", own]) == 2
    assert f"--tenant-attributes: {own!r} is spanledger's own name" in capsys.readouterr().err
    assert main(["clickhouse", "init", "--store", "postgres://x"]) == 2
    assert "unknown scheme" in capsys.readouterr().err


def test_init_refuses_a_traces_table_of_several_servers() -> None:
    """init creates its objects on one server (no ON CLUSTER): a table of several replicas is refused unless its
    database replicates DDL (the Replicated engine), and shards always. No replica or cluster runs in chdb, so this
    is the rule on what ``system.tables``, ``system.databases``, ``system.replicas`` and ``system.clusters`` give;
    the query path runs in every other init test (a MergeTree on one server)."""
    assert one_server_only("MergeTree", "Atomic", 1, 1) == ""
    assert one_server_only("SharedMergeTree", "Replicated", 1, 1) == ""  # ClickHouse Cloud
    assert one_server_only("ReplicatedMergeTree", "Atomic", 1, 1) == ""  # one replica: this server
    assert one_server_only("ReplicatedMergeTree", "Replicated", 3, 1) == ""  # every replica runs init's DDL
    for engine, replicas in (("ReplicatedMergeTree", 2), ("ReplicatedReplacingMergeTree", 3)):
        assert "this server only (no ON CLUSTER)" in one_server_only(engine, "Atomic", replicas, 1), engine
    for engine, database, shards in (("Distributed", "Atomic", 1), ("Distributed", "Replicated", 1),
                                     ("ReplicatedMergeTree", "Replicated", 2)):  # fmt: skip
        assert "each shard's facts apart" in one_server_only(engine, database, 1, shards), (engine, database)


def test_init_works_in_a_database_whose_name_needs_quoting(clickhouse_client: Any) -> None:
    client, database = clickhouse_client, "otel-prod"
    client.command(f'CREATE DATABASE IF NOT EXISTS "{database}"')
    try:
        client.command(OTEL_TRACES_DDL.format(database=database, table="otel_traces", cluster="", engine="MergeTree()",
                                              ttl=""))  # fmt: skip
        names = Names(database=database)
        init(client, names, catalog_models=False)
        rows = OtelTraceRows()
        rows.add_request(ExportTraceServiceRequest.FromString(_request(Node("spanledger", OWN))))
        client.insert("otel_traces", rows.columns, database=database, column_names=OTEL_TRACES_COLUMNS,
                      column_oriented=True)  # fmt: skip
        init(client, names, catalog_models=False)  # prices the models seen: inserts into the price tables
        priced = client.query(f'SELECT count(), countIf(estimated_cost > 0) FROM "{database}".usage_facts')
        assert priced.result_rows[0][0] > 0 and priced.result_rows[0][1] > 0
    finally:
        client.command(f'DROP DATABASE IF EXISTS "{database}"')


def test_a_traces_table_whose_name_needs_quoting_is_read_by_the_answers(
    clickhouse_client: Any, clickhouse_address: StoreAddress
) -> None:
    """init quotes every name; so do the answers, which find the table by its views (``otel-traces``)."""
    client, database = clickhouse_client, clickhouse_address.database
    for template in ("otel_traces.sql", "otel_traces_trace_id_ts.sql", "otel_traces_trace_id_ts_mv.sql"):
        ddl = (resources.files("spanledger_collector._store") / "sql" / "clickhouse" / template).read_text()
        client.command(ddl.format(database=database, table="otel-traces", cluster="", engine="MergeTree()", ttl=""))
    request = _request(Node("agent", DIALECT_SPANS["openinference"], (Node("llm", OWN),)))
    rows = OtelTraceRows()
    rows.add_request(ExportTraceServiceRequest.FromString(request))
    client.insert('"otel-traces"', rows.columns, column_names=OTEL_TRACES_COLUMNS, column_oriented=True)
    init(client, Names(database=database, traces_table="otel-traces"), catalog_models=False)
    assert ClickHouseEngine(client).spans == "otel-traces"
    assert sorted(_lineage_spans(client, _spans_of(request)[0].trace_id.hex())) == ["agent", "llm"]


def test_init_refuses_to_keep_views_over_another_traces_table(engine: tuple[Any, Names]) -> None:
    """The exporter's traces_table_name changed: IF NOT EXISTS would keep views that read the old table."""
    client, names = engine
    client.command(f"CREATE TABLE {names.database}.otel_traces_v2 AS {names.database}.otel_traces")
    moved = dataclasses.replace(names, traces_table="otel_traces_v2")
    old = (
        "views data_reads_events, data_reads_objects, usage_reports_spans of an earlier init read "
        rf"{names.database}.otel_traces, not"
    )
    with pytest.raises(InitError, match=old):
        init(client, moved, catalog_models=False)
    init(client, names, catalog_models=False)  # the same table again: fine


def test_init_prices_with_the_overrides_file_as_the_cost_processor_does(
    engine: tuple[Any, Names], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A SageMaker endpoint is priced by the instance type the overrides name (the bundled catalog cannot know)."""
    client, names = engine
    endpoint = "arn:aws:sagemaker:us-east-1:123456789012:endpoint/summarizer"
    overrides = tmp_path / "prices.yaml"
    overrides.write_text(f"resources:\n  {endpoint}: {{instance_type: ml.g5.2xlarge}}\n")
    call = {**INVOKE_ENDPOINT, semconv.CLOUD_RESOURCE_ID: endpoint}
    request = _request(Node("InvokeEndpoint", call, kind=SpanKind.CLIENT))
    _insert(client, names, [request])
    query = f"SELECT estimated_cost, unpriced_reason FROM {names.database}.usage_facts WHERE meter = 'endpoint.seconds'"
    init(client, names, catalog_models=False)
    ((cost, reason),) = client.query(query).result_rows
    assert cost is None and reason.startswith("unknown_endpoint_instance_type")
    init(client, names, catalog_models=False, price_overrides=overrides)
    (fact,) = [f for decoded in _collector([request]) for f in decoded.batch.facts]
    expected = load_catalog(overrides).priced(fact).estimated_cost
    assert expected and client.query(query).result_rows == [(expected, None)]
    store = f"chdb:{tmp_path / 'unused'}"
    assert main(["clickhouse", "init", "--store", store, "--price-overrides", str(tmp_path / "none.yaml")]) == 2
    assert "--price-overrides: file" in capsys.readouterr().err


def test_init_with_a_bad_overrides_file_makes_nothing(
    clickhouse_client: Any, clickhouse_address: StoreAddress, tmp_path: Path
) -> None:
    """The overrides file is read before any statement: a half-made install would look like init's to the store
    and to billing import, and like nothing to a rerun's checks."""
    client, database = clickhouse_client, clickhouse_address.database
    create_otel_traces(client, database)
    overrides = tmp_path / "prices.yaml"
    overrides.write_text("resources: [not, a, mapping\n")
    with pytest.raises(ConfigError, match=r"prices\.yaml"):
        init(client, Names(database=database), catalog_models=False, price_overrides=overrides)
    tables = {name for (name,) in client.query(f"SHOW TABLES FROM {database}").result_rows}
    assert tables == {"otel_traces", "otel_traces_trace_id_ts", "otel_traces_trace_id_ts_mv"}


def test_init_refuses_the_collectors_store_database(clickhouse_client: Any, clickhouse_address: StoreAddress) -> None:
    """The store's usage_facts is a table of its rows: init's CREATE OR REPLACE VIEW would drop it."""
    client, database = clickhouse_client, clickhouse_address.database
    for statement in ClickHouseSchema(database).statements():
        client.command(statement)
    with pytest.raises(InitError, match=f"{database}.usage_facts is a table .*the collector's ClickHouse store"):
        init(client, Names(database=database), catalog_models=False)
    assert client.query(f"SELECT engine FROM system.tables WHERE database = '{database}' AND name = 'usage_facts'"
                        ).result_rows[0][0] != "View"  # fmt: skip


def test_inits_at_once_each_swap_in_a_whole_price_table(
    engine: tuple[Any, Names], clickhouse_address: StoreAddress
) -> None:
    """Overlapping runs (an hourly cron) load their own tables: none drops or fills another's (with one loading
    table name, two of three threads failed with UNKNOWN_TABLE), and the table holds one run's rows."""
    client, names = engine
    _insert(client, names, [_request(Node("spanledger", OWN))])
    catalog = load_catalog()
    expected = load_prices(client, names, catalog, catalog_models=False)
    assert expected > 0
    errors: list[BaseException] = []

    def run() -> None:
        own = open_clickhouse(clickhouse_address)
        try:
            for _ in range(3):
                load_prices(own, names, catalog, catalog_models=False)
        except Exception as error:
            errors.append(error)
        finally:
            own.close()

    threads = [threading.Thread(target=run) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors, errors
    counts = [client.query(f"SELECT count() FROM {names.database}.{table}").result_rows[0][0]
              for table in (names.prices, names.cloud_prices)]  # fmt: skip
    assert sum(counts) == expected
    assert not client.query(f"SHOW TABLES FROM {names.database} LIKE '%loading%'").result_rows


def test_init_upgrades_a_price_table_from_before_the_parts_of_the_day(engine: tuple[Any, Names]) -> None:
    """An install whose ``llm_token_prices`` has no ``day_from`` / ``day_until`` gets them from the next ``init``
    (the table is swapped whole), and its view reads them."""
    client, names = engine
    requests = [_request(Node("spanledger", OWN))]
    _insert(client, names, requests)
    table = f"{names.database}.{names.prices}"
    client.command(f"DROP TABLE {table}")
    client.command(
        f"CREATE TABLE {table} (meter LowCardinality(String), provider LowCardinality(String), model String, "
        "valid_from DateTime64(6, 'UTC'), valid_until DateTime64(6, 'UTC'), above Decimal(38, 9), upto Decimal(38, 9), "
        "slope Nullable(Decimal(76, 30)), intercept Nullable(Decimal(76, 30)), currency Nullable(String), "
        "catalog_version String, unpriced_reason Nullable(String), loaded_at DateTime64(6, 'UTC')) "
        "ENGINE = ReplacingMergeTree(loaded_at) ORDER BY (meter, provider, model, valid_from, above)"
    )
    init(client, names, catalog_models=False)
    columns = {row[0] for row in client.query(f"DESCRIBE TABLE {table}").result_rows}
    assert {"day_from", "day_until"} <= columns
    assert _engine_facts(client, names) == _python_facts(requests)


def _pieces_of(rate: Any) -> Any:
    return rate.reason if isinstance(rate, Unpriced) else rate.pieces()


def test_price_periods_hold_the_catalogs_rate_at_every_moment() -> None:
    """Each key with dated or time-of-day prices: at random moments of 1900-2299, and on each side of every change,
    exactly one period holds the moment, and its rate prices as the catalog's rate at that moment does."""
    rng = random.Random(11)
    changing = []
    for key in catalog_keys():
        rate = CATALOG.rate(price_fact(key, datetime(2026, 12, 7)))
        if isinstance(rate, TokenRate) and (rate.changes.days or rate.changes.times):
            changing.append((key, rate.changes))
    assert any(changes.times for _, changes in changing) and any(changes.days for _, changes in changing)
    for key, changes in changing:
        found = list(periods(CATALOG, partial(price_fact, key)))
        days = (*changes.days, datetime(2030, 1, 1))  # the changes on each date change's day and a later one
        edges = [datetime.combine(day.date(), moment) for day in days for moment in (time(), *changes.times)]
        moments = [edge + offset for edge in edges for offset in (-timedelta(microseconds=1), timedelta(0))]
        moments += [datetime(1900, 1, 1) + timedelta(seconds=rng.randrange(400 * 365 * 86400)) for _ in range(20)]
        for moment in moments:
            nanos = ((moment.hour * 60 + moment.minute) * 60 + moment.second) * 10**9 + moment.microsecond * 1000
            holding = [period for period in found if period.valid_from <= moment < period.valid_until
                       and period.day_from <= nanos < period.day_until]  # fmt: skip
            assert len(holding) == 1, (key, moment, holding)
            assert _pieces_of(holding[0].rate) == _pieces_of(CATALOG.rate(price_fact(key, moment))), (key, moment)


def test_init_replaces_the_price_rows_of_an_earlier_catalog(engine: tuple[Any, Names]) -> None:
    """A row an earlier catalog wrote (a tier since moved, a rate since changed) would overlap the new ones."""
    client, names = engine
    requests = [_request(Node("spanledger", OWN))]
    _insert(client, names, requests)
    init(client, names, catalog_models=False)
    table = f"{names.database}.{names.prices}"
    client.command(
        f"INSERT INTO {table} SELECT * REPLACE (valid_from - INTERVAL 1 SECOND AS valid_from, slope * 7 AS slope, "
        f"'stale' AS catalog_version) FROM {table} FINAL"
    )
    assert client.query(f"SELECT count() FROM {table} WHERE catalog_version = 'stale'").result_rows[0][0] > 0
    assert _engine_facts(client, names) != _python_facts(requests), "the stale rows price some facts"
    init(client, names, catalog_models=False)
    assert client.query(f"SELECT count() FROM {table} WHERE catalog_version = 'stale'").result_rows[0][0] == 0
    assert _engine_facts(client, names) == _python_facts(requests)
