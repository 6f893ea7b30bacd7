"""Collector throughput and footprint: realistic GenAI traces over OTLP/gRPC from a separate process.

Starts ``spanledger collector`` (default processors: memory limiter, batch, usage, cost; DuckDB store) on
ephemeral ports, then runs a load generator in another process that sends pre-encoded
``ExportTraceServiceRequest`` s of ``--spans-per-request`` spans (default 100, as the OTel Collector's
testbed sends; 512 is what the OTel SDKs' batch span processor sends under load). The spans form 10-span
traces (workflow, retrieval with two data reads, two LLM calls, two HTTP calls owning their bytes, an
embedding call and three tool spans; 15-30 attributes each), with fresh trace ids in every request.
Phases:

* ``--rate`` (default 10 000 spans/s) for ``--duration`` seconds: the collector's CPU (% of one core)
  and RSS (psutil, sampled every 0.5 s), and its process CPU time per acknowledged span;
* ``max``: as fast as the generator can with ``--concurrency`` requests in flight; the acknowledged
  rate is the highest sustained rate.

After each phase the collector is stopped with SIGTERM and the spans in its store are counted: every
acknowledged span must be there (``lost`` must be 0). ``--store chdb`` stores in ClickHouse instead (the
``clickhouse`` exporter on the in-process chdb engine; spans counted in ``otel_traces``, facts with ``FINAL``).
``retracted_facts``: the usage facts counted when their span arrived and retracted when a descendant reporting
the same usage arrived in a later request; ``counted_facts``: those that count (``counted_usage_facts``).

``--producer otel`` sends the same traces as other producers send them (standard attributes only, see
:func:`build_otel_template`), so that the usage comes from the dialect tables and is counted once;
``--producer spanledger,otel`` runs both loads per phase and prints the CPU per span of the second over the first.

    .venv/bin/python benchmarks/bench_collector.py --duration 15
    .venv/bin/python benchmarks/bench_collector.py --duration 15 --store chdb
    .venv/bin/python benchmarks/bench_collector.py --phases rate --duration 20 --producer spanledger,otel
"""

from __future__ import annotations

import argparse
import json
import os
import re
import signal
import statistics
import struct
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

TRACE_PREFIX = b"\xa5\x5a\xa5\x5a\xc3\x3c\xc3\x3c"  # replaced per request to make trace ids unique
EARLIER_PREFIX = b"\x5a\xa5\x5a\xa5\x3c\xc3\x3c\xc3"  # otel-late: replaced by the previous request's prefix
PRODUCERS = ("spanledger", "otel", "otel-late", "mixed")
TRACE_METHOD = "/opentelemetry.proto.collector.trace.v1.TraceService/Export"
READY = re.compile(r"spanledger collector ready: .*otlp\.grpc=(\S+)")


def _kv(key: str, value: Any) -> Any:
    from opentelemetry.proto.common.v1.common_pb2 import AnyValue, ArrayValue, KeyValue

    def any_value(value: Any) -> AnyValue:
        if isinstance(value, bool):
            return AnyValue(bool_value=value)
        if isinstance(value, int):
            return AnyValue(int_value=value)
        if isinstance(value, float):
            return AnyValue(double_value=value)
        if isinstance(value, list):
            return AnyValue(array_value=ArrayValue(values=[any_value(item) for item in value]))
        return AnyValue(string_value=value)

    return KeyValue(key=key, value=any_value(value))


def request_body(template: bytes, stream: int, sequence: int) -> bytes:
    """The template with the trace ids of request ``sequence`` of ``stream`` (and, in the otel-late load, the
    previous request's)."""
    body = template.replace(TRACE_PREFIX, struct.pack(">II", stream, sequence))
    if EARLIER_PREFIX in template:
        body = body.replace(EARLIER_PREFIX, struct.pack(">II", stream, (sequence - 1) % 2**32))
    return body


