"""A small local HTTP server speaking Anthropic's and Gemini's wire formats, for tests, benchmarks and the demo.

Anthropic (``base_url=server.url``):

* ``POST /v1/messages``: a ``message`` JSON body, or with ``"stream": true`` the SSE event stream
  ``message_start`` (usage: input, cache read, cache creation), ``content_block_start``,
  ``content_block_delta`` x N, ``content_block_stop``, ``message_delta`` (stop reason, cumulative output
  usage), ``message_stop``. A request with a ``web_search`` server tool reports
  ``server_tool_use.web_search_requests``.
* ``POST /v1/messages/count_tokens``: ``{"input_tokens": N}``.
* Vertex: ``POST /v1/projects/{p}/locations/{l}/publishers/anthropic/models/{m}:rawPredict`` and
  ``:streamRawPredict`` (same bodies). Bedrock: ``POST /model/{m}/invoke`` (the same JSON) and
  ``/model/{m}/invoke-with-response-stream``: the same events as Bedrock sends them, in the AWS event-stream
  encoding (``application/vnd.amazon.eventstream``; each a ``chunk`` event whose JSON payload holds the
  Anthropic event's JSON, base64-encoded, in ``bytes``; ``message_stop`` with
  ``amazon-bedrock-invocationMetrics``).
* Model names containing ``tool-call`` answer with a ``tool_use`` block calling the request's first tool with
  ``{"city": "Paris"}`` (streamed as ``input_json_delta`` pieces), stop reason ``tool_use``.

Gemini (``http_options={"base_url": server.url}``):

* ``POST /{version}/models/{m}:generateContent`` (Gemini API) and
  ``/{version}/projects/{p}/locations/{l}/publishers/google/models/{m}:generateContent`` (Vertex AI): a
  ``GenerateContentResponse`` with ``usageMetadata`` (prompt incl. cached content, candidates, thoughts,
  tool-use prompt tokens).
* ``:streamGenerateContent?alt=sse``: ``data:`` chunks, each with the running ``usageMetadata``.
* Model names containing ``tool-call`` answer with a ``functionCall`` part calling the request's first
  function declaration with ``{"city": "Paris"}`` (streamed after a text chunk).
* ``:batchEmbedContents`` (Gemini API) and ``:predict`` (Vertex, with token-count statistics).

Model names ``error-<status>`` answer that status with the provider's error body; ``error-stream`` breaks
the stream off after two events (on Bedrock's event stream: sends a ``modelStreamErrorException`` frame).
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import json
import re
from dataclasses import dataclass, field
from typing import Any

from aws_runtime_server import encode_event
from local_server import LocalHandler, LocalServer

__all__ = ["GenAIWireServer", "start_server"]

REPLY_WORDS = ("Hello", " from", " the", " local", " server", ".")

# Anthropic usage (input_tokens excludes the cache reads and writes, as Anthropic reports it)
ANTHROPIC_INPUT_TOKENS = 11
ANTHROPIC_CACHE_READ_TOKENS = 100
ANTHROPIC_CACHE_CREATION_TOKENS = 20
ANTHROPIC_COUNTED_TOKENS = 42
# Gemini usage (prompt includes the cached content tokens)
GEMINI_PROMPT_TOKENS = 30
GEMINI_CACHED_TOKENS = 12
GEMINI_THOUGHTS_TOKENS = 7
GEMINI_TOOL_USE_PROMPT_TOKENS = 5
GEMINI_MODEL_SUFFIX = "-001"
"""Appended to the request's model in ``modelVersion``, as Vertex AI names a stable version."""

