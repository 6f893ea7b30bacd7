"""Cost estimates at ingest: facts priced in the store, ``spanledger.cost.*`` on spans sent onward, and the
cost series in Prometheus with the tenant label capped."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest
from _otlp_downstream import http_downstream, wait_until
from collector_fixtures import collector_config, start_collector
from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter as GrpcSpanExporter
from opentelemetry.sdk.trace.export import SpanExportResult
from spanledger import semconv
from spanledger.semconv import SpanledgerMeterValues as Meter
from spanledger_collector._decode import attribute_dict
from test_collector_service import genai_trace


@pytest.mark.slow
def test_costs_are_stored_attached_onward_and_exposed(tmp_path: Path) -> None:
    with http_downstream() as downstream:
        config = collector_config(tmp_path)
        config["processors"]["spanledger_cost"] = {}
        config["processors"]["spanledger_usage"] = {"tenant_cardinality_limit": 1}
        config["exporters"]["otlphttp/downstream"] = {"endpoint": downstream.url}
        config["extensions"] = {"file_storage": {"directory": str(tmp_path / "queues")}}
        traces = config["service"]["pipelines"]["traces"]
        traces["processors"].append("spanledger_cost")
        traces["exporters"].append("otlphttp/downstream")
        config["service"]["pipelines"]["metrics"]["exporters"] = ["otlphttp/downstream"]
        spans = genai_trace(tenant="acme") + genai_trace(tenant="globex")
        with start_collector(tmp_path, config) as collector:
            exporter = GrpcSpanExporter(endpoint=collector.grpc_endpoint, insecure=True)
            assert exporter.export(spans) == SpanExportResult.SUCCESS
            exporter.shutdown()
            metrics = {"resourceMetrics": [{"scopeMetrics": [{"metrics": [{"name": "queue.depth", "gauge": {
                "dataPoints": [{"asInt": "3", "timeUnixNano": "1700000000000000000"}]}}]}]}]}  # fmt: skip
            assert httpx.post(collector.http_endpoint + "/v1/metrics", json=metrics).status_code == 200
            wait_until(lambda: len(downstream.span_ids()) == len(spans))
            wait_until(lambda: any(item.path == "/v1/metrics" for item in downstream.received))
            scrape = collector.scrape()
    forwarded = {
        span.name: attribute_dict(span.attributes)
        for request in downstream.traces()
        for resource in request.resource_spans
        for scope in resource.scope_spans
        for span in scope.spans
    }
    llm = forwarded["chat gpt-4o-mini"]
    assert llm[semconv.SPANLEDGER_COST_CURRENCY] == "USD"
    assert isinstance(llm[semconv.SPANLEDGER_COST_ESTIMATE], float) and llm[semconv.SPANLEDGER_COST_ESTIMATE] > 0
    assert llm[semconv.SPANLEDGER_COST_CATALOG_VERSION]
    assert semconv.SPANLEDGER_COST_ESTIMATE not in forwarded["workflow"]
    priced = collector.query(
        "SELECT meter, estimated_cost, currency, catalog_version, unpriced_reason FROM usage_facts WHERE meter = ?",
        Meter.LLM_OUTPUT_TOKENS.value,
    )
    assert len(priced) == 2
    for _, cost, currency, version, reason in priced:
        assert cost > 0 and currency == "USD" and version and reason is None
    # Anything without a price is unpriced with a reason, never zero (internet ingress really is free).
    unpriced = collector.query("SELECT meter, unpriced_reason FROM usage_facts WHERE estimated_cost IS NULL")
    assert {meter for meter, _ in unpriced} == {Meter.ENDPOINT_SECONDS.value}
    assert all(reason for _, reason in unpriced)
    free = collector.query("SELECT DISTINCT meter FROM usage_facts WHERE estimated_cost = 0")
    assert free == [(Meter.INGRESS_BYTES.value,)]
    (rollup,) = collector.query("SELECT estimated_cost FROM trace_rollups WHERE tenant = 'acme'")
    assert rollup[0] > 0
    assert 'spanledger_tenant_id="acme"' in scrape
    assert 'spanledger_tenant_id="other"' in scrape
    assert 'spanledger_tenant_id="globex"' not in scrape
    assert 'otelcol_exporter_sent_spans_total{exporter="otlphttp/downstream"}' in scrape
