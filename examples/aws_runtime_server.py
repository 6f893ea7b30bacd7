"""A local HTTP server speaking the Bedrock runtime and SageMaker runtime wire formats, for tests and benchmarks.

moto does not implement Bedrock runtime inference or SageMaker's response streams, so this server does,
byte for byte as boto3 expects them: REST-JSON requests, JSON responses with the
``x-amzn-bedrock-*-token-count`` headers, and streams in the AWS event-stream binary encoding (prelude
with lengths and CRC32, typed headers, payload, message CRC32) sent with chunked transfer encoding.

Bedrock runtime (``endpoint_url=server.url``, any credentials; requests are signed but not checked):

* ``POST /model/{modelId}/converse`` and ``/converse-stream``: a reply with a ``usage`` block that has
  cache read and cache write tokens; the stream sends messageStart, contentBlockDelta per word,
  contentBlockStop, messageStop and a metadata event with usage.
* ``POST /model/{modelId}/invoke`` and ``/invoke-with-response-stream``: the body shape of the model family
  in ``modelId`` (``anthropic.``, ``amazon.titan-text``, ``amazon.titan-embed``, ``amazon.nova``,
  ``meta.llama``; anything else gets a Mistral-like body with no usage); the stream's last chunk carries
  ``amazon-bedrock-invocationMetrics``.

SageMaker runtime: ``POST /endpoints/{name}/invocations`` echoes the body;
``/invocations-response-stream`` sends the echoed body back in ``PayloadPart`` events of 8 bytes.

Misbehaving model ids: ``error-throttle`` answers HTTP 429 ``ThrottlingException``; ``error-stream`` sends
two stream events and then a ``modelStreamErrorException`` event. A model id containing ``no-headers``
gets no token-count headers.
"""

from __future__ import annotations

import base64
import json
import socket
import struct
import threading
import zlib
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import unquote

__all__ = ["AwsRuntimeServer", "encode_event", "start_server"]

REPLY_WORDS = ("Hello", " from", " Bedrock", ".")
INPUT_TOKENS = 11
OUTPUT_TOKENS = len(REPLY_WORDS)
CACHE_READ_TOKENS = 5
CACHE_WRITE_TOKENS = 3


def _header(name: str, value: str) -> bytes:
    encoded_name, encoded_value = name.encode(), value.encode()
    return (
        struct.pack("!B", len(encoded_name)) + encoded_name + struct.pack("!BH", 7, len(encoded_value)) + encoded_value
    )


def encode_event(headers: dict[str, str], payload: bytes) -> bytes:
    """One AWS event-stream message: prelude (total length, headers length, CRC), headers, payload, CRC."""
    header_bytes = b"".join(_header(name, value) for name, value in headers.items())
    total = 12 + len(header_bytes) + len(payload) + 4
    prelude = struct.pack("!II", total, len(header_bytes))
    prelude += struct.pack("!I", zlib.crc32(prelude))
    message = prelude + header_bytes + payload
    return message + struct.pack("!I", zlib.crc32(message))


def _json_event(event_type: str, body: Any) -> bytes:
    return encode_event(
        {":event-type": event_type, ":content-type": "application/json", ":message-type": "event"},
        json.dumps(body).encode(),
    )


def _chunk_event(body: Any) -> bytes:
    return _json_event("chunk", {"bytes": base64.b64encode(json.dumps(body).encode()).decode()})


def _error_event() -> bytes:
    return encode_event(
        {
            ":exception-type": "modelStreamErrorException",
            ":content-type": "application/json",
            ":message-type": "exception",
        },
        json.dumps({"message": "the model stream failed"}).encode(),
    )


def _converse_usage() -> dict[str, int]:
    return {
        "inputTokens": INPUT_TOKENS,
        "outputTokens": OUTPUT_TOKENS,
        "cacheReadInputTokens": CACHE_READ_TOKENS,
        "cacheWriteInputTokens": CACHE_WRITE_TOKENS,
        "totalTokens": INPUT_TOKENS + OUTPUT_TOKENS + CACHE_READ_TOKENS + CACHE_WRITE_TOKENS,
    }


