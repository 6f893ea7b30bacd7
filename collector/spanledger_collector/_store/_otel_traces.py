"""OTLP spans as ``otel_traces`` rows, written as the OTel Collector contrib ``clickhouseexporter`` writes them.

Per span: ``Timestamp`` the start (ns), ids in lower-case hex ('' when absent), ``SpanKind`` and ``StatusCode``
as the proto names (``SPAN_KIND_CLIENT``, ``STATUS_CODE_ERROR``: the exporter's ``traceutil`` strings),
``ServiceName`` the resource's ``service.name``, ``Duration`` end minus start in ns (0 when the end is before the
start: the column is unsigned), events and links as the ``Nested`` columns' parallel arrays. Every attribute value
is text, as pdata's ``Value.AsString`` gives it: strings as they are, booleans ``true``/``false``, integers in
decimal, doubles as JSON numbers (``1``, ``0.5``, ``1e-7``), bytes in base64, arrays and maps as JSON.
"""

from __future__ import annotations

import base64
import json
import math
import re
from collections.abc import Iterable
from decimal import Decimal
from typing import Any

from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from spanledger import semconv

__all__ = ["OTEL_TRACES_COLUMNS", "OtelTraceRows", "attribute_text"]

OTEL_TRACES_COLUMNS = (
    "Timestamp",
    "TraceId",
    "SpanId",
    "ParentSpanId",
    "TraceState",
    "SpanName",
    "SpanKind",
    "ServiceName",
    "ResourceAttributes",
    "ScopeName",
    "ScopeVersion",
    "SpanAttributes",
    "Duration",
    "StatusCode",
    "StatusMessage",
    "Events.Timestamp",
    "Events.Name",
    "Events.Attributes",
    "Links.TraceId",
    "Links.SpanId",
    "Links.TraceState",
    "Links.Attributes",
)
"""The exporter's insert column list (``internal/sqltemplates/traces_insert.sql``)."""

_SPAN_KINDS = (
    "SPAN_KIND_UNSPECIFIED",
    "SPAN_KIND_INTERNAL",
    "SPAN_KIND_SERVER",
    "SPAN_KIND_CLIENT",
    "SPAN_KIND_PRODUCER",
    "SPAN_KIND_CONSUMER",
)
_STATUS_CODES = ("STATUS_CODE_UNSET", "STATUS_CODE_OK", "STATUS_CODE_ERROR")
_EXPONENT = re.compile(r"e([+-])0*(\d)")


def _number_text(value: float) -> str:
    """A double as Go's JSON encoder (and pdata's ``AsString``) writes it: ES6 number to string."""
    if math.isinf(value) or math.isnan(value):
        return "json: unsupported value: " + ("NaN" if math.isnan(value) else ("+Inf" if value > 0 else "-Inf"))
    magnitude = abs(value)
    if magnitude != 0 and (magnitude < 1e-6 or magnitude >= 1e21):
        return _EXPONENT.sub(r"e\1\2", repr(value))
    text = format(Decimal(repr(value)), "f")
    return text.rstrip("0").rstrip(".") if "." in text else text


def _raw(value: Any) -> Any:
    """An ``AnyValue`` as JSON-ready Python (pdata's ``AsRaw``)."""
    kind = value.WhichOneof("value")
    if kind == "string_value":
        return value.string_value
    if kind == "bool_value":
        return value.bool_value
    if kind == "int_value":
        return value.int_value
    if kind == "double_value":
        return _JsonNumber(value.double_value)
    if kind == "bytes_value":
        return base64.b64encode(value.bytes_value).decode("ascii")
    if kind == "array_value":
        return [_raw(item) for item in value.array_value.values]
    if kind == "kvlist_value":
        return {item.key: _raw(item.value) for item in value.kvlist_value.values}
    return None


class _JsonNumber(float):
    """A double inside an array or map, written in JSON as Go writes it."""


def _json(value: Any) -> str:
    if isinstance(value, _JsonNumber):
        return _number_text(value)
    if isinstance(value, dict):
        return (
            "{" + ",".join(f"{json.dumps(key, ensure_ascii=False)}:{_json(value[key])}" for key in sorted(value)) + "}"
        )
    if isinstance(value, list):
        return "[" + ",".join(_json(item) for item in value) + "]"
    return json.dumps(value, ensure_ascii=False)


def attribute_text(value: Any) -> str:
    """An ``AnyValue`` as the text the exporter stores (pdata's ``Value.AsString``)."""
    kind = value.WhichOneof("value")
    if kind == "string_value":
        return str(value.string_value)
    if kind == "bool_value":
        return "true" if value.bool_value else "false"
    if kind == "int_value":
        return str(value.int_value)
    if kind == "double_value":
        return _number_text(value.double_value)
    if kind == "bytes_value":
        return base64.b64encode(value.bytes_value).decode("ascii")
    if kind in ("array_value", "kvlist_value"):
        return _json(_raw(value))
    return ""


def _attributes(attributes: Iterable[Any]) -> dict[str, str]:
    return {attribute.key: attribute_text(attribute.value) for attribute in attributes}


class OtelTraceRows:
    """``otel_traces`` rows, column by column (``client.insert(..., column_oriented=True)``)."""

    def __init__(self) -> None:
        self.columns: list[list[Any]] = [[] for _ in OTEL_TRACES_COLUMNS]

    def __len__(self) -> int:
        return len(self.columns[0])

    def add_request(self, request: ExportTraceServiceRequest) -> None:
        columns = self.columns
        for resource_spans in request.resource_spans:
            resource = _attributes(resource_spans.resource.attributes)
            service = resource.get(semconv.SERVICE_NAME, "")
            for scope_spans in resource_spans.scope_spans:
                scope_name, scope_version = scope_spans.scope.name, scope_spans.scope.version
                for span in scope_spans.spans:
                    start, end = span.start_time_unix_nano, span.end_time_unix_nano
                    code = span.status.code
                    events, links = span.events, span.links
                    row = (  # in OTEL_TRACES_COLUMNS' order
                        start,
                        span.trace_id.hex(),
                        span.span_id.hex(),
                        span.parent_span_id.hex(),
                        span.trace_state,
                        span.name,
                        _SPAN_KINDS[span.kind] if 0 <= span.kind < len(_SPAN_KINDS) else "",
                        service,
                        resource,
                        scope_name,
                        scope_version,
                        _attributes(span.attributes),
                        max(end - start, 0),
                        _STATUS_CODES[code] if 0 <= code < len(_STATUS_CODES) else "",
                        span.status.message,
                        [event.time_unix_nano for event in events],
                        [event.name for event in events],
                        [_attributes(event.attributes) for event in events],
                        [link.trace_id.hex() for link in links],
                        [link.span_id.hex() for link in links],
                        [link.trace_state for link in links],
                        [_attributes(link.attributes) for link in links],
                    )
                    for column, value in zip(columns, row, strict=True):
                        column.append(value)
