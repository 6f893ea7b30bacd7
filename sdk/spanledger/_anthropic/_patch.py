"""The patch: ``SyncAPIClient.request`` / ``AsyncAPIClient.request`` of ``anthropic``, its single choke point.

Every Messages method (``create``, ``stream=True``, the ``messages.stream()`` helper, ``count_tokens``,
``with_raw_response``) funnels into ``request`` with its final options, and retries happen inside it, so
one wrapper gives one span per logical call. The URL is still the resource's own (``/v1/messages``) here:
the Bedrock and Vertex clients rewrite it later, per attempt.

Recent ``anthropic`` releases trace their calls themselves (a CLIENT span per call unless
``ANTHROPIC_OPEN_TELEMETRY=false`` or the ``open_telemetry`` client option turns it off). For such a
client spanledger makes no span of its own: it wraps the client's ``finish_api_call_span`` hook, which
receives that span and the call's result before the span ends, and adds the shared schema there (owner
mark, resource id, token counts in the conventions' meaning, finish reasons). Its metrics are recorded
by spanledger either way. When another Anthropic instrumentation's span is current (OpenLLMetry,
upstream), spanledger defers to it as it does for OpenAI.
"""

from __future__ import annotations

from collections.abc import Callable
from contextvars import ContextVar, Token
from time import time_ns
from typing import Any, NamedTuple

from anthropic import AsyncStream, BaseModel, Stream, _base_client
from anthropic._base_client import AsyncAPIClient, SyncAPIClient
from anthropic._response import APIResponse, AsyncAPIResponse
from opentelemetry.context import attach, detach
from opentelemetry.trace import Span, get_current_span, set_span_in_context

from .. import semconv
from .._genai import GenAICall, GenAIRecorder, current_context, open_call
from .._genai._streams import AsyncStreamProxy, SyncStreamProxy
from .._internal_errors import log_internal_error
from ._clients import client_info, prepared
from ._messages import ENDPOINTS, Endpoint, settle_stream

__all__ = ["FOREIGN_SCOPES", "install", "uninstall"]

FOREIGN_SCOPES = ("opentelemetry.instrumentation.anthropic", "opentelemetry.instrumentation.genai.anthropic")
"""Instrumentation scopes of other Anthropic instrumentations (OpenLLMetry, upstream genai-anthropic)."""

_OWNER = semconv.SPANLEDGER_USAGE_OWNER
_RAW_RESPONSES = (APIResponse, AsyncAPIResponse)


class _Adopting(NamedTuple):
    """A call whose span the client makes itself; what to add to that span once it exists."""

    call: GenAICall
    endpoint: Endpoint
    start_attributes: dict[str, Any]
    stream: bool


_adopting: ContextVar[_Adopting | None] = ContextVar("spanledger_anthropic_adopting", default=None)

_recorder: GenAIRecorder | None = None
_original_sync: Callable[..., Any] | None = None
_original_async: Callable[..., Any] | None = None
_original_finish: Callable[..., Any] | None = None
_patched = False


def _start(
    recorder: GenAIRecorder, endpoint: Endpoint, client: Any, options: Any, stream: bool
) -> GenAICall | _Adopting | None:
    """A ``GenAICall`` (own span) or an ``_Adopting`` (the client's span), or None to stay out."""
    try:
        context = current_context()
        if context is None:  # instrumentation suppressed
            return None
        parent = get_current_span(context)
        scope = getattr(parent, "instrumentation_scope", None)
        if scope is not None and scope.name.startswith(FOREIGN_SCOPES):
            if endpoint.owns_usage:
                parent.set_attribute(_OWNER, True)
            return None
        body = options.json_data
        if not isinstance(body, dict):
            body = {}
        info = client_info(client, recorder)
        model = body.get("model")
        model = model if isinstance(model, str) else None
        start = prepared(info, endpoint.operation, endpoint.owns_usage, model)
        attributes = dict(start.head)
        endpoint.request_attributes(body, attributes)
        if stream:
            attributes[semconv.GEN_AI_REQUEST_STREAM] = True
        content = None
        if recorder.capture_content and endpoint.input_content is not None:
            content = endpoint.input_content(body)
        if getattr(client, "_tracer", None) is not None:
            attributes[semconv.GEN_AI_PROVIDER_NAME] = info.provider
            call = GenAICall(recorder, start.key, None, time_ns(), stream=stream)
            started: GenAICall | _Adopting = _Adopting(call, endpoint, attributes, stream)
        else:
            call = started = open_call(
                recorder, start.key, attributes, stream=stream, start=start.start, context=context
            )
        if content is not None:
            call.content = content
            if stream:
                call.settle = settle_stream
        return started
    except Exception:
        log_internal_error("anthropic request")
        return None


