"""The upstream botocore and httpx instrumentations, without spanledger's SDK, against real local servers.

Each set of calls is made twice: recorded by spanledger's SDK, then by the upstream OpenTelemetry
instrumentation alone (spanledger uninstrumented, so no span is marked as the owner). Both are exported over
OTLP/HTTP to a real collector; the store's facts and data reads are compared (issue 15). What the upstream
instrumentation does not record cannot be priced; each test says what that is.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import aws_runtime_server as wire
import httpx
import pytest
import spanledger
from _aws_servers import REGION, make_client, moto_url, runtime_server
from aws_runtime_server import AwsRuntimeServer
from collector_fixtures import RunningCollector, collector_config, start_collector
from opentelemetry import trace
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from spanledger import semconv
from test_openai import Recorded

__all__ = ["moto_url", "runtime_server"]

BUCKET, KEY, BODY = "producers-bucket", "doc.txt", b"x" * 1000
MODEL = "us.amazon.nova-lite-v1:0"


def _own(calls: Callable[[], None]) -> list[ReadableSpan]:
    recorded = Recorded()
    try:
        calls()
        return list(recorded.exporter.get_finished_spans())
    finally:
        recorded.handle.shutdown()


def _upstream(calls: Callable[[], None], instrumentor: Any, **hooks: Any) -> list[ReadableSpan]:
    """The calls recorded by an upstream instrumentor alone, under a root span carrying ``enduser.id``."""
    memory = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(memory))
    spanledger.uninstrument()
    instrumentor.instrument(tracer_provider=provider, **hooks)
    try:
        with provider.get_tracer("producers-test").start_as_current_span("handle", attributes={"enduser.id": "u-1"}):
            calls()
    finally:
        instrumentor.uninstrument()
        spanledger.instrument()
    provider.shutdown()
    return list(memory.get_finished_spans())


def _stored(tmp_path: Path, *span_sets: list[ReadableSpan]) -> RunningCollector:
    with start_collector(tmp_path, collector_config(tmp_path)) as collector:
        exporter = OTLPSpanExporter(endpoint=collector.http_endpoint + "/v1/traces")
        for spans in span_sets:
            exporter.export(spans)
        exporter.shutdown()
    return collector


def _traces(spans: list[ReadableSpan]) -> list[str]:
    return sorted({format(span.context.trace_id, "032x") for span in spans})


def _facts(collector: RunningCollector, spans: list[ReadableSpan]) -> dict[tuple[str, str], tuple[Any, ...]]:
    """(span name, meter) -> (quantity, unit, resource_type, resource_id, provider, model, region, tenant)."""
    traces = _traces(spans)
    rows = collector.query(
        "SELECT s.name, f.meter, f.quantity, f.unit, f.resource_type, f.resource_id, f.provider, f.model, f.region, "
        f"f.tenant FROM usage_facts f JOIN spans s USING (trace_id, span_id) WHERE f.trace_id IN ({_marks(traces)})",
        *traces,
    )
    return {(row[0], row[1]): row[2:] for row in rows}


def _reads(collector: RunningCollector, spans: list[ReadableSpan]) -> list[tuple[Any, ...]]:
    """(source, source_kind, bytes, tenant) of the data reads."""
    traces = _traces(spans)
    return collector.query(
        f"SELECT source, source_kind, bytes, tenant FROM data_reads WHERE trace_id IN ({_marks(traces)})", *traces
    )


def _marks(values: list[str]) -> str:
    return ", ".join("?" * len(values))


# --- botocore: S3, Bedrock, SageMaker ---


def test_upstream_botocore_spans_give_spanledgers_facts(
    tmp_path: Path, moto_url: str, runtime_server: AwsRuntimeServer
) -> None:
    from opentelemetry.instrumentation.botocore import BotocoreInstrumentor

    make_client("s3", moto_url).create_bucket(Bucket=BUCKET)

    def calls() -> None:
        s3 = make_client("s3", moto_url)
        s3.put_object(Bucket=BUCKET, Key=KEY, Body=BODY)
        s3.get_object(Bucket=BUCKET, Key=KEY)["Body"].read()
        make_client("bedrock-runtime", runtime_server.url).converse(
            modelId=MODEL, messages=[{"role": "user", "content": [{"text": "hi"}]}]
        )
        make_client("sagemaker-runtime", moto_url).invoke_endpoint(EndpointName="Scorer", Body=b"{}")

    def s3_names(span: Any, service: str, operation: str, params: dict[str, Any]) -> None:
        """The S3 names the OTel Java agent sets and Python's botocore instrumentation leaves to a hook."""
        if service == "s3" and params:
            span.set_attributes({semconv.AWS_S3_BUCKET: params["Bucket"], semconv.AWS_S3_KEY: params.get("Key", "")})

    own = _own(calls)
    upstream = _upstream(calls, BotocoreInstrumentor(), request_hook=s3_names)
    assert not any(semconv.SPANLEDGER_USAGE_OWNER in (span.attributes or {}) for span in upstream)
    collector = _stored(tmp_path, own, upstream)
    mine, theirs = _facts(collector, own), _facts(collector, upstream)

    # Bedrock: tokens by kind, model, provider, region and the inference profile ARN the SDK bills under.
    chat = f"chat {MODEL}"
    profile = f"arn:aws:bedrock:{REGION}::inference-profile/{MODEL}"
    llm = {key: value for key, value in mine.items() if key[0] == chat and key[1].startswith("llm.")}
    assert {meter for _, meter in llm} == {
        "llm.input_tokens",
        "llm.cache_read_tokens",
        "llm.cache_write_tokens",
        "llm.output_tokens",
    }
    for key, (*fact, _tenant) in llm.items():
        assert theirs[key][:-1] == tuple(fact)
        assert fact[1:] == ["{token}", "llm_model", profile, "aws.bedrock", MODEL, REGION]
        assert theirs[key][-1] == "u-1"  # the root's enduser.id (attribution from an ancestor)
    assert theirs[chat, "llm.output_tokens"][0] == wire.OUTPUT_TOKENS

    # SageMaker: endpoint time, as the SDK's; the endpoint name is not recorded upstream, so no ARN.
    endpoint = "SageMaker Runtime.InvokeEndpoint"
    seconds, *described = theirs[endpoint, "endpoint.seconds"][:7]
    assert seconds > 0
    assert described == ["s", "sagemaker_endpoint", None, "aws", None, REGION]
    assert mine[endpoint, "endpoint.seconds"][1:3] == ("s", "sagemaker_endpoint")

    # S3: the object read, from the bucket and key; no bytes are recorded upstream, so no byte facts.
    source = f"s3://{BUCKET}/{KEY}"
    assert [read[:2] for read in _reads(collector, own)] == [(source, "object_store")]
    assert _reads(collector, upstream) == [(source, "object_store", None, "u-1")]
    assert ("S3.GetObject", "ingress.bytes") in mine and ("S3.PutObject", "egress.bytes") in mine
    assert not any(name.startswith("S3.") for name, _ in theirs)


