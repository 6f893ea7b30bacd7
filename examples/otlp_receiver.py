"""Minimal local OTLP receivers for the demo and tests: OTLP/HTTP (``/v1/traces``, ``/v1/metrics``) and
OTLP/gRPC (needs ``grpcio``, in the ``collector`` extra).

They decode the protobuf requests OpenTelemetry exporters send and keep them, so a caller can look at what
went over the wire. ``with OtlpHttpReceiver() as receiver:`` (or ``OtlpGrpcReceiver``), then point
``OTEL_EXPORTER_OTLP_ENDPOINT`` at ``receiver.endpoint``. This is not the spanledger collector.
"""

from __future__ import annotations

import gzip
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from opentelemetry.proto.collector.metrics.v1 import metrics_service_pb2
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2
from opentelemetry.proto.common.v1.common_pb2 import AnyValue


def _value(any_value: AnyValue) -> Any:
    kind = any_value.WhichOneof("value")
    return getattr(any_value, kind) if kind else None


@dataclass
class ReceivedSpan:
    name: str
    trace_id: str
    span_id: str
    parent_span_id: str
    kind: int
    start_time_unix_nano: int
    end_time_unix_nano: int
    attributes: dict[str, Any]
    resource: dict[str, Any]


@dataclass
class Received:
    """Everything a receiver was sent."""

    trace_requests: list[trace_service_pb2.ExportTraceServiceRequest] = field(default_factory=list)
    metric_requests: list[metrics_service_pb2.ExportMetricsServiceRequest] = field(default_factory=list)
    headers: list[dict[str, str]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def spans(self) -> list[ReceivedSpan]:
        spans = []
        with self.lock:
            requests = list(self.trace_requests)
        for request in requests:
            for resource_spans in request.resource_spans:
                resource = {kv.key: _value(kv.value) for kv in resource_spans.resource.attributes}
                for scope_spans in resource_spans.scope_spans:
                    for span in scope_spans.spans:
                        spans.append(
                            ReceivedSpan(
                                name=span.name,
                                trace_id=span.trace_id.hex(),
                                span_id=span.span_id.hex(),
                                parent_span_id=span.parent_span_id.hex(),
                                kind=span.kind,
                                start_time_unix_nano=span.start_time_unix_nano,
                                end_time_unix_nano=span.end_time_unix_nano,
                                attributes={kv.key: _value(kv.value) for kv in span.attributes},
                                resource=resource,
                            )
                        )
        return spans

    def metric_names(self) -> set[str]:
        with self.lock:
            requests = list(self.metric_requests)
        return {
            metric.name
            for request in requests
            for resource_metrics in request.resource_metrics
            for scope_metrics in resource_metrics.scope_metrics
            for metric in scope_metrics.metrics
        }

    def wait_for_spans(self, count: int, timeout: float = 30.0) -> list[ReceivedSpan]:
        """Poll until at least ``count`` spans arrived (pytest-timeout bounds a stuck test)."""
        deadline = time.monotonic() + timeout
        while len(spans := self.spans()) < count and time.monotonic() < deadline:
            time.sleep(0.05)
        return spans


class OtlpHttpReceiver:
    """OTLP/HTTP (protobuf) on 127.0.0.1 with an ephemeral port; ``endpoint`` is its base URL."""

    def __init__(self) -> None:
        self.received = Received()
        received = self.received

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                if self.headers.get("Content-Encoding") == "gzip":
                    body = gzip.decompress(body)
                if self.path == "/v1/traces":
                    request: Any = trace_service_pb2.ExportTraceServiceRequest.FromString(body)
                    response: Any = trace_service_pb2.ExportTraceServiceResponse()
                    target: list[Any] = received.trace_requests
                elif self.path == "/v1/metrics":
                    request = metrics_service_pb2.ExportMetricsServiceRequest.FromString(body)
                    response = metrics_service_pb2.ExportMetricsServiceResponse()
                    target = received.metric_requests
                else:
                    self.send_error(404)
                    return
                with received.lock:
                    target.append(request)
                    received.headers.append(dict(self.headers))
                payload = response.SerializeToString()
                self.send_response(200)
                self.send_header("Content-Type", "application/x-protobuf")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.endpoint = f"http://127.0.0.1:{self._server.server_address[1]}"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def __enter__(self) -> OtlpHttpReceiver:
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._server.shutdown()
        self._server.server_close()


class OtlpGrpcReceiver:
    """OTLP/gRPC TraceService and MetricsService on 127.0.0.1 with an ephemeral port."""

    def __init__(self) -> None:
        import grpc
        from opentelemetry.proto.collector.metrics.v1 import metrics_service_pb2_grpc
        from opentelemetry.proto.collector.trace.v1 import trace_service_pb2_grpc

        self.received = Received()
        received = self.received

        class Traces(trace_service_pb2_grpc.TraceServiceServicer):  # type: ignore[misc]
            def Export(self, request: Any, context: Any) -> Any:
                with received.lock:
                    received.trace_requests.append(request)
                    received.headers.append({key: value for key, value in context.invocation_metadata()})
                return trace_service_pb2.ExportTraceServiceResponse()

        class Metrics(metrics_service_pb2_grpc.MetricsServiceServicer):  # type: ignore[misc]
            def Export(self, request: Any, context: Any) -> Any:
                with received.lock:
                    received.metric_requests.append(request)
                return metrics_service_pb2.ExportMetricsServiceResponse()

        from concurrent import futures

        self._server = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
        trace_service_pb2_grpc.add_TraceServiceServicer_to_server(Traces(), self._server)
        metrics_service_pb2_grpc.add_MetricsServiceServicer_to_server(Metrics(), self._server)
        port = self._server.add_insecure_port("127.0.0.1:0")
        self.endpoint = f"http://127.0.0.1:{port}"

    def __enter__(self) -> OtlpGrpcReceiver:
        self._server.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._server.stop(grace=None)