def _complete(call: GenAICall, endpoint: Endpoint, result: Any, stream: bool) -> Any:
    """Take the call's result; return it, or for streams a proxy that observes it."""
    try:
        if stream:
            call.observe = endpoint.chunk
            if isinstance(result, Stream):
                return SyncStreamProxy(result, call)
            if isinstance(result, AsyncStream):
                return AsyncStreamProxy(result, call)
            if isinstance(result, _RAW_RESPONSES):  # with_raw_response / with_streaming_response
                _observe_parse(call, endpoint, result, stream)
                return result
        elif call.owns_span or call.span is None:
            # An adopted span had the result recorded by ``_finish`` already.
            parsed = _parsed(result)
            if parsed is not None:
                endpoint.result(call, parsed)
            elif isinstance(result, _RAW_RESPONSES):  # with_streaming_response: not read yet
                _observe_parse(call, endpoint, result, stream)
                return result
    except Exception:
        log_internal_error("anthropic response")
    call.end()
    return result


def _observe_parse(call: GenAICall, endpoint: Endpoint, raw: Any, stream: bool) -> None:
    """A raw response the caller reads later: the call takes what its ``parse()`` gives (a stream is then
    observed; a message recorded) and ends. Read as bytes and never parsed, it ends when dropped
    (``GenAICall.__del__``), without usage."""
    original = raw.parse

    def parsed(result: Any, custom_type: bool) -> Any:
        try:
            if stream:
                if isinstance(result, Stream):
                    return SyncStreamProxy(result, call)
                if isinstance(result, AsyncStream):
                    return AsyncStreamProxy(result, call)
            elif not custom_type:
                endpoint.result(call, result)
        except Exception:
            log_internal_error("anthropic raw response")
        call.end()
        return result

    if isinstance(raw, AsyncAPIResponse):

        async def parse_async(*, to: Any = None) -> Any:
            result = await (original() if to is None else original(to=to))
            return parsed(result, to is not None)

        raw.parse = parse_async  # type: ignore[method-assign]
    else:

        def parse(*, to: Any = None) -> Any:
            result = original() if to is None else original(to=to)
            return parsed(result, to is not None)

        raw.parse = parse


def _parsed(result: Any) -> Any:
    """The parsed result; for a raw response, its decoded body when the client has read it (else None)."""
    if isinstance(result, BaseModel):
        # The usual case, checked first: a missing attribute on a pydantic model costs a raised AttributeError.
        return result
    http_response = getattr(result, "http_response", None)
    if http_response is None:
        return result
    return http_response.json() if http_response.is_closed else None


def _finish(client: Any, span: Span, result: Any) -> None:
    """Wraps the client's own ``finish_api_call_span``: add the shared schema before the span ends."""
    adopting = _adopting.get()
    if adopting is not None and adopting.call.span is None:
        _adopting.set(None)
        try:
            call = adopting.call
            call.adopt(span, adopting.start_attributes)
            data = getattr(result, "data", None)
            if not adopting.stream and getattr(result, "error", None) is None and data is not None:
                parsed = _parsed(data)
                if parsed is not None:  # None: a with_streaming_response body, read after this span ends
                    adopting.endpoint.result(call, parsed)
                call.flush()
        except Exception:
            log_internal_error("anthropic client span")
    _original_finish(client, span, result)  # type: ignore[misc]


