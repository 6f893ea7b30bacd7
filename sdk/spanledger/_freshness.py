"""Data freshness: which data an answer read and how old it was at read time.

Public API: :func:`record_data_read` (one read, on the current span) and :func:`retrieval` (a GenAI
``retrieval`` span with per-document ids and freshness). Both never raise into the caller.

Instrumentations that read data themselves (botocore S3 GetObject) build the same event with
:func:`data_read_attributes` and record it with :func:`add_data_read`, passing a histogram made from
their own meter with ``create_instrument(meter, semconv.METRIC_SPANLEDGER_DATA_AGE)``.

Every read is one ``spanledger.data.read`` span event (the collector's only input for freshness) plus
one ``spanledger.data.age`` histogram point labelled by source kind only (never the URI: unbounded).
"""

from __future__ import annotations

import json
import math
import time
import weakref
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from datetime import datetime, timezone
from typing import Any

from opentelemetry import trace
from opentelemetry.metrics import Histogram, Meter
from opentelemetry.trace import Span, SpanKind
from opentelemetry.util.types import AttributeValue

from . import semconv
from ._errors import error_type
from ._internal_errors import internal_errors_logged, logger
from ._metrics import create_instrument
from ._state import current_telemetry

__all__ = [
    "Retrieval",
    "SourceKind",
    "StalenessMethod",
    "Timestamp",
    "add_data_read",
    "data_read_attributes",
    "record_data_read",
    "retrieval",
    "source_kind_of",
]

SourceKind = semconv.SpanledgerDataSourceKindValues
StalenessMethod = semconv.SpanledgerDataStalenessMethodValues
Timestamp = datetime | float | int
"""A point in time: an aware ``datetime`` (naive ones are taken as UTC) or Unix epoch seconds."""

_KINDS = {member.value: member for member in SourceKind}
_METHODS = {member.value: member for member in StalenessMethod}
_SCHEME_KINDS = {
    "s3": SourceKind.OBJECT_STORE,
    "gs": SourceKind.OBJECT_STORE,
    "az": SourceKind.OBJECT_STORE,
    "abfs": SourceKind.OBJECT_STORE,
    "postgresql": SourceKind.DATABASE,
    "postgres": SourceKind.DATABASE,
    "mysql": SourceKind.DATABASE,
    "sqlite": SourceKind.DATABASE,
    "duckdb": SourceKind.DATABASE,
    "mongodb": SourceKind.DATABASE,
    "kafka": SourceKind.STREAM,
    "kinesis": SourceKind.STREAM,
    "file": SourceKind.FILE,
    "http": SourceKind.HTTP,
    "https": SourceKind.HTTP,
}


def _epoch_seconds(value: Timestamp, name: str) -> float:
    if isinstance(value, datetime):
        if value.tzinfo is None:
            value = value.replace(tzinfo=timezone.utc)
        return value.timestamp()
    if isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value):
        return float(value)
    raise TypeError(f"{name} must be a datetime or Unix epoch seconds, not {value!r}")


def source_kind_of(source: str) -> SourceKind:
    """The kind of store a source URI names, from its scheme (a bare path is a file)."""
    scheme, sep, _ = source.partition("://")
    if not sep:
        return SourceKind.FILE if source.startswith(("/", "./", "~")) else SourceKind.OTHER
    return _SCHEME_KINDS.get(scheme.lower().split("+")[0], SourceKind.OTHER)


