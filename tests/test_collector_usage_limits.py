"""What clients send cannot grow ``/metrics`` without bound, nor put values the conventions forbid into it or
into the store (issue 19 items 2 and 4), through a real collector, the OTel SDK's exporters and real sockets."""

from __future__ import annotations

import time
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from collector_fixtures import collector_config, start_collector
from fixtures.usage_store import open_usage_store
from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter as GrpcSpanExporter
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor, SpanExportResult
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families
from spanledger import semconv
from spanledger_collector._decode import MAX_TOKENS
from spanledger_collector._telemetry import OTHER, label_name, prometheus_name
from spanledger_collector.billing.metrics import create_collector
from test_billing_answers import pytestmark as needs_focus_sample
from test_billing_answers import store_path  # noqa: F401  (the fixture: a store with an allocated bill)

TOKEN_USAGE = prometheus_name(semconv.METRIC_GEN_AI_CLIENT_TOKEN_USAGE)
DURATION = prometheus_name(semconv.METRIC_GEN_AI_CLIENT_OPERATION_DURATION)
REFUSED = prometheus_name(semconv.METRIC_SPANLEDGER_USAGE_REFUSED_VALUES)
MODEL = label_name(semconv.GEN_AI_REQUEST_MODEL)
TOKEN_TYPE = label_name(semconv.GEN_AI_TOKEN_TYPE)


def llm_spans(attributes: list[dict[str, Any]]) -> list[ReadableSpan]:
    memory = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(memory))
    tracer = provider.get_tracer("test")
    for extra in attributes:
        span = tracer.start_span("chat")
        span.set_attributes(
            {
                semconv.SPANLEDGER_USAGE_OWNER: True,
                semconv.GEN_AI_OPERATION_NAME: "chat",
                semconv.GEN_AI_PROVIDER_NAME: "openai",
                semconv.GEN_AI_REQUEST_MODEL: "gpt-4o-mini",
                **extra,
            }
        )
        span.end()
    provider.shutdown()
    return list(memory.get_finished_spans())


def samples(exposition: str, name: str) -> list[tuple[dict[str, str], float]]:
    return [
        (sample.labels, sample.value)
        for family in text_string_to_metric_families(exposition)
        for sample in family.samples
        if sample.name == name
    ]


def scrape_until(collector: Any, done: Callable[[str], bool], timeout: float = 60) -> str:
    """The first scrape ``done`` accepts (usage is recorded once the store writer has taken the request)."""
    deadline = time.monotonic() + timeout
    while not done(exposition := collector.scrape()):
        assert time.monotonic() < deadline, "the usage series never reached the expected totals"
        time.sleep(0.2)
    return exposition


def test_token_values_the_conventions_do_not_allow_reach_neither_store_nor_metrics(tmp_path: Path) -> None:
    bad = [-5, 2**63 - 1, MAX_TOKENS + 1, 0.5, "12", True]
    spans = llm_spans(
        [{semconv.GEN_AI_USAGE_INPUT_TOKENS: 100, semconv.GEN_AI_USAGE_OUTPUT_TOKENS: 10}]
        + [{semconv.GEN_AI_USAGE_INPUT_TOKENS: value, semconv.GEN_AI_USAGE_OUTPUT_TOKENS: value} for value in bad]
    )
    with start_collector(tmp_path) as collector:
        exporter = GrpcSpanExporter(endpoint=collector.grpc_endpoint, insecure=True)
        assert exporter.export(spans) == SpanExportResult.SUCCESS
        exporter.shutdown()
        exposition = scrape_until(collector, lambda text: f"{REFUSED}_total{{" in text)
    token_sums = {labels[TOKEN_TYPE]: value for labels, value in samples(exposition, f"{TOKEN_USAGE}_sum")}
    token_counts = {labels[TOKEN_TYPE]: value for labels, value in samples(exposition, f"{TOKEN_USAGE}_count")}
    assert token_sums == {"input": 100.0, "output": 10.0}, "a refused value reached the token histogram"
    assert token_counts == {"input": 1.0, "output": 1.0}
    refused = {labels[label_name(semconv.SPANLEDGER_USAGE_ATTRIBUTE)]: value for labels, value in samples(
        exposition, f"{REFUSED}_total"
    )}  # fmt: skip
    assert refused == {
        semconv.GEN_AI_USAGE_INPUT_TOKENS: len(bad),
        semconv.GEN_AI_USAGE_OUTPUT_TOKENS: len(bad),
    }
    # Every span is kept (the refusal costs only the value); only the valid counts became usage facts.
    assert collector.query("SELECT count(*) FROM spans") == [(len(spans),)]
    facts = collector.query("SELECT meter, quantity FROM usage_facts ORDER BY meter")
    assert facts == [("llm.input_tokens", Decimal(100)), ("llm.output_tokens", Decimal(10))]


