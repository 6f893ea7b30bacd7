"""A small local HTTP server that speaks OpenAI's wire format, for tests, benchmarks and the demo.

Endpoints (under ``/v1``):

* ``POST /v1/chat/completions``: a JSON completion, or with ``"stream": true`` an SSE stream of
  ``chat.completion.chunk`` objects ending in ``data: [DONE]``. The usage-only final chunk (empty
  ``choices``, filled ``usage``) is sent only when ``stream_options.include_usage`` is true, as OpenAI does.
* ``POST /v1/responses``: a JSON ``response``, or with ``"stream": true`` the Responses SSE event stream
  (``response.created`` ... ``response.output_text.delta`` ... ``response.completed`` carrying usage).
* ``POST /v1/embeddings``: float or base64 vectors.

Usage always reports cached (cache read), cache write and reasoning token details.

A ``tool-`` model (``tool-caller``) answers a chat request that offers function tools with a call of the
first one (arguments ``{}``), and answers in text once the chat carries a tool result.

Special model names make it misbehave: ``error-<status>`` (e.g. ``error-429``, ``error-500``) answers that
HTTP status with an OpenAI error body; ``error-stream`` sends two chunks then an SSE error event;
``error-disconnect`` sends two chunks then drops the connection. ``plain-<name>`` chat models report usage details as
a model without reasoning or prompt caching does (zeros, no cache writes).

"Azure-like" mode rejects any request carrying ``stream_options`` with HTTP 400, like Azure OpenAI and some
OpenAI-compatible servers do. It is on for the whole server with ``azure_like=True`` (``--azure-like``), and
for any request whose path starts with ``/azure-like/`` (base URL ``<server>/azure-like/v1``).

Run it: ``python examples/openai_compatible_server.py --port 8000``. Import it::

    from openai_compatible_server import start_server
    server = start_server()            # a thread on an ephemeral port
    client = openai.OpenAI(base_url=server.base_url, api_key="test")
    ...
    server.stop()
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import json
import struct
import time
from dataclasses import dataclass, field
from typing import Any, cast

from local_server import LocalHandler, LocalServer

__all__ = ["OpenAICompatibleServer", "RecordedRequest", "start_server"]

REPLY_WORDS = ("Hello", " from", " the", " local", " server", ".")
RESPONSE_MODEL_SUFFIX = "-2024-07-18"
CACHED_TOKENS = 4
CACHE_WRITE_TOKENS = 2
REASONING_TOKENS = 3
AZURE_PREFIX = "/azure-like"
PLAIN_MODEL_PREFIX = "plain-"
"""Chat models named ``plain-...`` report usage details as a model without reasoning or caching does."""


@dataclass
class RecordedRequest:
    """One request the server received (tests inspect what the client really sent)."""

    path: str
    body: dict[str, Any]
    headers: dict[str, str]


@dataclass
class _Usage:
    prompt_tokens: int
    completion_tokens: int
    plain: bool = False
    """A model without reasoning or prompt caching: details report 0 and no cache writes, as OpenAI's gpt-4o."""

    def chat(self) -> dict[str, Any]:
        if self.plain:
            prompt_details: dict[str, int] = {"cached_tokens": 0, "audio_tokens": 0}
        else:
            prompt_details = {
                "cached_tokens": CACHED_TOKENS,
                "cache_write_tokens": CACHE_WRITE_TOKENS,
                "audio_tokens": 0,
            }
        return {
            "prompt_tokens": self.prompt_tokens,
            "completion_tokens": self.completion_tokens,
            "total_tokens": self.prompt_tokens + self.completion_tokens,
            "prompt_tokens_details": prompt_details,
            "completion_tokens_details": {
                "reasoning_tokens": 0 if self.plain else REASONING_TOKENS,
                "audio_tokens": 0,
                "accepted_prediction_tokens": 0,
                "rejected_prediction_tokens": 0,
            },
        }

    def responses(self) -> dict[str, Any]:
        return {
            "input_tokens": self.prompt_tokens,
            "input_tokens_details": {"cached_tokens": CACHED_TOKENS, "cache_write_tokens": CACHE_WRITE_TOKENS},
            "output_tokens": self.completion_tokens,
            "output_tokens_details": {"reasoning_tokens": REASONING_TOKENS},
            "total_tokens": self.prompt_tokens + self.completion_tokens,
        }


