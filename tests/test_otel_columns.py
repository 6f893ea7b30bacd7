"""The compiled ``otel_traces`` converter gives exactly the reference's rows, or declines.

``otel_traces_arrow`` runs the compiled converter (``spanledger_collector._store._otel_columns``) and the ClickHouse
store falls back to the Python reference (``OtelTraceRows``) where it declines. The property checked here, on
generated requests (every attribute value kind, events, links, missing ids, repeated keys, odd enum values) and on
mutations of a real one: whenever the converter answers, its table holds the reference's rows value for value
(maps as their pairs in order). One request stored both ways in chdb reads back identical.
"""

from __future__ import annotations

import math
import os
import sys
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import (
    AnyValue,
    ArrayValue,
    InstrumentationScope,
    KeyValue,
    KeyValueList,
)
from opentelemetry.proto.resource.v1.resource_pb2 import Resource
from opentelemetry.proto.trace.v1.trace_pb2 import ResourceSpans, ScopeSpans, Span, Status
from spanledger import semconv
from spanledger_collector._store import _otel_arrow
from spanledger_collector._store._otel_arrow import otel_traces_arrow
from spanledger_collector._store._otel_traces import OTEL_TRACES_COLUMNS, OtelTraceRows
from test_collector_fuzz import mutations_of

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
import bench_collector

