"""Workflow and tenant attribution: ``with spanledger.workflow("answer-question", tenant="acme"):``.

A workflow is an INTERNAL span ``invoke_workflow {name}`` plus two W3C baggage entries
(``spanledger.workflow.name``, ``spanledger.tenant.id``) so the attribution crosses process boundaries
through any HTTP client that injects baggage. :class:`AttributionSpanProcessor` stamps both attributes
on every span started under a workflow, in this process or in one that extracted the baggage.

The processor's ``on_start`` runs for every span, so it reads one prebuilt attribute dict from a private
context key (set by ``workflow``) and only falls back to the baggage when that key is absent (a process
that received the workflow over the wire).
"""

from __future__ import annotations

from collections.abc import Callable
from types import TracebackType
from typing import Any, TypeVar

from opentelemetry import baggage, context, trace
from opentelemetry.sdk.trace import ReadableSpan, Span, SpanProcessor

from . import semconv
from ._decorating import run_inside
from ._errors import record_error
from ._internal_errors import internal_errors_logged, log_internal_error
from ._state import current_tracer

__all__ = ["AttributionSpanProcessor", "Workflow", "default_workflow", "workflow"]

F = TypeVar("F", bound=Callable[..., Any])

_ATTRIBUTION_KEY = context.create_key("spanledger-attribution")
_WORKFLOW = semconv.SPANLEDGER_WORKFLOW_NAME
_TENANT = semconv.SPANLEDGER_TENANT_ID


def _attribution_from(ctx: context.Context) -> dict[str, str] | None:
    attributes = ctx.get(_ATTRIBUTION_KEY)
    if attributes is not None:
        return attributes  # type: ignore[return-value]
    entries = baggage.get_all(ctx)
    if not entries:
        return None
    found = {key: str(entries[key]) for key in (_WORKFLOW, _TENANT) if key in entries}
    return found or None


def _attributed(ctx: context.Context, attributes: dict[str, str]) -> context.Context:
    """``ctx`` carrying ``attributes`` as the attribution (private key and W3C baggage)."""
    ctx = context.set_value(_ATTRIBUTION_KEY, attributes, ctx)
    for key, value in attributes.items():
        ctx = baggage.set_baggage(key, value, ctx)
    return ctx


def default_workflow(name: str, ctx: context.Context) -> tuple[context.Context, dict[str, str]] | None:
    """``ctx`` attributed to workflow ``name`` when no workflow is set in it yet (an agent run names its
    workflow after the agent), with the attribution; None when a workflow is already set."""
    current = _attribution_from(ctx) or {}
    if _WORKFLOW in current:
        return None
    attributes = {**current, _WORKFLOW: name}
    return _attributed(ctx, attributes), attributes


class AttributionSpanProcessor(SpanProcessor):
    """Stamps ``spanledger.workflow.name`` / ``spanledger.tenant.id`` from the context on each new span."""

    def on_start(self, span: Span, parent_context: context.Context | None = None) -> None:
        try:  # not internal_errors_logged(): a generator context manager would double this hot path's cost
            attributes = _attribution_from(parent_context if parent_context is not None else context.get_current())
            if attributes:
                span.set_attributes(attributes)
        except Exception:
            log_internal_error("workflow attribution")

    def on_end(self, span: ReadableSpan) -> None:
        pass

    def shutdown(self) -> None:
        pass

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return True


class Workflow:
    """A workflow scope; use as a context manager or a decorator (sync and async functions).

    Entering it yields the workflow span. Nested workflows replace the name and keep the outer tenant
    unless they name their own.
    """

    def __init__(self, name: str, *, tenant: str | None = None) -> None:
        self.name = name
        self.tenant = tenant
        self._scopes: list[tuple[object, trace.Span, object]] = []

    def __enter__(self) -> trace.Span:
        span: trace.Span = trace.INVALID_SPAN
        with internal_errors_logged("workflow start"):
            span = self._start()
        return span

    def _start(self) -> trace.Span:
        attributes = dict(_attribution_from(context.get_current()) or {})
        attributes[_WORKFLOW] = self.name
        if self.tenant is not None:
            attributes[_TENANT] = self.tenant
        baggage_token = context.attach(_attributed(context.get_current(), attributes))
        span = current_tracer().start_span(
            f"{semconv.GenAiOperationNameValues.INVOKE_WORKFLOW.value} {self.name}",
            kind=trace.SpanKind.INTERNAL,
            attributes={
                semconv.GEN_AI_OPERATION_NAME: semconv.GenAiOperationNameValues.INVOKE_WORKFLOW.value,
                semconv.GEN_AI_WORKFLOW_NAME: self.name,
                **attributes,
            },
        )
        span_token = context.attach(trace.set_span_in_context(span))
        self._scopes.append((baggage_token, span, span_token))
        return span

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if not self._scopes:
            return
        baggage_token, span, span_token = self._scopes.pop()
        with internal_errors_logged("workflow end"):
            if exc is not None:
                record_error(span, exc)
            span.end()
        with internal_errors_logged("workflow end"):
            context.detach(span_token)  # type: ignore[arg-type]
            context.detach(baggage_token)  # type: ignore[arg-type]

    def __call__(self, func: F) -> F:
        name, tenant = self.name, self.tenant
        return run_inside(lambda: Workflow(name, tenant=tenant), func, "@spanledger.workflow")


def workflow(name: str, *, tenant: str | None = None) -> Workflow:
    """Attribute everything inside to workflow ``name`` (and ``tenant``), here and downstream.

    ``with spanledger.workflow("answer-question", tenant="acme"):`` or ``@spanledger.workflow("x")``.
    """
    return Workflow(name, tenant=tenant)
