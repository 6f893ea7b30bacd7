"""The collector end to end: the OTel SDK's own OTLP exporters -> a collector subprocess -> its DuckDB store."""

from __future__ import annotations

import json
import os
import signal
import struct
import threading
import time
from decimal import Decimal
from pathlib import Path
from typing import Any

import grpc
import pytest
from collector_fixtures import collector_config, launch, start_collector
from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter as GrpcSpanExporter
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter as HttpSpanExporter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor, SpanExportResult
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from spanledger import semconv
from spanledger.semconv import SpanledgerMeterValues as Meter

ROOT = Path(__file__).resolve().parent.parent
NOW_NS = time.time_ns()


def genai_trace(*, workflow: str = "answer-question", tenant: str = "acme") -> list[ReadableSpan]:
    """One AI output: a workflow span, an owner LLM span, its HTTP span owning the bytes, a retrieval
    span with two data reads, a GPU span and a SageMaker endpoint span."""
    memory = InMemorySpanExporter()
    provider = TracerProvider(
        resource=Resource.create(
            {
                semconv.SERVICE_NAME: "rag-api",
                semconv.CLOUD_ACCOUNT_ID: "123456789012",
                semconv.CLOUD_REGION: "us-east-1",
            }
        )
    )
    provider.add_span_processor(SimpleSpanProcessor(memory))
    tracer = provider.get_tracer("test")
    common = {semconv.SPANLEDGER_WORKFLOW_NAME: workflow, semconv.SPANLEDGER_TENANT_ID: tenant}
    with tracer.start_as_current_span("workflow", attributes=common):
        with tracer.start_as_current_span("retrieve") as retrieve:
            for source, age in (("s3://docs/a.pdf", 3600.0), ("s3://docs/b.pdf", 60.0)):
                retrieve.add_event(
                    semconv.EVENT_SPANLEDGER_DATA_READ,
                    {
                        semconv.SPANLEDGER_DATA_SOURCE: source,
                        semconv.SPANLEDGER_DATA_SOURCE_KIND: "object_store",
                        semconv.SPANLEDGER_DATA_AGE: age,
                        semconv.SPANLEDGER_DATA_LAST_MODIFIED: NOW_NS / 1e9 - age,
                        semconv.SPANLEDGER_DATA_BYTES: 2048,
                    },
                )
        llm_attributes = {
            **common,
            semconv.SPANLEDGER_USAGE_OWNER: True,
            semconv.GEN_AI_OPERATION_NAME: "chat",
            semconv.GEN_AI_PROVIDER_NAME: "openai",
            semconv.GEN_AI_REQUEST_MODEL: "gpt-4o-mini",
            semconv.GEN_AI_RESPONSE_MODEL: "gpt-4o-mini-2024-07-18",
            semconv.GEN_AI_USAGE_INPUT_TOKENS: 1000,
            semconv.GEN_AI_USAGE_CACHE_READ_INPUT_TOKENS: 200,
            semconv.GEN_AI_USAGE_OUTPUT_TOKENS: 50,
            semconv.GEN_AI_REQUEST_STREAM: True,
            semconv.GEN_AI_RESPONSE_TIME_TO_FIRST_CHUNK: 0.3,
            semconv.SERVER_ADDRESS: "api.openai.com",
            semconv.SERVER_PORT: 443,
        }
        with tracer.start_as_current_span("chat gpt-4o-mini", attributes=llm_attributes):
            http = {
                **common,
                semconv.SPANLEDGER_USAGE_OWNER: True,
                semconv.SPANLEDGER_EGRESS_BYTES: 1234,
                semconv.SPANLEDGER_INGRESS_BYTES: 4321,
                semconv.SPANLEDGER_EGRESS_BOUNDARY: "internet",
            }
            with tracer.start_as_current_span("POST", attributes=http):
                pass
        gpu = {
            **common,
            semconv.SPANLEDGER_USAGE_OWNER: True,
            semconv.SPANLEDGER_ACCELERATOR_TIME: 2.5,
            semconv.SPANLEDGER_ACCELERATOR_TYPE: "NVIDIA H100",
            semconv.CLOUD_RESOURCE_ID: "i-0123456789abcdef0",
        }
        with tracer.start_as_current_span("embed", attributes=gpu):
            pass
        endpoint = {
            **common,
            semconv.SPANLEDGER_USAGE_OWNER: True,
            semconv.GEN_AI_PROVIDER_NAME: "aws.sagemaker",
            semconv.SPANLEDGER_OCCUPANCY_START: 1_700_000_000.0,
            semconv.SPANLEDGER_OCCUPANCY_END: 1_700_000_001.5,
            semconv.CLOUD_RESOURCE_ID: "arn:aws:sagemaker:us-east-1:123456789012:endpoint/rerank",
        }
        with tracer.start_as_current_span("InvokeEndpoint", attributes=endpoint):
            pass
    provider.shutdown()
    return list(memory.get_finished_spans())


