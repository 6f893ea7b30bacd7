"""A small HTTP/1.1 server on a real socket that counts the exact bytes of every request and response.

Keep-alive, Content-Length and chunked bodies both ways, gzip. Each exchange is logged as a
:class:`WireExchange` with the head and body byte counts as they crossed the socket (chunk framing
excluded from the body counts, so they compare with what a client library can see).
"""

from __future__ import annotations

import gzip
import socketserver
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from urllib.parse import parse_qs, urlsplit


@dataclass
class WireExchange:
    method: str
    path: str
    head_in: int
    body_in: int
    head_out: int
    body_out: int


class _Handler(socketserver.StreamRequestHandler):
    server: _Server

    def handle(self) -> None:
        while True:
            head = self._read_head()
            if head is None:
                return
            request_line, *header_lines = head.decode("latin-1").split("\r\n")[:-2]
            method, target, _ = request_line.split(" ")
            headers = {name.strip().lower(): value.strip() for name, value in (h.split(":", 1) for h in header_lines)}
            body = self._read_body(headers)
            url = urlsplit(target)
            query = {key: values[0] for key, values in parse_qs(url.query).items()}
            self._respond(WireExchange(method, url.path, len(head), len(body), 0, 0), query, body)

    def _read_head(self) -> bytes | None:
        head = b""
        while not head.endswith(b"\r\n\r\n"):
            line = self.rfile.readline()
            if not line:
                return None
            head += line
        return head

    def _read_body(self, headers: dict[str, str]) -> bytes:
        if headers.get("transfer-encoding", "").lower() == "chunked":
            body = b""
            while True:
                size = int(self.rfile.readline().split(b";")[0], 16)
                if size == 0:
                    self.rfile.readline()  # the blank line ending the (empty) trailers
                    return body
                body += self.rfile.read(size + 2)[:-2]
        return self.rfile.read(int(headers.get("content-length", "0")))

    def _send_head(self, exchange: WireExchange, body_size: int, status: str, headers: list[tuple[str, str]]) -> None:
        head = f"HTTP/1.1 {status}\r\n" + "".join(f"{k}: {v}\r\n" for k, v in headers) + "\r\n"
        exchange.head_out, exchange.body_out = len(head), body_size
        self.server.log.append(exchange)  # before the client can have read it all
        self.wfile.write(head.encode("latin-1"))

    def _respond(self, exchange: WireExchange, query: dict[str, str], body: bytes) -> None:
        path = exchange.path
        if path == "/stream":
            size, chunks = int(query.get("n", "0")), int(query.get("chunks", "1"))
            self._send_head(exchange, size, "200 OK", [("Content-Type", "application/octet-stream"),
                                                       ("Transfer-Encoding", "chunked")])
            step = max(1, size // chunks)
            sent = 0
            while sent < size:
                part = b"s" * min(step, size - sent)
                self.wfile.write(b"%x\r\n%s\r\n" % (len(part), part))
                self.wfile.flush()
                sent += len(part)
            self.wfile.write(b"0\r\n\r\n")
            self.wfile.flush()
            return
        if path == "/gzip":
            payload = gzip.compress(b"g" * int(query.get("n", "0")))
            extra = [("Content-Encoding", "gzip")]
        elif path == "/upload":
            payload = str(len(body)).encode()
            extra = []
        else:
            payload = b"b" * int(query.get("n", "0"))
            extra = []
        status = query.get("status", "200 OK").replace("_", " ")
        self._send_head(exchange, len(payload), status, [("Content-Type", "application/octet-stream"),
                                                         ("Content-Length", str(len(payload))), *extra])
        self.wfile.write(payload)
        self.wfile.flush()


class _Server(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.log: list[WireExchange] = []

    def handle_error(self, request: object, client_address: object) -> None:
        pass  # a client that hung up mid-response (the tests abandon some on purpose)


@contextmanager
def wire_server() -> Iterator[tuple[str, list[WireExchange]]]:
    """``(base_url, log)`` of a server running for the block."""
    server = _Server()
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    host, port = server.server_address[:2]
    try:
        yield f"http://{host}:{port}", server.log
    finally:
        server.shutdown()
        server.server_close()
