"""One instrumented OpenAI call: its span from request to the end of the response or stream.

``start_call`` opens the span (or returns None when spanledger should stay out: instrumentation
suppressed, or another OpenAI instrumentation's span is current); ``Call.complete`` / ``Call.fail``
take the wrapped call's outcome. A call ends exactly once: when a non-stream result is read, when its
stream is exhausted, closed or broken off, or when the stream (or raw response) is garbage-collected.
Nothing here raises into the application: failures are logged once and the call's result is returned
untouched.
"""

from __future__ import annotations

import contextlib
from collections.abc import Mapping
from time import time_ns
from typing import Any

import openai
from openai._constants import RAW_RESPONSE_HEADER
from openai._legacy_response import LegacyAPIResponse
from openai._response import APIResponse, AsyncAPIResponse
from opentelemetry.trace import Span, SpanKind

from .. import semconv
from .._errors import error_type, record_provider_error, safe_description
from .._genai import Content, OperationKey, TokenUsage, current_parent, new_key
from .._internal_errors import log_internal_error
from . import _content
from ._clients import client_info
from ._endpoints import Endpoint
from ._recorder import Recorder
from ._streams import AsyncStreamProxy, SyncStreamProxy, end_with_response

__all__ = ["FOREIGN_SCOPES", "Call", "start_call"]

FOREIGN_SCOPES = ("opentelemetry.instrumentation.genai.openai", "opentelemetry.instrumentation.openai")
"""Instrumentation scopes of other OpenAI instrumentations (upstream genai-openai, OpenLLMetry)."""

_RAW_RESPONSES = (LegacyAPIResponse, APIResponse, AsyncAPIResponse)
_ABSENT = object()
_UNCHANGED = object()
_RAW_RESPONSE = RAW_RESPONSE_HEADER.lower()
_CLIENT = SpanKind.CLIENT
_OWNER = semconv.SPANLEDGER_USAGE_OWNER


