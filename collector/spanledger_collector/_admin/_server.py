"""The admin HTTP server: ``/health``, Prometheus ``/metrics`` and the answers under ``/api/``.

Who may do what (see the README's "admin API security model"):

* ``/health``: anyone who reaches the port (a liveness probe sends no token).
* reads (``GET /metrics``, ``GET /api/...``): a token of ``auth`` when configured, or of ``write_auth``.
* writes (any other method under ``/api/``): a token of ``write_auth``; without ``write_auth``, only a
  peer on the loopback interface (with a token of ``auth`` when that is configured).

Credentials are checked before a body is read; a body over ``max_request_body_size`` is refused unread
(413), and one write is read and run at a time, so memory stays bounded whatever clients send. A scrape
commits what was acknowledged at most once a second, whatever the scrape rate.
"""

from __future__ import annotations

import ipaddress
import json
import logging
import socket
import ssl
import threading
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest

from .._bearer import token_ok
from .._http_handler import READ_TIMEOUT_S, Handler
from ..billing.api import handle_request
from ._settings import AdminSettings

__all__ = ["AdminServer"]

logger = logging.getLogger("spanledger.collector")

SCRAPE_FLUSH_INTERVAL_S = 1.0
"""A scrape asks the store writer to take in what was acknowledged (a commit) at most this often."""


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    ssl_context: ssl.SSLContext | None = None

    def finish_request(self, request: Any, client_address: Any) -> None:
        # The TLS handshake happens in the connection's own thread, so a slow client cannot block accept().
        if self.ssl_context is not None:
            request.settimeout(READ_TIMEOUT_S)
            try:
                request = self.ssl_context.wrap_socket(request, server_side=True)
            except (OSError, ssl.SSLError):
                return
        super().finish_request(request, client_address)


class _Server6(_Server):
    address_family = socket.AF_INET6


def _loopback(peer: str) -> bool:
    try:
        address = ipaddress.ip_address(peer.split("%", 1)[0])
    except ValueError:
        return False
    mapped = getattr(address, "ipv4_mapped", None)
    return (mapped or address).is_loopback