def trace_id_of(spans: list[ReadableSpan]) -> str:
    context = spans[0].context
    assert context is not None
    return f"{context.trace_id:032x}"


@pytest.mark.slow
@pytest.mark.parametrize("transport", ["grpc", "grpc+gzip", "http", "http+gzip", "grpc+python"])
def test_usage_facts_and_rollups_land_in_the_store(tmp_path: Path, transport: str) -> None:
    """``grpc+python``: the collector as installed without a C compiler (no compiled decoder or converter)."""
    from opentelemetry.exporter.otlp.proto.grpc.exporter import Compression as GrpcCompression
    from opentelemetry.exporter.otlp.proto.http import Compression as HttpCompression

    spans = genai_trace()
    gzip = transport.endswith("+gzip")
    pure_python = transport.endswith("+python")
    with start_collector(tmp_path, env={"SPANLEDGER_NO_SPEEDUPS": "1"} if pure_python else None) as collector:
        assert ("compiled OTLP decoder is not built" in collector.log) == pure_python
        if transport.startswith("grpc"):
            compression = GrpcCompression.Gzip if gzip else GrpcCompression.NoCompression
            exporter: Any = GrpcSpanExporter(endpoint=collector.grpc_endpoint, insecure=True, compression=compression)
        else:
            exporter = HttpSpanExporter(
                endpoint=collector.http_endpoint + "/v1/traces",
                compression=HttpCompression.Gzip if gzip else HttpCompression.NoCompression,
            )
        assert exporter.export(spans) == SpanExportResult.SUCCESS
        # A client retrying the same spans changes nothing.
        assert exporter.export(spans) == SpanExportResult.SUCCESS
        exporter.shutdown()
    trace_id = trace_id_of(spans)
    assert collector.query("SELECT count(*) FROM spans") == [(len(spans),)]
    facts = dict(collector.query("SELECT meter, quantity FROM usage_facts WHERE trace_id = ?", trace_id))
    assert facts == {
        Meter.LLM_INPUT_TOKENS.value: Decimal(800),
        Meter.LLM_CACHE_READ_TOKENS.value: Decimal(200),
        Meter.LLM_OUTPUT_TOKENS.value: Decimal(50),
        Meter.EGRESS_BYTES.value: Decimal(1234),
        Meter.INGRESS_BYTES.value: Decimal(4321),
        Meter.ACCELERATOR_SECONDS.value: Decimal("2.5"),
        Meter.ENDPOINT_SECONDS.value: Decimal("1.5"),
    }
    llm = collector.query(
        "SELECT model, provider, workflow, tenant, service, account_id, region, resource_type, unit FROM usage_facts "
        "WHERE meter = ?",
        Meter.LLM_OUTPUT_TOKENS.value,
    )
    assert llm == [
        (
            "gpt-4o-mini-2024-07-18",
            "openai",
            "answer-question",
            "acme",
            "rag-api",
            "123456789012",
            "us-east-1",
            "llm_model",
            "{token}",
        )
    ]
    (rollup,) = collector.query(
        "SELECT total_tokens, accelerator_seconds, egress_bytes, egress_bytes_by_boundary, oldest_data_age_seconds, "
        "newest_data_age_seconds, data_sources, models, workflow, tenant FROM trace_rollups WHERE trace_id = ?",
        trace_id,
    )
    assert rollup == (
        Decimal(1050), Decimal("2.5"), Decimal(1234), {"internet": Decimal(1234)}, 3600.0, 60.0,
        ["s3://docs/a.pdf", "s3://docs/b.pdf"], ["gpt-4o-mini-2024-07-18"], "answer-question", "acme",
    )  # fmt: skip
    assert collector.query("SELECT count(*) FROM data_reads") == [(2,)]
    parents = collector.query("SELECT count(*) FROM spans WHERE parent_span_id IS NULL")
    assert parents == [(1,)]


