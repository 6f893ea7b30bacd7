"""Nothing acknowledged is lost: kill -9 during load, and a downstream collector that is down, then back.

Clients are the OTel SDK's own OTLP exporters; the collector is the real ``spanledger collector`` process;
downstream is a real OTLP/HTTP server or a second collector instance.
"""

from __future__ import annotations

import re
import threading
import time
from pathlib import Path
from typing import Any

import pytest
from _otlp_downstream import (
    ACCESS_KEY,
    SECRET_KEY,
    SESSION_TOKEN,
    free_port,
    http_downstream,
    verify_sigv4,
    wait_until,
)
from collector_fixtures import collector_config, launch, start_collector
from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter as GrpcSpanExporter
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter as HttpSpanExporter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor, SpanExportResult
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from spanledger import semconv

FAST_RETRY = {"initial_interval": "50ms", "max_interval": "200ms", "max_elapsed_time": 0}


def span_batches(batches: int, per_batch: int) -> list[list[ReadableSpan]]:
    memory = InMemorySpanExporter()
    provider = TracerProvider(resource=Resource.create({semconv.SERVICE_NAME: "load"}))
    provider.add_span_processor(SimpleSpanProcessor(memory))
    tracer = provider.get_tracer("load")
    attributes = {semconv.GEN_AI_OPERATION_NAME: "chat", semconv.GEN_AI_REQUEST_MODEL: "gpt-4o-mini"}
    for _ in range(batches * per_batch):
        with tracer.start_as_current_span("chat gpt-4o-mini", attributes=attributes):
            pass
    provider.shutdown()
    spans = list(memory.get_finished_spans())
    return [spans[index : index + per_batch] for index in range(0, len(spans), per_batch)]


def span_id(span: ReadableSpan) -> int:
    assert span.context is not None
    return span.context.span_id


def with_exporter(tmp_path: Path, exporter_id: str, exporter: dict[str, Any], *, store: bool = False) -> dict[str, Any]:
    config = collector_config(tmp_path, store=store)
    config["extensions"] = {"file_storage": {"directory": str(tmp_path / "queues")}}
    config["exporters"][exporter_id] = exporter
    config["service"]["pipelines"]["traces"]["exporters"].append(exporter_id)
    return config


@pytest.mark.slow
def test_kill_9_during_load_then_restart_delivers_every_acknowledged_span(tmp_path: Path) -> None:
    batches = span_batches(300, 20)
    with http_downstream() as downstream:
        # The downstream refuses a while first, so there is a backlog on disk when the collector dies.
        downstream.behaviour.responses = [(503, {"Retry-After": "0"}, b"")] * 40
        config = with_exporter(
            tmp_path, "otlphttp/downstream", {"endpoint": downstream.url, "retry_on_failure": FAST_RETRY}
        )
        collector = launch(tmp_path, config)
        client = GrpcSpanExporter(endpoint=collector.grpc_endpoint, insecure=True, timeout=2)
        acknowledged: set[int] = set()
        killed = threading.Event()

        def load() -> None:
            for batch in batches:
                if killed.is_set():
                    return
                if client.export(batch) == SpanExportResult.SUCCESS:
                    acknowledged.update(span_id(span) for span in batch)

        sender = threading.Thread(target=load)
        sender.start()
        wait_until(lambda: len(acknowledged) >= 100 * 20, timeout=120)
        collector.process.kill()  # SIGKILL: no flush, no shutdown
        collector.process.wait()
        killed.set()
        sender.join()
        client.shutdown()
        delivered_before_restart = set(downstream.span_ids())
        assert acknowledged - delivered_before_restart, "the test needs a backlog at kill time"

        with start_collector(tmp_path, config):
            wait_until(lambda: acknowledged <= set(downstream.span_ids()), timeout=120)


def metric_value(scrape: str, name: str, exporter_id: str) -> float:
    match = re.search(rf'^{name}\{{exporter="{re.escape(exporter_id)}"\}} (\S+)$', scrape, re.MULTILINE)
    return float(match.group(1)) if match else 0.0


