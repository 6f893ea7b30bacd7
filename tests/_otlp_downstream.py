"""Real OTLP servers (HTTP and gRPC) for exporter tests: they record what arrives, can be told to fail, and
check SigV4 signatures the way AWS does."""

from __future__ import annotations

import datetime
import gzip
import hmac
import socket
import threading
import time
from collections.abc import Callable, Iterator
from concurrent import futures
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import grpc
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials
from google.protobuf import duration_pb2
from google.rpc import error_details_pb2, status_pb2
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, InstrumentationScope, KeyValue
from opentelemetry.proto.resource.v1.resource_pb2 import Resource
from opentelemetry.proto.trace.v1.trace_pb2 import ResourceSpans, ScopeSpans, Span

ACCESS_KEY = "AKIDEXAMPLE"
SECRET_KEY = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"
SESSION_TOKEN = "session-token-example"


def wait_until(predicate: Callable[[], bool], timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError("condition not reached in time")
        time.sleep(0.02)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def make_traces(resources: int = 1, scopes: int = 1, spans: int = 1, *, start: int = 0, attr_bytes: int = 10):
    """A request whose span ids are ``start``, ``start + 1``, ... (8-byte big-endian)."""
    request = trace_service_pb2.ExportTraceServiceRequest()
    counter = start
    for r in range(resources):
        resource_spans = ResourceSpans(
            resource=Resource(attributes=[KeyValue(key="service.name", value=AnyValue(string_value=f"svc-{r}"))])
        )
        for s in range(scopes):
            scope_spans = ScopeSpans(scope=InstrumentationScope(name=f"scope-{s}", version="1"))
            for _ in range(spans):
                scope_spans.spans.append(
                    Span(
                        trace_id=counter.to_bytes(16, "big"),
                        span_id=counter.to_bytes(8, "big"),
                        name="chat gpt-4o",
                        start_time_unix_nano=1_700_000_000_000_000_000,
                        end_time_unix_nano=1_700_000_001_000_000_000,
                        attributes=[KeyValue(key="payload", value=AnyValue(string_value="x" * attr_bytes))],
                    )
                )
                counter += 1
            resource_spans.scope_spans.append(scope_spans)
        request.resource_spans.append(resource_spans)
    return request


def span_ids(request: trace_service_pb2.ExportTraceServiceRequest) -> list[int]:
    return [
        int.from_bytes(span.span_id, "big")
        for resource in request.resource_spans
        for scope in resource.scope_spans
        for span in scope.spans
    ]


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    raw_body: bytes
    body: bytes
    at: float = field(default_factory=time.monotonic)


@dataclass
class Behaviour:
    """Responses to give, in order, before answering 200 (each: status, headers, body)."""

    responses: list[tuple[int, dict[str, str], bytes]] = field(default_factory=list)
    success_body: bytes = b""
    success_status: int = 200


class OtlpHttpDownstream:
    def __init__(self, port: int | None = None) -> None:
        self.port = port or free_port()
        self.received: list[Received] = []
        self.attempts: list[float] = []
        self.behaviour = Behaviour()
        self.lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        downstream = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def do_POST(self) -> None:
                raw = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                body = gzip.decompress(raw) if self.headers.get("Content-Encoding") == "gzip" else raw
                with downstream.lock:
                    downstream.attempts.append(time.monotonic())
                    canned = downstream.behaviour.responses.pop(0) if downstream.behaviour.responses else None
                    if canned is None:
                        downstream.received.append(Received(self.path, dict(self.headers.items()), raw, body))
                status, headers, reply = canned or (
                    downstream.behaviour.success_status,
                    {"Content-Type": "application/x-protobuf"},
                    downstream.behaviour.success_body,
                )
                self.send_response(status)
                for name, value in headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(reply)))
                self.end_headers()
                self.wfile.write(reply)

        self._server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self._server.daemon_threads = True
        threading.Thread(target=self._server.serve_forever, daemon=True).start()

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def traces(self) -> list[trace_service_pb2.ExportTraceServiceRequest]:
        with self.lock:
            return [
                trace_service_pb2.ExportTraceServiceRequest.FromString(item.body)
                for item in self.received
                if item.path == "/v1/traces"
            ]

    def span_ids(self) -> list[int]:
        return [span_id for request in self.traces() for span_id in span_ids(request)]


@contextmanager
def http_downstream(port: int | None = None) -> Iterator[OtlpHttpDownstream]:
    downstream = OtlpHttpDownstream(port)
    downstream.start()
    try:
        yield downstream
    finally:
        downstream.stop()