@pytest.mark.slow
def test_prometheus_scrape_has_the_semconv_series(tmp_path: Path) -> None:
    names = json.loads((ROOT / "semconv" / "generated" / "prometheus-names.json").read_text())
    config = collector_config(tmp_path)
    config["processors"]["spanledger_usage"] = {"tenant_cardinality_limit": 1}
    with start_collector(tmp_path, config) as collector:
        exporter = GrpcSpanExporter(endpoint=collector.grpc_endpoint, insecure=True)
        spans = genai_trace(tenant="acme") + genai_trace(tenant="globex")
        assert exporter.export(spans) == SpanExportResult.SUCCESS
        exporter.shutdown()
        scrape = collector.scrape()
    for metric in (
        "otelcol_receiver_accepted_spans",
        semconv.METRIC_GEN_AI_CLIENT_TOKEN_USAGE.name,
        semconv.METRIC_GEN_AI_CLIENT_OPERATION_DURATION.name,
        semconv.METRIC_SPANLEDGER_DATA_AGE.name,
        semconv.METRIC_SPANLEDGER_ACCELERATOR_TIME.name,
        semconv.METRIC_SPANLEDGER_EGRESS_BYTES.name,
    ):
        for series in names[metric]["series"]:
            assert f"\n{series}{{" in scrape, f"{series} missing from the scrape"
    assert f'otelcol_receiver_accepted_spans_total{{receiver="otlp",transport="grpc"}} {len(spans)}.0' in scrape
    assert 'gen_ai_token_type="input"' in scrape
    assert 'spanledger_egress_boundary="internet"' in scrape
    for name in ("otelcol_exporter_sent_spans", "otelcol_exporter_queue_size", "otelcol_exporter_queue_capacity"):
        assert f"# TYPE {name}" in scrape


@pytest.mark.slow
@pytest.mark.parametrize("stop_signal", [signal.SIGTERM, signal.SIGINT])
def test_stop_signals_flush_and_exit_zero(tmp_path: Path, stop_signal: int) -> None:
    collector = launch(tmp_path)
    exporter = HttpSpanExporter(endpoint=collector.http_endpoint + "/v1/traces")
    spans = genai_trace()
    assert exporter.export(spans) == SpanExportResult.SUCCESS
    exporter.shutdown()
    assert collector.stop(stop_signal) == 0
    assert collector.query("SELECT count(*) FROM spans") == [(len(spans),)]
    assert f"received {signal.Signals(stop_signal).name}" in collector.log


@pytest.mark.slow
def test_kill_9_under_load_loses_nothing_acknowledged(tmp_path: Path) -> None:
    """A client is acknowledged only once its request is synced to the request log, so a crash cannot lose it."""
    config = collector_config(tmp_path)
    collector = launch(tmp_path, config)
    spans = genai_trace()
    template = encode_spans(spans).SerializeToString()
    trace_id = bytes.fromhex(trace_id_of(spans))
    acknowledged = 0
    stop = threading.Event()

    def send(worker: int) -> None:
        nonlocal acknowledged
        with grpc.insecure_channel(collector.grpc_endpoint) as channel:
            export = channel.unary_unary("/opentelemetry.proto.collector.trace.v1.TraceService/Export")
            sequence = 0
            while not stop.is_set():
                sequence += 1
                body = template.replace(trace_id, struct.pack(">QQ", worker + 1, sequence))
                try:
                    export(body, timeout=10)
                except grpc.RpcError:
                    return
                with lock:
                    acknowledged += 1

    lock = threading.Lock()
    workers = [threading.Thread(target=send, args=(worker,)) for worker in range(4)]
    for worker in workers:
        worker.start()
    deadline = time.monotonic() + 60
    while acknowledged < 20 and time.monotonic() < deadline:
        time.sleep(0.05)
    time.sleep(0.5)
    collector.process.kill()
    collector.process.wait()
    stop.set()
    for worker in workers:
        worker.join()
    assert acknowledged > 0
    restarted = launch(tmp_path, config)
    assert restarted.stop() == 0
    stored_traces = restarted.query("SELECT count(DISTINCT trace_id) FROM spans")[0][0]
    assert stored_traces >= acknowledged