def _count_words(value: Any) -> int:
    if isinstance(value, str):
        return len(value.split())
    if isinstance(value, list):
        return sum(_count_words(item) for item in value)
    if isinstance(value, dict):
        return sum(_count_words(item) for key, item in value.items() if key in ("content", "text", "input"))
    return 0


def _usage_for(prompt: Any, model: str = "") -> _Usage:
    if model.startswith(PLAIN_MODEL_PREFIX):
        return _Usage(prompt_tokens=10 + _count_words(prompt), completion_tokens=len(REPLY_WORDS), plain=True)
    return _Usage(prompt_tokens=10 + _count_words(prompt), completion_tokens=len(REPLY_WORDS) + REASONING_TOKENS)


def _tool_call_for(body: dict[str, Any], model: str) -> dict[str, Any] | None:
    """For a ``tool-`` model: a call of the request's first function tool, until a tool result is in the chat."""
    tools = body.get("tools") or []
    messages = body.get("messages") or []
    if not model.startswith("tool-") or not tools or any(m.get("role") == "tool" for m in messages):
        return None
    name = tools[0].get("function", {}).get("name")
    return {"id": f"call_{len(messages)}", "type": "function", "function": {"name": name, "arguments": "{}"}}


class _Handler(LocalHandler):
    request_id_header = "x-request-id"

    @property
    def owner(self) -> OpenAICompatibleServer:
        return cast(OpenAICompatibleServer, self.server.owner)

    def _send_error_body(self, status: int, message: str, error_type: str, code: str | None) -> None:
        self._send_json(status, {"error": {"message": message, "type": error_type, "param": None, "code": code}})

    def _sse(self, data: str, event: str | None = None) -> None:
        text = (f"event: {event}\n" if event else "") + f"data: {data}\n\n"
        self._send_chunk(text.encode())
        if self.owner.chunk_delay:
            time.sleep(self.owner.chunk_delay)

    def _drop_connection(self) -> None:
        self.wfile.flush()
        self.close_connection = True
        self.connection.shutdown(2)

    # --- routing --------------------------------------------------------------------------------

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        try:
            body = json.loads(raw or b"{}")
        except ValueError:
            self._send_error_body(400, "Request body is not valid JSON.", "invalid_request_error", None)
            return
        path = self.path.split("?", 1)[0]
        owner = self.owner
        with owner.lock:
            owner.requests.append(RecordedRequest(path, body, {k.lower(): v for k, v in self.headers.items()}))
        azure_like = owner.azure_like or path.startswith(AZURE_PREFIX + "/")
        if azure_like and "stream_options" in body:
            self._send_error_body(
                400, "Unrecognized request argument supplied: stream_options", "invalid_request_error", None
            )
            return
        model = str(body.get("model", ""))
        if model.startswith("error-") and model[6:].isdigit():
            status = int(model[6:])
            kind = "rate_limit_exceeded" if status == 429 else "server_error" if status >= 500 else "invalid_request"
            self._send_error_body(status, f"Simulated error {status}.", kind, kind)
            return
        if path.endswith("/chat/completions"):
            self._chat(body, model)
        elif path.endswith("/responses"):
            self._responses(body, model)
        elif path.endswith("/embeddings"):
            self._embeddings(body, model)
        else:
            self._send_error_body(404, f"Unknown path {path}.", "invalid_request_error", "not_found")

    # --- chat completions -----------------------------------------------------------------------

    def _chat(self, body: dict[str, Any], model: str) -> None:
        usage = _usage_for(body.get("messages"), model)
        created = int(time.time())
        completion_id = f"chatcmpl-{created}{self.owner.next_id()}"
        response_model = model + RESPONSE_MODEL_SUFFIX
        choices = int(body.get("n") or 1)
        tool_call = _tool_call_for(body, model)
        if tool_call is not None and not body.get("stream"):
            message = {"role": "assistant", "content": None, "refusal": None, "tool_calls": [tool_call]}
            self._send_json(
                200,
                {
                    "id": completion_id,
                    "object": "chat.completion",
                    "created": created,
                    "model": response_model,
                    "choices": [{"index": 0, "message": message, "logprobs": None, "finish_reason": "tool_calls"}],
                    "usage": usage.chat(),
                },
            )
            return
        if not body.get("stream"):
            self._send_json(
                200,
                {
                    "id": completion_id,
                    "object": "chat.completion",
                    "created": created,
                    "model": response_model,
                    "system_fingerprint": "fp_local",
                    "service_tier": "default",
                    "choices": [
                        {
                            "index": index,
                            "message": {"role": "assistant", "content": "".join(REPLY_WORDS), "refusal": None},
                            "logprobs": None,
                            "finish_reason": "stop",
                        }
                        for index in range(choices)
                    ],
                    "usage": usage.chat(),
                },
            )
            return

        def chunk(delta: dict[str, Any], finish_reason: str | None, index: int = 0) -> str:
            return json.dumps(
                {
                    "id": completion_id,
                    "object": "chat.completion.chunk",
                    "created": created,
                    "model": response_model,
                    "system_fingerprint": "fp_local",
                    "service_tier": "default",
                    "choices": [{"index": index, "delta": delta, "logprobs": None, "finish_reason": finish_reason}],
                }
            )

        self._start_stream()
        for index in range(choices):
            self._sse(chunk({"role": "assistant", "content": "", "refusal": None}, None, index))
        for number, word in enumerate(REPLY_WORDS):
            if number == 2 and model == "error-stream":
                self._sse(json.dumps({"error": {"message": "Simulated stream error.", "type": "server_error"}}))
                self._end_stream()
                return
            if number == 2 and model == "error-disconnect":
                self._drop_connection()
                return
            for index in range(choices):
                self._sse(chunk({"content": word}, None, index))
        for index in range(choices):
            self._sse(chunk({}, "stop", index))
        if (body.get("stream_options") or {}).get("include_usage"):
            self._sse(
                json.dumps(
                    {
                        "id": completion_id,
                        "object": "chat.completion.chunk",
                        "created": created,
                        "model": response_model,
                        "system_fingerprint": "fp_local",
                        "service_tier": "default",
                        "choices": [],
                        "usage": usage.chat(),
                    }
                )
            )
        self._sse("[DONE]")
        self._end_stream()

    # --- responses ------------------------------------------------------------------------------

    def _responses(self, body: dict[str, Any], model: str) -> None:
        usage = _usage_for([body.get("input"), body.get("instructions")])
        owner = self.owner
        response_id = f"resp_{int(time.time())}{owner.next_id()}"
        message_id = f"msg_{owner.next_id()}"
        text = "".join(REPLY_WORDS)

        def response(status: str, output: list[dict[str, Any]], with_usage: bool) -> dict[str, Any]:
            return {
                "id": response_id,
                "object": "response",
                "created_at": int(time.time()),
                "status": status,
                "model": model + RESPONSE_MODEL_SUFFIX,
                "instructions": body.get("instructions"),
                "max_output_tokens": body.get("max_output_tokens"),
                "temperature": body.get("temperature", 1.0),
                "top_p": body.get("top_p", 1.0),
                "parallel_tool_calls": True,
                "tool_choice": "auto",
                "tools": [],
                "text": {"format": {"type": "text"}},
                "truncation": "disabled",
                "service_tier": "default",
                "output": output,
                "usage": usage.responses() if with_usage else None,
                "error": None,
                "incomplete_details": None,
                "metadata": {},
            }

        def message(status: str, content_text: str | None) -> dict[str, Any]:
            content = [] if content_text is None else [{"type": "output_text", "text": content_text, "annotations": []}]
            return {"type": "message", "id": message_id, "status": status, "role": "assistant", "content": content}

        done_output = [message("completed", text)]
        if not body.get("stream"):
            self._send_json(200, response("completed", done_output, True))
            return

        sequence = iter(range(1_000_000))

        def event(kind: str, **payload: Any) -> None:
            self._sse(json.dumps({"type": kind, "sequence_number": next(sequence), **payload}), event=kind)

        self._start_stream()
        event("response.created", response=response("in_progress", [], False))
        event("response.in_progress", response=response("in_progress", [], False))
        event("response.output_item.added", output_index=0, item=message("in_progress", None))
        part = {"type": "output_text", "text": "", "annotations": []}
        event("response.content_part.added", item_id=message_id, output_index=0, content_index=0, part=part)
        for number, word in enumerate(REPLY_WORDS):
            if number == 2 and model == "error-stream":
                event("error", code="server_error", message="Simulated stream error.", param=None)
                self._end_stream()
                return
            if number == 2 and model == "error-disconnect":
                self._drop_connection()
                return
            event(
                "response.output_text.delta",
                item_id=message_id,
                output_index=0,
                content_index=0,
                delta=word,
                logprobs=[],
            )
        event("response.output_text.done", item_id=message_id, output_index=0, content_index=0, text=text, logprobs=[])
        part = {"type": "output_text", "text": text, "annotations": []}
        event("response.content_part.done", item_id=message_id, output_index=0, content_index=0, part=part)
        event("response.output_item.done", output_index=0, item=message("completed", text))
        event("response.completed", response=response("completed", done_output, True))
        self._end_stream()

    # --- embeddings -----------------------------------------------------------------------------

    def _embeddings(self, body: dict[str, Any], model: str) -> None:
        inputs = body.get("input")
        items = inputs if isinstance(inputs, list) and inputs and not isinstance(inputs[0], int) else [inputs]
        dimensions = int(body.get("dimensions") or 8)
        data = []
        for index, _ in enumerate(items):
            vector = [round((index + 1) / (position + 2), 6) for position in range(dimensions)]
            embedding: Any = vector
            if body.get("encoding_format") == "base64":
                embedding = base64.b64encode(struct.pack(f"<{dimensions}f", *vector)).decode()
            data.append({"object": "embedding", "index": index, "embedding": embedding})
        prompt_tokens = max(1, _count_words(items))
        self._send_json(
            200,
            {
                "object": "list",
                "data": data,
                "model": model + RESPONSE_MODEL_SUFFIX,
                "usage": {"prompt_tokens": prompt_tokens, "total_tokens": prompt_tokens},
            },
        )