def test_fifty_thousand_model_names_keep_metrics_bounded_and_other_carries_the_rest(tmp_path: Path) -> None:
    models = 50_000
    limit = 20
    config = collector_config(tmp_path)
    config["processors"]["spanledger_usage"] = {"label_cardinality_limit": limit}
    spans = llm_spans(
        [
            {
                semconv.GEN_AI_REQUEST_MODEL: f"model-{n}",
                semconv.GEN_AI_RESPONSE_MODEL: f"model-{n}-2026-01-01",
                semconv.SERVER_ADDRESS: f"host-{n}.example",
                semconv.ERROR_TYPE: f"error-{n}",
                semconv.GEN_AI_USAGE_INPUT_TOKENS: 3,
            }
            for n in range(models)
        ]
    )
    with start_collector(tmp_path, config) as collector:
        exporter = GrpcSpanExporter(endpoint=collector.grpc_endpoint, insecure=True)
        for start in range(0, models, 2000):
            assert exporter.export(spans[start : start + 2000]) == SpanExportResult.SUCCESS
        exporter.shutdown()
        exposition = scrape_until(
            collector, lambda text: sum(value for _, value in samples(text, f"{DURATION}_count")) >= models
        )
    counts = samples(exposition, f"{TOKEN_USAGE}_count")
    sums = samples(exposition, f"{TOKEN_USAGE}_sum")
    # The first `limit` models keep their label; the other 49,980 share one series, and nothing is lost.
    assert len(counts) == limit + 1
    by_model = {labels[MODEL]: value for labels, value in counts}
    assert by_model[OTHER] == models - limit
    assert sum(by_model.values()) == models
    assert sum(value for _, value in sums) == 3 * models
    assert len(samples(exposition, f"{DURATION}_count")) == limit + 1
    assert len(exposition) < 1_000_000, f"/metrics is {len(exposition)} bytes"


@needs_focus_sample
def test_billing_gauges_cap_the_labels_from_span_data_keeping_the_totals(store_path: Path) -> None:  # noqa: F811
    store = open_usage_store(store_path)
    try:
        expositions = []
        for limit in (100, 0):
            registry = CollectorRegistry()
            registry.register(create_collector(store, label_limit=limit))
            expositions.append(generate_latest(registry).decode())
    finally:
        store.close()
    uncapped, capped = (samples(text, prometheus_name(semconv.METRIC_SPANLEDGER_BILLING_COST)) for text in expositions)
    workflow, model = label_name(semconv.SPANLEDGER_WORKFLOW_NAME), label_name(semconv.GEN_AI_REQUEST_MODEL)
    assert {labels[workflow] for labels, _ in uncapped} - {""}, "the fixture has workflows"
    assert {labels[workflow] for labels, _ in capped} <= {"", OTHER}
    assert {labels[model] for labels, _ in capped} <= {"", OTHER}
    assert sum(value for _, value in capped) == pytest.approx(sum(value for _, value in uncapped))
