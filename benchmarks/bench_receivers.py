"""The OTLP receivers alone: server CPU per request with an empty trace handler.

Each configuration serves in its own process with a handler that does nothing (it returns an empty
``ExportTraceServiceResponse``); a client in this process sends bench_collector's 100-span request (≈ 81 KB)
at a fixed rate, and the server's CPU time (user + system, ``/proc/<pid>/stat``) and context switches (summed
over its threads) are read before the first and after the last request. Configurations run in a shuffled
order each round; the figures printed are medians over rounds.

    .venv/bin/python benchmarks/bench_receivers.py --rounds 5 --requests 600

Configurations:
  receiver       the collector's OTLP/gRPC receiver (``GrpcReceiver``) as it is in this tree
  sync           ``grpc.server``, a 128-thread ``ThreadPoolExecutor``, generic handlers (main's receiver before)
  sync-registered  the same with the method registered (``add_registered_method_handlers``), not generic
  sync-chunk     the same with 256 KiB TCP reads (`grpc.experimental.tcp_*read_chunk_size`)
  sync-throughput  the same with `grpc.optimization_target` "throughput"
  aio            ``grpc.aio`` server on an event-loop thread, the handler run on the loop
  aio-executor   the same, the handler run in a thread pool (``run_in_executor``)
  http           the collector's OTLP/HTTP receiver (``HttpReceiver``), protobuf over one keep-alive connection
"""

from __future__ import annotations

import argparse
import asyncio
import http.client
import json
import os
import random
import statistics
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_collector import TRACE_METHOD, build_template

CONFIGURATIONS = (
    "receiver",
    "sync",
    "sync-registered",
    "sync-chunk",
    "sync-throughput",
    "aio",
    "aio-executor",
    "http",
)
# grpc.server with further channel arguments (the ones the CPU round in README.md tried are left out).
_SYNC_OPTIONS: dict[str, list[tuple[str, Any]]] = {
    "sync": [],
    "sync-chunk": [
        ("grpc.experimental.tcp_read_chunk_size", 256 * 1024),
        ("grpc.experimental.tcp_min_read_chunk_size", 128 * 1024),
        ("grpc.experimental.tcp_max_read_chunk_size", 4 * 1024 * 1024),
    ],
    "sync-throughput": [("grpc.optimization_target", "throughput")],
    "sync-registered": [],
}
TRACE_SERVICE = "opentelemetry.proto.collector.trace.v1.TraceService"
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def _empty_response() -> bytes:
    from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceResponse

    return ExportTraceServiceResponse().SerializeToString()


class _EmptySignals:
    """Stands in for ``OtlpSignals``: every export is accepted and does nothing."""

    receiver_id = "otlp"

    def export_traces(self, data: bytes, transport: str) -> Any:
        from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceResponse

        return ExportTraceServiceResponse()

    export_metrics = export_logs = export_traces


def _settings() -> Any:
    from spanledger_collector._config import ProtocolSettings

    return ProtocolSettings(host="127.0.0.1", port=0, max_request_bytes=4 * 1024 * 1024)


def serve(configuration: str) -> None:
    """Serve until stdin closes; print the port first."""
    import grpc

    response = _empty_response()
    options = [
        ("grpc.max_receive_message_length", 4 * 1024 * 1024),
        ("grpc.max_send_message_length", 4 * 1024 * 1024),
        ("grpc.so_reuseport", 0),
    ]
    stop: Any
    if configuration in ("receiver", "http"):
        from spanledger_collector._receivers import GrpcReceiver, HttpReceiver

        kind = GrpcReceiver if configuration == "receiver" else HttpReceiver
        receiver = kind(_EmptySignals(), _settings())  # type: ignore[arg-type]
        receiver.start()
        port = receiver.port
        stop = receiver.shutdown
    elif configuration in _SYNC_OPTIONS:

        def handle(request: bytes, context: Any) -> bytes:
            return response

        server = grpc.server(ThreadPoolExecutor(max_workers=128), options=options + _SYNC_OPTIONS[configuration])
        handler = grpc.unary_unary_rpc_method_handler(handle)
        if configuration == "sync-registered":
            server.add_registered_method_handlers(TRACE_SERVICE, {"Export": handler})
        else:
            server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler(TRACE_SERVICE, {"Export": handler}),))
        port = server.add_insecure_port("127.0.0.1:0")
        server.start()

        def stop() -> None:
            server.stop(grace=1).wait()

    elif configuration in ("aio", "aio-executor"):
        loop = asyncio.new_event_loop()
        pool = ThreadPoolExecutor(max_workers=128)

        def work(request: bytes) -> bytes:
            return response

        async def handle_inline(request: bytes, context: Any) -> bytes:
            return work(request)

        async def handle_executor(request: bytes, context: Any) -> bytes:
            return await asyncio.get_running_loop().run_in_executor(pool, work, request)

        async def start() -> tuple[Any, int]:
            server = grpc.aio.server(options=options)
            handler = grpc.unary_unary_rpc_method_handler(handle_inline if configuration == "aio" else handle_executor)
            server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler(TRACE_SERVICE, {"Export": handler}),))
            port = server.add_insecure_port("127.0.0.1:0")
            await server.start()
            return server, port

        threading.Thread(target=loop.run_forever, daemon=True).start()
        aio_server, port = asyncio.run_coroutine_threadsafe(start(), loop).result()

        def stop() -> None:
            asyncio.run_coroutine_threadsafe(aio_server.stop(1), loop).result()

    else:
        raise SystemExit(f"unknown configuration {configuration!r}; one of {', '.join(CONFIGURATIONS)}")
    print(port, flush=True)
    sys.stdin.read()
    stop()


