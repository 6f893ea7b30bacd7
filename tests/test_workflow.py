"""spanledger.workflow(): the workflow span, and workflow/tenant on every span, here and downstream."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import spanledger
from conftest import Capture
from opentelemetry import baggage, context, propagate, trace
from otlp_receiver import OtlpHttpReceiver
from spanledger import semconv

WORKFLOW = semconv.SPANLEDGER_WORKFLOW_NAME
TENANT = semconv.SPANLEDGER_TENANT_ID
APPS = Path(__file__).resolve().parent / "apps"


def test_workflow_span_and_children(capture: Capture) -> None:
    tracer = trace.get_tracer("test")
    with spanledger.workflow("answer-question", tenant="acme") as span:
        assert span.is_recording()
        assert baggage.get_baggage(WORKFLOW) == "answer-question"
        assert baggage.get_baggage(TENANT) == "acme"
        with tracer.start_as_current_span("retrieve"), tracer.start_as_current_span("embed"):
            pass
    with tracer.start_as_current_span("after"):
        pass
    assert baggage.get_baggage(WORKFLOW) is None

    root = capture.span("invoke_workflow answer-question")
    assert root.kind == trace.SpanKind.INTERNAL
    assert root.attributes is not None
    assert root.attributes[semconv.GEN_AI_OPERATION_NAME] == "invoke_workflow"
    assert root.attributes[semconv.GEN_AI_WORKFLOW_NAME] == "answer-question"
    assert root.attributes[WORKFLOW] == "answer-question"
    assert root.attributes[TENANT] == "acme"
    for name in ("retrieve", "embed"):
        attributes = capture.span(name).attributes
        assert attributes is not None
        assert (attributes[WORKFLOW], attributes[TENANT]) == ("answer-question", "acme")
    after = capture.span("after").attributes
    assert after is not None and WORKFLOW not in after and TENANT not in after


def test_nested_workflow_keeps_outer_tenant(capture: Capture) -> None:
    tracer = trace.get_tracer("test")
    with spanledger.workflow("outer", tenant="acme"), spanledger.workflow("inner"), tracer.start_as_current_span("job"):
        pass
    work = capture.span("job").attributes
    assert work is not None
    assert (work[WORKFLOW], work[TENANT]) == ("inner", "acme")
    assert capture.span("invoke_workflow inner").parent is not None


def test_decorator_sync_and_async(capture: Capture) -> None:
    @spanledger.workflow("sync-job", tenant="t1")
    def sync_job(x: int) -> int:
        return x * 2

    @spanledger.workflow("async-job", tenant="t2")
    async def async_job(x: int) -> int:
        await asyncio.sleep(0)
        with trace.get_tracer("test").start_as_current_span("awaited"):
            return x + 1

    assert sync_job(21) == 42
    assert sync_job(1) == 2
    assert asyncio.run(async_job(41)) == 42
    assert sync_job.__name__ == "sync_job"
    assert [span.name for span in capture.spans()].count("invoke_workflow sync-job") == 2
    awaited = capture.span("awaited").attributes
    assert awaited is not None
    assert (awaited[WORKFLOW], awaited[TENANT]) == ("async-job", "t2")


def test_concurrent_async_workflows_do_not_mix(capture: Capture) -> None:
    async def handle(tenant: str) -> None:
        with spanledger.workflow("serve", tenant=tenant):
            await asyncio.sleep(0.01)
            with trace.get_tracer("test").start_as_current_span(f"work-{tenant}"):
                await asyncio.sleep(0)

    async def main() -> None:
        await asyncio.gather(*(handle(f"tenant-{i}") for i in range(5)))

    asyncio.run(main())
    for i in range(5):
        attributes = capture.span(f"work-tenant-{i}").attributes
        assert attributes is not None and attributes[TENANT] == f"tenant-{i}"


def test_exception_propagates_unchanged_and_marks_the_span(capture: Capture) -> None:
    error = KeyError("missing")
    with pytest.raises(KeyError) as raised, spanledger.workflow("fails"):
        raise error
    assert raised.value is error
    span = capture.span("invoke_workflow fails")
    assert span.status.status_code == trace.StatusCode.ERROR
    assert span.attributes is not None and span.attributes[semconv.ERROR_TYPE] == "KeyError"
    assert context.get_current() == context.Context()


def test_generators_are_refused_at_decoration() -> None:
    with pytest.raises(TypeError, match="generator"):

        @spanledger.workflow("gen")
        def numbers() -> Iterator[int]:
            yield 1


def test_works_without_configure() -> None:
    with spanledger.workflow("unconfigured", tenant="acme") as span:
        assert baggage.get_baggage(TENANT) == "acme"
    assert not span.is_recording()


def test_default_propagators_carry_trace_context_and_baggage() -> None:
    assert {"traceparent", "baggage"} <= propagate.get_global_textmap().fields


def test_attribution_from_extracted_baggage(capture: Capture) -> None:
    """A span started in a context extracted from headers (another service) is attributed too."""
    headers: dict[str, str] = {}
    with spanledger.workflow("upstream", tenant="acme"):
        propagate.inject(headers)
    assert "baggage" in headers
    token = context.attach(propagate.extract(headers))  # what a server instrumentation does
    try:
        tracer = trace.get_tracer("test")
        with tracer.start_as_current_span("server", kind=trace.SpanKind.SERVER), tracer.start_as_current_span("child"):
            pass
    finally:
        context.detach(token)
    for name in ("server", "child"):
        attributes = capture.span(name).attributes
        assert attributes is not None
        assert (attributes[WORKFLOW], attributes[TENANT]) == ("upstream", "acme")


@pytest.mark.timeout(90)
def test_workflow_crosses_process_boundary_over_instrumented_httpx(capture: Capture) -> None:
    """Real HTTP to a service in another process, run under ``spanledger-run`` and exporting over OTLP."""
    with OtlpHttpReceiver() as receiver:
        env = {
            **os.environ,
            "OTEL_EXPORTER_OTLP_ENDPOINT": receiver.endpoint,
            "OTEL_SERVICE_NAME": "downstream",
            "OTEL_BSP_SCHEDULE_DELAY": "50",
            "SPANLEDGER_METRICS": "false",
        }
        run = [sys.executable, "-m", "spanledger._run", sys.executable, str(APPS / "downstream_service.py")]
        service = subprocess.Popen(run, env=env, stdout=subprocess.PIPE, text=True)
        try:
            assert service.stdout is not None
            port = int(service.stdout.readline())
            with spanledger.workflow("answer-question", tenant="acme"):
                response = httpx.get(f"http://127.0.0.1:{port}/answer")
            assert response.text == "forty-two"
            downstream = {span.name: span for span in receiver.received.wait_for_spans(2)}
        finally:
            service.terminate()
            service.wait(timeout=30)
    upstream_root = capture.span("invoke_workflow answer-question")
    assert set(downstream) == {"GET /answer", "lookup"}
    for span in downstream.values():
        assert span.resource[semconv.SERVICE_NAME] == "downstream"
        assert span.trace_id == format(upstream_root.context.trace_id, "032x")
        assert (span.attributes[WORKFLOW], span.attributes[TENANT]) == ("answer-question", "acme")
