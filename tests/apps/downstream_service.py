"""A downstream HTTP service for tests: extracts the W3C context of each request and starts spans in it.

Run under ``spanledger-run`` (no spanledger code here); it prints its port on the first stdout line.
"""

from __future__ import annotations

from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from opentelemetry import context, propagate, trace

tracer = trace.get_tracer("downstream-service")


class Handler(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        token = context.attach(propagate.extract(dict(self.headers)))  # as server instrumentations do
        try:
            with tracer.start_as_current_span("GET /answer", kind=trace.SpanKind.SERVER), tracer.start_as_current_span(
                "lookup"
            ):
                body = b"forty-two"
        finally:
            context.detach(token)
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        pass


server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
print(server.server_address[1], flush=True)
server.serve_forever()
