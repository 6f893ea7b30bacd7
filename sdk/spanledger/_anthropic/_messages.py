"""What the Anthropic Messages endpoints look like: request attributes, results, stream events, content.

Anthropic reports ``input_tokens`` *without* the cache reads and writes; the conventions say
``gen_ai.usage.input_tokens`` MUST include them, so usage goes through ``TokenUsage.from_uncached``.
A stream reports usage in ``message_start`` (input and cache counts, a first output count) and
cumulatively in ``message_delta``; the later report wins field by field.

Content (only when collected) is in the conventions' shapes: the ``system`` parameter is the system
instructions, ``tools`` the tool definitions, ``tool_use`` blocks tool calls with their ``input`` as the
arguments object. A stream's blocks are kept as they arrive (text and JSON pieces, joined at the end).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

from .. import semconv
from .._genai import Content, GenAICall, TokenUsage, arguments_object, tool_definition
from .._genai._content import Message, Part

__all__ = ["ENDPOINTS", "Endpoint", "settle_stream"]

Attributes = dict[str, Any]
_Operation = semconv.GenAiOperationNameValues


class Endpoint(NamedTuple):
    operation: str
    request_attributes: Callable[[dict[str, Any], Attributes], None]
    result: Callable[[GenAICall, Any], None]
    chunk: Callable[[GenAICall, Any], None] | None
    input_content: Callable[[dict[str, Any]], Content] | None
    """The request's content (messages, system instructions, tools), when content is collected."""
    owns_usage: bool
    """Whether the call's tokens are billed usage (``spanledger.usage.owner``); token counting is not."""


_PARAMS = (
    ("max_tokens", semconv.GEN_AI_REQUEST_MAX_TOKENS),
    ("temperature", semconv.GEN_AI_REQUEST_TEMPERATURE),
    ("top_p", semconv.GEN_AI_REQUEST_TOP_P),
    ("top_k", semconv.GEN_AI_REQUEST_TOP_K),
)


def _request_attributes(body: dict[str, Any], attributes: Attributes) -> None:
    for key, name in _PARAMS:
        value = body.get(key)
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            attributes[name] = value
    stop = body.get("stop_sequences")
    if isinstance(stop, list) and stop:
        attributes[semconv.GEN_AI_REQUEST_STOP_SEQUENCES] = tuple(str(s) for s in stop)
    if body.get("stream") is True:
        attributes[semconv.GEN_AI_REQUEST_STREAM] = True


def _get(value: Any, name: str) -> Any:
    """A field of a model or of a decoded dict (``with_raw_response`` and odd servers give dicts)."""
    if isinstance(value, dict):
        return value.get(name)
    return getattr(value, name, None)


def usage_of(usage: Any) -> TokenUsage:
    # Read field by field without ``_get`` (a call per field): this runs for every call and stream.
    if isinstance(usage, dict):
        details = usage.get("output_tokens_details")
        return TokenUsage.from_uncached(
            usage.get("input_tokens"),
            usage.get("output_tokens"),
            usage.get("cache_read_input_tokens"),
            usage.get("cache_creation_input_tokens"),
            _get(details, "thinking_tokens") if details is not None else None,
        )
    details = getattr(usage, "output_tokens_details", None)
    return TokenUsage.from_uncached(
        getattr(usage, "input_tokens", None),
        getattr(usage, "output_tokens", None),
        getattr(usage, "cache_read_input_tokens", None),
        getattr(usage, "cache_creation_input_tokens", None),
        _get(details, "thinking_tokens") if details is not None else None,
    )


def _server_tool_use(call: GenAICall, usage: Any) -> None:
    server = _get(usage, "server_tool_use")
    if server is not None:
        searches = _get(server, "web_search_requests")
        if isinstance(searches, int) and not isinstance(searches, bool):
            call.attributes[semconv.SPANLEDGER_USAGE_WEB_SEARCH_REQUESTS] = searches


def _message_result(call: GenAICall, message: Any) -> None:
    if isinstance(message, dict):
        message_id = message.get("id")
        model = message.get("model")
        stop = message.get("stop_reason")
        usage = message.get("usage")
    else:  # a parsed ``Message``, the usual case: no ``_get`` call per field
        message_id = getattr(message, "id", None)
        model = getattr(message, "model", None)
        stop = getattr(message, "stop_reason", None)
        usage = getattr(message, "usage", None)
    if isinstance(message_id, str):
        call.attributes[semconv.GEN_AI_RESPONSE_ID] = message_id
    if isinstance(model, str):
        call.response_model = model
    if isinstance(stop, str):
        call.finish_reasons = [stop]
    if usage is not None:
        call.usage = usage_of(usage)
        _server_tool_use(call, usage)
    content = call.content
    if content is not None:
        content.outputs = [_output_message(_parts(_get(message, "content")), stop)]


def _stream_event(call: GenAICall, event: Any) -> None:
    kind = _get(event, "type")
    if kind == "content_block_delta":
        blocks = call.streamed
        if blocks is not None:
            _block_delta(blocks, event)
    elif kind == "content_block_start":
        blocks = call.streamed
        if blocks is not None:
            blocks.append(_block_start(_get(event, "content_block")))
    elif kind == "message_start":
        message = _get(event, "message")
        message_id = _get(message, "id")
        if isinstance(message_id, str):
            call.attributes[semconv.GEN_AI_RESPONSE_ID] = message_id
        model = _get(message, "model")
        if isinstance(model, str):
            call.response_model = model
        usage = _get(message, "usage")
        if usage is not None:
            call.usage = usage_of(usage)
            _server_tool_use(call, usage)
    elif kind == "message_delta":
        stop = _get(_get(event, "delta"), "stop_reason")
        if isinstance(stop, str):
            call.finish_reasons = [stop]
        usage = _get(event, "usage")
        if usage is not None:
            reported = usage_of(usage)
            call.usage = reported if call.usage is None else call.usage.overlaid(reported)
            _server_tool_use(call, usage)
        # The client's own span (when it traces itself) ends with the body, before the caller sees the end.
        call.flush()