_VERTEX_ANTHROPIC = re.compile(r"/projects/[^/]+/locations/[^/]+/publishers/anthropic/models/([^/:]+):(\w+)$")
_BEDROCK = re.compile(r"/model/([^/]+)/(invoke|invoke-with-response-stream)$")
_BEDROCK_CHUNK = {":event-type": "chunk", ":content-type": "application/json", ":message-type": "event"}
_BEDROCK_ERROR = {
    ":exception-type": "modelStreamErrorException",
    ":content-type": "application/json",
    ":message-type": "exception",
}
TOOL_ARGUMENTS = {"city": "Paris"}
_TOOL_ARGUMENT_PIECES = ('{"city": ', '"Paris"}')
_GEMINI = re.compile(r"/(?:[^/]+/)?(?:projects/[^/]+/locations/[^/]+/publishers/google/)?models/([^/:]+):(\w+)$")


@dataclass
class RecordedRequest:
    path: str
    query: str
    body: dict[str, Any]
    headers: dict[str, str]


class _Handler(LocalHandler):
    eventstream = False
    """Whether the stream being sent is in the AWS event-stream encoding (Bedrock) rather than SSE."""

    def _start_sse(self) -> None:
        self._start_stream(
            "application/vnd.amazon.eventstream" if self.eventstream else "text/event-stream; charset=utf-8"
        )

    def _sse(self, payload: Any, event: str | None = None) -> None:
        if self.eventstream:
            chunk = {"bytes": base64.b64encode(json.dumps(payload).encode()).decode()}
            raw = encode_event(_BEDROCK_CHUNK, json.dumps(chunk).encode())
        else:
            text = (f"event: {event}\n" if event else "") + f"data: {json.dumps(payload)}\n\n"
            raw = text.encode()
        self._send_chunk(raw)

    def _drop_connection(self) -> None:
        self.wfile.flush()
        self.close_connection = True
        self.connection.shutdown(2)

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        try:
            body = json.loads(raw or b"{}")
        except ValueError:
            self._send_json(400, {"type": "error", "error": {"type": "invalid_request_error", "message": "bad JSON"}})
            return
        path, _, query = self.path.partition("?")
        owner = self.server.owner
        with owner.lock:
            owner.requests.append(RecordedRequest(path, query, body, {k.lower(): v for k, v in self.headers.items()}))
        self.eventstream = False
        if path in ("/v1/messages", "/v1/messages/count_tokens"):
            self._anthropic(path, body, str(body.get("model", "")), bool(body.get("stream")))
        elif match := _VERTEX_ANTHROPIC.search(path):
            self._anthropic("/v1/messages", body, match.group(1), match.group(2) == "streamRawPredict")
        elif match := _BEDROCK.search(path):
            self.eventstream = match.group(2) == "invoke-with-response-stream"
            self._anthropic("/v1/messages", body, match.group(1), self.eventstream)
        elif match := _GEMINI.search(path):
            self._gemini(match.group(2), body, match.group(1), path)
        else:
            self._send_json(404, {"error": {"code": 404, "message": f"Unknown path {path}.", "status": "NOT_FOUND"}})

    # --- Anthropic ------------------------------------------------------------------------------

    def _anthropic(self, path: str, body: dict[str, Any], model: str, stream: bool) -> None:
        if model.startswith("error-") and model[6:].isdigit():
            status = int(model[6:])
            kind = "rate_limit_error" if status == 429 else "api_error" if status >= 500 else "invalid_request_error"
            self._send_json(status, {"type": "error", "error": {"type": kind, "message": f"Simulated error {status}."}})
            return
        if path.endswith("/count_tokens"):
            self._send_json(200, {"input_tokens": ANTHROPIC_COUNTED_TOKENS})
            return
        message_id = f"msg_{self.server.owner.next_id():04d}"
        searches = sum(
            1
            for tool in body.get("tools") or []
            if isinstance(tool, dict) and str(tool.get("type", "")).startswith("web_search")
        )
        usage: dict[str, Any] = {
            "input_tokens": ANTHROPIC_INPUT_TOKENS,
            "cache_read_input_tokens": ANTHROPIC_CACHE_READ_TOKENS,
            "cache_creation_input_tokens": ANTHROPIC_CACHE_CREATION_TOKENS,
            "output_tokens": len(REPLY_WORDS),
        }
        if searches:
            usage["server_tool_use"] = {"web_search_requests": searches, "web_fetch_requests": 0}
        tool_use: dict[str, Any] | None = None
        if "tool-call" in model:
            tools = [tool for tool in body.get("tools") or [] if isinstance(tool, dict)]
            name = tools[0].get("name") if tools else "tool"
            tool_use = {"type": "tool_use", "id": f"toolu_{message_id}", "name": name, "input": TOOL_ARGUMENTS}
        if not stream:
            self._send_json(
                200,
                {
                    "id": message_id,
                    "type": "message",
                    "role": "assistant",
                    "model": model,
                    "content": [tool_use] if tool_use else [{"type": "text", "text": "".join(REPLY_WORDS)}],
                    "stop_reason": "tool_use" if tool_use else "end_turn",
                    "stop_sequence": None,
                    "usage": usage,
                },
            )
            return
        self._start_sse()
        start_usage = {**usage, "output_tokens": 1}
        start_usage.pop("server_tool_use", None)
        self._sse(
            {
                "type": "message_start",
                "message": {
                    "id": message_id,
                    "type": "message",
                    "role": "assistant",
                    "model": model,
                    "content": [],
                    "stop_reason": None,
                    "stop_sequence": None,
                    "usage": start_usage,
                },
            },
            "message_start",
        )
        if tool_use:
            self._sse(
                {"type": "content_block_start", "index": 0, "content_block": {**tool_use, "input": {}}},
                "content_block_start",
            )
            for piece in _TOOL_ARGUMENT_PIECES:
                self._sse(
                    {
                        "type": "content_block_delta",
                        "index": 0,
                        "delta": {"type": "input_json_delta", "partial_json": piece},
                    },
                    "content_block_delta",
                )
        else:
            self._sse(
                {"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}},
                "content_block_start",
            )
            for number, word in enumerate(REPLY_WORDS):
                if model == "error-stream" and number == 2:
                    if self.eventstream:  # Bedrock reports a failed stream in an exception frame
                        self._send_chunk(encode_event(_BEDROCK_ERROR, b'{"message": "the model stream failed"}'))
                        self._end_stream()
                    else:
                        self._drop_connection()
                    return
                self._sse(
                    {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": word}},
                    "content_block_delta",
                )
        self._sse({"type": "content_block_stop", "index": 0}, "content_block_stop")
        delta_usage: dict[str, Any] = {"output_tokens": len(REPLY_WORDS)}
        if searches:
            delta_usage["server_tool_use"] = usage["server_tool_use"]
        self._sse(
            {
                "type": "message_delta",
                "delta": {"stop_reason": "tool_use" if tool_use else "end_turn", "stop_sequence": None},
                "usage": delta_usage,
            },
            "message_delta",
        )
        stop: dict[str, Any] = {"type": "message_stop"}
        if self.eventstream:
            stop["amazon-bedrock-invocationMetrics"] = {
                "inputTokenCount": ANTHROPIC_INPUT_TOKENS,
                "outputTokenCount": len(REPLY_WORDS),
                "invocationLatency": 12,
                "firstByteLatency": 3,
                "cacheReadInputTokenCount": ANTHROPIC_CACHE_READ_TOKENS,
                "cacheWriteInputTokenCount": ANTHROPIC_CACHE_CREATION_TOKENS,
            }
        self._sse(stop, "message_stop")
        self._end_stream()

    # --- Gemini ---------------------------------------------------------------------------------

    def _gemini(self, method: str, body: dict[str, Any], model: str, path: str) -> None:
        if model.startswith("error-") and model[6:].isdigit():
            status = int(model[6:])
            self._send_json(
                status, {"error": {"code": status, "message": f"Simulated error {status}.", "status": "UNAVAILABLE"}}
            )
            return
        if method in ("batchEmbedContents", "predict", "embedContent"):
            self._gemini_embed(method, body)
            return
        vertex = "/projects/" in path
        usage = {
            "promptTokenCount": GEMINI_PROMPT_TOKENS,
            "cachedContentTokenCount": GEMINI_CACHED_TOKENS,
            "candidatesTokenCount": len(REPLY_WORDS),
            "thoughtsTokenCount": GEMINI_THOUGHTS_TOKENS,
            "toolUsePromptTokenCount": GEMINI_TOOL_USE_PROMPT_TOKENS,
            "totalTokenCount": GEMINI_PROMPT_TOKENS
            + len(REPLY_WORDS)
            + GEMINI_THOUGHTS_TOKENS
            + GEMINI_TOOL_USE_PROMPT_TOKENS,
        }
        response_id = f"resp-{self.server.owner.next_id()}"
        model_version = f"{model}{GEMINI_MODEL_SUFFIX}"

        function_call: dict[str, Any] | None = None
        if "tool-call" in model:
            tools = [tool for tool in (body.get("tools") or []) if isinstance(tool, dict)]
            declarations = [d for tool in tools for d in tool.get("functionDeclarations") or []]
            name = declarations[0].get("name") if declarations else "tool"
            function_call = {"functionCall": {"name": name, "args": TOOL_ARGUMENTS}}

        def response(text: str, finish: str | None, usage_metadata: dict[str, Any]) -> dict[str, Any]:
            parts: list[dict[str, Any]] = [{"text": text}]
            if function_call and finish:
                parts = [function_call] if method == "generateContent" else [{"text": text}, function_call]
            candidate: dict[str, Any] = {"content": {"role": "model", "parts": parts}, "index": 0}
            if finish:
                candidate["finishReason"] = finish
            payload: dict[str, Any] = {
                "candidates": [candidate],
                "usageMetadata": usage_metadata,
                "modelVersion": model_version,
                "responseId": response_id,
            }
            if vertex:
                payload["createTime"] = "2026-12-05T00:00:00Z"
            return payload

        if method == "generateContent":
            self._send_json(200, response("".join(REPLY_WORDS), "STOP", usage))
            return
        self._start_sse()
        for number, word in enumerate(REPLY_WORDS):
            if model == "error-stream" and number == 2:
                self._drop_connection()
                return
            last = number == len(REPLY_WORDS) - 1
            running = {**usage, "candidatesTokenCount": number + 1} if not last else usage
            self._sse(response(word, "STOP" if last else None, running))
        self._end_stream()

    def _gemini_embed(self, method: str, body: dict[str, Any]) -> None:
        if method == "predict":
            instances = body.get("instances") or []
            self._send_json(
                200,
                {
                    "predictions": [
                        {
                            "embeddings": {
                                "values": [0.1, 0.2, 0.3],
                                "statistics": {"token_count": 4, "truncated": False},
                            }
                        }
                        for _ in instances
                    ],
                    "metadata": {"billableCharacterCount": 40},
                },
            )
            return
        requests = body.get("requests") or [body]
        self._send_json(200, {"embeddings": [{"values": [0.1, 0.2, 0.3]} for _ in requests]})


@dataclass
class GenAIWireServer(LocalServer):
    """The server; ``start()`` serves in a background thread, ``stop()`` shuts it down (twice is harmless)."""

    handler = _Handler
    thread_name = "genai-wire-server"
    requests: list[RecordedRequest] = field(default_factory=list)


def start_server(port: int = 0) -> GenAIWireServer:
    """Start a server in a background thread (an ephemeral port by default); read ``.url``."""
    return GenAIWireServer(port=port).start()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", 1)[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8001)
    args = parser.parse_args()
    server = GenAIWireServer(host=args.host, port=args.port, verbose=True)
    print(f"Anthropic/Gemini wire server on http://{args.host}:{args.port} (Ctrl-C to stop)", flush=True)
    with contextlib.suppress(KeyboardInterrupt):
        server.serve_forever()


if __name__ == "__main__":
    main()
