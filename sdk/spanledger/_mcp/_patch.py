"""The patch: ``mcp.client.session.ClientSession.call_tool``."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from mcp.client.session import ClientSession
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


def _start(telemetry: Telemetry, name: Any, arguments: Any) -> trace.Span | None:
    try:
        if instrumentation_suppressed():
            return None
        attributes: dict[str, Any] = {
            semconv.GEN_AI_OPERATION_NAME: _OPERATION,
            semconv.GEN_AI_TOOL_NAME: str(name),
            semconv.GEN_AI_TOOL_TYPE: "extension",
            semconv.MCP_METHOD_NAME: _METHOD,
        }
        if telemetry.settings.capture_message_content.on_span and arguments is not None:
            attributes[semconv.GEN_AI_TOOL_CALL_ARGUMENTS] = to_json(arguments)
        return telemetry.tracer.start_span(f"{_OPERATION} {name}", kind=SpanKind.INTERNAL, attributes=attributes)
    except Exception:
        log_internal_error("mcp call_tool start")
        return None


async def _call_tool(self: Any, name: str, arguments: dict[str, Any] | None = None, *args: Any, **kwargs: Any) -> Any:
    telemetry = _telemetry
    span = _start(telemetry, name, arguments) if telemetry is not None else None
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
    global _telemetry, _original
    if vars(ClientSession).get("call_tool") is not _call_tool:
        _original = ClientSession.call_tool
        ClientSession.call_tool = _call_tool  # type: ignore[method-assign,assignment]
    _telemetry = telemetry


def uninstall() -> None:
    global _telemetry
    _telemetry = None
    if _original is not None and vars(ClientSession).get("call_tool") is _call_tool:
        ClientSession.call_tool = _original  # type: ignore[method-assign]