class Call:
    """State of one call; mutated by the endpoint's extractors, read once by ``end``."""

    __slots__ = (
        "__weakref__",
        "added_stream_options",
        "attributes",
        "chunk_times_ns",
        "content",
        "ended",
        "endpoint",
        "error_description",
        "error_type",
        "finish_reasons",
        "first_chunk_ns",
        "hide_usage_chunk",
        "key",
        "reading",
        "recorder",
        "response_model",
        "span",
        "start_attributes",
        "start_ns",
        "stream",
        "text_finish_reasons",
        "texts",
        "usage",
    )

    def __init__(
        self,
        recorder: Recorder,
        endpoint: Endpoint,
        span: Span,
        start_ns: int,
        key: OperationKey,
        stream: bool,
    ) -> None:
        self.recorder = recorder
        self.endpoint = endpoint
        self.span = span
        self.start_ns = start_ns
        self.key = key
        self.stream = stream
        self.attributes: dict[str, Any] = {}
        """Response-side span attributes, set on the span in one go when the call ends."""
        self.response_model: str | None = None
        self.usage: TokenUsage | None = None
        self.finish_reasons: list[str] = []
        self.error_type: str | None = None
        self.error_description: str | None = None
        self.first_chunk_ns: int | None = None
        self.chunk_times_ns: list[int] = []
        """When each stream chunk arrived (for ``time_per_output_chunk``)."""
        self.hide_usage_chunk = False
        """True when spanledger asked for the usage chunk, so the caller must not see it."""
        self.added_stream_options: tuple[dict[str, Any], Any, str] | None = None
        """(request body, the caller's ``stream_options`` or ``_ABSENT``, server) when spanledger added them."""
        self.content: Content | None = None
        """The call's content, when it is collected (capture mode or completion hook)."""
        self.start_attributes: dict[str, Any] = {}
        """The attributes the span started with (the event repeats them)."""
        self.texts: dict[int, list[str]] | None = {} if stream and recorder.capture_content else None
        self.text_finish_reasons: dict[int, str] = {}
        self.ended = False
        self.reading = False
        """True while a stream proxy waits for the stream's next item, or a raw response is parsed: the HTTP
        response may close then, and what reads ends the call, not the close."""

    # --- outcomes -----------------------------------------------------------------------------------

    def complete(self, result: Any) -> Any:
        """Take the wrapped call's result; return it, or for streams a proxy that observes it."""
        try:
            if self.stream:
                if isinstance(result, openai.Stream):
                    return SyncStreamProxy(result, self)
                if isinstance(result, openai.AsyncStream):
                    return AsyncStreamProxy(result, self)
                if isinstance(result, _RAW_RESPONSES):
                    self._observe_parse(result)
                    return result
            elif isinstance(result, _RAW_RESPONSES):
                if isinstance(result, LegacyAPIResponse):
                    # with_raw_response has read the body already; parse() caches, so the caller's
                    # own parse() gets this very object back.
                    self.endpoint.result(self, result.parse())
                else:
                    self._observe_parse(result)
                    return result
            else:
                self.endpoint.result(self, result)
        except Exception:
            log_internal_error("openai response")
        self.end()
        return result

    def retry_without_stream_options(self, error: BaseException) -> bool:
        """True when ``error`` is a server refusing the ``stream_options`` spanledger added.

        Then the request body is restored to what the caller sent, the server is remembered (no more
        ``stream_options`` for it under this configuration) and the caller should send the request again,
        once. Only a 400 whose message names ``stream_options`` counts: any other 400 would fail again the
        same way, and the caller must see it unchanged.
        """
        added = self.added_stream_options
        if added is None or not isinstance(error, openai.BadRequestError):
            return False
        try:
            if "stream_options" not in str(error.message):
                return False
            body, callers, server = added
            if callers is _ABSENT:
                del body["stream_options"]
            else:
                body["stream_options"] = callers
            self.added_stream_options = None
            self.hide_usage_chunk = False
            self.recorder.stream_options_rejected.add(server)
            return True
        except Exception:
            log_internal_error("openai stream_options retry")
            return False

    def fail(self, error: BaseException) -> None:
        """The wrapped call (or its stream) raised ``error``; end the span as failed."""
        if self.ended:
            return
        try:
            self.error_type = error_type(error)
            self.error_description = safe_description(error, self.error_type)
        except Exception:
            log_internal_error("openai error")
        self.end()

    def parsed(self, result: Any, custom_type: bool) -> Any:
        """A raw response was parsed by the caller into ``result``."""
        try:
            if self.stream:
                if isinstance(result, openai.Stream):
                    return SyncStreamProxy(result, self)
                if isinstance(result, openai.AsyncStream):
                    return AsyncStreamProxy(result, self)
            elif not self.ended and not custom_type:
                self.endpoint.result(self, result)
        except Exception:
            log_internal_error("openai raw response")
        if not self.stream:
            self.end()
        return result

    def _observe_parse(self, raw: Any) -> None:
        original = raw.parse
        call = self
        end_with_response(raw.http_response, call, "aclose" if isinstance(raw, AsyncAPIResponse) else "close")
        # ``reading``: parsing reads the body, which closes the response before the result is recorded.
        if isinstance(raw, AsyncAPIResponse):

            async def parse_async(*, to: Any = None) -> Any:
                call.reading = True
                try:
                    result = await (original() if to is None else original(to=to))
                finally:
                    call.reading = False
                return call.parsed(result, to is not None)

            raw.parse = parse_async  # type: ignore[method-assign]
        else:

            def parse(*, to: Any = None) -> Any:
                call.reading = True
                try:
                    result = original() if to is None else original(to=to)
                finally:
                    call.reading = False
                return call.parsed(result, to is not None)

            raw.parse = parse  # type: ignore[method-assign]

    # --- the end --------------------------------------------------------------------------------

    def end(self) -> None:
        """Set the response attributes, record the metrics and end the span; only the first call counts."""
        if self.ended:
            return
        self.ended = True
        end_ns = time_ns()
        span = self.span
        try:
            recorder = self.recorder
            attributes = self.attributes
            response_model = self.response_model
            if response_model:
                attributes[semconv.GEN_AI_RESPONSE_MODEL] = response_model
            finish_reasons = self.finish_reasons
            if finish_reasons:
                # A list, not a tuple: the SDK copies either into a tuple, but it checks a tuple against
                # ``collections.abc.Sequence`` through CPython's uncached registry path (~1 µs a call).
                attributes[semconv.GEN_AI_RESPONSE_FINISH_REASONS] = finish_reasons
            usage = self.usage
            if usage is not None:
                recorder.add_usage_attributes(attributes, usage)
            time_to_first_chunk = None
            if self.first_chunk_ns is not None:
                time_to_first_chunk = (self.first_chunk_ns - self.start_ns) / 1e9
                attributes[semconv.GEN_AI_RESPONSE_TIME_TO_FIRST_CHUNK] = time_to_first_chunk
            content = self.content
            if content is not None and self.texts:
                content.outputs = _content.text_output(self.texts, self.text_finish_reasons)
            if recorder.capture_content or recorder.emit_event:
                recorder.finish_content(span, self.start_attributes, attributes, content)
            span.set_attributes(attributes)
            kind = self.error_type
            if kind is not None:
                record_provider_error(span, kind, self.error_description or kind)
            duration = (end_ns - self.start_ns) / 1e9
            recorder.record(self.key, response_model, duration, time_to_first_chunk, usage, kind, self.chunk_times_ns)
        except Exception:
            log_internal_error("openai span end")
        finally:
            span.end(end_time=end_ns)

    def __del__(self) -> None:
        # The caller dropped a stream (or raw response) without finishing or closing it.
        if not self.ended:
            with contextlib.suppress(Exception):  # interpreter shutdown: nothing left to log with
                self.end()


