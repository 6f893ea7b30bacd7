"""The OTLP/HTTP receiver: protobuf and JSON, gzip, chunked bodies, bearer auth, TLS, size cap."""

from __future__ import annotations

import contextlib
import json
import logging
import math
import re
import socket
import ssl
import threading
import zlib
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from google.protobuf.message import Message
from google.rpc import code_pb2, status_pb2
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import (
    ExportLogsPartialSuccess,
    ExportLogsServiceRequest,
)
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import (
    ExportMetricsPartialSuccess,
    ExportMetricsServiceRequest,
)
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTracePartialSuccess,
    ExportTraceServiceRequest,
)

from .._component import PermanentError, RetryableError
from .._config import ProtocolSettings
from .._decode import JsonMappingError, message_to_otlp_json, otlp_json_to_message
from .._http_handler import READ_TIMEOUT_S, Handler
from ._signals import OtlpSignals, TooLarge, token_ok

__all__ = ["HttpReceiver"]

logger = logging.getLogger("spanledger.collector")

PROTOBUF = "application/x-protobuf"
JSON = "application/json"


_HTTP_SIGNALS: dict[str, tuple[str, type[Message], type[Message]]] = {
    "/v1/traces": ("export_traces", ExportTraceServiceRequest, ExportTracePartialSuccess),
    "/v1/metrics": ("export_metrics", ExportMetricsServiceRequest, ExportMetricsPartialSuccess),
    "/v1/logs": ("export_logs", ExportLogsServiceRequest, ExportLogsPartialSuccess),
}


_CHUNK_SIZE = re.compile(rb"[0-9A-Fa-f]{1,16}")


def _read_chunked(stream: Any, limit: int) -> bytes:
    parts: list[bytes] = []
    total = 0
    while True:
        line = stream.readline(1024)
        if not line.endswith(b"\n"):
            raise ValueError("a chunk size line is malformed or truncated")
        size_text = line.split(b";", 1)[0].strip()
        # Hex digits only: int() would also take "-1" (then read to the end, past the size limit), "+1", "1_0".
        if _CHUNK_SIZE.fullmatch(size_text) is None:
            raise ValueError(f"chunk size {size_text[:20]!r} is not hexadecimal")
        size = int(size_text, 16)
        if size == 0:
            while stream.readline(1024) not in (b"\r\n", b"\n", b""):
                pass
            return b"".join(parts)
        total += size
        if total > limit:
            raise TooLarge
        chunk = stream.read(size)
        if len(chunk) != size:
            raise ValueError("the chunked body ended early")
        parts.append(chunk)
        stream.readline(1024)


def _gunzip(data: bytes, limit: int) -> bytes:
    """Every member of a gzip body (RFC 1952 allows several, one after another), at most ``limit`` bytes in all."""
    parts: list[bytes] = []
    total = 0
    while True:
        decompressor = zlib.decompressobj(wbits=16 + zlib.MAX_WBITS)
        try:
            part = decompressor.decompress(data, limit - total + 1)
        except zlib.error as error:
            member = f" (member {len(parts) + 1})" if parts else ""
            raise ValueError(f"the body is not valid gzip{member} ({error})") from None
        total += len(part)
        if total > limit or decompressor.unconsumed_tail:
            raise TooLarge
        if not decompressor.eof:
            raise ValueError("the gzip body is truncated")
        parts.append(part)
        data = decompressor.unused_data
        if not data:
            return b"".join(parts)


class _Server(ThreadingHTTPServer):
    """A thread per connection, at most ``max_connections`` at once; past that a connection is answered 503
    and closed by the accepting thread (TLS ones are closed: answering needs a handshake)."""

    daemon_threads = True
    ssl_context: ssl.SSLContext | None = None

    def __init__(self, settings: ProtocolSettings, handler: type[BaseHTTPRequestHandler]) -> None:
        self.request_queue_size = settings.listen_backlog  # read by server_activate(): listen()'s backlog
        self.max_connections = settings.max_connections
        self._connections = threading.BoundedSemaphore(settings.max_connections)
        self._refused = 0
        if ":" in settings.host:  # an IPv6 address (read_endpoint took off its brackets)
            self.address_family = socket.AF_INET6
        super().__init__((settings.host, settings.port), handler)

    def process_request(self, request: Any, client_address: Any) -> None:
        if not self._connections.acquire(blocking=False):
            self._refuse(request)
            return
        try:
            super().process_request(request, client_address)
        except BaseException:
            self._connections.release()
            raise

    def process_request_thread(self, request: Any, client_address: Any) -> None:
        try:
            super().process_request_thread(request, client_address)
        finally:
            self._connections.release()

    def finish_request(self, request: Any, client_address: Any) -> None:
        # The TLS handshake happens here, in the connection's own thread, so a slow client cannot block accept().
        if self.ssl_context is not None:
            request.settimeout(READ_TIMEOUT_S)
            try:
                request = self.ssl_context.wrap_socket(request, server_side=True)
            except (OSError, ssl.SSLError):
                return
        super().finish_request(request, client_address)

    def _refuse(self, request: socket.socket) -> None:
        self._refused += 1
        if self._refused in (1, 10, 100) or not self._refused % 1000:
            logger.warning(
                "OTLP/HTTP: %d connections refused so far: %d are open, the receiver's max_connections",
                self._refused,
                self.max_connections,
            )
        if self.ssl_context is None:
            message = f"the collector has {self.max_connections} connections open (its max_connections); retry later"
            response = (
                f"HTTP/1.1 503 Service Unavailable\r\nContent-Type: text/plain\r\nContent-Length: {len(message)}\r\n"
                f"Retry-After: 1\r\nConnection: close\r\n\r\n{message}"
            )
            request.setblocking(False)  # the accepting thread never waits on a client
            with contextlib.suppress(OSError):
                request.recv(65536)  # what already arrived: closing with it unread would reset the connection
            with contextlib.suppress(OSError):
                request.send(response.encode())
        self.shutdown_request(request)


