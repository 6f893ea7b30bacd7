"""Splitting export requests to a destination's limits keeps every item and the resource/scope structure."""

from __future__ import annotations

from _otlp_downstream import make_traces
from hypothesis import given, settings
from hypothesis import strategies as st
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import ExportMetricsServiceRequest
from opentelemetry.proto.logs.v1.logs_pb2 import LogRecord
from opentelemetry.proto.metrics.v1.metrics_pb2 import Metric, NumberDataPoint
from spanledger_collector._exporters._signals import count_items, split_request


def flatten(request: object) -> list[tuple[str, str, int]]:
    return [
        (resource.resource.attributes[0].value.string_value, scope.scope.name, int.from_bytes(span.span_id, "big"))
        for resource in request.resource_spans  # type: ignore[attr-defined]
        for scope in resource.scope_spans
        for span in scope.spans
    ]


@settings(max_examples=60, deadline=None)
@given(
    resources=st.integers(1, 4),
    scopes=st.integers(1, 3),
    spans=st.integers(1, 30),
    attr_bytes=st.integers(0, 400),
    max_bytes=st.integers(1024, 20_000),
    max_items=st.integers(1, 50),
)
def test_parts_respect_limits_and_keep_everything_in_order(
    resources: int, scopes: int, spans: int, attr_bytes: int, max_bytes: int, max_items: int
) -> None:
    request = make_traces(resources, scopes, spans, attr_bytes=attr_bytes)
    parts = split_request("traces", request, max_bytes, max_items)
    assert [item for part in parts for item in flatten(part)] == flatten(request)
    for part in parts:
        assert part.ByteSize() <= max_bytes
        assert 0 < count_items("traces", part) <= max_items
        for resource in part.resource_spans:
            assert resource.scope_spans and all(scope.spans for scope in resource.scope_spans)


def test_small_request_is_not_copied() -> None:
    request = make_traces(2, 2, 2)
    assert split_request("traces", request, 1 << 20, 100)[0] is request


def test_aws_span_count_limit() -> None:
    request = make_traces(1, 1, 25_000, attr_bytes=0)
    parts = split_request("traces", request, 5_000_000, 10_000)
    assert [count_items("traces", part) for part in parts] == [10_000, 10_000, 5_000]


def test_an_oversized_item_travels_alone() -> None:
    request = make_traces(1, 1, 3, attr_bytes=5000)
    parts = split_request("traces", request, 2048, 100)
    assert [count_items("traces", part) for part in parts] == [1, 1, 1]


def test_logs_and_metrics_split_too() -> None:
    logs = ExportLogsServiceRequest()
    scope = logs.resource_logs.add().scope_logs.add()
    for index in range(100):
        scope.log_records.append(LogRecord(time_unix_nano=index, severity_text="INFO" * 50))
    log_parts = split_request("logs", logs, 4096, 1000)
    assert len(log_parts) > 1
    assert sum(count_items("logs", part) for part in log_parts) == 100

    metrics = ExportMetricsServiceRequest()
    metric_scope = metrics.resource_metrics.add().scope_metrics.add()
    for index in range(50):
        metric = Metric(name=f"m{index}" * 20)
        metric.sum.data_points.extend([NumberDataPoint(as_int=1), NumberDataPoint(as_int=2)])
        metric_scope.metrics.append(metric)
    metric_parts = split_request("metrics", metrics, 2048, 1000)
    assert len(metric_parts) > 1
    assert sum(count_items("metrics", part) for part in metric_parts) == 100