def test_shutdown_is_safe_twice_and_without_start(tmp_path: Path) -> None:
    from spanledger_collector._graph import parse_settings
    from spanledger_collector._service import CollectorService

    settings = parse_settings(collector_config(tmp_path))
    CollectorService(settings).shutdown()
    service = CollectorService(settings)
    addresses = service.start()
    assert set(addresses) == {"otlp.grpc", "otlp.http", "admin"}
    service.shutdown()
    service.shutdown()
    assert service.health() == (False, "stopped")


@pytest.mark.slow
def test_no_arguments_runs_on_the_embedded_defaults(tmp_path: Path) -> None:
    import subprocess

    from collector_fixtures import SPANLEDGER

    output = subprocess.run(
        [str(SPANLEDGER), "collector", "--print-default-config"], capture_output=True, text=True, check=True
    ).stdout
    assert "localhost:4317" in output and "localhost:4318" in output and "localhost:9464" in output
    assert "./spanledger.duckdb" in output


@pytest.mark.slow
def test_a_retry_after_a_restart_or_while_the_first_attempt_waits_is_stored_once(tmp_path: Path) -> None:
    """The case an ack lost in a crash leaves: the client resends bytes the store already committed."""
    config = collector_config(tmp_path)
    spans = genai_trace()
    body = encode_spans(spans).SerializeToString()
    method = "/opentelemetry.proto.collector.trace.v1.TraceService/Export"

    def usage_series(scrape: str) -> list[str]:
        return [line for line in scrape.splitlines() if line.startswith(("gen_ai_", "spanledger_"))]

    with start_collector(tmp_path, config) as collector, grpc.insecure_channel(collector.grpc_endpoint) as channel:
        export = channel.unary_unary(method)
        export(body, timeout=30)
        first = usage_series(collector.scrape())
        retries = [export.future(body, timeout=30) for _ in range(3)]
        for retry in retries:
            retry.result()
        assert usage_series(collector.scrape()) == first
        assert any(line.startswith("gen_ai_client_operation_duration") for line in first)
    with start_collector(tmp_path, config) as restarted, grpc.insecure_channel(restarted.grpc_endpoint) as channel:
        channel.unary_unary(method)(body, timeout=30)
    assert restarted.query("SELECT count(*) FROM spans") == [(len(spans),)]
    facts = restarted.query("SELECT count(*), count(DISTINCT (span_id, meter)) FROM usage_facts")
    assert facts[0][0] == facts[0][1] > 0


def test_billing_work_lifts_the_store_limits_and_puts_them_back(tmp_path: Path) -> None:
    """The ingest path's DuckDB memory and thread limits must not starve a billing allocation run through the
    collector."""
    from spanledger_collector._store import DuckDBStore
    from spanledger_collector.billing._store_access import store_connection

    store = DuckDBStore(tmp_path / "store.duckdb", threads=1, memory_limit_mib=32)

    def limits() -> tuple[str, str]:
        with store.cursor() as cursor:
            row = cursor.execute("SELECT current_setting('memory_limit'), current_setting('threads')").fetchone()
        assert row is not None
        return str(row[0]), str(row[1])

    bounded = limits()
    with store_connection(store), store_connection(store):
        lifted = limits()
        assert lifted[0] != bounded[0]
        assert lifted[1] == str(os.cpu_count())
    assert limits() == bounded == ("32.0 MiB", "1")
    store.close()