# --- httpx ---


class _Echo(BaseHTTPRequestHandler):
    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        reply = body * 3
        self.send_response(200)
        self.send_header("Content-Length", str(len(reply)))
        self.end_headers()
        self.wfile.write(reply)

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture(scope="module")
def echo_url() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Echo)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}/upload"
    server.shutdown()


def _body_sizes(span: trace.Span, request: Any, response: Any) -> None:
    """``http.request.body.size`` / ``http.response.body.size`` from the Content-Length headers: the stable
    HTTP names the OTel Java agent records; Python's httpx instrumentation leaves them to a hook."""
    span.set_attribute(semconv.HTTP_REQUEST_BODY_SIZE, int(request.headers["content-length"]))
    span.set_attribute(semconv.HTTP_RESPONSE_BODY_SIZE, int(response.headers["content-length"]))


def test_upstream_httpx_spans_give_byte_facts(tmp_path: Path, echo_url: str) -> None:
    from opentelemetry.instrumentation.httpx import HTTPXClientInstrumentor

    def calls() -> None:
        with httpx.Client() as client:
            client.post(echo_url, content=BODY).read()

    own = _own(calls)
    upstream = _upstream(calls, HTTPXClientInstrumentor(), response_hook=_body_sizes)
    collector = _stored(tmp_path, own, upstream)
    mine, theirs = _facts(collector, own), _facts(collector, upstream)
    (name,) = {name for name, _ in theirs}
    egress, ingress = theirs[name, "egress.bytes"], theirs[name, "ingress.bytes"]
    # The body sizes, the HTTP service called as the resource, attributed from the root's enduser.id.
    assert egress == (len(BODY), "By", "data_transfer", "127.0.0.1", None, None, None, "u-1")
    assert ingress == (3 * len(BODY), "By", "data_transfer", "127.0.0.1", None, None, None, "u-1")
    # spanledger's SDK counts bytes on the wire (the HTTP/1.1 head too) and names no resource.
    assert mine[name, "egress.bytes"][0] > len(BODY) and mine[name, "ingress.bytes"][0] > 3 * len(BODY)
    assert mine[name, "egress.bytes"][1:3] == ("By", "data_transfer")