def _invoke_body(model: str) -> dict[str, Any]:
    text = "".join(REPLY_WORDS)
    if "anthropic." in model:
        return {
            "id": "msg_local_1",
            "type": "message",
            "role": "assistant",
            "model": "claude-local",
            "content": [{"type": "text", "text": text}],
            "stop_reason": "end_turn",
            "usage": {
                "input_tokens": INPUT_TOKENS,
                "output_tokens": OUTPUT_TOKENS,
                "cache_read_input_tokens": CACHE_READ_TOKENS,
                "cache_creation_input_tokens": CACHE_WRITE_TOKENS,
            },
        }
    if "titan-embed" in model:
        return {"embedding": [0.1, 0.2, 0.3], "inputTextTokenCount": INPUT_TOKENS}
    if "amazon.titan" in model:
        return {
            "inputTextTokenCount": INPUT_TOKENS,
            "results": [{"tokenCount": OUTPUT_TOKENS, "outputText": text, "completionReason": "FINISH"}],
        }
    if "amazon.nova" in model:
        return {
            "output": {"message": {"role": "assistant", "content": [{"text": text}]}},
            "stopReason": "end_turn",
            "usage": {**_converse_usage(), "cacheReadInputTokenCount": CACHE_READ_TOKENS},
        }
    if "meta.llama" in model:
        return {
            "generation": text,
            "prompt_token_count": INPUT_TOKENS,
            "generation_token_count": OUTPUT_TOKENS,
            "stop_reason": "stop",
        }
    return {"outputs": [{"text": text, "stop_reason": "stop"}]}


