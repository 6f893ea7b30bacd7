"""A Node.js service instrumented with the OpenTelemetry JS SDK sends GenAI spans to a real collector (issue 15).

``tests/js`` holds the JS producer, exporting over OTLP/HTTP (protobuf and JSON) and OTLP/gRPC.
``npm ci --prefix tests/js`` installs it; ``.ci/run`` does, and sets ``SPANLEDGER_REQUIRE_JS=1`` so that a
missing install fails instead of skipping. Its spans carry only the standard attributes; their usage facts,
token sums and cost estimates must equal those of spanledger's own spans for the same calls, and the agent
span that rolls the calls up is counted once, not twice.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
from decimal import Decimal
from pathlib import Path

import pytest
from collector_fixtures import collector_config, start_collector
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from prometheus_client.parser import text_string_to_metric_families
from spanledger import semconv
from spanledger_collector._cli import main

JS = Path(__file__).resolve().parent / "js"
NODE = shutil.which("node")
# The two chat calls the JS producer makes: (input tokens with cached ones, cached, output).
CALLS = [(1000, 200, 50), (500, 0, 25)]
PROTOCOLS = ("proto", "json", "grpc")


def _js_ready() -> None:
    reason = ""
    if NODE is None:
        reason = "node is not installed"
    elif not (JS / "node_modules" / "@opentelemetry" / "sdk-trace-base").is_dir():
        reason = f"the JS producer is not installed: run npm ci --prefix {JS}"
    if reason:
        if os.environ.get("SPANLEDGER_REQUIRE_JS"):
            pytest.fail(reason)
        pytest.skip(reason)


def _samples(exposition: str, name: str, **labels: str) -> list[float]:
    return [
        sample.value
        for family in text_string_to_metric_families(exposition)
        for sample in family.samples
        if sample.name == name and all(sample.labels.get(key) == value for key, value in labels.items())
    ]


def _token_usage(exposition: str) -> tuple[int, int]:
    """How many calls the input-token histogram observed, and their tokens."""
    input_type = {"gen_ai_token_type": "input"}
    count = _samples(exposition, "gen_ai_client_token_usage_count", **input_type)
    total = _samples(exposition, "gen_ai_client_token_usage_sum", **input_type)
    return int(sum(count)), int(sum(total))


def _spanledger_spans() -> list[object]:
    """The same two calls as spanledger's SDK records them (owner spans), for the comparison."""
    memory = InMemorySpanExporter()
    provider = TracerProvider(resource=Resource.create({semconv.SERVICE_NAME: "python-chat"}))
    provider.add_span_processor(SimpleSpanProcessor(memory))
    tracer = provider.get_tracer("spanledger")
    with tracer.start_as_current_span("workflow"):
        for input_tokens, cached, output_tokens in CALLS:
            attributes = {
                semconv.SPANLEDGER_USAGE_OWNER: True,
                semconv.GEN_AI_OPERATION_NAME: "chat",
                semconv.GEN_AI_PROVIDER_NAME: "openai",
                semconv.GEN_AI_REQUEST_MODEL: "gpt-4o-mini",
                semconv.GEN_AI_RESPONSE_MODEL: "gpt-4o-mini-2024-07-18",
                semconv.GEN_AI_USAGE_INPUT_TOKENS: input_tokens,
                semconv.GEN_AI_USAGE_CACHE_READ_INPUT_TOKENS: cached,
                semconv.GEN_AI_USAGE_OUTPUT_TOKENS: output_tokens,
            }
            with tracer.start_as_current_span("chat gpt-4o-mini", attributes=attributes):
                pass
    provider.shutdown()
    return list(memory.get_finished_spans())