pytestmark = pytest.mark.skipif(_otel_arrow._otel_columns is None, reason="the compiled converter is not built")
EXAMPLES = settings(
    max_examples=int(os.environ.get("EXAMPLES", "100")), deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
TEMPLATE = bench_collector.build_template(20)

doubles = st.floats() | st.sampled_from([1e-7, -1e-7, 1e-6, 1e21, 1e16, 0.1, -0.0, math.nan, math.inf, -math.inf])
scalars = st.one_of(
    st.builds(AnyValue, string_value=st.text(max_size=12)),
    st.builds(AnyValue, bool_value=st.booleans()),
    st.builds(AnyValue, int_value=st.integers(-(2**63), 2**63 - 1)),
    st.builds(AnyValue, double_value=doubles),
    st.builds(AnyValue, bytes_value=st.binary(max_size=8)),
    st.just(AnyValue()),
)
keys = st.sampled_from(["a", "b", "é", "", semconv.SERVICE_NAME, semconv.GEN_AI_REQUEST_MODEL])
values = st.recursive(
    scalars,
    lambda children: st.one_of(
        st.builds(lambda items: AnyValue(array_value=ArrayValue(values=items)), st.lists(children, max_size=3)),
        st.builds(
            lambda items: AnyValue(kvlist_value=KeyValueList(values=[KeyValue(key=k, value=v) for k, v in items])),
            st.lists(st.tuples(keys, children), max_size=3),
        ),
    ),
    max_leaves=8,
)
attributes = st.lists(st.builds(KeyValue, key=keys, value=values), max_size=5)
# Mostly distinct keys: a key twice in one map is declined, and the converter should answer most requests.
distinct_attributes = attributes.map(lambda kvs: list({kv.key: kv for kv in kvs}.values()))
ids = st.sampled_from([b"", b"\x01" * 8, bytes(range(16)), b"\xff\x00\xab"])
times = st.integers(0, 2**63 - 1)
events = st.builds(Span.Event, time_unix_nano=times, name=st.text(max_size=6), attributes=distinct_attributes)
links = st.builds(Span.Link, trace_id=ids, span_id=ids, trace_state=st.text(max_size=6), attributes=distinct_attributes)
spans = st.builds(
    Span,
    trace_id=ids,
    span_id=ids,
    parent_span_id=ids,
    trace_state=st.text(max_size=6),
    name=st.text(max_size=8),
    kind=st.integers(0, 7),
    start_time_unix_nano=times,
    end_time_unix_nano=times,
    attributes=distinct_attributes,
    events=st.lists(events, max_size=2),
    links=st.lists(links, max_size=2),
    status=st.builds(Status, code=st.integers(0, 4), message=st.text(max_size=6)),
)
scope_spans = st.builds(
    ScopeSpans,
    scope=st.builds(InstrumentationScope, name=st.text(max_size=6), version=st.text(max_size=4)),
    spans=st.lists(spans, max_size=3),
)
requests = st.builds(
    ExportTraceServiceRequest,
    resource_spans=st.lists(
        st.builds(
            ResourceSpans,
            resource=st.builds(Resource, attributes=distinct_attributes),
            scope_spans=st.lists(scope_spans, max_size=2),
        ),
        max_size=2,
    ),
)


def _reference_rows(data: list[bytes]) -> list[list[Any]]:
    rows = OtelTraceRows()
    for request in data:
        rows.add_request(ExportTraceServiceRequest.FromString(request))
    return [
        [[list(item.items()) for item in value] if isinstance(value, list) else list(value.items()) for value in column]
        if name.endswith("Attributes")
        else column
        for name, column in zip(OTEL_TRACES_COLUMNS, rows.columns, strict=True)
    ]


def _converted_rows(table: Any) -> list[list[Any]]:
    import pyarrow as pa

    columns = []
    for name, column in zip(table.column_names, table.columns, strict=True):
        if name.endswith("Timestamp"):  # as the reference's int nanoseconds
            column = column.cast(pa.list_(pa.int64()) if name.startswith("Events") else pa.int64())
        columns.append(column.to_pylist())
    return columns


def _same_rows(data: list[bytes]) -> bool:
    """The converter's rows equal the reference's; False where it declined."""
    table = otel_traces_arrow(data)
    if table is None:
        return False
    assert table.column_names == list(OTEL_TRACES_COLUMNS)
    assert _converted_rows(table) == _reference_rows(data)
    return True


def test_the_benchmark_request_is_converted_exactly() -> None:
    assert _same_rows([TEMPLATE, bench_collector.build_template(7)])


declined: list[bool] = []


@EXAMPLES
@given(st.lists(requests, min_size=1, max_size=2))
def test_generated_requests_are_converted_exactly(messages: list[ExportTraceServiceRequest]) -> None:
    declined.append(not _same_rows([message.SerializeToString() for message in messages]))


def test_the_converter_answered_most_generated_requests() -> None:
    assert declined and sum(declined) < len(declined) / 4


@EXAMPLES
@given(attributes)
def test_a_key_twice_in_one_map_is_declined_or_kept_as_a_dict_keeps_it(pairs: list[KeyValue]) -> None:
    span = Span(name="s", attributes=pairs)
    data = ExportTraceServiceRequest(
        resource_spans=[ResourceSpans(resource=Resource(attributes=pairs), scope_spans=[ScopeSpans(spans=[span])])]
    ).SerializeToString()
    answered = _same_rows([data])
    assert answered == (len({kv.key for kv in pairs}) == len(pairs))


@EXAMPLES
@given(mutations_of(st.just(TEMPLATE)))
def test_mutated_requests_are_converted_exactly_or_declined(data: bytes) -> None:
    try:
        ExportTraceServiceRequest.FromString(data)
    except Exception:
        return  # the receiver refuses it before any store sees it
    _same_rows([data])


def test_parts_out_of_wire_order_and_merged_messages_are_read_as_protobuf_reads_them() -> None:
    """A resource after its scope spans, a scope after its spans, a status twice (merged), unknown fields."""
    span = Span(name="late", span_id=b"\x01" * 8, status=Status(code=2)).SerializeToString()
    span += Span(status=Status(message="merged")).SerializeToString() + b"\xf8\x07\x05"  # field 127, varint
    scope = ScopeSpans(spans=[Span.FromString(span)]).SerializeToString()
    scope = scope + ScopeSpans(scope=InstrumentationScope(name="after")).SerializeToString()
    resource_spans = ResourceSpans(scope_spans=[ScopeSpans.FromString(scope)]).SerializeToString()
    service = KeyValue(key=semconv.SERVICE_NAME, value=AnyValue(int_value=7))
    resource_spans += ResourceSpans(resource=Resource(attributes=[service])).SerializeToString()
    resource_spans += ResourceSpans(resource=Resource(attributes=[KeyValue(key="x")])).SerializeToString()
    data = ExportTraceServiceRequest(resource_spans=[ResourceSpans.FromString(resource_spans)]).SerializeToString()
    assert _same_rows([data])
    row = _reference_rows([data])
    assert row[7] == ["7"] and row[9] == ["after"] and row[13] == ["STATUS_CODE_ERROR"] and row[14] == ["merged"]
    assert row[8] == [[(semconv.SERVICE_NAME, "7"), ("x", "")]]


@pytest.mark.parametrize(
    "value",
    [
        0.0,
        -0.0,
        1e-7,
        -1e-7,
        1e-6,
        9.99999e-7,
        2.5e-5,
        0.1,
        1.0,
        100.0,
        1e16,
        1.5e16,
        123456789012345680.0,
        9.999e20,
        1e21,
        -1e21,
        5e-324,
        1.7976931348623157e308,
        math.nan,
        math.inf,
        -math.inf,
    ],
)
def test_doubles_are_written_in_c_as_the_reference_writes_them(value: float) -> None:
    span = Span(attributes=[KeyValue(key="d", value=AnyValue(double_value=value))])
    data = ExportTraceServiceRequest(resource_spans=[ResourceSpans(scope_spans=[ScopeSpans(spans=[span])])])
    fallbacks: list[bytes] = []
    buffers = _otel_arrow._otel_columns.otel_traces_buffers(
        [data.SerializeToString()], semconv.SERVICE_NAME, fallbacks.append, 6, 3
    )
    assert buffers is not None and not fallbacks
    assert _same_rows([data.SerializeToString()])


def test_no_requests_and_no_spans_give_an_empty_table() -> None:
    table = otel_traces_arrow([])
    assert table is not None and table.num_rows == 0
    assert _same_rows([ExportTraceServiceRequest(resource_spans=[ResourceSpans()]).SerializeToString()]) is True


def test_times_past_int64_are_declined() -> None:
    data = ExportTraceServiceRequest(
        resource_spans=[ResourceSpans(scope_spans=[ScopeSpans(spans=[Span(start_time_unix_nano=2**63)])])]
    ).SerializeToString()
    assert otel_traces_arrow([data]) is None


def test_both_ways_store_the_same_rows_in_clickhouse(tmp_path: Path) -> None:
    pytest.importorskip("chdb")
    from spanledger_collector._store._clickhouse_client import open_clickhouse
    from spanledger_collector._store._clickhouse_schema import ClickHouseSchema
    from spanledger_collector._store._location import parse_store_address

    client = open_clickhouse(parse_store_address(f"chdb:{tmp_path / 'ch'}"), create_database=True)
    try:
        for statement in ClickHouseSchema(database="default").statements()[1:]:
            client.command(statement)
        client.command("CREATE TABLE reference AS otel_traces")
        mixed = ExportTraceServiceRequest.FromString(TEMPLATE)
        span = mixed.resource_spans[0].scope_spans[0].spans[0]
        span.attributes.extend(
            [
                KeyValue(key="d", value=AnyValue(double_value=1e-7)),
                KeyValue(key="n", value=AnyValue(double_value=math.nan)),
                KeyValue(key="y", value=AnyValue(bytes_value=b"\x00\xff")),
                KeyValue(key="l", value=AnyValue(array_value=ArrayValue(values=[AnyValue(int_value=1)]))),
            ]
        )
        span.links.add(trace_id=b"\x02" * 16, span_id=b"\x03" * 8, trace_state="k=v").attributes.add(key="z")
        span.kind = 9
        data = [TEMPLATE, mixed.SerializeToString()]
        client.insert_arrow("otel_traces", otel_traces_arrow(data))
        rows = OtelTraceRows()
        for request in data:
            rows.add_request(ExportTraceServiceRequest.FromString(request))
        client.insert("reference", rows.columns, column_names=OTEL_TRACES_COLUMNS, column_oriented=True)
        select = "SELECT * FROM {} ORDER BY SpanId, Timestamp, SpanAttributes, ResourceAttributes"
        stored = client.query(select.format("otel_traces")).result_rows
        assert len(stored) == 40 and stored == client.query(select.format("reference")).result_rows
    finally:
        client.close()
