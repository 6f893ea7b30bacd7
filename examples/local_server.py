"""What the local wire servers (``openai_compatible_server``, ``genai_wire_server``) share: a threaded HTTP/1.1
server in a background thread, quiet unless ``verbose``, whose handlers answer JSON and chunked event streams."""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, ClassVar, TypeVar

__all__ = ["LocalHandler", "LocalServer"]

_Server = TypeVar("_Server", bound="LocalServer")


class LocalHandler(BaseHTTPRequestHandler):
    """A handler of a :class:`LocalServer`: persistent connections, small writes sent at once."""

    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # stream events are small writes; do not let Nagle delay them
    server: _HTTPServer
    request_id_header: ClassVar[str] = "request-id"
    """The response header carrying a request id, named as the provider names it."""

    def log_message(self, format: str, *args: Any) -> None:
        if self.server.owner.verbose:
            super().log_message(format, *args)

    def _send_json(self, status: int, payload: Any) -> None:
        body = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.send_header(self.request_id_header, f"req_{self.server.owner.next_id()}")
        self.end_headers()
        self.wfile.write(body)

    def _start_stream(self, content_type: str = "text/event-stream; charset=utf-8") -> None:
        self.send_response(200)
        self.send_header("Content-Type", content_type)
        self.send_header("Transfer-Encoding", "chunked")
        self.send_header("Cache-Control", "no-cache")
        self.end_headers()

    def _send_chunk(self, raw: bytes) -> None:
        self.wfile.write(f"{len(raw):x}\r\n".encode() + raw + b"\r\n")
        self.wfile.flush()

    def _end_stream(self) -> None:
        self.wfile.write(b"0\r\n\r\n")
        self.wfile.flush()


class _HTTPServer(ThreadingHTTPServer):
    daemon_threads = True
    owner: LocalServer

    def handle_error(self, request: Any, client_address: Any) -> None:
        # Dropped connections (error-disconnect, clients closing streams early) are expected here.
        if self.owner.verbose:
            super().handle_error(request, client_address)


@dataclass
class LocalServer:
    """A server; ``start()`` serves in a background thread, ``stop()`` shuts it down (twice is harmless).
    A subclass names its ``handler`` and records what its handler received in ``requests``."""

    handler: ClassVar[type[LocalHandler]]
    thread_name: ClassVar[str]
    host: str = "127.0.0.1"
    port: int = 0
    verbose: bool = False
    requests: list[Any] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)
    _httpd: _HTTPServer | None = None
    _thread: threading.Thread | None = None
    _counter: int = 0

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def next_id(self) -> int:
        with self.lock:
            self._counter += 1
            return self._counter

    def _bind(self) -> _HTTPServer:
        httpd = _HTTPServer((self.host, self.port), self.handler)
        httpd.owner = self
        self.port = httpd.server_address[1]
        self._httpd = httpd
        return httpd

    def start(self: _Server) -> _Server:
        httpd = self._bind()
        self._thread = threading.Thread(target=httpd.serve_forever, name=self.thread_name, daemon=True)
        self._thread.start()
        return self

    def serve_forever(self) -> None:
        self._bind().serve_forever()

    def stop(self) -> None:
        httpd, self._httpd = self._httpd, None
        if httpd is not None:
            httpd.shutdown()
            httpd.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    def __enter__(self: _Server) -> _Server:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()