class _Exposition:
    """``/metrics`` bodies: one generation at a time; a scrape waiting behind a generation that started after
    it arrived takes that one's result."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self._registry = registry
        self._lock = threading.Lock()
        self._started = 0
        self._body = b""
        self._body_generation = 0

    def body(self) -> bytes:
        arrived_after = self._started
        with self._lock:
            if self._body_generation > arrived_after:
                return self._body
            self._started += 1
            generation = self._started
            self._body = generate_latest(self._registry)
            self._body_generation = generation
            return self._body


class AdminServer:
    def __init__(
        self,
        settings: AdminSettings,
        registry: CollectorRegistry,
        store: Any,
        health: Callable[[], tuple[bool, str]],
        *,
        flush: Callable[[], object] | None = None,
    ) -> None:
        self.settings = settings
        self.port = settings.port
        self.host = settings.host
        self.store = store
        self.health = health
        # /api/ answers see what was acknowledged: commit it before answering. Scrapes do too, but at most once
        # per SCRAPE_FLUSH_INTERVAL_S, so their rate never sets the store's commit rate.
        self.flush = flush
        self._scrape_flushed_at = -SCRAPE_FLUSH_INTERVAL_S
        self._scrape_flush_lock = threading.Lock()
        self._exposition = _Exposition(registry)
        self._writes = threading.Lock()
        self._server: _Server | None = None
        self._stopped = False

    def _flush_for_scrape(self) -> None:
        if self.flush is None:
            return
        with self._scrape_flush_lock:
            now = time.monotonic()
            if now - self._scrape_flushed_at < SCRAPE_FLUSH_INTERVAL_S:
                return
            self._scrape_flushed_at = now
        self.flush()

    @property
    def address(self) -> str:
        """What is bound, ``host:port`` (``0.0.0.0:9464`` for every interface, ``[::1]:9464``)."""
        return f"[{self.host}]:{self.port}" if ":" in self.host else f"{self.host}:{self.port}"

    @property
    def scheme(self) -> str:
        return "https" if self.settings.cert_file is not None else "http"

    def start(self) -> None:
        server_class = _Server6 if ":" in self.settings.host else _Server
        server = server_class((self.settings.host, self.settings.port), self._handler())
        if self.settings.cert_file is not None and self.settings.key_file is not None:
            context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            context.load_cert_chain(self.settings.cert_file, self.settings.key_file)
            server.ssl_context = context
        self.host, self.port = str(server.server_address[0]), int(server.server_address[1])
        self._server = server
        threading.Thread(
            target=server.serve_forever, kwargs={"poll_interval": 0.2}, name="spanledger-admin", daemon=True
        ).start()

    def shutdown(self) -> None:
        if self._server is not None and not self._stopped:
            self._stopped = True
            self._server.shutdown()
            self._server.server_close()

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        admin = self
        settings = self.settings
        read_tokens = settings.read_tokens
        write_tokens = settings.write_tokens

        class AdminHandler(Handler):
            log_name = "admin"

            def _json(self, status: int, value: Any, headers: dict[str, str] | None = None) -> None:
                self._send(status, json.dumps(value, default=str).encode(), "application/json", headers)

            def _reject(self, status: int, message: str, headers: dict[str, str] | None = None) -> None:
                """Answer and close: the body (if any) is left unread."""
                self.close_connection = True
                self._json(status, {"error": message}, {**(headers or {}), "Connection": "close"})

            def _permission_error(self, write: bool) -> tuple[int, str] | None:
                header = self.headers.get("Authorization")
                if write and write_tokens:
                    return None if token_ok(header, write_tokens) else (401, "a write_auth bearer token is required")
                if write and not _loopback(self.client_address[0]):
                    return 403, (
                        "writes are accepted from this host only, unless service.telemetry.metrics.write_auth "
                        "is configured"
                    )
                writer = bool(write_tokens) and token_ok(header, write_tokens)
                if read_tokens and not token_ok(header, read_tokens) and not writer:
                    return 401, "missing or invalid bearer token"
                return None

            def _content_length(self) -> int | None:
                if self.headers.get("Transfer-Encoding"):
                    self._reject(411, "send the body with a Content-Length (chunked bodies are not accepted)")
                    return None
                text = self.headers.get("Content-Length") or "0"
                if not (text.isascii() and text.isdigit()):  # "²".isdigit(), and int() refuses it
                    self._reject(400, f"Content-Length {text!r} is not a number")
                    return None
                return int(text)

            def _route(self, method: str) -> None:
                url = urlsplit(self.path)
                length = self._content_length()
                if length is None:
                    return
                if url.path in ("/health", "/") and method == "GET":
                    healthy, status = admin.health()
                    self._json(200 if healthy else 503, {"status": status})
                    self.close_connection = self.close_connection or length > 0
                    return
                write = method not in ("GET", "HEAD")
                problem = self._permission_error(write)
                if problem is not None:
                    self._reject(*problem, {"WWW-Authenticate": "Bearer"} if problem[0] == 401 else None)
                    return
                if not write:
                    self.close_connection = self.close_connection or length > 0  # a read's body is never read
                    if url.path == "/metrics" and method == "GET":
                        admin._flush_for_scrape()
                        self._send(200, admin._exposition.body(), CONTENT_TYPE_LATEST)
                    elif url.path.startswith("/api/"):
                        self._api(method, url.path, url.query, b"")
                    else:
                        self._json(404, {"error": f"no route for {method} {url.path}"})
                    return
                if length > settings.max_request_body_size:
                    self._reject(
                        413,
                        f"the request body ({length} bytes) is larger than service.telemetry.metrics."
                        f"max_request_body_size ({settings.max_request_body_size} bytes)",
                    )
                    return
                if not url.path.startswith("/api/"):
                    self._reject(404, f"no route for {method} {url.path}")
                    return
                with admin._writes:  # one write at a time: at most one body in memory
                    body = self.rfile.read(length) if length else b""
                    if len(body) < length:
                        self.close_connection = True
                        return
                    self._api(method, url.path, url.query, body)

            def _api(self, method: str, path: str, query: str, body: bytes) -> None:
                if admin.store is None:
                    message = "this collector has no store (a spanledger_store or clickhouse exporter) to answer from"
                    self._json(404, {"error": message})
                    return
                try:
                    if admin.flush is not None:
                        admin.flush()
                    status, answer = handle_request(
                        method,
                        path,
                        parse_qs(query),
                        body,
                        admin.store,
                        content_type=self.headers.get("Content-Type"),
                        import_directories=settings.import_directories,
                    )
                except Exception:
                    logger.exception("the admin API failed on %s %s", method, path)
                    status, answer = 500, {"error": "internal error in the collector; see its log"}
                self._json(status, answer)

            def do_GET(self) -> None:
                self._route("GET")

            def do_POST(self) -> None:
                self._route("POST")

            def do_PUT(self) -> None:
                self._route("PUT")

            def do_DELETE(self) -> None:
                self._route("DELETE")

        return AdminHandler