def _cpu_s(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS


def _switches(pid: int) -> tuple[int, int]:
    voluntary = involuntary = 0
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            for line in (task / "status").read_text().splitlines():
                if line.startswith("voluntary_ctxt_switches:"):
                    voluntary += int(line.split()[1])
                elif line.startswith("nonvoluntary_ctxt_switches:"):
                    involuntary += int(line.split()[1])
        except FileNotFoundError:
            pass
    return voluntary, involuntary


def _send_grpc(port: int, body: bytes, requests: int, rate: float, on_first: Any) -> None:
    import grpc

    channel = grpc.insecure_channel(f"127.0.0.1:{port}", options=[("grpc.max_send_message_length", 4 * 1024 * 1024)])
    export = channel.unary_unary(TRACE_METHOD)
    grpc.channel_ready_future(channel).result(timeout=30)
    export(body, timeout=30)  # connection and first-call setup, outside the measurement
    on_first()
    next_send = time.monotonic()
    futures = []
    for _ in range(requests):
        now = time.monotonic()
        if now < next_send:
            time.sleep(next_send - now)
        next_send += 1 / rate
        futures.append(export.future(body, timeout=30))
    for future in futures:
        future.result()
    channel.close()


def _send_http(port: int, body: bytes, requests: int, rate: float, on_first: Any) -> None:
    # One keep-alive connection, one request at a time (at 100 requests/s each is answered long before the next).
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    headers = {"Content-Type": "application/x-protobuf"}

    def post() -> None:
        connection.request("POST", "/v1/traces", body, headers)
        answer = connection.getresponse()
        answer.read()
        if answer.status != 200:
            raise RuntimeError(f"HTTP {answer.status}")

    post()
    on_first()
    next_send = time.monotonic()
    for _ in range(requests):
        now = time.monotonic()
        if now < next_send:
            time.sleep(next_send - now)
        next_send += 1 / rate
        post()
    connection.close()


def measure(configuration: str, body: bytes, requests: int, rate: float) -> dict[str, float]:
    server = subprocess.Popen(
        [sys.executable, __file__, "--serve", configuration], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    assert server.stdout is not None and server.stdin is not None
    port = int(server.stdout.readline())
    before: dict[str, Any] = {}

    def on_first() -> None:
        before["cpu"] = _cpu_s(server.pid)
        before["switches"] = _switches(server.pid)
        before["at"] = time.monotonic()

    send = _send_http if configuration == "http" else _send_grpc
    send(port, body, requests, rate, on_first)
    cpu = _cpu_s(server.pid) - before["cpu"]
    voluntary, involuntary = _switches(server.pid)
    elapsed = time.monotonic() - before["at"]
    server.stdin.close()
    server.wait(timeout=30)
    return {
        "cpu_us_per_request": round(cpu / requests * 1e6, 1),
        "voluntary_switches_per_request": round((voluntary - before["switches"][0]) / requests, 1),
        "involuntary_switches_per_request": round((involuntary - before["switches"][1]) / requests, 1),
        "requests_per_s": round(requests / elapsed, 1),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--configurations", default=",".join(CONFIGURATIONS), help="comma-separated")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--requests", type=int, default=600, help="requests per configuration and round")
    parser.add_argument("--rate", type=float, default=100, help="requests/s")
    parser.add_argument("--spans-per-request", type=int, default=100)
    parser.add_argument("--serve", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        serve(args.serve)
        return 0
    configurations = args.configurations.split(",")
    body = build_template(args.spans_per_request)
    print(json.dumps({"request_bytes": len(body), "load_average": os.getloadavg()[0]}), flush=True)
    results: dict[str, list[dict[str, float]]] = {name: [] for name in configurations}
    for round_number in range(args.rounds):
        order = random.sample(configurations, len(configurations))
        for name in order:
            result = measure(name, body, args.requests, args.rate)
            results[name].append(result)
            print(json.dumps({"round": round_number, "configuration": name, **result}), flush=True)
    print("\nmedians over rounds:")
    for name, runs in results.items():
        medians = {key: round(statistics.median(run[key] for run in runs), 1) for key in runs[0]}
        cpu = sorted(run["cpu_us_per_request"] for run in runs)
        print(json.dumps({"configuration": name, **medians, "cpu_us_per_request_all": cpu}), flush=True)
    print(json.dumps({"load_average": os.getloadavg()[0]}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
