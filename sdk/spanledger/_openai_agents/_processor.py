"""The tracing processor spanledger registers with the Agents SDK (once per process; switched on and off).

The SDK calls ``on_span_start`` / ``on_span_end`` synchronously where its span starts and ends, in the
task that runs it, so the OTel context can be attached there and detached at the end. Should an end
arrive in another context (it has not been seen), the span still ends and nothing is detached there.
"""

from __future__ import annotations

import threading
from typing import Any

from agents import add_trace_processor
from agents.tracing import AgentSpanData, FunctionSpanData, TracingProcessor
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

    def on_span_end(self, span: Any) -> None:
        with self._lock:
            found = self._open.pop(span.span_id, None)
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


def install(telemetry: Telemetry) -> None:
    """Register a processor for ``telemetry``.

    The SDK cannot remove a processor (only replace them all, as ``set_trace_processors`` does, which also
    drops ours), so each ``instrument()`` registers a fresh one and switches the previous one off.
    """
    global _processor
    if _processor is not None:
        _processor.telemetry = None
    _processor = SpanledgerTracingProcessor()
    _processor.telemetry = telemetry
    add_trace_processor(_processor)


def uninstall() -> None:
    if _processor is not None:
        _processor.telemetry = None