@dataclass
class OpenAICompatibleServer(LocalServer):
    """The server; ``start()`` serves in a background thread, ``stop()`` shuts it down (twice is harmless)."""

    handler = _Handler
    thread_name = "openai-compatible-server"
    azure_like: bool = False
    chunk_delay: float = 0.0
    """Seconds to sleep after each SSE event (to make time-to-first-chunk visible)."""
    requests: list[RecordedRequest] = field(default_factory=list)

    @property
    def base_url(self) -> str:
        """The ``base_url`` to give an OpenAI client."""
        return f"{self.url}/v1"

    @property
    def azure_like_base_url(self) -> str:
        """A ``base_url`` whose requests are rejected when they carry ``stream_options``."""
        return f"{self.url}{AZURE_PREFIX}/v1"


def start_server(port: int = 0, *, azure_like: bool = False, chunk_delay: float = 0.0) -> OpenAICompatibleServer:
    """Start a server in a background thread (an ephemeral port by default); read ``.base_url``."""
    return OpenAICompatibleServer(port=port, azure_like=azure_like, chunk_delay=chunk_delay).start()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", 1)[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8000)
    parser.add_argument("--azure-like", action="store_true", help="reject requests that carry stream_options")
    parser.add_argument("--chunk-delay", type=float, default=0.0, help="seconds to sleep after each SSE event")
    args = parser.parse_args()
    server = OpenAICompatibleServer(
        host=args.host, port=args.port, azure_like=args.azure_like, chunk_delay=args.chunk_delay, verbose=True
    )
    print(f"OpenAI-compatible server on http://{args.host}:{args.port}/v1 (Ctrl-C to stop)", flush=True)
    with contextlib.suppress(KeyboardInterrupt):
        server.serve_forever()


if __name__ == "__main__":
    main()