def data_read_attributes(
    source: str,
    *,
    last_modified: Timestamp | None = None,
    bytes: int | None = None,
    kind: SourceKind | str | None = None,
    method: StalenessMethod | str | None = None,
    read_time: Timestamp | None = None,
) -> dict[str, AttributeValue]:
    """The ``spanledger.data.read`` event attributes; raises ``TypeError``/``ValueError`` on bad input.

    The age is ``read_time`` (default: now) minus ``last_modified``, floored at 0 (a clock ahead of
    ours must not produce negative ages). ``method`` defaults to ``caller`` when a time is given.
    """
    if not isinstance(source, str) or not source:
        raise TypeError(f"source must be a non-empty URI string, not {source!r}")
    resolved_kind = source_kind_of(source) if kind is None else _KINDS.get(str(_value(kind)))
    if resolved_kind is None:
        raise ValueError(f"kind must be one of {', '.join(_KINDS)}, not {kind!r}")
    attributes: dict[str, AttributeValue] = {
        semconv.SPANLEDGER_DATA_SOURCE: source,
        semconv.SPANLEDGER_DATA_SOURCE_KIND: resolved_kind.value,
    }
    if bytes is not None:
        if isinstance(bytes, bool) or not isinstance(bytes, int) or bytes < 0:
            raise TypeError(f"bytes must be a non-negative int, not {bytes!r}")
        attributes[semconv.SPANLEDGER_DATA_BYTES] = bytes
    if last_modified is not None:
        modified = _epoch_seconds(last_modified, "last_modified")
        now = time.time() if read_time is None else _epoch_seconds(read_time, "read_time")
        attributes[semconv.SPANLEDGER_DATA_LAST_MODIFIED] = modified
        attributes[semconv.SPANLEDGER_DATA_AGE] = max(0.0, now - modified)
    if method is not None:
        resolved_method = _METHODS.get(str(_value(method)))
        if resolved_method is None:
            raise ValueError(f"method must be one of {', '.join(_METHODS)}, not {method!r}")
        attributes[semconv.SPANLEDGER_DATA_STALENESS_METHOD] = resolved_method.value
    elif last_modified is not None:
        attributes[semconv.SPANLEDGER_DATA_STALENESS_METHOD] = StalenessMethod.CALLER.value
    return attributes


def _value(enum_or_str: object) -> object:
    return getattr(enum_or_str, "value", enum_or_str)


def add_data_read(span: Span, attributes: Mapping[str, AttributeValue], age_histogram: Histogram | None) -> None:
    """Add one ``spanledger.data.read`` event to ``span`` and its age to ``age_histogram``."""
    span.add_event(semconv.EVENT_SPANLEDGER_DATA_READ, attributes)
    age = attributes.get(semconv.SPANLEDGER_DATA_AGE)
    if age_histogram is not None and isinstance(age, float):
        age_histogram.record(
            age, {semconv.SPANLEDGER_DATA_SOURCE_KIND: attributes[semconv.SPANLEDGER_DATA_SOURCE_KIND]}
        )


_age_histograms: weakref.WeakKeyDictionary[Meter, Histogram] = weakref.WeakKeyDictionary()


def _public_age_histogram() -> Histogram:
    meter = current_telemetry().meter
    histogram = _age_histograms.get(meter)
    if histogram is None:
        histogram = _age_histograms[meter] = create_instrument(meter, semconv.METRIC_SPANLEDGER_DATA_AGE)
    return histogram


def record_data_read(
    source: str,
    *,
    last_modified: Timestamp | None = None,
    bytes: int | None = None,
    kind: SourceKind | str | None = None,
    method: StalenessMethod | str | None = None,
    read_time: Timestamp | None = None,
    span: Span | None = None,
) -> None:
    """Record that the current span (or ``span``) read ``source``, and how old that data was.

    ``source`` is a URI (``postgresql://db/orders``, ``kafka://events/3``, ``/data/prices.csv``);
    ``last_modified`` a datetime or epoch seconds (for a table, its newest row; for a message, its event
    time: say which with ``method``); ``kind`` defaults from the URI scheme. Never raises: bad input is
    logged and nothing is recorded.
    """
    with internal_errors_logged("record_data_read"):
        try:
            attributes = data_read_attributes(
                source, last_modified=last_modified, bytes=bytes, kind=kind, method=method, read_time=read_time
            )
        except (TypeError, ValueError) as error:
            logger.warning("spanledger.record_data_read(%r): %s; nothing recorded", source, error)
            return
        add_data_read(span if span is not None else trace.get_current_span(), attributes, _public_age_histogram())


