"""The tracing processor spanledger registers with the Agents SDK (once per process; switched on and off).

The SDK calls ``on_span_start`` / ``on_span_end`` synchronously where its span starts and ends, in the
task that runs it, so the OTel context can be attached there and detached at the end. Should an end
arrive in another context (it has not been seen), the span still ends and nothing is detached there.

The function span does not carry the tool call's id (``gen_ai.tool.call.id``); the SDK hands it to the
tool in the ``ToolContext`` it builds, with the public ``ToolContext.from_agent_context``, inside the
function span. That classmethod is wrapped: the id goes on the open span for the current function span
(the first context built there, which is the span's own call). Should the SDK build the context
elsewhere, no id is recorded.
"""

from __future__ import annotations

import threading
from typing import Any

from agents import add_trace_processor
from agents.tool_context import ToolContext
from agents.tracing import AgentSpanData, FunctionSpanData, TracingProcessor, get_current_span
from opentelemetry import context, trace
from opentelemetry.trace import Span, SpanKind, Status, StatusCode

from .. import semconv
from .._internal_errors import log_internal_error
from .._telemetry import Telemetry
from .._workflow import default_workflow

__all__ = ["SpanledgerTracingProcessor", "install", "uninstall"]

_Operation = semconv.GenAiOperationNameValues


class SpanledgerTracingProcessor(TracingProcessor):
    """Agents SDK spans -> GenAI ``invoke_agent`` / ``execute_tool`` OTel spans."""

    def __init__(self) -> None:
        self.telemetry: Telemetry | None = None
        self._open: dict[str, tuple[Span, object]] = {}
        self._with_call_id: set[str] = set()
        self._lock = threading.Lock()

    def on_trace_start(self, trace: Any) -> None:
        pass

    def on_trace_end(self, trace: Any) -> None:
        pass

    def on_span_start(self, span: Any) -> None:
        telemetry = self.telemetry
        if telemetry is None:
            return
        try:
            data = span.span_data
            ctx = context.get_current()
            if isinstance(data, AgentSpanData):
                operation = _Operation.INVOKE_AGENT.value
                attributes: dict[str, Any] = {
                    semconv.GEN_AI_OPERATION_NAME: operation,
                    semconv.GEN_AI_PROVIDER_NAME: semconv.GenAiProviderNameValues.OPENAI.value,
                    semconv.GEN_AI_AGENT_NAME: data.name,
                }
                attributed = default_workflow(data.name, ctx)
                if attributed is not None:
                    ctx, workflow_attributes = attributed
                    attributes.update(workflow_attributes)
            elif isinstance(data, FunctionSpanData):
                operation = _Operation.EXECUTE_TOOL.value
                attributes = {
                    semconv.GEN_AI_OPERATION_NAME: operation,
                    semconv.GEN_AI_TOOL_NAME: data.name,
                    semconv.GEN_AI_TOOL_TYPE: "function",
                }
                if data.mcp_data:
                    attributes[semconv.MCP_METHOD_NAME] = "tools/call"
            else:
                return
            otel_span = telemetry.tracer.start_span(
                f"{operation} {data.name}", context=ctx, kind=SpanKind.INTERNAL, attributes=attributes
            )
            token = context.attach(trace.set_span_in_context(otel_span, ctx))
            with self._lock:
                self._open[span.span_id] = (otel_span, token)
        except Exception:
            log_internal_error("openai-agents span start")

    def on_tool_context(self, tool_context: Any) -> None:
        """Record ``tool_context``'s call id on the open span of the current function span, if not yet set."""
        if self.telemetry is None:
            return
        try:
            span = get_current_span()
            if span is None or not isinstance(span.span_data, FunctionSpanData):
                return
            call_id = getattr(tool_context, "tool_call_id", None)
            if not isinstance(call_id, str) or not call_id:
                return
            with self._lock:
                found = self._open.get(span.span_id)
                if found is None or span.span_id in self._with_call_id:
                    return
                self._with_call_id.add(span.span_id)
            found[0].set_attribute(semconv.GEN_AI_TOOL_CALL_ID, call_id)
        except Exception:
            log_internal_error("openai-agents tool context")

    def on_span_end(self, span: Any) -> None:
        with self._lock:
            found = self._open.pop(span.span_id, None)
            self._with_call_id.discard(span.span_id)
        if found is None:
            return
        otel_span, token = found
        try:
            data = span.span_data
            telemetry = self.telemetry
            if (
                isinstance(data, FunctionSpanData)
                and telemetry is not None
                and telemetry.settings.capture_message_content.on_span
            ):
                if data.input is not None:
                    otel_span.set_attribute(semconv.GEN_AI_TOOL_CALL_ARGUMENTS, str(data.input))
                if data.output is not None:
                    otel_span.set_attribute(semconv.GEN_AI_TOOL_CALL_RESULT, str(data.output))
            error = span.error
            if error:
                message = str(error.get("message") or "error") if isinstance(error, dict) else str(error)
                otel_span.set_attribute(semconv.ERROR_TYPE, message)
                otel_span.set_status(Status(StatusCode.ERROR, message))
            if trace.get_current_span() is otel_span:
                context.detach(token)  # type: ignore[arg-type]
        except Exception:
            log_internal_error("openai-agents span end")
        finally:
            otel_span.end()

    def shutdown(self) -> None:
        pass

    def force_flush(self) -> None:
        pass


_processor: SpanledgerTracingProcessor | None = None
_original_from_agent_context: Any = None


def _from_agent_context(cls: Any, *args: Any, **kwargs: Any) -> Any:
    tool_context = _original_from_agent_context.__func__(cls, *args, **kwargs)
    processor = _processor
    if processor is not None:
        processor.on_tool_context(tool_context)
    return tool_context


def install(telemetry: Telemetry) -> None:
    """Register a processor for ``telemetry``.

    The SDK cannot remove a processor (only replace them all, as ``set_trace_processors`` does, which also
    drops ours), so each ``instrument()`` registers a fresh one and switches the previous one off.
    """
    global _processor, _original_from_agent_context
    if _processor is not None:
        _processor.telemetry = None
    _processor = SpanledgerTracingProcessor()
    _processor.telemetry = telemetry
    add_trace_processor(_processor)
    current = vars(ToolContext).get("from_agent_context")
    if isinstance(current, classmethod) and current.__func__ is not _from_agent_context:
        _original_from_agent_context = current
        ToolContext.from_agent_context = classmethod(_from_agent_context)  # type: ignore[method-assign,assignment]


def uninstall() -> None:
    if _processor is not None:
        _processor.telemetry = None
    current = vars(ToolContext).get("from_agent_context")
    if isinstance(current, classmethod) and current.__func__ is _from_agent_context:
        ToolContext.from_agent_context = _original_from_agent_context  # type: ignore[method-assign]