def start_call(recorder: Recorder, endpoint: Endpoint, client: Any, options: Any, stream: bool) -> Call | None:
    """Open the span for a request about to be sent, or None when spanledger stays out of this call."""
    try:
        parent = current_parent()
        if parent is None:  # instrumentation suppressed
            return None
        scope = getattr(parent, "instrumentation_scope", None)
        if scope is not None and scope.name.startswith(FOREIGN_SCOPES):
            # Another OpenAI instrumentation already made this call's span: no second span; theirs
            # carries the tokens, so it becomes the usage owner.
            parent.set_attribute(_OWNER, True)
            return None
        body = options.json_data
        if not isinstance(body, dict):
            body = {}
        info = client_info(client, recorder)
        model = body.get("model")
        operation = endpoint.operation
        attributes: dict[str, Any] = {
            semconv.GEN_AI_OPERATION_NAME: operation,
            semconv.GEN_AI_PROVIDER_NAME: info.provider,
            _OWNER: True,
        }
        if model:
            attributes[semconv.GEN_AI_REQUEST_MODEL] = model
        if info.address:
            attributes[semconv.SERVER_ADDRESS] = info.address
        if info.port:
            attributes[semconv.SERVER_PORT] = info.port
        endpoint.request_attributes(body, attributes)
        start_ns = time_ns()
        span = recorder.tracer.start_span(
            f"{operation} {model}" if model else operation, kind=_CLIENT, attributes=attributes, start_time=start_ns
        )
        if not span.is_recording() and not recorder.records_metrics:
            # Telemetry is off (OTEL_SDK_DISABLED, or a span not sampled and no metrics): nothing would
            # use what the call reports, so leave the request and the result alone.
            return None
        key = new_key(operation, info.provider, model, info.address, info.port)
        call = Call(recorder, endpoint, span, start_ns, key, stream)
        call.start_attributes = attributes
        if recorder.capture_content and endpoint.input_content is not None:
            call.content = endpoint.input_content(body)
        if (
            stream
            and endpoint.stream_usage
            and info.stream_usage
            and info.server not in recorder.stream_options_rejected
        ):
            callers = _ask_for_usage(body, options)
            if callers is not _UNCHANGED:
                call.hide_usage_chunk = True
                call.added_stream_options = (body, callers, info.server)
        return call
    except Exception:
        log_internal_error("openai request")
        return None


def _ask_for_usage(body: dict[str, Any], options: Any) -> Any:
    """Add ``stream_options.include_usage`` to a chat stream request the caller left without it.

    Returns the caller's ``stream_options`` (``_ABSENT`` if there were none) to restore on a retry, or
    ``_UNCHANGED`` when the request was left as it was.
    """
    extra = options.extra_json
    if extra and "stream_options" in extra:
        return _UNCHANGED
    headers = options.headers
    if isinstance(headers, Mapping) and any(
        str(name).lower() == _RAW_RESPONSE and value != "true" for name, value in headers.items()
    ):
        # with_streaming_response ("stream"): the caller reads the body's bytes itself as often as it parses
        # them, and in the bytes the added usage chunk could not be hidden. with_raw_response ("true") is read
        # for its headers and then parsed, where the chunk is hidden as for a plain stream.
        return _UNCHANGED
    current = body.get("stream_options", _ABSENT)
    if current is _ABSENT or current is None:
        body["stream_options"] = {"include_usage": True}
    elif isinstance(current, dict) and "include_usage" not in current:
        body["stream_options"] = {**current, "include_usage": True}
    else:
        return _UNCHANGED
    return current