class Retrieval:
    """Handle of a :func:`retrieval` span: record the documents the retrieval returned."""

    def __init__(self, span: Span, data_source_id: str | None, kind: SourceKind | str) -> None:
        self.span = span
        self._data_source_id = data_source_id
        self._kind = kind
        self._documents: list[dict[str, Any]] = []

    def record_documents(self, documents: Iterable[Mapping[str, Any]]) -> None:
        """Record retrieved documents: mappings with ``id`` and optionally ``score``, ``source`` and
        ``last_modified`` (datetime or epoch seconds). Content is never recorded, only ids.

        Sets ``gen_ai.retrieval.documents`` to the JSON array of ``{id, score, source, last_modified, age}``
        (all documents recorded so far on this span) and adds a ``spanledger.data.read`` event per
        document that has a ``last_modified``. Never raises.
        """
        with internal_errors_logged("retrieval.record_documents"):
            histogram = _public_age_histogram()
            now = time.time()
            for document in documents:
                try:
                    self._documents.append(self._record(document, now, histogram))
                except (TypeError, ValueError, KeyError) as error:
                    logger.warning("spanledger retrieval document %r: %s; skipped", document, error)
            self.span.set_attribute(semconv.GEN_AI_RETRIEVAL_DOCUMENTS, json.dumps(self._documents))

    def _record(self, document: Mapping[str, Any], now: float, histogram: Histogram) -> dict[str, Any]:
        if not isinstance(document, Mapping) or "id" not in document:
            raise TypeError("a document must be a mapping with an 'id'")
        entry: dict[str, Any] = {"id": str(document["id"])}
        score = document.get("score")
        if isinstance(score, (int, float)) and not isinstance(score, bool) and math.isfinite(score):
            entry["score"] = float(score)
        source = document.get("source") or self._data_source_id
        if source:
            entry["source"] = str(source)
        last_modified = document.get("last_modified")
        if last_modified is not None and source:
            attributes = data_read_attributes(
                str(source), last_modified=last_modified, kind=self._kind, read_time=now
            )
            entry["last_modified"] = attributes[semconv.SPANLEDGER_DATA_LAST_MODIFIED]
            entry["age"] = attributes[semconv.SPANLEDGER_DATA_AGE]
            add_data_read(self.span, attributes, histogram)
        return entry


@contextmanager
def retrieval(
    data_source_id: str | None = None,
    *,
    query: str | None = None,
    top_k: int | None = None,
    kind: SourceKind | str = SourceKind.VECTOR_STORE,
) -> Iterator[Retrieval]:
    """A GenAI ``retrieval`` span (``retrieval {data_source_id}``) around a vector-store or search call.

    ``with spanledger.retrieval(data_source_id="kb-handbook", query=q, top_k=5) as r:
    r.record_documents([{"id": "doc-1", "score": 0.92, "source": "s3://kb/doc-1.md", "last_modified": t}])``

    The query text is recorded only when ``capture_message_content`` puts content on spans. Errors raised by
    the block are recorded on the span and re-raised unchanged; spanledger's own errors never reach the caller.
    """
    span: Span = trace.INVALID_SPAN
    with internal_errors_logged("retrieval start"):
        attributes: dict[str, AttributeValue] = {
            semconv.GEN_AI_OPERATION_NAME: semconv.GenAiOperationNameValues.RETRIEVAL.value
        }
        if data_source_id:
            attributes[semconv.GEN_AI_DATA_SOURCE_ID] = data_source_id
        if top_k is not None:
            attributes[semconv.GEN_AI_REQUEST_TOP_K] = float(top_k)
        telemetry = current_telemetry()
        content_on_span = telemetry.settings.capture_message_content in ("span_only", "span_and_event")
        if query is not None and content_on_span:
            attributes[semconv.GEN_AI_RETRIEVAL_QUERY_TEXT] = query
        name = semconv.GenAiOperationNameValues.RETRIEVAL.value
        span = telemetry.tracer.start_span(
            f"{name} {data_source_id}" if data_source_id else name, kind=SpanKind.CLIENT, attributes=attributes
        )
    with trace.use_span(span, end_on_exit=True, record_exception=True, set_status_on_exception=True):
        try:
            yield Retrieval(span, data_source_id, kind)
        except BaseException as error:
            with internal_errors_logged("retrieval end"):
                span.set_attribute(semconv.ERROR_TYPE, error_type(error))
            raise
