"""Added latency per httpx/httpx2 request: spanledger vs ``opentelemetry-instrumentation-httpx`` alone.

One process, one client, three configurations run in alternating blocks (rotated each round so none
always runs first): no instrumentation, upstream ``HTTPXClientInstrumentor`` alone, and spanledger (which
drives the same upstream instrumentor plus its byte counting and boundary). Each configuration's median
request time minus the uninstrumented median is its added latency. Both instrumented configurations
record into the same SDK TracerProvider (a no-op exporter behind a SimpleSpanProcessor) and MeterProvider.

The transport is the real ``HTTPTransport`` (the method both instrumentations wrap) with its connection
pool replaced by an in-process one that consumes the request body and returns a canned response, so the
figure is instrumentation cost, not socket noise.

    .venv/bin/python benchmarks/bench_http.py [--library httpx|httpx2] [--rounds 30] [--block 200]
"""

from __future__ import annotations

import argparse
import importlib
import statistics
import time
from collections.abc import Callable, Sequence
from types import ModuleType
from typing import Any

from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor, SpanExporter, SpanExportResult
from spanledger._config import Settings
from spanledger._http import Httpx2Instrumentation, HttpxInstrumentation
from spanledger._telemetry import Telemetry

BODY = b'{"id":"chatcmpl-1","object":"chat.completion","choices":[]}' * 8


class _NullExporter(SpanExporter):
    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        return SpanExportResult.SUCCESS


class _CannedPool:
    """Stands in for httpcore's ConnectionPool: reads the request body, answers 200 with ``BODY``."""

    def __init__(self, core: ModuleType) -> None:
        self._core = core

    def handle_request(self, request: Any) -> Any:
        for _ in request.stream:
            pass
        return self._core.Response(
            200, headers=[(b"Content-Type", b"application/json"), (b"Content-Length", str(len(BODY)).encode())],
            content=BODY, extensions={"http_version": b"HTTP/1.1", "reason_phrase": b"OK"},
        )

    def close(self) -> None:
        pass


def _time_block(send: Callable[[], Any], count: int) -> list[float]:
    samples = []
    for _ in range(count):
        start = time.perf_counter_ns()
        send()
        samples.append((time.perf_counter_ns() - start) / 1000)
    return samples


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--library", choices=("httpx", "httpx2"), default="httpx")
    parser.add_argument("--rounds", type=int, default=30)
    parser.add_argument("--block", type=int, default=200)
    args = parser.parse_args()

    module = importlib.import_module(args.library)
    core = importlib.import_module("httpcore" if args.library == "httpx" else "httpcore2")
    from opentelemetry.instrumentation import httpx as upstream_package

    upstream = (
        upstream_package.HTTPXClientInstrumentor() if args.library == "httpx"
        else upstream_package.HTTPX2ClientInstrumentor()
    )
    tracer_provider = TracerProvider()
    tracer_provider.add_span_processor(SimpleSpanProcessor(_NullExporter()))
    meter_provider = MeterProvider(metric_readers=[InMemoryMetricReader()])
    telemetry = Telemetry(
        tracer=tracer_provider.get_tracer("spanledger"), meter=meter_provider.get_meter("spanledger"),
        settings=Settings(egress_rules="127.0.0.0/8=zone:us-east-1a", availability_zone="us-east-1a"),
    )
    ours = HttpxInstrumentation() if args.library == "httpx" else Httpx2Instrumentation()

    transport = module.HTTPTransport()
    transport._pool = _CannedPool(core)
    client = module.Client(transport=transport)
    url = "http://127.0.0.1:8000/v1/chat/completions"
    payload = b'{"model":"m","messages":[{"role":"user","content":"hi"}]}' * 4

    def send() -> Any:
        return client.post(url, content=payload).content

    configurations: dict[str, tuple[Callable[[], None], Callable[[], None]]] = {
        "none": (lambda: None, lambda: None),
        "upstream": (
            lambda: upstream.instrument(tracer_provider=tracer_provider, meter_provider=meter_provider),
            upstream.uninstrument,
        ),
        "spanledger": (lambda: ours.instrument(telemetry), ours.uninstrument),
    }
    samples: dict[str, list[float]] = {name: [] for name in configurations}
    names = list(configurations)
    _time_block(send, args.block)  # warm-up
    for round_index in range(args.rounds):
        order = names[round_index % 3 :] + names[: round_index % 3]
        for name in order:
            on, off = configurations[name]
            on()
            try:
                _time_block(send, 20)  # let caches settle after (un)instrumenting
                samples[name].extend(_time_block(send, args.block))
            finally:
                off()

    medians = {name: statistics.median(values) for name, values in samples.items()}
    added_upstream = medians["upstream"] - medians["none"]
    added_ours = medians["spanledger"] - medians["none"]
    print(f"{args.library}: {args.rounds} rounds x {args.block} requests per configuration, median per request")
    for name in names:
        print(f"  {name:<11} {medians[name]:8.1f} us")
    print(f"  added by upstream alone : {added_upstream:6.1f} us")
    print(f"  added by spanledger     : {added_ours:6.1f} us")
    print(f"  ratio spanledger/upstream: {added_ours / added_upstream:.2f} (target <= 1.20)")


if __name__ == "__main__":
    main()