def _count_result(call: GenAICall, result: Any) -> None:
    counted = _get(result, "input_tokens")
    if isinstance(counted, int) and not isinstance(counted, bool):
        call.attributes[semconv.SPANLEDGER_USAGE_COUNTED_INPUT_TOKENS] = counted


# --- opt-in content ---------------------------------------------------------------------------------


def _parts(content: Any) -> list[Part]:
    if isinstance(content, str):
        return [{"type": "text", "content": content}]
    parts: list[Part] = []
    for block in content if isinstance(content, list) else []:
        kind = _get(block, "type")
        if kind == "text":
            parts.append({"type": "text", "content": _get(block, "text")})
        elif kind in ("tool_use", "server_tool_use"):
            parts.append(_tool_call(_get(block, "id"), _get(block, "name"), _get(block, "input")))
        elif kind == "tool_result":
            parts.append(
                {"type": "tool_call_response", "id": _get(block, "tool_use_id"), "response": _get(block, "content")}
            )
        elif kind == "thinking":
            parts.append({"type": "reasoning", "content": _get(block, "thinking")})
        else:
            parts.append({"type": str(kind)})
    return parts


def _tool_call(call_id: Any, name: Any, arguments: Any) -> Part:
    return {"type": "tool_call", "id": call_id, "name": name, "arguments": arguments_object(arguments)}


def _output_message(parts: list[Part], stop: Any) -> Message:
    return {"role": "assistant", "parts": parts, "finish_reason": stop if isinstance(stop, str) else None}


def _tools(tools: Any) -> list[dict[str, Any]]:
    definitions = []
    for tool in tools if isinstance(tools, list) else ():
        kind = _get(tool, "type")
        # Client tools have no type (or ``custom``); server tools (web search, code execution) are named by it.
        kind = "function" if kind in (None, "custom") else kind
        definitions.append(
            tool_definition(kind, _get(tool, "name"), _get(tool, "description"), _get(tool, "input_schema"))
        )
    return definitions


def _input_content(body: dict[str, Any]) -> Content:
    messages = body.get("messages")
    inputs = [
        {"role": _get(m, "role"), "parts": _parts(_get(m, "content"))}
        for m in (messages if isinstance(messages, list) else ())
    ]
    system = body.get("system")
    return Content(inputs=inputs, system=_parts(system) if system else [], tools=_tools(body.get("tools")))


# A streamed block: [kind, id, name, pieces] (text, thinking or tool-input JSON pieces, joined at the end).
_Block = list[Any]
_PIECES = {"text_delta": "text", "input_json_delta": "partial_json", "thinking_delta": "thinking"}


def _block_start(block: Any) -> _Block:
    kind = _get(block, "type")
    first = _get(block, "text") or _get(block, "thinking")
    return [kind, _get(block, "id"), _get(block, "name"), [first] if isinstance(first, str) and first else []]


def _block_delta(blocks: list[Any], event: Any) -> None:
    index = _get(event, "index")
    if not isinstance(index, int) or not 0 <= index < len(blocks):
        # No content_block_start seen for it (a server that sends deltas only): one text block.
        if not blocks:
            blocks.append(["text", None, None, []])
        index = len(blocks) - 1
    delta = _get(event, "delta")
    field = _PIECES.get(_get(delta, "type"), "text")
    piece = _get(delta, field)
    if isinstance(piece, str):
        blocks[index][3].append(piece)


def _streamed_part(block: _Block) -> Part:
    kind, block_id, name, pieces = block
    joined = "".join(pieces)
    if kind == "text":
        return {"type": "text", "content": joined}
    if kind in ("tool_use", "server_tool_use"):
        return _tool_call(block_id, name, joined or {})
    if kind == "thinking":
        return {"type": "reasoning", "content": joined}
    return {"type": str(kind)}


def settle_stream(call: GenAICall) -> None:
    """The streamed blocks as the output message (set as ``GenAICall.settle`` when content is collected)."""
    content, blocks = call.content, call.streamed
    if content is not None and blocks:
        stop = call.finish_reasons[0] if call.finish_reasons else None
        content.outputs = [_output_message([_streamed_part(block) for block in blocks], stop)]


def _no_attributes(body: dict[str, Any], attributes: Attributes) -> None:
    pass


_MESSAGES = Endpoint(_Operation.CHAT.value, _request_attributes, _message_result, _stream_event, _input_content, True)
_COUNT_TOKENS = Endpoint(_Operation.COUNT_TOKENS.value, _no_attributes, _count_result, None, None, False)

ENDPOINTS: dict[str, Endpoint] = {
    "/v1/messages": _MESSAGES,
    "/v1/messages?beta=true": _MESSAGES,
    "/v1/messages/count_tokens": _COUNT_TOKENS,
    "/v1/messages/count_tokens?beta=true": _COUNT_TOKENS,
}
"""By the request's URL path as the client's resource methods give it (before Bedrock/Vertex rewrite it)."""
