"""One instrumented GenAI call from request to the end of its response or stream, for the instrumentations
that share it (Anthropic, Google Gen AI).

``open_call`` starts spanledger's own CLIENT span. When the library traces the call itself (the
``anthropic`` client's own OpenTelemetry spans), ``GenAICall`` is made without a span and ``adopt``-s the
library's span once it exists: spanledger then adds the shared schema to that span instead of making a
second one, and leaves ending it to the library. Either way the metrics are recorded here once.

A call ends exactly once: when a non-stream result is read, when its stream is exhausted, closed or
broken off, or when the stream is garbage-collected. Nothing here raises into the application.

Content (when the capture mode or a completion hook wants it) is placed by ``GenAIRecorder.finish_content``
like every other provider's, once per call: when the call ends, or for an adopted span at its ``flush``,
while the library's span can still take attributes.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from time import time_ns
from typing import Any, NamedTuple

from opentelemetry.context import _SUPPRESS_INSTRUMENTATION_KEY, Context, get_current, get_value
from opentelemetry.trace import Span, SpanKind, get_current_span

from .. import semconv
from .._errors import error_type, record_provider_error, safe_description
from .._internal_errors import log_internal_error
from ._content import Content
from ._recorder import GenAIRecorder, OperationKey
from ._usage import TokenUsage

__all__ = [
    "CallStart",
    "GenAICall",
    "call_start",
    "current_context",
    "current_parent",
    "instrumentation_suppressed",
    "open_call",
]

_CLIENT = SpanKind.CLIENT


def instrumentation_suppressed() -> bool:
    """Whether OTel's ``suppress_instrumentation`` is in effect."""
    return bool(get_value(_SUPPRESS_INSTRUMENTATION_KEY))


def current_parent() -> Span | None:
    """The current span, or None when OTel's ``suppress_instrumentation`` is in effect (one context read)."""
    current = get_current()
    if current.get(_SUPPRESS_INSTRUMENTATION_KEY):
        return None
    return get_current_span(current)


def current_context() -> Context | None:
    """The current context, or None when OTel's ``suppress_instrumentation`` is in effect (one context read).

    Handed to ``open_call``, it spares the SDK's span start, sampler and span processors a context read each.
    """
    current = get_current()
    if current.get(_SUPPRESS_INSTRUMENTATION_KEY):
        return None
    return current