def grpc_status_with_retry_info(code: int, message: str, delay_seconds: float) -> bytes:
    retry_info = error_details_pb2.RetryInfo(
        retry_delay=duration_pb2.Duration(seconds=int(delay_seconds), nanos=int((delay_seconds % 1) * 1e9))
    )
    status = status_pb2.Status(code=code, message=message)
    status.details.add().Pack(retry_info)
    return status.SerializeToString()


class OtlpGrpcDownstream:
    """A real grpcio OTLP trace + logs server; ``failures`` holds (code, RetryInfo delay or None)."""

    def __init__(self) -> None:
        self.port = free_port()
        self.requests: list[trace_service_pb2.ExportTraceServiceRequest] = []
        self.attempts: list[float] = []
        self.metadata: list[dict[str, str]] = []
        self.failures: list[tuple[grpc.StatusCode, float | None]] = []
        self.partial_rejected = 0
        self.lock = threading.Lock()
        self._server: grpc.Server | None = None

    def start(self) -> None:
        from opentelemetry.proto.collector.trace.v1 import trace_service_pb2_grpc

        downstream = self

        class Service(trace_service_pb2_grpc.TraceServiceServicer):
            def Export(self, request: Any, context: grpc.ServicerContext) -> Any:
                with downstream.lock:
                    downstream.attempts.append(time.monotonic())
                    failure = downstream.failures.pop(0) if downstream.failures else None
                    if failure is None:
                        downstream.requests.append(request)
                        downstream.metadata.append(dict(context.invocation_metadata()))
                if failure is not None:
                    code, delay = failure
                    if delay is not None:
                        details = grpc_status_with_retry_info(code.value[0], "slow down", delay)
                        context.set_trailing_metadata((("grpc-status-details-bin", details),))
                    context.abort(code, "told to fail")
                response = trace_service_pb2.ExportTraceServiceResponse()
                if downstream.partial_rejected:
                    response.partial_success.rejected_spans = downstream.partial_rejected
                    response.partial_success.error_message = "some spans were too old"
                return response

        self._server = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
        trace_service_pb2_grpc.add_TraceServiceServicer_to_server(Service(), self._server)
        self._server.add_insecure_port(f"127.0.0.1:{self.port}")
        self._server.start()

    def stop(self) -> None:
        if self._server is not None:
            self._server.stop(grace=None)
            self._server = None

    def span_ids(self) -> list[int]:
        with self.lock:
            return [span_id for request in self.requests for span_id in span_ids(request)]


def verify_sigv4(received: Received, url: str, *, service: str, region: str, secret: str = SECRET_KEY) -> bool:
    """Recompute the request's signature from what arrived, as AWS does, with botocore."""
    authorization = received.headers["Authorization"]
    algorithm, _, fields = authorization.partition(" ")
    assert algorithm == "AWS4-HMAC-SHA256"
    parts = dict(field.strip().split("=", 1) for field in fields.split(","))
    access_key, date, scope_region, scope_service, terminator = parts["Credential"].split("/")
    assert (access_key, scope_region, scope_service, terminator) == (ACCESS_KEY, region, service, "aws4_request")
    signed_names = parts["SignedHeaders"].split(";")
    lower = {name.lower(): value for name, value in received.headers.items()}
    request = AWSRequest(
        method="POST", url=url, data=received.raw_body, headers={name: lower[name] for name in signed_names}
    )
    amz_date = lower["x-amz-date"]
    assert amz_date.startswith(date)
    request.context["timestamp"] = amz_date
    signer = SigV4Auth(Credentials(ACCESS_KEY, secret, SESSION_TOKEN), service, region)
    canonical = signer.canonical_request(request)
    expected = signer.signature(signer.string_to_sign(request, canonical), request)
    sent_at = datetime.datetime.strptime(amz_date, "%Y%m%dT%H%M%SZ").replace(tzinfo=datetime.timezone.utc)
    assert abs((datetime.datetime.now(datetime.timezone.utc) - sent_at).total_seconds()) < 300
    return hmac.compare_digest(expected, parts["Signature"])


__all__ = [
    "ACCESS_KEY",
    "SECRET_KEY",
    "SESSION_TOKEN",
    "OtlpGrpcDownstream",
    "OtlpHttpDownstream",
    "free_port",
    "grpc_status_with_retry_info",
    "http_downstream",
    "make_traces",
    "span_ids",
    "verify_sigv4",
    "wait_until",
]
