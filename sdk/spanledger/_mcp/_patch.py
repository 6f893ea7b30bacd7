"""The patches: ``ClientSession.call_tool`` (the span), and where the streamable-HTTP session id is found.

The session id (``mcp.session.id``) lives on the streamable-HTTP transport (``StreamableHTTPTransport.session_id``,
set from the server's ``Mcp-Session-Id`` header), which the ``ClientSession`` never sees: the two share only
the write stream. So ``StreamableHTTPTransport.post_writer``, which runs for the transport's whole life with
that stream, registers the transport under the stream while it runs, ``ClientSession.__init__`` remembers
its session's stream, and ``call_tool`` joins the two. Other transports (stdio) register nothing, so no id
is recorded there. The stream is not weak-referenceable, so the registry is keyed by its ``id()``; the
entry lives only while ``post_writer`` holds the stream, and each session keeps its stream alive, so an id
cannot be reused under a live entry.
"""

from __future__ import annotations

import weakref
from collections.abc import Callable
from typing import Any

from mcp.client.session import ClientSession
from mcp.client.streamable_http import StreamableHTTPTransport
from opentelemetry import trace
from opentelemetry.trace import SpanKind, Status, StatusCode

from .. import semconv
from .._errors import error_type
from .._genai import instrumentation_suppressed, to_json
from .._internal_errors import log_internal_error
from .._telemetry import Telemetry

__all__ = ["install", "uninstall"]

_OPERATION = semconv.GenAiOperationNameValues.EXECUTE_TOOL.value
_METHOD = "tools/call"

_telemetry: Telemetry | None = None
_original: Callable[..., Any] | None = None
_original_init: Callable[..., Any] | None = None
_original_post_writer: Callable[..., Any] | None = None

_transports: dict[int, StreamableHTTPTransport] = {}
"""``id(write stream)`` -> the streamable-HTTP transport writing it, while its ``post_writer`` runs."""
_session_streams: weakref.WeakKeyDictionary[Any, object] = weakref.WeakKeyDictionary()
"""Each ``ClientSession`` built while instrumented -> its write stream."""


def _init(self: Any, *args: Any, **kwargs: Any) -> None:
    _original_init(self, *args, **kwargs)  # type: ignore[misc]
    try:
        stream = kwargs.get("write_stream", args[1] if len(args) > 1 else None)
        if stream is not None:
            _session_streams[self] = stream
    except Exception:
        log_internal_error("mcp session init")


async def _post_writer(self: Any, *args: Any, **kwargs: Any) -> None:
    key: int | None = None
    try:
        stream = kwargs.get("write_stream", args[3] if len(args) > 3 else None)
        if stream is not None:
            key = id(stream)
            _transports[key] = self
    except Exception:
        log_internal_error("mcp transport post_writer")
    try:
        await _original_post_writer(self, *args, **kwargs)  # type: ignore[misc]
    finally:
        if key is not None:
            _transports.pop(key, None)


def _session_id(session: Any) -> str | None:
    stream = _session_streams.get(session)
    transport = _transports.get(id(stream)) if stream is not None else None
    session_id = getattr(transport, "session_id", None)
    return session_id if isinstance(session_id, str) else None


def _start(telemetry: Telemetry, session: Any, name: Any, arguments: Any) -> trace.Span | None:
    try:
        if instrumentation_suppressed():
            return None
        attributes: dict[str, Any] = {
            semconv.GEN_AI_OPERATION_NAME: _OPERATION,
            semconv.GEN_AI_TOOL_NAME: str(name),
            semconv.GEN_AI_TOOL_TYPE: "extension",
            semconv.MCP_METHOD_NAME: _METHOD,
        }
        session_id = _session_id(session)
        if session_id is not None:
            attributes[semconv.MCP_SESSION_ID] = session_id
        if telemetry.settings.capture_message_content.on_span and arguments is not None:
            attributes[semconv.GEN_AI_TOOL_CALL_ARGUMENTS] = to_json(arguments)
        return telemetry.tracer.start_span(f"{_OPERATION} {name}", kind=SpanKind.INTERNAL, attributes=attributes)
    except Exception:
        log_internal_error("mcp call_tool start")
        return None


async def _call_tool(self: Any, name: str, arguments: dict[str, Any] | None = None, *args: Any, **kwargs: Any) -> Any:
    telemetry = _telemetry
    span = _start(telemetry, self, name, arguments) if telemetry is not None else None
    if span is None:
        return await _original(self, name, arguments, *args, **kwargs)  # type: ignore[misc]
    with trace.use_span(span, end_on_exit=True, record_exception=False, set_status_on_exception=False):
        try:
            result = await _original(self, name, arguments, *args, **kwargs)  # type: ignore[misc]
        except BaseException as error:
            kind = error_type(error)
            span.set_attribute(semconv.ERROR_TYPE, kind)
            span.set_status(Status(StatusCode.ERROR, kind))
            raise
        try:
            if getattr(result, "is_error", False):
                span.set_attribute(semconv.ERROR_TYPE, "tool_error")
                span.set_status(Status(StatusCode.ERROR, "tool_error"))
            if telemetry.settings.capture_message_content.on_span:  # type: ignore[union-attr]
                content = getattr(result, "content", None)
                if content is not None:
                    span.set_attribute(
                        semconv.GEN_AI_TOOL_CALL_RESULT,
                        to_json([c.model_dump() if hasattr(c, "model_dump") else c for c in content]),
                    )
        except Exception:
            log_internal_error("mcp call_tool end")
        return result


def install(telemetry: Telemetry) -> None:
    global _telemetry, _original, _original_init, _original_post_writer
    if vars(ClientSession).get("call_tool") is not _call_tool:
        _original = ClientSession.call_tool
        ClientSession.call_tool = _call_tool  # type: ignore[method-assign,assignment]
    if vars(ClientSession).get("__init__") is not _init:
        _original_init = ClientSession.__init__
        ClientSession.__init__ = _init  # type: ignore[method-assign]
    if vars(StreamableHTTPTransport).get("post_writer") is not _post_writer:
        _original_post_writer = StreamableHTTPTransport.post_writer
        StreamableHTTPTransport.post_writer = _post_writer  # type: ignore[method-assign]
    _telemetry = telemetry


def uninstall() -> None:
    global _telemetry
    _telemetry = None
    if _original is not None and vars(ClientSession).get("call_tool") is _call_tool:
        ClientSession.call_tool = _original  # type: ignore[method-assign]
    if _original_init is not None and vars(ClientSession).get("__init__") is _init:
        ClientSession.__init__ = _original_init  # type: ignore[method-assign]
    if _original_post_writer is not None and vars(StreamableHTTPTransport).get("post_writer") is _post_writer:
        StreamableHTTPTransport.post_writer = _original_post_writer  # type: ignore[method-assign]