def test_js_sdk_genai_spans_are_priced_like_spanledgers(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    _js_ready()
    assert NODE is not None
    config = collector_config(tmp_path)
    config["processors"]["spanledger_cost"] = {}
    config["service"]["pipelines"]["traces"]["processors"].append("spanledger_cost")
    own = _spanledger_spans()
    traces: dict[str, str] = {}
    with start_collector(tmp_path, config) as collector:
        for protocol in PROTOCOLS:
            endpoint = f"http://{collector.grpc_endpoint}" if protocol == "grpc" else collector.http_endpoint
            sent = subprocess.run(
                [NODE, str(JS / "send_genai_spans.js"), protocol, endpoint],
                capture_output=True,
                text=True,
                timeout=60,
                check=False,
            )
            assert sent.returncode == 0, sent.stderr
            traces[protocol] = json.loads(sent.stdout)["trace_id"]
        exporter = OTLPSpanExporter(endpoint=collector.http_endpoint + "/v1/traces")
        exporter.export(own)  # type: ignore[arg-type]
        exporter.shutdown()
        # Prometheus: every chat call observed once (4 sources x 2 calls), the agent roll-ups not at all.
        calls = 2 * (len(PROTOCOLS) + 1)
        deadline = time.monotonic() + 30
        while (tokens := _token_usage(collector.scrape()))[0] < calls and time.monotonic() < deadline:
            time.sleep(0.1)
        cost_series = _samples(collector.scrape(), "spanledger_cost_estimate_total")
    traces["spanledger"] = format(own[0].context.trace_id, "032x")  # type: ignore[attr-defined]

    rows = collector.query(
        "SELECT f.trace_id, s.name, f.meter, f.quantity, f.estimated_cost, f.currency, f.provider, f.model, "
        "f.service FROM usage_facts f JOIN spans s USING (trace_id, span_id) ORDER BY f.meter"
    )
    by_trace: dict[str, list[tuple[object, ...]]] = {}
    for row in rows:
        by_trace.setdefault(str(row[0]), []).append(row[1:])
    expected = {
        "llm.input_tokens": sum(Decimal(total - cached) for total, cached, _ in CALLS),
        "llm.cache_read_tokens": sum(Decimal(cached) for _, cached, _ in CALLS),
        "llm.output_tokens": sum(Decimal(output) for _, _, output in CALLS),
    }

    def sums(trace_id: str, column: int) -> dict[str, Decimal]:
        out: dict[str, Decimal] = {}
        for row in by_trace[trace_id]:
            out[str(row[1])] = out.get(str(row[1]), Decimal(0)) + Decimal(row[column])  # type: ignore[arg-type]
        return out

    spanledger_costs = sums(traces["spanledger"], 3)
    assert sums(traces["spanledger"], 2) == expected
    for protocol in PROTOCOLS:
        facts = by_trace[traces[protocol]]
        assert {row[0] for row in facts} == {"chat gpt-4o-mini"}, "the agent span's roll-up was counted"
        assert {(row[5], row[6]) for row in facts} == {("openai", "gpt-4o-mini-2024-07-18")}
        assert {row[7] for row in facts} == {f"node-chat-{protocol}"}
        assert sums(traces[protocol], 2) == expected
        assert all(row[3] is not None and row[4] == "USD" for row in facts)
        assert sums(traces[protocol], 3) == spanledger_costs

    assert tokens == (calls, sum(total for total, _, _ in CALLS) * (len(PROTOCOLS) + 1))
    stored_cost = sum(Decimal(row[3]) for facts in by_trace.values() for row in facts)  # type: ignore[arg-type]
    assert sum(cost_series) == pytest.approx(float(stored_cost), rel=1e-9)

    # The answers read the same facts: the trace's estimate is the spanledger trace's.
    store = ("--store", str(collector.store_path), "--collector", "none")
    estimates = {}
    for name, trace_id in traces.items():
        assert main(["trace", trace_id, *store, "--json"]) == 0
        estimates[name] = json.loads(capsys.readouterr().out)["totals"]["estimated_cost"]
    assert estimates["proto"] == estimates["json"] == estimates["grpc"] == estimates["spanledger"] != "0"