@pytest.mark.slow
def test_retention_expires_old_usage_and_keeps_the_rest(tmp_path: Path) -> None:
    """With ``retention``, spans, data reads and usage facts that ended longer ago are deleted as data arrives."""
    config = collector_config(tmp_path)
    config["exporters"]["spanledger_store"]["retention"] = "24h"
    recent_spans = genai_trace()
    request = encode_spans(recent_spans)
    old = encode_spans(genai_trace())
    three_days = 3 * 86_400 * 10**9
    for resource_spans in old.resource_spans:
        for scope_spans in resource_spans.scope_spans:
            for span in scope_spans.spans:
                span.start_time_unix_nano -= three_days
                span.end_time_unix_nano -= three_days
                for event in span.events:
                    event.time_unix_nano -= three_days
    request.resource_spans.extend(old.resource_spans)
    method = "/opentelemetry.proto.collector.trace.v1.TraceService/Export"
    with start_collector(tmp_path, config) as collector, grpc.insecure_channel(collector.grpc_endpoint) as channel:
        channel.unary_unary(method)(request.SerializeToString(), timeout=30)
    spans = collector.query("SELECT count(*) FROM spans")
    reads = collector.query("SELECT trace_id, count(*) FROM data_reads GROUP BY trace_id")
    facts = collector.query("SELECT trace_id, meter FROM usage_facts ORDER BY meter")
    assert spans == [(len(recent_spans),)]
    assert reads == [(trace_id_of(recent_spans), 2)]
    # The SageMaker endpoint's usage is dated by its occupancy interval (2023), so it expired as well.
    assert {trace_id for trace_id, _ in facts} == {trace_id_of(recent_spans)}
    expected = [Meter.ACCELERATOR_SECONDS, Meter.EGRESS_BYTES, Meter.INGRESS_BYTES, Meter.LLM_CACHE_READ_TOKENS,
                Meter.LLM_INPUT_TOKENS, Meter.LLM_OUTPUT_TOKENS]  # fmt: skip
    assert [meter for _, meter in facts] == sorted(meter.value for meter in expected)


@pytest.mark.slow
def test_acknowledged_requests_survive_a_crash_before_the_store_commits(tmp_path: Path) -> None:
    """Acknowledged requests wait in the request log until the store commits; after kill -9 they are restored,
    and a client retrying one of them (its ack was lost in the crash) does not store it twice."""
    config = collector_config(tmp_path)
    config["exporters"]["spanledger_store"]["commit_interval"] = "1h"
    bodies = [encode_spans(genai_trace(tenant=f"tenant-{n}")).SerializeToString() for n in range(5)]
    method = "/opentelemetry.proto.collector.trace.v1.TraceService/Export"
    collector = launch(tmp_path, config)
    with grpc.insecure_channel(collector.grpc_endpoint) as channel:
        export = channel.unary_unary(method)
        for body in bodies:
            export(body, timeout=30)
    collector.process.kill()
    collector.process.wait()
    with start_collector(tmp_path, config) as restarted, grpc.insecure_channel(restarted.grpc_endpoint) as channel:
        assert "restoring requests 1-5 from the request log" in restarted.log
        channel.unary_unary(method)(bodies[0], timeout=30)
    per_trace = restarted.query("SELECT count(*) FROM spans GROUP BY trace_id")
    assert sorted(count for (count,) in per_trace) == [len(genai_trace())] * len(bodies)
    assert not list((tmp_path / "spanledger.duckdb.requests").glob("*.log")), "committed segments are deleted"


@pytest.mark.slow
def test_a_logged_request_that_cannot_be_decoded_is_dropped_with_an_error_and_the_rest_restored(tmp_path: Path) -> None:
    from spanledger_collector._store import RequestLog

    config = collector_config(tmp_path)
    good = encode_spans(genai_trace()).SerializeToString()
    log = RequestLog(tmp_path / "spanledger.duckdb.requests")
    log.append("traces", good[: len(good) // 2])  # a body that was never valid OTLP
    log.append("traces/renamed", good)  # a pipeline since renamed: stored through the one that stores traces
    log.sync(log.last_seq)
    log.close()
    with start_collector(tmp_path, config) as collector:
        pass
    assert "request 1 (pipeline traces) cannot be decoded and is dropped" in collector.log
    assert "came through pipeline traces/renamed, which is gone; storing it through traces" in collector.log
    assert collector.query("SELECT count(*) FROM spans") == [(len(genai_trace()),)]


@pytest.mark.slow
def test_logged_requests_with_no_pipeline_to_store_them_stop_the_start_with_a_message(tmp_path: Path) -> None:
    from spanledger_collector._store import RequestLog

    log = RequestLog(tmp_path / "spanledger.duckdb.requests")
    log.sync(log.append("traces", encode_spans(genai_trace()).SerializeToString()))
    log.close()
    config = collector_config(tmp_path)
    config["service"]["pipelines"]["traces"]["exporters"].remove("spanledger_store")
    collector = launch(tmp_path, config)
    assert collector.process.wait(timeout=60) == 2
    assert "holds 1 acknowledged requests not yet stored, but no traces pipeline exports to spanledger_store" in (
        collector.log
    )
    assert [path.name for path in (tmp_path / "spanledger.duckdb.requests").iterdir()], "the log is kept"
