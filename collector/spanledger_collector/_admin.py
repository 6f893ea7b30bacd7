"""The admin HTTP server: Prometheus ``/metrics``, ``/health`` and the billing answers under ``/api/``."""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest

from .billing.api import handle_request

__all__ = ["AdminServer"]

logger = logging.getLogger("spanledger.collector")

ApiHandler = Callable[[str, str, dict[str, list[str]], bytes, Any], tuple[int, Any]]


class _Server(ThreadingHTTPServer):
    daemon_threads = True


class AdminServer:
    def __init__(
        self,
        host: str,
        port: int,
        registry: CollectorRegistry,
        store: Any,
        health: Callable[[], tuple[bool, str]],
        *,
        flush: Callable[[], object] | None = None,
    ) -> None:
        self.host = host
        self.port = port
        self.registry = registry
        self.store = store
        self.health = health
        # Readers see committed rows only: commit what was acknowledged before answering from the store.
        self.flush = flush
        self.api: ApiHandler | None = handle_request
        self._server: _Server | None = None
        self._stopped = False

    def start(self) -> None:
        server = _Server((self.host, self.port), self._handler())
        self.port = server.server_address[1]
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

        class AdminHandler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            server_version = "spanledger-collector"
            timeout = 30

            def log_message(self, format: str, *args: Any) -> None:
                logger.debug("admin %s: " + format, self.client_address[0], *args)

            def _send(self, status: int, body: bytes, content_type: str) -> None:
                self.send_response(status)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def _json(self, status: int, value: Any) -> None:
                self._send(status, json.dumps(value, default=str).encode(), "application/json")

            def _route(self, method: str) -> None:
                url = urlsplit(self.path)
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length > 0 else b""
                if admin.flush is not None and (url.path == "/metrics" or url.path.startswith("/api/")):
                    admin.flush()
                if url.path == "/metrics" and method == "GET":
                    self._send(200, generate_latest(admin.registry), CONTENT_TYPE_LATEST)
                elif url.path in ("/health", "/") and method == "GET":
                    healthy, status = admin.health()
                    self._json(200 if healthy else 503, {"status": status})
                elif url.path.startswith("/api/") and admin.api is not None:
                    try:
                        status_code, answer = admin.api(method, url.path, parse_qs(url.query), body, admin.store)
                    except Exception:
                        logger.exception("the billing API failed on %s %s", method, url.path)
                        status_code, answer = 500, {"error": "internal error in the collector; see its log"}
                    self._json(status_code, answer)
                else:
                    self._json(404, {"error": f"no route for {method} {url.path}"})

            def do_GET(self) -> None:
                self._route("GET")

            def do_POST(self) -> None:
                self._route("POST")

            def do_PUT(self) -> None:
                self._route("PUT")

            def do_DELETE(self) -> None:
                self._route("DELETE")

        return AdminHandler
