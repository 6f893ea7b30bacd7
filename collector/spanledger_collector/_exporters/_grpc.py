"""OTLP/gRPC with grpcio: the serialized request goes out as-is (no re-encoding), RetryInfo honoured."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import grpc
from google.protobuf.message import DecodeError
from google.rpc import error_details_pb2, status_pb2

from .._component import PermanentError, RetryableError
from ._signals import SIGNALS, Signal
from ._transport import PartialSuccess, parse_partial_success

__all__ = ["OtlpGrpcTransport"]

# OTLP: retry these; RESOURCE_EXHAUSTED only when the server says when (RetryInfo).
_RETRYABLE_CODES = frozenset(
    {
        grpc.StatusCode.CANCELLED,
        grpc.StatusCode.DEADLINE_EXCEEDED,
        grpc.StatusCode.ABORTED,
        grpc.StatusCode.OUT_OF_RANGE,
        grpc.StatusCode.UNAVAILABLE,
        grpc.StatusCode.DATA_LOSS,
    }
)
_STATUS_DETAILS_KEY = "grpc-status-details-bin"


def _retry_delay(error: grpc.RpcError) -> float | None:
    trailing: Any = error.trailing_metadata() if hasattr(error, "trailing_metadata") else None
    for key, value in trailing or ():
        if key != _STATUS_DETAILS_KEY or not isinstance(value, bytes):
            continue
        try:
            status = status_pb2.Status.FromString(value)
        except DecodeError:
            return None
        for detail in status.details:
            if detail.Is(error_details_pb2.RetryInfo.DESCRIPTOR):
                info = error_details_pb2.RetryInfo()
                detail.Unpack(info)
                return float(info.retry_delay.seconds + info.retry_delay.nanos / 1e9)
    return None


class OtlpGrpcTransport:
    def __init__(
        self,
        target: str,
        *,
        insecure: bool,
        headers: Mapping[str, str],
        compression: str,
        ca_file: str | None = None,
    ) -> None:
        if insecure:
            self._channel = grpc.insecure_channel(target)
        else:
            root = Path(ca_file).read_bytes() if ca_file else None
            self._channel = grpc.secure_channel(target, grpc.ssl_channel_credentials(root_certificates=root))
        self._target = target
        self._metadata = tuple((name.lower(), value) for name, value in headers.items())
        self._compression = grpc.Compression.Gzip if compression == "gzip" else grpc.Compression.NoCompression
        self._methods = {
            signal: self._channel.unary_unary(spec.grpc_method, request_serializer=None, response_deserializer=None)
            for signal, spec in SIGNALS.items()
        }

    def send(self, signal: Signal, payload: bytes, timeout: float) -> PartialSuccess | None:
        try:
            response = self._methods[signal](
                payload, timeout=timeout, metadata=self._metadata, compression=self._compression
            )
        except grpc.RpcError as exc:
            code = exc.code() if hasattr(exc, "code") else grpc.StatusCode.UNKNOWN
            details = exc.details() if hasattr(exc, "details") else ""
            message = f"{self._target} {SIGNALS[signal].grpc_method}: {code.name}: {details}"
            delay = _retry_delay(exc)
            if code in _RETRYABLE_CODES or (code == grpc.StatusCode.RESOURCE_EXHAUSTED and delay is not None):
                raise RetryableError(message, retry_after=delay) from None
            raise PermanentError(message) from None
        return parse_partial_success(signal, response, "application/x-protobuf")

    def close(self) -> None:
        self._channel.close()
