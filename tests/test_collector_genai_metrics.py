"""The collector's Prometheus GenAI series derived from received LLM spans, streaming included."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from collector_fixtures import start_collector
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from spanledger import semconv


@pytest.mark.slow
def test_a_streamed_llm_span_feeds_duration_tokens_and_time_to_first_chunk(tmp_path: Path) -> None:
    with start_collector(tmp_path) as collector:
        provider = TracerProvider()
        provider.add_span_processor(
            SimpleSpanProcessor(OTLPSpanExporter(endpoint=f"{collector.http_endpoint}/v1/traces"))
        )
        span = provider.get_tracer("test").start_span("chat gpt-4o-mini")
        span.set_attributes(
            {
                semconv.SPANLEDGER_USAGE_OWNER: True,
                semconv.GEN_AI_OPERATION_NAME: "chat",
                semconv.GEN_AI_PROVIDER_NAME: "openai",
                semconv.GEN_AI_REQUEST_MODEL: "gpt-4o-mini",
                semconv.GEN_AI_REQUEST_STREAM: True,
                semconv.GEN_AI_USAGE_INPUT_TOKENS: 120,
                semconv.GEN_AI_USAGE_OUTPUT_TOKENS: 30,
                semconv.GEN_AI_RESPONSE_TIME_TO_FIRST_CHUNK: 0.25,
            }
        )
        span.end()
        provider.shutdown()

        first_chunk = semconv.METRIC_GEN_AI_CLIENT_OPERATION_TIME_TO_FIRST_CHUNK
        prefix = first_chunk.name.replace(".", "_") + "_seconds"
        deadline = time.monotonic() + 20
        while f"{prefix}_count" not in (exposition := collector.scrape()) and time.monotonic() < deadline:
            time.sleep(0.1)
    count = next(line for line in exposition.splitlines() if line.startswith(f"{prefix}_count{{"))
    assert 'gen_ai_request_model="gpt-4o-mini"' in count and count.endswith(" 1.0")
    assert next(line for line in exposition.splitlines() if line.startswith(f"{prefix}_sum{{")).endswith(" 0.25")
    assert "gen_ai_client_operation_duration_seconds_count{" in exposition
    assert 'gen_ai_token_type="output"' in exposition
