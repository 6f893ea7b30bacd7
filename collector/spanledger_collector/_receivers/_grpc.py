"""The OTLP/gRPC receiver: the three export services on one grpcio server, bearer auth and TLS."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import NamedTuple

import grpc
from google.protobuf import duration_pb2
from google.protobuf.any_pb2 import Any as AnyMessage
from google.protobuf.message import Message
from google.rpc import code_pb2, error_details_pb2, status_pb2

from .._component import PermanentError, RetryableError
from .._config import ProtocolSettings
from ._pool import LastIdlePool
from ._signals import OtlpSignals, token_ok

__all__ = ["GrpcReceiver"]

logger = logging.getLogger("spanledger.collector")


class _AbortStatus(NamedTuple):
    code: grpc.StatusCode
    details: str
    trailing_metadata: tuple[tuple[str, bytes], ...]


def _retry_status(error: RetryableError) -> _AbortStatus:
    delay = error.retry_after or 1.0
    info = error_details_pb2.RetryInfo(
        retry_delay=duration_pb2.Duration(seconds=int(delay), nanos=int((delay % 1) * 1e9))
    )
    detail = AnyMessage()
    detail.Pack(info)
    status = status_pb2.Status(code=code_pb2.UNAVAILABLE, message=str(error), details=[detail])
    return _AbortStatus(
        grpc.StatusCode.UNAVAILABLE, str(error), (("grpc-status-details-bin", status.SerializeToString()),)
    )


class GrpcReceiver:
    def __init__(self, signals: OtlpSignals, settings: ProtocolSettings) -> None:
        self.signals = signals
        self.settings = settings
        self.port = settings.port
        self._server: grpc.Server | None = None
        self._pool: LastIdlePool | None = None
        self._stopped = False

    def _handler(self, export: Callable[[bytes, str], Message]) -> Callable[[bytes, grpc.ServicerContext], bytes]:
        tokens = self.settings.bearer_tokens

        def handle(request: bytes, context: grpc.ServicerContext) -> bytes:
            if tokens:
                metadata = dict(context.invocation_metadata())
                if not token_ok(str(metadata.get("authorization", "")), tokens):
                    context.abort(grpc.StatusCode.UNAUTHENTICATED, "missing or invalid bearer token")
            try:
                response: bytes = export(request, "grpc").SerializeToString()
                return response
            except RetryableError as error:
                context.abort_with_status(_retry_status(error))
            except PermanentError as error:
                context.abort(grpc.StatusCode.INVALID_ARGUMENT, str(error))
            except Exception:
                logger.exception("an OTLP/gRPC export failed")
                context.abort(grpc.StatusCode.INTERNAL, "internal error in the collector; see its log")
            raise AssertionError("unreachable: context.abort raises")

        return handle

    def start(self) -> None:
        settings = self.settings
        options = [
            ("grpc.max_receive_message_length", settings.max_request_bytes),
            ("grpc.max_send_message_length", 4 * 1024 * 1024),
            ("grpc.so_reuseport", 0),
        ]
        self._pool = LastIdlePool(settings.max_workers, "spanledger-grpc")
        server = grpc.server(self._pool, options=options)
        services = {
            "opentelemetry.proto.collector.trace.v1.TraceService": self.signals.export_traces,
            "opentelemetry.proto.collector.metrics.v1.MetricsService": self.signals.export_metrics,
            "opentelemetry.proto.collector.logs.v1.LogsService": self.signals.export_logs,
        }
        for service, export in services.items():
            handler = grpc.unary_unary_rpc_method_handler(self._handler(export))
            server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler(service, {"Export": handler}),))
        # gRPC reads "host:port"; an IPv6 address (its brackets taken off by read_endpoint) needs them back.
        host = f"[{settings.host}]" if ":" in settings.host else settings.host
        address = f"{host}:{settings.port}"
        if settings.cert_file is not None and settings.key_file is not None:
            credentials = grpc.ssl_server_credentials(
                [(settings.key_file.read_bytes(), settings.cert_file.read_bytes())]
            )
            self.port = server.add_secure_port(address, credentials)
        else:
            self.port = server.add_insecure_port(address)
        if self.port == 0:
            raise OSError(f"cannot listen for OTLP/gRPC on {address}")
        server.start()
        self._server = server

    def shutdown(self) -> None:
        if self._server is not None and not self._stopped:
            self._stopped = True
            self._server.stop(grace=5).wait()
            if self._pool is not None:
                self._pool.shutdown()
