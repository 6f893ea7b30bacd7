"""``otel_traces`` rows as one Arrow table, from the compiled converter (``_otel_columns.c``), for ``insert_arrow``.

The reference is :class:`~._otel_traces.OtelTraceRows` (the same rows, value for value: tests/test_otel_columns.py),
which walks the decoded messages from Python (~1 µs a field) and hands Python values to clickhouse-connect's
serializer. The converter walks the serialized requests once and writes Arrow buffers; ClickHouse reads Arrow
natively. It declines (``None``) what it does not reproduce exactly, and the store then uses the reference.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Sequence
from typing import Any

from opentelemetry.proto.common.v1.common_pb2 import AnyValue
from spanledger import semconv

from ._otel_traces import _SPAN_KINDS, _STATUS_CODES, OTEL_TRACES_COLUMNS, attribute_text

__all__ = ["otel_traces_arrow"]

_otel_columns: Any = None
if not os.environ.get("SPANLEDGER_NO_SPEEDUPS"):
    with contextlib.suppress(ImportError):  # not built: the store uses the reference
        from . import _otel_columns  # type: ignore[attr-defined, no-redef]


def _value_text(raw: bytes) -> str:
    """The converter's fallback for doubles, bytes, arrays and maps: the reference's text of the AnyValue."""
    return attribute_text(AnyValue.FromString(raw))


def otel_traces_arrow(requests: Sequence[bytes]) -> Any | None:
    """The spans of serialized ``ExportTraceServiceRequest``s as a pyarrow Table of ``OTEL_TRACES_COLUMNS``.

    ``None`` where the converter is not built or declines the requests (then use ``OtelTraceRows``).
    """
    if _otel_columns is None:
        return None
    buffers = _otel_columns.otel_traces_buffers(
        list(requests), semconv.SERVICE_NAME, _value_text, len(_SPAN_KINDS), len(_STATUS_CODES)
    )
    if buffers is None:
        return None
    import pyarrow as pa

    (
        rows,
        timestamps,
        trace_ids,
        span_ids,
        parent_ids,
        trace_states,
        names,
        kinds,
        services,
        resources,
        scope_names,
        scope_versions,
        attributes,
        durations,
        status_codes,
        status_messages,
        event_offsets,
        event_times,
        event_names,
        event_attributes,
        link_offsets,
        link_trace_ids,
        link_span_ids,
        link_states,
        link_attributes,
    ) = buffers

    def strings(column: tuple[int, bytes, bytes]) -> Any:
        count, offsets, data = column
        return pa.Array.from_buffers(pa.string(), count, [None, pa.py_buffer(offsets), pa.py_buffer(data)])

    def fixed(kind: Any, data: bytes) -> Any:
        return pa.Array.from_buffers(kind, len(data) // 8, [None, pa.py_buffer(data)])

    def offsets(data: bytes) -> Any:
        return pa.Array.from_buffers(pa.int32(), len(data) // 4, [None, pa.py_buffer(data)])

    def map_of(column: tuple[bytes, Any, Any]) -> Any:
        row_offsets, keys, values = column
        return pa.MapArray.from_arrays(offsets(row_offsets), strings(keys), strings(values))

    def enum_names(names: Sequence[str], codes: bytes) -> Any:
        return pa.array([*names, ""], pa.string()).take(offsets(codes))

    def nested(row_offsets: bytes, values: Any) -> Any:
        return pa.ListArray.from_arrays(offsets(row_offsets), values)

    columns = [
        fixed(pa.timestamp("ns"), timestamps),
        strings(trace_ids),
        strings(span_ids),
        strings(parent_ids),
        strings(trace_states),
        strings(names),
        enum_names(_SPAN_KINDS, kinds),
        strings(services),
        map_of(resources),
        strings(scope_names),
        strings(scope_versions),
        map_of(attributes),
        fixed(pa.uint64(), durations),
        enum_names(_STATUS_CODES, status_codes),
        strings(status_messages),
        nested(event_offsets, fixed(pa.timestamp("ns"), event_times)),
        nested(event_offsets, strings(event_names)),
        nested(event_offsets, map_of(event_attributes)),
        nested(link_offsets, strings(link_trace_ids)),
        nested(link_offsets, strings(link_span_ids)),
        nested(link_offsets, strings(link_states)),
        nested(link_offsets, map_of(link_attributes)),
    ]
    assert all(len(column) == rows for column in columns)
    return pa.Table.from_arrays(columns, names=list(OTEL_TRACES_COLUMNS))