def build_template(spans_per_request: int, producer: str = "spanledger") -> bytes:
    if producer in ("otel", "otel-late"):
        return build_otel_template(spans_per_request, late=producer == "otel-late")
    from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
    from opentelemetry.proto.trace.v1.trace_pb2 import Span
    from spanledger import semconv as s

    kv = _kv

    common = {s.SPANLEDGER_WORKFLOW_NAME: "answer-question", s.SPANLEDGER_TENANT_ID: "tenant-42"}
    llm = {
        **common,
        s.SPANLEDGER_USAGE_OWNER: True,
        s.GEN_AI_OPERATION_NAME: "chat",
        s.GEN_AI_PROVIDER_NAME: "openai",
        s.GEN_AI_REQUEST_MODEL: "gpt-4o-mini",
        s.GEN_AI_RESPONSE_MODEL: "gpt-4o-mini-2024-07-18",
        s.GEN_AI_REQUEST_MAX_TOKENS: 1024,
        s.GEN_AI_REQUEST_TEMPERATURE: 0.2,
        s.GEN_AI_REQUEST_TOP_P: 0.9,
        s.GEN_AI_REQUEST_FREQUENCY_PENALTY: 0.0,
        s.GEN_AI_REQUEST_PRESENCE_PENALTY: 0.0,
        s.GEN_AI_REQUEST_SEED: 7,
        s.GEN_AI_REQUEST_STREAM: False,
        s.GEN_AI_RESPONSE_ID: "chatcmpl-9x8y7z6w5v4u3t2s1r0q",
        s.GEN_AI_RESPONSE_FINISH_REASONS: "stop",
        s.GEN_AI_OUTPUT_TYPE: "text",
        s.GEN_AI_CONVERSATION_ID: "conv-0a1b2c3d4e5f",
        s.SERVER_ADDRESS: "api.openai.com",
        s.SERVER_PORT: 443,
        s.GEN_AI_USAGE_INPUT_TOKENS: 1830,
        s.GEN_AI_USAGE_CACHE_READ_INPUT_TOKENS: 1024,
        s.GEN_AI_USAGE_OUTPUT_TOKENS: 212,
        s.SERVER_ADDRESS: "api.openai.com",
        s.SERVER_PORT: 443,
        s.OPENAI_REQUEST_SERVICE_TIER: "auto",
        s.OPENAI_RESPONSE_SERVICE_TIER: "default",
        s.OPENAI_RESPONSE_SYSTEM_FINGERPRINT: "fp_0123456789",
        s.CLOUD_RESOURCE_ID: "openai/gpt-4o-mini",
    }
    http = {
        **common,
        s.SPANLEDGER_USAGE_OWNER: True,
        s.HTTP_REQUEST_METHOD: "POST",
        s.URL_FULL: "https://api.openai.com/v1/chat/completions",
        s.SERVER_ADDRESS: "api.openai.com",
        s.SERVER_PORT: 443,
        s.HTTP_RESPONSE_STATUS_CODE: 200,
        s.HTTP_REQUEST_BODY_SIZE: 8123,
        s.HTTP_RESPONSE_BODY_SIZE: 2311,
        s.SPANLEDGER_EGRESS_BYTES: 8650,
        s.SPANLEDGER_INGRESS_BYTES: 2790,
        s.SPANLEDGER_EGRESS_BOUNDARY: "internet",
        s.CLOUD_REGION: "us-east-1",
        s.CLOUD_PROVIDER: "aws",
        s.NETWORK_IO_DIRECTION: "transmit",
        s.RPC_SYSTEM: "http",
    }
    embedding = {**llm, s.GEN_AI_OPERATION_NAME: "embeddings", s.GEN_AI_REQUEST_MODEL: "text-embedding-3-small"}
    embedding[s.GEN_AI_RESPONSE_MODEL] = "text-embedding-3-small"
    embedding[s.GEN_AI_EMBEDDINGS_DIMENSION_COUNT] = 1536
    retrieval = {
        **common,
        s.GEN_AI_OPERATION_NAME: "retrieval",
        s.GEN_AI_DATA_SOURCE_ID: "kb-handbook",
        s.GEN_AI_REQUEST_TOP_K: 8,
        s.DB_SYSTEM_NAME: "postgresql",
        s.DB_NAMESPACE: "rag",
        s.DB_COLLECTION_NAME: "chunks",
        s.SERVER_ADDRESS: "db.internal",
        s.SERVER_PORT: 5432,
        s.CLOUD_REGION: "us-east-1",
        s.AWS_S3_BUCKET: "docs",
        s.AWS_S3_KEY: "handbook.pdf",
        s.AWS_REQUEST_ID: "4442587FB7D0A2F9",
        s.RPC_SERVICE: "S3",
        s.RPC_METHOD: "GetObject",
    }
    tool = {**common, s.GEN_AI_OPERATION_NAME: "execute_tool", s.RPC_SYSTEM: "internal", s.RPC_METHOD: "lookup"}
    tool.update({s.SERVER_ADDRESS: "tools.internal", s.SERVER_PORT: 8080, s.CLOUD_REGION: "us-east-1"})
    tool.update({s.DB_SYSTEM_NAME: "redis", s.DB_NAMESPACE: "0", s.HTTP_REQUEST_METHOD: "GET"})
    tool.update({s.HTTP_RESPONSE_STATUS_CODE: 200, s.URL_FULL: "http://tools.internal:8080/lookup?q=1"})
    tool.update({s.MESSAGING_SYSTEM: "kafka", s.MESSAGING_DESTINATION_NAME: "events", s.HW_VENDOR: "none"})
    root = {**common, s.GEN_AI_OPERATION_NAME: "invoke_workflow", s.GEN_AI_WORKFLOW_NAME: "answer-question"}
    root.update({s.SERVER_ADDRESS: "rag-api", s.SERVER_PORT: 8000, s.HTTP_REQUEST_METHOD: "POST"})
    root.update({s.URL_FULL: "https://rag.example.com/ask", s.HTTP_RESPONSE_STATUS_CODE: 200})
    root.update({s.CLOUD_REGION: "us-east-1", s.CLOUD_PROVIDER: "aws", s.CLOUD_ACCOUNT_ID: "123456789012"})
    root.update({s.CLOUD_PLATFORM: "aws_ecs", s.CLOUD_AVAILABILITY_ZONE: "us-east-1a", s.RPC_SYSTEM: "http"})
    root.update({s.HW_VENDOR: "none", s.NETWORK_IO_DIRECTION: "receive"})
    shapes = [
        ("POST /ask", root, None),
        ("retrieve kb-handbook", retrieval, 0),
        ("embeddings text-embedding-3-small", embedding, 0),
        ("chat gpt-4o-mini", llm, 0),
        ("POST", http, 3),
        ("lookup", tool, 0),
        ("lookup", tool, 0),
        ("lookup", tool, 0),
        ("chat gpt-4o-mini", llm, 0),
        ("POST", http, 8),
    ]
    if producer == "mixed":
        # The upstream OpenAI instrumentation active beside spanledger's SDK: its span of the second chat call,
        # under spanledger's (owner) span, reports the same tokens and is not counted.
        own = {*common, s.SPANLEDGER_USAGE_OWNER, s.CLOUD_RESOURCE_ID}
        upstream = {key: value for key, value in llm.items() if key not in own}
        shapes[7] = ("chat gpt-4o-mini", upstream, 8)
    request = ExportTraceServiceRequest()
    resource_spans = request.resource_spans.add()
    resource_spans.resource.attributes.extend(
        [kv(s.SERVICE_NAME, "rag-api"), kv(s.CLOUD_ACCOUNT_ID, "123456789012"), kv(s.CLOUD_REGION, "us-east-1")]
    )
    scope = resource_spans.scope_spans.add()
    scope.scope.name = "spanledger"
    start = time.time_ns()
    for trace in range(-(-spans_per_request // len(shapes))):
        trace_id = TRACE_PREFIX + struct.pack(">Q", trace + 1)
        for index, (name, attributes, parent) in enumerate(shapes[: spans_per_request - trace * len(shapes)]):
            span = Span(
                trace_id=trace_id,
                span_id=struct.pack(">Q", trace * 100 + index + 1),
                parent_span_id=b"" if parent is None else struct.pack(">Q", trace * 100 + parent + 1),
                name=name,
                kind=3 if attributes is not root else 2,
                start_time_unix_nano=start + index * 1_000_000,
                end_time_unix_nano=start + index * 1_000_000 + 250_000_000,
            )
            span.attributes.extend(kv(key, value) for key, value in attributes.items())
            if attributes is retrieval:
                for source, age in (("s3://docs/handbook.pdf", 86400.0), ("postgresql://db/rag/chunks", 30.0)):
                    event = span.events.add(name=s.EVENT_SPANLEDGER_DATA_READ, time_unix_nano=start)
                    event.attributes.extend(
                        [
                            kv(s.SPANLEDGER_DATA_SOURCE, source),
                            kv(s.SPANLEDGER_DATA_SOURCE_KIND, "object_store"),
                            kv(s.SPANLEDGER_DATA_AGE, age),
                            kv(s.SPANLEDGER_DATA_BYTES, 65536),
                        ]
                    )
            scope.spans.append(span)
    data: bytes = request.SerializeToString()
    assert data.count(TRACE_PREFIX) == spans_per_request
    return data


def build_otel_template(spans_per_request: int, *, late: bool = False) -> bytes:
    """The same 10-span traces as other producers send them: standard attributes only (no ``spanledger.*``).

    The OTel GenAI names as the upstream JS/Python instrumentations write them (an embeddings and a chat span,
    tool spans), HTTP server/client and database spans, and a Vercel AI SDK ``ai.generateText`` span rolling up
    its ``doGenerate`` span (both report the same tokens: counted once, on the inner span). The GenAI client spans
    carry ``server.address`` and ``server.port`` as the upstream instrumentations set them.

    ``late``: each trace split over two requests, as a batch span processor's batch boundary or a second
    process splits it: its root, and in even traces the ``ai.generateText`` roll-up (parent after its child,
    known as a roll-up at once), in odd traces the ``doGenerate`` span (a late child: the roll-up's facts,
    counted when it came, are retracted) come in the next request, under :data:`EARLIER_PREFIX`."""
    from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
    from opentelemetry.proto.trace.v1.trace_pb2 import Span
    from spanledger import semconv as s

    chat = {
        s.GEN_AI_OPERATION_NAME: "chat",
        s.GEN_AI_PROVIDER_NAME: "openai",
        s.GEN_AI_REQUEST_MODEL: "gpt-4o-mini",
        s.GEN_AI_REQUEST_MAX_TOKENS: 1024,
        s.GEN_AI_REQUEST_TEMPERATURE: 0.2,
        s.GEN_AI_REQUEST_TOP_P: 0.9,
        s.GEN_AI_REQUEST_SEED: 7,
        s.GEN_AI_OUTPUT_TYPE: "text",
        s.GEN_AI_RESPONSE_MODEL: "gpt-4o-mini-2024-07-18",
        s.GEN_AI_RESPONSE_ID: "chatcmpl-9x8y7z6w5v4u3t2s1r0q",
        s.GEN_AI_RESPONSE_FINISH_REASONS: ["stop"],
        s.GEN_AI_CONVERSATION_ID: "conv-0a1b2c3d4e5f",
        s.SERVER_ADDRESS: "api.openai.com",
        s.SERVER_PORT: 443,
        s.GEN_AI_USAGE_INPUT_TOKENS: 1830,
        s.GEN_AI_USAGE_CACHE_READ_INPUT_TOKENS: 1024,
        s.GEN_AI_USAGE_OUTPUT_TOKENS: 212,
        s.OPENAI_REQUEST_SERVICE_TIER: "auto",
        s.OPENAI_RESPONSE_SERVICE_TIER: "default",
        s.OPENAI_RESPONSE_SYSTEM_FINGERPRINT: "fp_0123456789",
    }
    embeddings = {
        s.GEN_AI_OPERATION_NAME: "embeddings",
        s.GEN_AI_PROVIDER_NAME: "openai",
        s.GEN_AI_REQUEST_MODEL: "text-embedding-3-small",
        s.GEN_AI_RESPONSE_MODEL: "text-embedding-3-small",
        s.GEN_AI_EMBEDDINGS_DIMENSION_COUNT: 1536,
        s.GEN_AI_REQUEST_ENCODING_FORMATS: ["float"],
        s.SERVER_ADDRESS: "api.openai.com",
        s.SERVER_PORT: 443,
        s.GEN_AI_USAGE_INPUT_TOKENS: 412,
    }
    # Vercel AI SDK 4 (packages/ai/core/generate-text/generate-text.ts): the call's span and its doGenerate span.
    vercel = {
        "ai.operationId": "ai.generateText",
        "operation.name": "ai.generateText",
        "ai.model.provider": "openai.chat",
        "ai.model.id": "gpt-4o-mini",
        "ai.settings.maxRetries": 2,
        "ai.prompt": '{"prompt":"Summarise the ticket"}',
        "ai.response.finishReason": "stop",
        "ai.response.text": "The customer asks for a refund.",
        "ai.usage.promptTokens": 806,
        "ai.usage.completionTokens": 95,
    }
    do_generate = {
        **vercel,
        "ai.operationId": "ai.generateText.doGenerate",
        "operation.name": "ai.generateText.doGenerate",
        "ai.response.id": "chatcmpl-1a2b3c",
        "ai.response.model": "gpt-4o-mini-2024-07-18",
        "ai.response.timestamp": "2026-12-05T12:00:00.000Z",
        "gen_ai.system": "openai.chat",
        s.GEN_AI_REQUEST_MODEL: "gpt-4o-mini",
        s.GEN_AI_RESPONSE_MODEL: "gpt-4o-mini-2024-07-18",
        s.GEN_AI_RESPONSE_ID: "chatcmpl-1a2b3c",
        s.GEN_AI_RESPONSE_FINISH_REASONS: ["stop"],
        s.GEN_AI_USAGE_INPUT_TOKENS: 806,
        s.GEN_AI_USAGE_OUTPUT_TOKENS: 95,
    }
    tool = {
        s.GEN_AI_OPERATION_NAME: "execute_tool",
        s.GEN_AI_TOOL_NAME: "lookup",
        s.GEN_AI_TOOL_CALL_ID: "call_0a1b2c3d",
        s.GEN_AI_TOOL_TYPE: "function",
    }
    server = {
        s.HTTP_REQUEST_METHOD: "POST",
        "http.route": "/ask",
        "url.path": "/ask",
        "url.scheme": "https",
        s.HTTP_RESPONSE_STATUS_CODE: 200,
        s.SERVER_ADDRESS: "rag.example.com",
        s.SERVER_PORT: 443,
        "network.protocol.version": "1.1",
        "user_agent.original": "python-httpx/0.28.1",
        "client.address": "10.0.0.7",
    }
    client = {
        s.HTTP_REQUEST_METHOD: "POST",
        s.URL_FULL: "https://api.openai.com/v1/chat/completions",
        s.SERVER_ADDRESS: "api.openai.com",
        s.SERVER_PORT: 443,
        s.HTTP_RESPONSE_STATUS_CODE: 200,
        "network.protocol.version": "1.1",
    }
    database = {
        s.DB_SYSTEM_NAME: "postgresql",
        s.DB_NAMESPACE: "rag",
        s.DB_COLLECTION_NAME: "chunks",
        "db.operation.name": "SELECT",
        "db.query.text": "SELECT id, body FROM chunks ORDER BY embedding <-> $1 LIMIT 8",
        s.SERVER_ADDRESS: "db.internal",
        s.SERVER_PORT: 5432,
    }
    shapes: list[tuple[str, dict[str, Any], int | None, int]] = [
        ("POST /ask", server, None, 2),
        ("SELECT rag.chunks", database, 0, 3),
        ("embeddings text-embedding-3-small", embeddings, 1, 3),
        ("chat gpt-4o-mini", chat, 0, 3),
        ("POST", client, 3, 3),
        ("execute_tool lookup", tool, 0, 1),
        ("execute_tool lookup", tool, 0, 1),
        ("execute_tool lookup", tool, 0, 1),
        ("ai.generateText", vercel, 0, 1),
        ("ai.generateText.doGenerate", do_generate, 8, 3),
    ]
    request = ExportTraceServiceRequest()
    resource_spans = request.resource_spans.add()
    resource_spans.resource.attributes.extend(
        [
            _kv(s.SERVICE_NAME, "rag-api"),
            _kv("telemetry.sdk.language", "nodejs"),
            _kv("telemetry.sdk.name", "opentelemetry"),
            _kv("telemetry.sdk.version", "2.2.0"),
        ]
    )
    scope = resource_spans.scope_spans.add()
    scope.scope.name = "@opentelemetry/instrumentation-openai"
    start = time.time_ns()
    for trace in range(-(-spans_per_request // len(shapes))):
        later = {0, 8 + trace % 2} if late else set()  # shape indexes sent with the next request
        for index, (name, attributes, parent, kind) in enumerate(shapes[: spans_per_request - trace * len(shapes)]):
            prefix = EARLIER_PREFIX if index in later else TRACE_PREFIX
            span = Span(
                trace_id=prefix + struct.pack(">Q", trace + 1),
                span_id=struct.pack(">Q", trace * 100 + index + 1),
                parent_span_id=b"" if parent is None else struct.pack(">Q", trace * 100 + parent + 1),
                name=name,
                kind=kind,
                start_time_unix_nano=start + index * 1_000_000,
                end_time_unix_nano=start + index * 1_000_000 + 250_000_000,
            )
            span.attributes.extend(_kv(key, value) for key, value in attributes.items())
            scope.spans.append(span)
    data: bytes = request.SerializeToString()
    assert data.count(TRACE_PREFIX) + data.count(EARLIER_PREFIX) == spans_per_request
    return data


def loadgen(
    endpoint: str, rate: float, duration: float, concurrency: int, spans_per_request: int, producer: str
) -> dict[str, Any]:
    """Send for ``duration`` seconds at ``rate`` spans/s (0: as fast as possible); returns the counts."""
    import grpc

    template = build_template(spans_per_request, producer)
    channel = grpc.insecure_channel(endpoint)
    export = channel.unary_unary(TRACE_METHOD)
    grpc.channel_ready_future(channel).result(timeout=30)
    slots = threading.Semaphore(concurrency)
    lock = threading.Lock()
    counts = {"sent_spans": 0, "acked_spans": 0, "refused_spans": 0, "errors": {}}
    latencies: list[float] = []
    sequence = 0

    def done(future: Any, sent_at: float) -> None:
        with lock:
            try:
                future.result()
                counts["acked_spans"] += spans_per_request
                latencies.append(time.monotonic() - sent_at)
            except grpc.RpcError as error:
                counts["refused_spans"] += spans_per_request
                name = error.code().name
                counts["errors"][name] = counts["errors"].get(name, 0) + 1
        slots.release()

    started = time.monotonic()
    interval = spans_per_request / rate if rate else 0.0
    next_send = started
    while time.monotonic() - started < duration:
        if interval:
            now = time.monotonic()
            if now < next_send:
                time.sleep(next_send - now)
            next_send += interval
        slots.acquire()
        sequence += 1
        body = request_body(template, os.getpid(), sequence)
        sent_at = time.monotonic()
        export.future(body, timeout=60).add_done_callback(lambda future, sent_at=sent_at: done(future, sent_at))
        counts["sent_spans"] += spans_per_request
    for _ in range(concurrency):
        slots.acquire()
    counts["elapsed_s"] = time.monotonic() - started
    percentiles = statistics.quantiles(latencies, n=100) if len(latencies) > 1 else [0.0] * 99
    counts["ack_latency_ms"] = {"p50": round(percentiles[49] * 1e3, 1), "p99": round(percentiles[98] * 1e3, 1)}
    channel.close()
    return counts


_STORES = {"duckdb": "spanledger_store", "chdb": "clickhouse"}


def _store_config(engine: str, work: Path, options: dict[str, Any]) -> dict[str, Any]:
    if engine == "chdb":
        return {"endpoint": f"chdb:{work / 'ch'}", "database": "bench", "replica_id": "bench", **options}
    return {"path": str(work / "bench.duckdb"), **options}


def _stored_counts(engine: str, work: Path) -> tuple[int, int, int, int]:
    """Spans, usage facts, retractions and the facts that count (``counted_usage_facts``) in the stopped
    collector's store."""
    if engine == "duckdb":
        import duckdb

        with duckdb.connect(str(work / "bench.duckdb"), read_only=True) as store:
            spans = store.execute("SELECT count(*) FROM spans").fetchone()[0]  # type: ignore[index]
            facts = store.execute("SELECT count(*) FROM usage_facts").fetchone()[0]  # type: ignore[index]
            # Issue 15: how often a span's counted usage was retracted by a descendant arriving later.
            retracted = store.execute("SELECT count(*) FROM usage_retractions").fetchone()[0]  # type: ignore[index]
            counted = store.execute("SELECT count(*) FROM counted_usage_facts").fetchone()[0]  # type: ignore[index]
        return int(spans), int(facts), int(retracted), int(counted)
    # chdb holds one directory per process: count from a process of its own.
    script = (
        "import sys, clickhouse_connect\n"
        "c = clickhouse_connect.get_client(interface='chdb', path=sys.argv[1], database='bench')\n"
        "print(c.command('SELECT count() FROM otel_traces'), c.command('SELECT count() FROM usage_facts FINAL'),\n"
        "      c.command('SELECT count() FROM usage_retractions FINAL'),\n"
        "      c.command('SELECT count() FROM counted_usage_facts'))\n"
    )
    output = subprocess.run(
        [sys.executable, "-c", script, str(work / "ch")], capture_output=True, text=True, check=True
    ).stdout
    spans, facts, retracted, counted = output.split()
    return int(spans), int(facts), int(retracted), int(counted)


_GRPC_THREADS = frozenset({"event_engine", "grpc_global_tim", "lifeguard"})
"""grpcio's native threads (its EventEngine pool, timer and the pool's lifeguard): the receiver's."""


def _engine_threads_cpu(pid: int) -> float:
    """CPU seconds of the threads of ``pid`` that are neither Python's (named as the process) nor gRPC's: the
    embedded database's own pools (chdb's ThreadPool, BgSchPool, MergeMutate, ...; DuckDB's workers). Work
    the engine does on the calling Python thread (a query's pipeline, an insert) is not in it, and a thread that
    ends between two readings takes its time along: a lower bound of what a server would take off the replica."""
    task = Path(f"/proc/{pid}/task")
    own = Path(f"/proc/{pid}/comm").read_text().strip()
    ticks = os.sysconf("SC_CLK_TCK")
    total = 0.0
    for thread in task.iterdir():
        try:
            name = (thread / "comm").read_text().strip()
            fields = (thread / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue  # the thread ended meanwhile
        if name != own and name not in _GRPC_THREADS:
            total += (int(fields[11]) + int(fields[12])) / ticks  # utime, stime
    return total


def run_phase(
    name: str,
    rate: float,
    duration: float,
    concurrency: int,
    processors: list[str],
    spans_per_request: int,
    grpc_workers: int | None = None,
    store_options: dict[str, Any] | None = None,
    engine: str = "duckdb",
    producer: str = "spanledger",
) -> dict[str, Any]:
    import psutil
    import yaml

    with tempfile.TemporaryDirectory(prefix="bench-collector-") as directory:
        work = Path(directory)
        config = {
            "receivers": {
                "otlp": {
                    "protocols": {
                        "grpc": {"endpoint": "127.0.0.1:0", **({"max_workers": grpc_workers} if grpc_workers else {})}
                    }
                }
            },
            "processors": {
                "memory_limiter": {"check_interval": "1s", "limit_mib": 1024},
                "batch": {},
                "spanledger_usage": {},
                "spanledger_cost": {},
            },
            "exporters": {_STORES[engine]: _store_config(engine, work, store_options or {})},
            "service": {
                "pipelines": {
                    "traces": {
                        "receivers": ["otlp"],
                        "processors": processors,
                        "exporters": [_STORES[engine]],
                    }
                },
                "telemetry": {"metrics": {"address": "127.0.0.1:0"}},
            },
        }
        (work / "config.yaml").write_text(yaml.safe_dump(config))
        spanledger = Path(sys.executable).with_name("spanledger")
        collector = subprocess.Popen(
            [str(spanledger), "collector", "--config", str(work / "config.yaml")], stderr=subprocess.PIPE, text=True
        )
        log: list[str] = []
        ready = threading.Event()

        def pump() -> None:
            assert collector.stderr is not None
            for line in collector.stderr:
                log.append(line.rstrip())
                if READY.search(line):
                    ready.set()
            ready.set()

        threading.Thread(target=pump, daemon=True).start()
        assert ready.wait(60), "the collector did not start"
        match = next((READY.search(line) for line in log if READY.search(line)), None)
        assert match, "\n".join(log)
        endpoint = match.group(1)
        process = psutil.Process(collector.pid)
        samples: list[tuple[float, float]] = []
        stop_sampling = threading.Event()

        def sample() -> None:
            process.cpu_percent(None)
            while not stop_sampling.wait(0.5):
                samples.append((process.cpu_percent(None), process.memory_info().rss / 2**20))

        sampler = threading.Thread(target=sample, daemon=True)
        generator = subprocess.Popen(
            [
                sys.executable,
                __file__,
                "--loadgen",
                endpoint,
                str(rate),
                str(duration),
                str(concurrency),
                str(spans_per_request),
                producer,
            ],
            stdout=subprocess.PIPE,
            text=True,
        )
        sampler.start()
        cpu_before, engine_before = process.cpu_times(), _engine_threads_cpu(collector.pid)
        output, _ = generator.communicate()
        cpu_after, engine_after = process.cpu_times(), _engine_threads_cpu(collector.pid)
        stop_sampling.set()
        sampler.join()
        counts = json.loads(output)
        collector.send_signal(signal.SIGTERM)
        collector.wait(timeout=120)
        stored, facts, retracted, counted = _stored_counts(engine, work)
    steady = samples[2:-1] or samples
    cpu = [c for c, _ in steady]
    rss = [r for _, r in samples]
    return {
        "phase": name,
        "store": engine,
        "producer": producer,
        "processors": processors,
        "target_spans_per_s": rate or "max",
        "spans_per_request": spans_per_request,
        "acked_spans_per_s": round(counts["acked_spans"] / counts["elapsed_s"]),
        "collector_cpu_pct_of_one_core_avg": round(sum(cpu) / len(cpu), 1),
        "collector_cpu_pct_max": round(max(cpu), 1),
        # Process CPU time (user + system) while the generator ran, per acknowledged span: less sensitive than
        # the percentage to a shared box, whose load stretches wall time and can keep the rate below target.
        "collector_cpu_us_per_acked_span": round(
            (cpu_after.user + cpu_after.system - cpu_before.user - cpu_before.system)
            / max(counts["acked_spans"], 1)
            * 1e6,
            2,
        ),
        "engine_threads_cpu_us_per_acked_span": round(
            (engine_after - engine_before) / max(counts["acked_spans"], 1) * 1e6, 2
        ),
        "collector_rss_mib_avg": round(sum(rss) / len(rss), 1),
        "collector_rss_mib_max": round(max(rss), 1),
        "sent_spans": counts["sent_spans"],
        "acked_spans": counts["acked_spans"],
        "refused_spans": counts["refused_spans"],
        "refusals": counts["errors"],
        "ack_latency_ms": counts["ack_latency_ms"],
        "stored_spans": stored,
        "usage_facts": facts,
        "retracted_facts": retracted,
        "counted_facts": counted,
        "lost": counts["acked_spans"] - stored,
        "collector_exit": collector.returncode,
        "collector_errors": [line for line in log if "ERROR" in line][:5],
    }


def main() -> int:
    if len(sys.argv) > 1 and sys.argv[1] == "--loadgen":
        endpoint, rate, duration, concurrency, per_request = (
            sys.argv[2],
            *map(float, sys.argv[3:5]),
            *map(int, sys.argv[5:7]),
        )
        print(json.dumps(loadgen(endpoint, rate, duration, concurrency, per_request, sys.argv[7])))
        return 0
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rate", type=float, default=10_000, help="spans/s of the footprint phase")
    parser.add_argument("--duration", type=float, default=15, help="seconds per phase")
    parser.add_argument("--concurrency", type=int, default=128, help="requests in flight in the max phase")
    parser.add_argument("--phases", default="rate,max", help="comma-separated: rate, max")
    parser.add_argument("--spans-per-request", type=int, default=100, help="spans in each OTLP request")
    parser.add_argument(
        "--store-memory-limit-mib", type=int, help="the store's memory_limit_mib (default: the collector's)"
    )
    parser.add_argument("--commit-interval", help="the store's commit_interval, e.g. 10s (default: the collector's)")
    parser.add_argument("--no-cost", action="store_true", help="leave the spanledger_cost processor out")
    parser.add_argument("--grpc-workers", type=int, help="the gRPC receiver's max_workers (default: the collector's)")
    parser.add_argument(
        "--store", choices=sorted(_STORES), default="duckdb", help="the store: DuckDB, or ClickHouse in-process (chdb)"
    )
    parser.add_argument(
        "--producer",
        default="spanledger",
        help="comma-separated loads, run alternately per phase: spanledger (spans of spanledger's SDK, owner-marked), "
        "otel (the same traces with standard attributes only: OTel GenAI, Vercel AI SDK; counted once), otel-late "
        "(otel's traces split over two requests: parents after children, and late children), mixed (spanledger's "
        "traces with the upstream OpenAI instrumentation's span of one call beside spanledger's)",
    )
    args = parser.parse_args()
    if args.store == "chdb" and args.store_memory_limit_mib is not None:
        parser.error("--store-memory-limit-mib is a DuckDB setting")
    producers = args.producer.split(",")
    for producer in producers:
        if producer not in PRODUCERS:
            parser.error(f"unknown producer {producer!r}")
    processors = ["memory_limiter", "batch", "spanledger_usage"] + ([] if args.no_cost else ["spanledger_cost"])
    store: dict[str, Any] = (
        {} if args.store_memory_limit_mib is None else {"memory_limit_mib": args.store_memory_limit_mib}
    )
    if args.commit_interval is not None:
        store["commit_interval"] = args.commit_interval
    print(f"cpu count {os.cpu_count()}, load average {os.getloadavg()}", file=sys.stderr)
    results = []
    for phase in args.phases.split(","):
        if phase not in ("rate", "max"):
            parser.error(f"unknown phase {phase!r}")
        for producer in producers:
            rate, concurrency = (args.rate, 64) if phase == "rate" else (0, args.concurrency)
            results.append(
                run_phase(
                    phase,
                    rate,
                    args.duration,
                    concurrency,
                    processors,
                    args.spans_per_request,
                    args.grpc_workers,
                    store,
                    args.store,
                    producer,
                )
            )
            print(json.dumps(results[-1], indent=2), flush=True)
    if len(producers) > 1:
        for phase in args.phases.split(","):
            cost = {r["producer"]: r["collector_cpu_us_per_acked_span"] for r in results if r["phase"] == phase}
            for other in ("otel", "otel-late", "mixed"):
                if "spanledger" in cost and other in cost:
                    overhead = cost[other] / cost["spanledger"] - 1
                    print(f"{phase}: {other} over spanledger, CPU per acknowledged span: {overhead:+.1%}", flush=True)
    return 0 if all(result["lost"] == 0 and result["collector_exit"] == 0 for result in results) else 1


if __name__ == "__main__":
    sys.exit(main())