def _begin(started: GenAICall | _Adopting) -> tuple[GenAICall, Token[Any]]:
    """Make the call's context current; returns the call and the token ``_done`` takes."""
    if isinstance(started, _Adopting):
        return started.call, _adopting.set(started)
    return started, attach(set_span_in_context(started.span))  # type: ignore[arg-type]


def _done(started: GenAICall | _Adopting, token: Token[Any]) -> None:
    """Undo ``_begin``."""
    if isinstance(started, _Adopting):
        _adopting.reset(token)  # type: ignore[arg-type]
    else:
        detach(token)


def _sync_request(self: Any, cast_to: Any, options: Any, *args: Any, **kwargs: Any) -> Any:
    recorder = _recorder
    if recorder is not None and options.method == "post":
        endpoint = ENDPOINTS.get(options.url)
        if endpoint is not None:
            stream = bool(kwargs.get("stream", False))
            started = _start(recorder, endpoint, self, options, stream)
            if started is not None:
                call, token = _begin(started)
                try:
                    result = _original_sync(self, cast_to, options, *args, **kwargs)  # type: ignore[misc]
                except BaseException as error:
                    _done(started, token)
                    call.fail(error)
                    raise
                _done(started, token)
                return _complete(call, endpoint, result, stream)
    return _original_sync(self, cast_to, options, *args, **kwargs)  # type: ignore[misc]


async def _async_request(self: Any, cast_to: Any, options: Any, *args: Any, **kwargs: Any) -> Any:
    recorder = _recorder
    if recorder is not None and options.method == "post":
        endpoint = ENDPOINTS.get(options.url)
        if endpoint is not None:
            stream = bool(kwargs.get("stream", False))
            started = _start(recorder, endpoint, self, options, stream)
            if started is not None:
                call, token = _begin(started)
                try:
                    result = await _original_async(self, cast_to, options, *args, **kwargs)  # type: ignore[misc]
                except BaseException as error:
                    _done(started, token)
                    call.fail(error)
                    raise
                _done(started, token)
                return _complete(call, endpoint, result, stream)
    return await _original_async(self, cast_to, options, *args, **kwargs)  # type: ignore[misc]


def install(recorder: GenAIRecorder) -> None:
    """Route Anthropic requests through ``recorder``; patch the client classes unless already patched."""
    global _recorder, _original_sync, _original_async, _original_finish, _patched
    if not _patched:
        _original_sync = SyncAPIClient.request
        _original_async = AsyncAPIClient.request
        SyncAPIClient.request = _sync_request  # type: ignore[method-assign,assignment]
        AsyncAPIClient.request = _async_request  # type: ignore[method-assign,assignment]
        _original_finish = getattr(_base_client, "finish_api_call_span", None)
        if _original_finish is not None:
            _base_client.finish_api_call_span = _finish  # type: ignore[attr-defined]
        _patched = True
    _recorder = recorder


def uninstall() -> None:
    """Stop recording; restore the client classes unless something has wrapped our patch since."""
    global _recorder, _patched
    _recorder = None
    if (
        _patched
        and vars(SyncAPIClient).get("request") is _sync_request
        and vars(AsyncAPIClient).get("request") is _async_request
    ):
        SyncAPIClient.request = _original_sync  # type: ignore[method-assign,assignment]
        AsyncAPIClient.request = _original_async  # type: ignore[method-assign,assignment]
        if _original_finish is not None and getattr(_base_client, "finish_api_call_span", None) is _finish:
            _base_client.finish_api_call_span = _original_finish  # type: ignore[attr-defined]
        _patched = False