def _invoke_stream_chunks(model: str) -> list[dict[str, Any]]:
    metrics = {
        "amazon-bedrock-invocationMetrics": {
            "inputTokenCount": INPUT_TOKENS,
            "outputTokenCount": OUTPUT_TOKENS,
            "invocationLatency": 12,
            "firstByteLatency": 3,
        }
    }
    if "anthropic." in model:
        chunks: list[dict[str, Any]] = [
            {
                "type": "message_start",
                "message": {
                    "id": "msg_local_2",
                    "model": "claude-local",
                    "role": "assistant",
                    "usage": {"input_tokens": INPUT_TOKENS, "output_tokens": 1},
                },
            }
        ]
        chunks += [
            {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": w}} for w in REPLY_WORDS
        ]
        chunks.append(
            {"type": "message_delta", "delta": {"stop_reason": "end_turn"}, "usage": {"output_tokens": OUTPUT_TOKENS}}
        )
        chunks.append({"type": "message_stop", **metrics})
        return chunks
    if "meta.llama" in model:
        chunks = [
            {"generation": w, "prompt_token_count": INPUT_TOKENS if i == 0 else None} for i, w in enumerate(REPLY_WORDS)
        ]
        chunks[-1].update({"stop_reason": "stop", "generation_token_count": OUTPUT_TOKENS, **metrics})
        return chunks
    chunks = [{"outputText": w, "index": 0} for w in REPLY_WORDS]
    chunks[0]["inputTextTokenCount"] = INPUT_TOKENS
    chunks[-1].update({"completionReason": "FINISH", "totalOutputTextTokenCount": OUTPUT_TOKENS, **metrics})
    return chunks


@dataclass
class RecordedRequest:
    path: str
    headers: dict[str, str]
    body: bytes


@dataclass
class AwsRuntimeServer:
    httpd: ThreadingHTTPServer
    thread: threading.Thread
    requests: list[RecordedRequest] = field(default_factory=list)

    @property
    def url(self) -> str:
        host, port = self.httpd.server_address[:2]
        return f"http://{host!s}:{port}"

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
        self.thread.join()


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: ThreadingHTTPServer

    def setup(self) -> None:
        super().setup()
        # Each event goes out as its own small write; without this, Nagle + delayed ACK add ~40 ms.
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        recorder: AwsRuntimeServer = self.server.recorder  # type: ignore[attr-defined]
        recorder.requests.append(RecordedRequest(self.path, {k.lower(): v for k, v in self.headers.items()}, body))
        parts = [unquote(part) for part in self.path.split("?")[0].strip("/").split("/")]
        if len(parts) == 3 and parts[0] == "model":
            self._bedrock(parts[1], parts[2], body)
        elif len(parts) == 3 and parts[0] == "endpoints":
            self._sagemaker(parts[2], body)
        else:
            self._send_json(
                404, {"message": f"no route for {self.path}"}, {"x-amzn-errortype": "UnknownOperationException"}
            )

    def _bedrock(self, model: str, action: str, body: bytes) -> None:
        if model == "error-throttle":
            self._send_json(429, {"message": "Too many requests"}, {"x-amzn-errortype": "ThrottlingException"})
            return
        token_headers = (
            {}
            if "no-headers" in model
            else {
                "x-amzn-bedrock-input-token-count": str(INPUT_TOKENS),
                "x-amzn-bedrock-output-token-count": str(OUTPUT_TOKENS),
            }
        )
        if action == "converse":
            reply = {
                "output": {"message": {"role": "assistant", "content": [{"text": "".join(REPLY_WORDS)}]}},
                "stopReason": "end_turn",
                "usage": _converse_usage(),
                "metrics": {"latencyMs": 12},
            }
            self._send_json(200, reply, {})
        elif action == "converse-stream":
            events = [_json_event("messageStart", {"role": "assistant"})]
            events += [
                _json_event("contentBlockDelta", {"delta": {"text": w}, "contentBlockIndex": 0}) for w in REPLY_WORDS
            ]
            events += [
                _json_event("contentBlockStop", {"contentBlockIndex": 0}),
                _json_event("messageStop", {"stopReason": "end_turn"}),
                _json_event("metadata", {"usage": _converse_usage(), "metrics": {"latencyMs": 12}}),
            ]
            self._send_stream(events, error=model == "error-stream")
        elif action == "invoke":
            self._send_json(200, _invoke_body(model), token_headers)
        elif action == "invoke-with-response-stream":
            self._send_stream(
                [_chunk_event(chunk) for chunk in _invoke_stream_chunks(model)], error=model == "error-stream"
            )
        else:
            self._send_json(404, {"message": action}, {"x-amzn-errortype": "UnknownOperationException"})

    def _sagemaker(self, action: str, body: bytes) -> None:
        if action == "invocations":
            self._send(
                200, body, {"Content-Type": "application/json", "x-Amzn-Invoked-Production-Variant": "AllTraffic"}
            )
        elif action == "invocations-response-stream":
            parts = [body[i : i + 8] for i in range(0, len(body), 8)]
            headers = {
                ":event-type": "PayloadPart",
                ":content-type": "application/octet-stream",
                ":message-type": "event",
            }
            self._send_stream([encode_event(headers, part) for part in parts], error=False)
        else:
            self._send_json(404, {"message": action}, {"x-amzn-errortype": "UnknownOperationException"})

    def _send(self, status: int, payload: bytes, headers: dict[str, str]) -> None:
        self.send_response(status)
        for name, value in headers.items():
            self.send_header(name, value)
        self.send_header("x-amzn-RequestId", "local-request-1")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def _send_json(self, status: int, body: Any, headers: dict[str, str]) -> None:
        self._send(status, json.dumps(body).encode(), {"Content-Type": "application/json", **headers})

    def _send_stream(self, events: list[bytes], *, error: bool) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "application/vnd.amazon.eventstream")
        self.send_header("x-amzn-RequestId", "local-request-2")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        if error:
            events = [*events[:2], _error_event()]
        for event in events:
            self.wfile.write(b"%x\r\n%s\r\n" % (len(event), event))
            self.wfile.flush()
        self.wfile.write(b"0\r\n\r\n")


def start_server(host: str = "127.0.0.1", port: int = 0) -> AwsRuntimeServer:
    """Serve on a background thread (an ephemeral port by default)."""
    httpd = ThreadingHTTPServer((host, port), _Handler)
    httpd.daemon_threads = True
    thread = threading.Thread(target=httpd.serve_forever, name="aws-runtime-server", daemon=True)
    server = AwsRuntimeServer(httpd, thread)
    httpd.recorder = server  # type: ignore[attr-defined]
    thread.start()
    return server


if __name__ == "__main__":
    import argparse

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=8001)
    arguments = parser.parse_args()
    running = start_server(port=arguments.port)
    print(f"serving Bedrock/SageMaker runtime on {running.url}")
    running.thread.join()
