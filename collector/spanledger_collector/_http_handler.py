"""What the collector's two HTTP servers (OTLP/HTTP receiver, admin) share in a request handler."""

from __future__ import annotations

import logging
from http.server import BaseHTTPRequestHandler
from typing import Any

__all__ = ["READ_TIMEOUT_S", "Handler"]

logger = logging.getLogger("spanledger.collector")

READ_TIMEOUT_S = 30.0
"""A client that sends nothing for this long is disconnected (a slow client cannot hold a thread)."""


class Handler(BaseHTTPRequestHandler):
    """Keep-alive, the read timeout, request lines logged at debug level under ``log_name``, and ``_send``."""

    protocol_version = "HTTP/1.1"
    server_version = "spanledger-collector"
    timeout = READ_TIMEOUT_S
    log_name = "http"

    def log_message(self, format: str, *args: Any) -> None:
        logger.debug(f"{self.log_name} %s: " + format, self.client_address[0], *args)

    def _send(self, status: int, body: bytes, content_type: str, headers: dict[str, str] | None = None) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(body)