@pytest.mark.slow
def test_downstream_collector_down_for_a_while_then_back(tmp_path: Path) -> None:
    downstream_port = free_port()
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    config = with_exporter(
        tmp_path / "a",
        "otlp/b",
        {"endpoint": f"127.0.0.1:{downstream_port}", "tls": {"insecure": True}, "retry_on_failure": FAST_RETRY},
    )
    batches = span_batches(30, 10)
    sent = {f"{span_id(span):016x}" for batch in batches for span in batch}
    with start_collector(tmp_path / "a", config) as upstream:
        client = HttpSpanExporter(endpoint=upstream.http_endpoint + "/v1/traces")
        for batch in batches:
            assert client.export(batch) == SpanExportResult.SUCCESS
        client.shutdown()
        time.sleep(0.5)  # the downstream stays down while the upstream retries
        scrape = upstream.scrape()
        assert metric_value(scrape, "otelcol_exporter_queue_size", "otlp/b") == len(batches)
        assert metric_value(scrape, "otelcol_exporter_sent_spans_total", "otlp/b") == 0

        downstream_config = collector_config(tmp_path / "b")
        downstream_config["receivers"]["otlp"]["protocols"]["grpc"]["endpoint"] = f"127.0.0.1:{downstream_port}"
        downstream = launch(tmp_path / "b", downstream_config)
        try:
            wait_until(
                lambda: metric_value(upstream.scrape(), "otelcol_exporter_sent_spans_total", "otlp/b") == len(sent),
                timeout=120,
            )
            # Sent items leave the on-disk queue just after they are counted (deletes are not fsync'd one by one).
            wait_until(
                lambda: metric_value(upstream.scrape(), "otelcol_exporter_queue_size", "otlp/b") == 0, timeout=30
            )
        finally:
            assert downstream.stop() == 0
    assert {row[0] for row in downstream.query("SELECT span_id FROM spans")} == sent


@pytest.mark.slow
def test_fan_out_to_datadog_style_and_aws_destinations(tmp_path: Path) -> None:
    batches = span_batches(5, 10)
    sent = sorted(span_id(span) for batch in batches for span in batch)
    with http_downstream() as datadog, http_downstream() as xray:
        config = with_exporter(
            tmp_path,
            "otlphttp/datadog",
            {
                "traces_endpoint": f"{datadog.url}/v1/traces",
                "headers": {"dd-api-key": "${env:DD_API_KEY}", "dd-otlp-source": "llmobs"},
            },
        )
        config["exporters"]["awsotlp/xray"] = {"region": "us-west-2", "traces_endpoint": f"{xray.url}/v1/traces"}
        config["service"]["pipelines"]["traces"]["exporters"].append("awsotlp/xray")
        env = {
            "DD_API_KEY": "dd-secret",
            "AWS_ACCESS_KEY_ID": ACCESS_KEY,
            "AWS_SECRET_ACCESS_KEY": SECRET_KEY,
            "AWS_SESSION_TOKEN": SESSION_TOKEN,
            "AWS_CONFIG_FILE": str(tmp_path / "none"),
            "AWS_SHARED_CREDENTIALS_FILE": str(tmp_path / "none"),
            "AWS_EC2_METADATA_DISABLED": "true",
        }
        with start_collector(tmp_path, config, env=env) as collector:
            client = GrpcSpanExporter(endpoint=collector.grpc_endpoint, insecure=True)
            for batch in batches:
                assert client.export(batch) == SpanExportResult.SUCCESS
            client.shutdown()
            wait_until(lambda: sorted(datadog.span_ids()) == sent and sorted(xray.span_ids()) == sent)
        assert all(item.headers["dd-api-key"] == "dd-secret" for item in datadog.received)
        assert "dd-secret" not in collector.log
        assert all(
            verify_sigv4(item, f"{xray.url}/v1/traces", service="xray", region="us-west-2") for item in xray.received
        )