def _server_context(settings: ProtocolSettings) -> ssl.SSLContext | None:
    if settings.cert_file is None or settings.key_file is None:
        return None
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(settings.cert_file, settings.key_file)
    return context


class HttpReceiver:
    def __init__(self, signals: OtlpSignals, settings: ProtocolSettings) -> None:
        self.signals = signals
        self.settings = settings
        self.port = settings.port
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None
        self._stopped = False

    def start(self) -> None:
        handler = _make_handler(self.signals, self.settings)
        server = _Server(self.settings, handler)
        server.ssl_context = _server_context(self.settings)
        self.port = server.server_address[1]
        self._server = server
        self._thread = threading.Thread(
            target=server.serve_forever, kwargs={"poll_interval": 0.2}, name="spanledger-otlp-http", daemon=True
        )
        self._thread.start()

    def shutdown(self) -> None:
        if self._server is not None and not self._stopped:
            self._stopped = True
            self._server.shutdown()
            self._server.server_close()


def _make_handler(signals: OtlpSignals, settings: ProtocolSettings) -> type[BaseHTTPRequestHandler]:
    limit = settings.max_request_bytes
    tokens = settings.bearer_tokens

    class OtlpHttpHandler(Handler):
        log_name = "otlp http"

        def _error(self, status: int, message: str, as_json: bool, headers: dict[str, str] | None = None) -> None:
            code = {400: code_pb2.INVALID_ARGUMENT, 401: code_pb2.UNAUTHENTICATED, 413: code_pb2.RESOURCE_EXHAUSTED}
            rpc_status = status_pb2.Status(code=code.get(status, code_pb2.UNAVAILABLE), message=message)
            if as_json:
                self._send(status, message_to_otlp_json(rpc_status), JSON, headers)
            else:
                self._send(status, rpc_status.SerializeToString(), PROTOBUF, headers)

        def _reject(self, status: int, message: str, as_json: bool, headers: dict[str, str] | None = None) -> None:
            self.close_connection = True
            self._error(status, message, as_json, {**(headers or {}), "Connection": "close"})

        def do_GET(self) -> None:
            self._reject(405, f"{self.path} accepts POST only", False, {"Allow": "POST"})

        def do_POST(self) -> None:
            path = self.path.split("?", 1)[0]
            content_type = (self.headers.get("Content-Type") or "").split(";", 1)[0].strip().lower()
            as_json = content_type == JSON
            if path not in _HTTP_SIGNALS:
                self._reject(404, f"unknown path {path}; use /v1/traces, /v1/metrics or /v1/logs", as_json)
                return
            if not token_ok(self.headers.get("Authorization"), tokens):
                self._reject(401, "missing or invalid bearer token", as_json, {"WWW-Authenticate": "Bearer"})
                return
            if content_type not in (PROTOBUF, JSON):
                self._reject(415, f"unsupported content type {content_type!r}; use {PROTOBUF} or {JSON}", as_json)
                return
            try:
                body = self._body()
            except TooLarge:
                self._reject(413, f"the request is larger than the limit of {limit} bytes", as_json)
                return
            except ValueError as error:
                self._reject(400, str(error), as_json)
                return
            export_name, request_type, _ = _HTTP_SIGNALS[path]
            if as_json:
                try:
                    message = request_type()
                    otlp_json_to_message(json.loads(body), message)
                    body = message.SerializeToString()
                except (json.JSONDecodeError, UnicodeDecodeError) as error:
                    self._error(400, f"the body is not valid JSON ({error})", as_json)
                    return
                except RecursionError:
                    self._error(400, "the JSON body is nested too deeply to decode (OTLP needs a few levels)", as_json)
                    return
                except JsonMappingError as error:
                    self._error(400, f"the body is not a valid OTLP/JSON {request_type.__name__} ({error})", as_json)
                    return
            try:
                response = getattr(signals, export_name)(body, "http")
            except RetryableError as error:
                retry_after = str(max(1, math.ceil(error.retry_after or 1)))
                self._error(503, str(error), as_json, {"Retry-After": retry_after})
                return
            except PermanentError as error:
                self._error(400, str(error), as_json)
                return
            except Exception:
                logger.exception("an OTLP/HTTP export failed")
                self._error(500, "internal error in the collector; see its log", as_json)
                return
            if as_json:
                self._send(200, message_to_otlp_json(response), JSON)
            else:
                self._send(200, response.SerializeToString(), PROTOBUF)

        def _body(self) -> bytes:
            encoding = (self.headers.get("Transfer-Encoding") or "").lower()
            if "chunked" in encoding:
                data = _read_chunked(self.rfile, limit)
            else:
                length_text = self.headers.get("Content-Length")
                if length_text is None:
                    raise ValueError("the request has neither Content-Length nor chunked Transfer-Encoding")
                if not (length_text.isascii() and length_text.strip().isdigit()):  # "²".isdigit()
                    raise ValueError(f"Content-Length {length_text!r} is not a number")
                length = int(length_text)
                if length > limit:
                    raise TooLarge
                data = self.rfile.read(length)
                if len(data) != length:
                    raise ValueError("the body ended before Content-Length bytes")
            content_encoding = (self.headers.get("Content-Encoding") or "identity").strip().lower()
            if content_encoding == "gzip":
                return _gunzip(data, limit)
            if content_encoding not in ("identity", "none", ""):
                raise ValueError(f"unsupported Content-Encoding {content_encoding!r}; use gzip or none")
            return data

    return OtlpHttpHandler
