"""Added latency per S3 GetObject and per Bedrock Converse: spanledger vs ``opentelemetry-instrumentation-botocore``.

One process, one client per service, three configurations run in alternating blocks (rotated each round
so none always runs first): no instrumentation, the upstream ``BotocoreInstrumentor`` alone, and
spanledger's botocore instrumentation alone (it carries more: bucket ARN, data freshness event and
data-age metric, wire bytes and boundary, Bedrock cache tokens and the inference-profile ARN). Each
round's block median minus the same round's uninstrumented block median is one sample of the added
latency; the figure is the median of those samples (paired within a round, so load drifts cancel). Both
record into the same SDK TracerProvider (a no-op exporter behind a SimpleSpanProcessor) and MeterProvider.

Transport: ``--transport stub`` (default) answers each request from a botocore ``before-send`` handler
with canned bytes parsed by botocore as usual (signing, serialising and parsing all run), so the figure
is instrumentation cost, not socket noise. ``--transport server`` sends real HTTP to moto in server mode
(S3) and ``examples/aws_runtime_server.py`` (Bedrock), where server time dominates.

    .venv/bin/python benchmarks/bench_aws.py [--transport stub|server] [--rounds 100] [--block 30] [--clock wall|cpu]
"""

from __future__ import annotations

import argparse
import gc
import io
import json
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from email.utils import formatdate
from pathlib import Path
from typing import Any

import boto3
from botocore.awsrequest import AWSResponse, HeadersDict
from opentelemetry.instrumentation.botocore import BotocoreInstrumentor
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor, SpanExporter, SpanExportResult
from spanledger._aws import BotocoreInstrumentation
from spanledger._config import Settings
from spanledger._telemetry import Telemetry
from urllib3 import HTTPResponse

OBJECT = b"The handbook, version 7.\n" * 160  # 4 KB
CONVERSE = json.dumps(
    {
        "output": {"message": {"role": "assistant", "content": [{"text": "Hello from Bedrock."}]}},
        "stopReason": "end_turn",
        "usage": {
            "inputTokens": 11,
            "outputTokens": 4,
            "totalTokens": 23,
            "cacheReadInputTokens": 5,
            "cacheWriteInputTokens": 3,
        },
        "metrics": {"latencyMs": 12},
    }
).encode()
MESSAGES = [{"role": "user", "content": [{"text": "What is in the handbook?"}]}]


class _NullExporter(SpanExporter):
    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        return SpanExportResult.SUCCESS


def _canned(request: Any, **_: Any) -> AWSResponse:
    """botocore ``before-send`` handler: the response AWS would send, without a socket."""
    if "/converse" in request.url:
        body, headers = CONVERSE, {"Content-Type": "application/json", "x-amzn-RequestId": "bench-1"}
    else:
        body = OBJECT
        headers = {
            "Content-Type": "text/plain",
            "ETag": '"0123456789abcdef"',
            "Last-Modified": formatdate(time.time() - 3600, usegmt=True),
            "x-amz-request-id": "bench-1",
        }
    headers["Content-Length"] = str(len(body))
    raw = HTTPResponse(body=io.BytesIO(body), headers=headers, status=200, preload_content=False)
    return AWSResponse(request.url, 200, HeadersDict(headers), raw)


def _clients(transport: str) -> tuple[Any, Any, Callable[[], None]]:
    credentials = {"aws_access_key_id": "AKIABENCH", "aws_secret_access_key": "bench", "region_name": "us-east-1"}
    if transport == "stub":
        s3 = boto3.client("s3", **credentials)
        bedrock = boto3.client("bedrock-runtime", **credentials)
        for client in (s3, bedrock):
            client.meta.events.register("before-send", _canned)
        return s3, bedrock, lambda: None
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "examples"))
    from aws_runtime_server import start_server
    from moto.server import ThreadedMotoServer

    moto = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    moto.start()
    host, port = moto.get_host_and_port()
    runtime = start_server()
    s3 = boto3.client("s3", endpoint_url=f"http://{host}:{port}", **credentials)
    bedrock = boto3.client("bedrock-runtime", endpoint_url=runtime.url, **credentials)

    def stop() -> None:
        moto.stop()
        runtime.stop()

    return s3, bedrock, stop


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--transport", choices=["stub", "server"], default="stub")
    parser.add_argument("--rounds", type=int, default=100)
    parser.add_argument("--block", type=int, default=30, help="calls per configuration per round")
    parser.add_argument(
        "--clock",
        choices=["wall", "cpu"],
        default="wall",
        help="wall: time.perf_counter; cpu: this thread's CPU time (steadier on a loaded machine)",
    )
    arguments = parser.parse_args()
    clock = time.perf_counter if arguments.clock == "wall" else time.thread_time

    tracer_provider = TracerProvider()
    tracer_provider.add_span_processor(SimpleSpanProcessor(_NullExporter()))
    meter_provider = MeterProvider(metric_readers=[InMemoryMetricReader()])
    telemetry = Telemetry(
        tracer=tracer_provider.get_tracer("spanledger"),
        meter=meter_provider.get_meter("spanledger"),
        settings=Settings(),
    )
    upstream = BotocoreInstrumentor()
    ours = BotocoreInstrumentation()
    configurations: dict[str, tuple[Callable[[], None], Callable[[], None]]] = {
        "off": (lambda: None, lambda: None),
        "upstream": (
            lambda: upstream.instrument(tracer_provider=tracer_provider, meter_provider=meter_provider),
            upstream.uninstrument,
        ),
        "spanledger": (lambda: ours.instrument(telemetry), ours.uninstrument),
    }

    s3, bedrock, stop = _clients(arguments.transport)
    if arguments.transport == "server":
        s3.create_bucket(Bucket="bench-bucket")
        s3.put_object(Bucket="bench-bucket", Key="handbook.txt", Body=OBJECT)

    def get_object() -> None:
        s3.get_object(Bucket="bench-bucket", Key="handbook.txt")["Body"].read()

    def converse() -> None:
        bedrock.converse(modelId="us.anthropic.claude-3-5-haiku-20241022-v1:0", messages=MESSAGES)

    print(f"transport={arguments.transport} clock={arguments.clock} rounds={arguments.rounds} block={arguments.block}")
    try:
        for label, call in (("S3 GetObject", get_object), ("Bedrock Converse", converse)):
            for _ in range(50):  # warm up clients, endpoint resolution and connection pools
                call()
            added: dict[str, list[float]] = {name: [] for name in configurations if name != "off"}
            baseline: list[float] = []
            names = list(configurations)
            for round_number in range(arguments.rounds):
                order = names[round_number % 3 :] + names[: round_number % 3]
                block_medians: dict[str, float] = {}
                for name in order:
                    on, off = configurations[name]
                    on()
                    gc.collect()
                    try:
                        times = []
                        for _ in range(arguments.block):
                            started = clock()
                            call()
                            times.append(clock() - started)
                    finally:
                        off()
                    block_medians[name] = statistics.median(times)
                baseline.append(block_medians["off"])
                for name, values in added.items():
                    values.append(block_medians[name] - block_medians["off"])
            added_ours, added_theirs = (statistics.median(added[name]) * 1e6 for name in ("spanledger", "upstream"))
            print(
                f"{label}: uninstrumented {statistics.median(baseline) * 1e6:.1f} us; "
                f"added: upstream {added_theirs:.1f} us, spanledger {added_ours:.1f} us; "
                f"ratio {added_ours / added_theirs:.2f}x (target <= 1.2x)"
            )
    finally:
        stop()


if __name__ == "__main__":
    main()
