"""The three OTLP signals: their request/response messages, item counts, and size-limited splitting."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from google.protobuf.message import Message
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest, ExportLogsServiceResponse
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import (
    ExportMetricsServiceRequest,
    ExportMetricsServiceResponse,
)
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)

__all__ = ["SIGNALS", "Signal", "SignalSpec", "count_items", "split_request"]

Signal = Literal["traces", "metrics", "logs"]


@dataclass(frozen=True)
class SignalSpec:
    request_type: type[Message]
    response_type: type[Message]
    resource_field: str
    scope_field: str
    item_field: str
    # The otelcol self-telemetry suffix (otelcol_exporter_sent_<items>) and partial_success field.
    items: str
    rejected_field: str
    grpc_method: str
    http_path: str


SIGNALS: dict[Signal, SignalSpec] = {
    "traces": SignalSpec(
        ExportTraceServiceRequest,
        ExportTraceServiceResponse,
        "resource_spans",
        "scope_spans",
        "spans",
        "spans",
        "rejected_spans",
        "/opentelemetry.proto.collector.trace.v1.TraceService/Export",
        "/v1/traces",
    ),
    "metrics": SignalSpec(
        ExportMetricsServiceRequest,
        ExportMetricsServiceResponse,
        "resource_metrics",
        "scope_metrics",
        "metrics",
        "metric_points",
        "rejected_data_points",
        "/opentelemetry.proto.collector.metrics.v1.MetricsService/Export",
        "/v1/metrics",
    ),
    "logs": SignalSpec(
        ExportLogsServiceRequest,
        ExportLogsServiceResponse,
        "resource_logs",
        "scope_logs",
        "log_records",
        "log_records",
        "rejected_log_records",
        "/opentelemetry.proto.collector.logs.v1.LogsService/Export",
        "/v1/logs",
    ),
}

# Tag plus the longest length varint a nested message of a request can have.
_FIELD_OVERHEAD = 6


def _item_count(signal: Signal, item: Any) -> int:
    if signal != "metrics":
        return 1
    kind = item.WhichOneof("data")
    return 0 if kind is None else len(getattr(item, kind).data_points)


def count_items(signal: Signal, request: Message) -> int:
    """Spans, metric data points or log records in a request (what otelcol's counters count)."""
    spec = SIGNALS[signal]
    if signal != "metrics":
        return sum(
            len(getattr(scope, spec.item_field))
            for resource in getattr(request, spec.resource_field)
            for scope in getattr(resource, spec.scope_field)
        )
    return sum(
        _item_count(signal, item)
        for resource in getattr(request, spec.resource_field)
        for scope in getattr(resource, spec.scope_field)
        for item in getattr(scope, spec.item_field)
    )


def split_request(signal: Signal, request: Message, max_bytes: int, max_items: int) -> list[Message]:
    """Split ``request`` into requests of at most ``max_bytes`` serialized and ``max_items`` spans/records.

    Each part keeps the resource -> scope -> item structure (the resource and scope are repeated in every
    part that holds some of their items); empty resources and scopes are left out. Metrics are split
    between metrics, never inside one; a single item larger than ``max_bytes`` travels alone.
    """
    spec = SIGNALS[signal]
    if request.ByteSize() <= max_bytes and (signal == "metrics" or count_items(signal, request) <= max_items):
        return [request]
    parts: list[Message] = []
    current = spec.request_type()
    current_bytes = current_items = 0
    for resource in getattr(request, spec.resource_field):
        resource_overhead = 2 * _FIELD_OVERHEAD + resource.resource.ByteSize() + len(resource.schema_url.encode())
        part_resource: Any = None
        for scope in getattr(resource, spec.scope_field):
            scope_overhead = 2 * _FIELD_OVERHEAD + scope.scope.ByteSize() + len(scope.schema_url.encode())
            part_scope: Any = None
            for item in getattr(scope, spec.item_field):
                item_bytes = item.ByteSize() + _FIELD_OVERHEAD
                needed = item_bytes + (scope_overhead if part_scope is None else 0)
                needed += resource_overhead if part_resource is None else 0
                items = 1 if signal != "metrics" else 0
                if current_bytes and (current_bytes + needed > max_bytes or current_items + items > max_items):
                    parts.append(current)
                    current = spec.request_type()
                    current_bytes = current_items = 0
                    part_resource = part_scope = None
                    needed = item_bytes + scope_overhead + resource_overhead
                if part_resource is None:
                    part_resource = getattr(current, spec.resource_field).add()
                    part_resource.resource.CopyFrom(resource.resource)
                    part_resource.schema_url = resource.schema_url
                if part_scope is None:
                    part_scope = getattr(part_resource, spec.scope_field).add()
                    part_scope.scope.CopyFrom(scope.scope)
                    part_scope.schema_url = scope.schema_url
                getattr(part_scope, spec.item_field).add().CopyFrom(item)
                current_bytes += needed
                current_items += items
    if current_bytes:
        parts.append(current)
    return parts