class GenAICall:
    """State of one call; filled in by the library's extractors, written once by ``end``."""

    __slots__ = (
        "__weakref__",
        "attributes",
        "content",
        "content_done",
        "ended",
        "error_description",
        "error_type",
        "finish_reasons",
        "first_chunk_ns",
        "key",
        "observe",
        "owns_span",
        "recorder",
        "response_model",
        "settle",
        "span",
        "start_attributes",
        "start_ns",
        "streamed",
        "usage",
        "usage_report",
    )

    def __init__(
        self, recorder: GenAIRecorder, key: OperationKey, span: Span | None, start_ns: int, *, stream: bool
    ) -> None:
        self.recorder = recorder
        self.key = key
        self.span = span
        self.owns_span = span is not None
        self.start_ns = start_ns
        self.attributes: dict[str, Any] = {}
        """Response-side span attributes, set on the span in one go when the call ends."""
        self.response_model: str | None = None
        self.usage: TokenUsage | None = None
        self.finish_reasons: list[str] = []
        self.error_type: str | None = None
        self.error_description: str | None = None
        self.first_chunk_ns: int | None = None
        self.start_attributes: dict[str, Any] = {}
        """The request-side attributes the span started with (the event repeats them)."""
        self.content: Content | None = None
        """The call's content, when it is collected (capture mode or completion hook)."""
        self.content_done = False
        """Whether the content and event were placed (at an adopted span's flush, else at the end)."""
        self.streamed: list[Any] | None = [] if stream and recorder.capture_content else None
        """What a stream said, in the library's own pieces; kept only when content is collected."""
        self.usage_report: Any = None
        """The latest running usage report of a stream, kept by reference and converted by ``settle``."""
        self.observe: Callable[[GenAICall, Any], None] | None = None
        """Records one stream item on the call (set by the library for its streams)."""
        self.settle: Callable[[GenAICall], None] | None = None
        """Turns what ``observe`` kept (``usage_report``, ``streamed``) into usage and output content; run
        before the response is read off the call, possibly more than once (set by the library)."""
        self.ended = False

    def adopt(self, span: Span, start_attributes: dict[str, Any]) -> None:
        """Add to the library's own span for this call (it ends that span itself)."""
        self.span = span
        self.owns_span = False
        self.start_attributes = start_attributes
        span.set_attributes(start_attributes)

    def chunk(self, item: Any) -> None:
        """One stream item arrived."""
        if self.first_chunk_ns is None:
            self.first_chunk_ns = time_ns()
        observe = self.observe
        if observe is not None:
            try:
                observe(self, item)
            except Exception:
                log_internal_error("genai stream item")

    def fail(self, error: BaseException) -> None:
        """The call (or its stream) raised ``error``; end it as failed."""
        if self.ended:
            return
        try:
            self.error_type = error_type(error)
            self.error_description = safe_description(error, self.error_type)
        except Exception:
            log_internal_error("genai error")
        self.end()

    def response_attributes(self) -> dict[str, Any]:
        """Everything learnt from the response so far, as span attributes."""
        settle = self.settle
        if settle is not None:
            try:
                settle(self)
            except Exception:
                log_internal_error("genai stream settle")
        attributes = dict(self.attributes)
        if self.response_model:
            attributes[semconv.GEN_AI_RESPONSE_MODEL] = self.response_model
        if self.finish_reasons:
            # A copy as a list: the SDK makes a tuple of either, but checks a tuple against
            # ``collections.abc.Sequence`` through CPython's uncached registry path (~1 µs).
            attributes[semconv.GEN_AI_RESPONSE_FINISH_REASONS] = list(self.finish_reasons)
        if self.usage is not None:
            self.recorder.add_usage_attributes(attributes, self.usage)
        return attributes

    def flush(self) -> None:
        """Write the response on an adopted span, which its library ends before this call ends: called when
        the response is complete (the result, or the stream's last report); the content and event go too."""
        span = self.span
        if span is None or self.owns_span or self.ended:
            return
        try:
            if span.is_recording():
                attributes = self.response_attributes()
                self._finish_content(span, attributes)
                span.set_attributes(attributes)
        except Exception:
            log_internal_error("genai span flush")

    def _finish_content(self, span: Span, attributes: dict[str, Any]) -> None:
        """Content, hook and event of the call, once (see ``GenAIRecorder.finish_content``)."""
        recorder = self.recorder
        if self.content_done or not (recorder.capture_content or recorder.emit_event):
            return
        self.content_done = True
        start_attributes = self.start_attributes
        if not self.owns_span:
            # The library's span started with attributes of its own; the event carries the span's.
            current = getattr(span, "attributes", None)
            if current is not None:
                start_attributes = dict(current)
        recorder.finish_content(span, start_attributes, attributes, self.content)

    def end(self) -> None:
        """Set the response attributes, record the metrics and end the span; only the first call counts."""
        if self.ended:
            return
        self.ended = True
        end_ns = time_ns()
        span = self.span
        try:
            attributes = self.response_attributes()
            time_to_first_chunk = None
            if self.first_chunk_ns is not None:
                time_to_first_chunk = (self.first_chunk_ns - self.start_ns) / 1e9
                attributes[semconv.GEN_AI_RESPONSE_TIME_TO_FIRST_CHUNK] = time_to_first_chunk
            if span is not None:
                self._finish_content(span, attributes)
            kind = self.error_type
            if span is not None and span.is_recording():
                span.set_attributes(attributes)
                if kind is not None and self.owns_span:
                    record_provider_error(span, kind, self.error_description or kind)
            duration = (end_ns - self.start_ns) / 1e9
            self.recorder.record(self.key, self.response_model, duration, time_to_first_chunk, self.usage, kind)
        except Exception:
            log_internal_error("genai span end")
        finally:
            if span is not None and self.owns_span:
                span.end(end_time=end_ns)

    def __del__(self) -> None:
        # The caller dropped a stream without finishing or closing it.
        if not self.ended:
            with contextlib.suppress(Exception):  # interpreter shutdown: nothing left to log with
                self.end()


class CallStart(NamedTuple):
    """What the span of every call with one ``OperationKey`` starts with (see ``call_start``)."""

    name: str
    attributes: dict[str, Any]
    """The key's span attributes, appended to the request's; never mutate it (callers may share it)."""


def call_start(key: OperationKey) -> CallStart:
    """The span name and the key's start attributes; a library that caches this per client and model hands it
    to ``open_call`` instead of having it rebuilt per call."""
    operation, provider, model, address, port = key
    attributes: dict[str, Any] = {semconv.GEN_AI_OPERATION_NAME: operation, semconv.GEN_AI_PROVIDER_NAME: provider}
    if model:
        attributes[semconv.GEN_AI_REQUEST_MODEL] = model
    if address:
        attributes[semconv.SERVER_ADDRESS] = address
    if port:
        attributes[semconv.SERVER_PORT] = port
    return CallStart(f"{operation} {model}" if model else operation, attributes)


def open_call(
    recorder: GenAIRecorder,
    key: OperationKey,
    attributes: dict[str, Any],
    *,
    stream: bool,
    start: CallStart | None = None,
    context: Context | None = None,
) -> GenAICall:
    """Start spanledger's own span for a call about to be sent (``attributes``: the request side).

    ``start``: ``call_start(key)``, when the caller keeps it; ``context``: the current context, when the caller
    has read it (``current_context``).
    """
    if start is None:
        start = call_start(key)
    attributes.update(start.attributes)
    start_ns = time_ns()
    span = recorder.tracer.start_span(
        start.name, context=context, kind=_CLIENT, attributes=attributes, start_time=start_ns
    )
    call = GenAICall(recorder, key, span, start_ns, stream=stream)
    call.start_attributes = attributes
    return call
