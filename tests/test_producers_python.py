"""The upstream OpenTelemetry OpenAI instrumentation, without spanledger's SDK, gives the same usage facts.

The same chat call is made twice against the local OpenAI wire server: once recorded by spanledger's SDK,
once by ``opentelemetry-instrumentation-genai-openai`` alone (spanledger's SDK uninstrumented, so nothing
marks the span as the owner). Both are exported over OTLP to a real collector; the LLM facts (tokens by
kind, model, provider, resource, estimate) must be the same (issue 15).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import spanledger
from collector_fixtures import collector_config, start_collector
from openai_compatible_server import OpenAICompatibleServer
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from spanledger import semconv
from test_openai import MESSAGES, Recorded, client_for


@pytest.fixture(scope="module")
def server() -> Iterator[OpenAICompatibleServer]:
    with OpenAICompatibleServer() as running:
        yield running


def _spanledger_call(server: OpenAICompatibleServer) -> list[ReadableSpan]:
    recorded = Recorded()
    try:
        client_for(server).chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)
        return list(recorded.exporter.get_finished_spans())
    finally:
        recorded.handle.shutdown()


def _upstream_call(server: OpenAICompatibleServer) -> list[ReadableSpan]:
    from opentelemetry.instrumentation.genai.openai import OpenAIInstrumentor

    memory = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(memory))
    instrumentor = OpenAIInstrumentor()
    spanledger.uninstrument()
    instrumentor.instrument(tracer_provider=provider)
    try:
        client_for(server).chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)
    finally:
        instrumentor.uninstrument()
        spanledger.instrument()
    provider.shutdown()
    return list(memory.get_finished_spans())


def test_upstream_openai_spans_give_spanledgers_facts(tmp_path: Path, server: OpenAICompatibleServer) -> None:
    own = _spanledger_call(server)
    upstream = _upstream_call(server)
    (llm,) = upstream
    assert semconv.SPANLEDGER_USAGE_OWNER not in (llm.attributes or {}), "spanledger's SDK marked the span"
    config = collector_config(tmp_path)
    config["processors"]["spanledger_cost"] = {}
    config["service"]["pipelines"]["traces"]["processors"].append("spanledger_cost")
    with start_collector(tmp_path, config) as collector:
        exporter = OTLPSpanExporter(endpoint=collector.http_endpoint + "/v1/traces")
        for spans in (own, upstream):
            exporter.export(spans)
        exporter.shutdown()

    def facts(spans: list[ReadableSpan]) -> set[tuple[Any, ...]]:
        trace_id = format(spans[0].context.trace_id, "032x")
        rows = collector.query(
            "SELECT meter, quantity, unit, model, provider, resource_id, resource_type, region, estimated_cost, "
            "currency FROM usage_facts WHERE trace_id = ? AND meter LIKE 'llm.%'",
            trace_id,
        )
        return set(rows)

    expected = facts(own)
    assert {row[0] for row in expected} == {
        "llm.input_tokens",
        "llm.cache_read_tokens",
        "llm.cache_write_tokens",
        "llm.output_tokens",
    }
    assert facts(upstream) == expected
