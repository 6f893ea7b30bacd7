"""What Gemini requests and responses look like: request settings, ``usage_metadata``, candidates, content.

Token mapping (as Google bills them): input = ``prompt_token_count`` (cached content included) +
``tool_use_prompt_token_count``; cache read = ``cached_content_token_count``; output =
``candidates_token_count`` + ``thoughts_token_count``, the thoughts also being the reasoning tokens.
Stream chunks repeat the running ``usage_metadata``; a stream keeps a reference to the last one seen and
converts only that one, when the call ends (``settle_stream``), however early the stream stops.

Content (only when collected) is in the conventions' shapes: ``system_instruction`` is the system
instructions, the config's function declarations (and built-in tools by name) the tool definitions,
``function_call`` parts tool calls with ``args`` as the arguments object; the ``model`` role is ``assistant``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from .. import semconv
from .._genai import Content, GenAICall, TokenUsage, arguments_object, to_int, tool_definition
from .._genai._content import Message, Part

__all__ = [
    "config_attributes",
    "embed_result",
    "generate_chunk",
    "generate_result",
    "input_content",
    "settle_stream",
]

_CONFIG = (
    ("temperature", semconv.GEN_AI_REQUEST_TEMPERATURE),
    ("top_p", semconv.GEN_AI_REQUEST_TOP_P),
    ("top_k", semconv.GEN_AI_REQUEST_TOP_K),
    ("max_output_tokens", semconv.GEN_AI_REQUEST_MAX_TOKENS),
    ("presence_penalty", semconv.GEN_AI_REQUEST_PRESENCE_PENALTY),
    ("frequency_penalty", semconv.GEN_AI_REQUEST_FREQUENCY_PENALTY),
    ("seed", semconv.GEN_AI_REQUEST_SEED),
)


def _get(value: Any, name: str) -> Any:
    if value is None:
        return None
    if isinstance(value, dict):
        return value.get(name)
    return getattr(value, name, None)


def config_attributes(config: Any, attributes: dict[str, Any]) -> None:
    for name, key in _CONFIG:
        value = _get(config, name)
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            attributes[key] = value
    stop = _get(config, "stop_sequences")
    if isinstance(stop, list) and stop:
        attributes[semconv.GEN_AI_REQUEST_STOP_SEQUENCES] = tuple(str(s) for s in stop)
    count = _get(config, "candidate_count")
    if isinstance(count, int) and count != 1:
        attributes[semconv.GEN_AI_REQUEST_CHOICE_COUNT] = count


def usage_of(metadata: Any) -> TokenUsage:
    prompt = to_int(_get(metadata, "prompt_token_count"))
    tool_use = to_int(_get(metadata, "tool_use_prompt_token_count"))
    candidates = to_int(_get(metadata, "candidates_token_count"))
    thoughts = to_int(_get(metadata, "thoughts_token_count"))
    input_tokens = None if prompt is None and tool_use is None else (prompt or 0) + (tool_use or 0)
    output_tokens = None if candidates is None and thoughts is None else (candidates or 0) + (thoughts or 0)
    return TokenUsage(input_tokens, output_tokens, to_int(_get(metadata, "cached_content_token_count")), None, thoughts)


def _usage(call: GenAICall, metadata: Any) -> None:
    call.usage = usage_of(metadata)
    tool_use = to_int(_get(metadata, "tool_use_prompt_token_count"))
    if tool_use is not None:
        call.attributes[semconv.SPANLEDGER_USAGE_TOOL_USE_PROMPT_INPUT_TOKENS] = tool_use


def _absorb(call: GenAICall, response: Any, stream: bool) -> None:
    version = _get(response, "model_version")
    if isinstance(version, str):
        call.response_model = version
    response_id = _get(response, "response_id")
    if isinstance(response_id, str):
        call.attributes[semconv.GEN_AI_RESPONSE_ID] = response_id
    metadata = _get(response, "usage_metadata")
    if metadata is not None:
        if stream:
            call.usage_report = metadata  # the running total: only the last one is converted, by settle_stream
        else:
            _usage(call, metadata)
    reasons = []
    for candidate in _get(response, "candidates") or ():
        reason = _get(candidate, "finish_reason")
        if reason is not None:
            reasons.append(str(getattr(reason, "value", reason)))
    if reasons:
        call.finish_reasons = reasons


def generate_result(call: GenAICall, response: Any) -> None:
    _absorb(call, response, False)
    content = call.content
    if content is not None:
        content.outputs = [
            _output_message([_part(p) for p in _get(_get(candidate, "content"), "parts") or ()], candidate)
            for candidate in _get(response, "candidates") or ()
        ]


def generate_chunk(call: GenAICall, response: Any) -> None:
    _absorb(call, response, True)
    streamed = call.streamed
    if streamed is not None:
        for position, candidate in enumerate(_get(response, "candidates") or ()):
            index = _get(candidate, "index")
            index = index if isinstance(index, int) else position
            for part in _get(_get(candidate, "content"), "parts") or ():
                streamed.append((index, _part(part)))


def settle_stream(call: GenAICall) -> None:
    """Convert the last usage report seen; join the streamed parts into output messages (text pieces merged)."""
    report = call.usage_report
    if report is not None:
        _usage(call, report)
    content, streamed = call.content, call.streamed
    if content is None or not streamed:
        return
    candidates: dict[int, list[Any]] = {}
    for index, part in streamed:
        parts = candidates.setdefault(index, [])
        kind = part["type"]
        if kind in ("text", "reasoning") and parts and parts[-1][0] == kind:
            parts[-1][1].append(part["content"])
        elif kind in ("text", "reasoning"):
            parts.append((kind, [part["content"]]))
        else:
            parts.append((kind, part))
    reasons = call.finish_reasons
    content.outputs = [
        {
            "role": "assistant",
            "parts": [
                {"type": kind, "content": "".join(value)} if kind in ("text", "reasoning") else value
                for kind, value in candidates[index]
            ],
            "finish_reason": reasons[index] if index < len(reasons) else None,
        }
        for index in sorted(candidates)
    ]


def embed_result(call: GenAICall, response: Any) -> None:
    counts = [
        to_int(_get(_get(embedding, "statistics"), "token_count")) for embedding in _get(response, "embeddings") or ()
    ]
    known = [count for count in counts if count is not None]
    if known:
        call.usage = TokenUsage(sum(known))


# --- opt-in content ---------------------------------------------------------------------------------


def _output_message(parts: list[Part], candidate: Any) -> Message:
    reason = _get(candidate, "finish_reason")
    return {
        "role": "assistant",
        "parts": parts,
        "finish_reason": None if reason is None else str(getattr(reason, "value", reason)),
    }


def _part(part: Any) -> Part:
    if isinstance(part, str):
        return {"type": "text", "content": part}
    text = _get(part, "text")
    if isinstance(text, str):
        return {"type": "reasoning" if _get(part, "thought") else "text", "content": text}
    call = _get(part, "function_call")
    if call is not None:
        found: Part = {
            "type": "tool_call",
            "name": _get(call, "name"),
            "arguments": arguments_object(_get(call, "args")),
        }
        call_id = _get(call, "id")
        if call_id:
            found["id"] = call_id
        return found
    response = _get(part, "function_response")
    if response is not None:
        found = {"type": "tool_call_response", "name": _get(response, "name"), "response": _get(response, "response")}
        response_id = _get(response, "id")
        if response_id:
            found["id"] = response_id
        return found
    return {"type": "blob"}


def _role(role: Any) -> Any:
    return "assistant" if role == "model" else role or "user"


def _schema(schema: Any) -> Any:
    dump = getattr(schema, "model_dump", None)
    return dump(exclude_none=True, mode="json") if dump is not None else schema


def _tools(tools: Any) -> list[dict[str, Any]]:
    definitions: list[dict[str, Any]] = []
    for tool in tools if isinstance(tools, list) else ():
        declarations = _get(tool, "function_declarations")
        if declarations:
            for declaration in declarations:
                parameters = _get(declaration, "parameters_json_schema") or _get(declaration, "parameters")
                name, description = _get(declaration, "name"), _get(declaration, "description")
                definitions.append(tool_definition("function", name, description, _schema(parameters)))
        elif callable(tool):  # a Python function for automatic function calling
            definitions.append(tool_definition("function", getattr(tool, "__name__", None), None, None))
        else:  # built-in tools (google_search, code_execution, ...) are named by their field
            fields = tool if isinstance(tool, Mapping) else _schema(tool)
            for kind, value in fields.items() if isinstance(fields, Mapping) else ():
                if value is not None and kind != "function_declarations":
                    definitions.append(tool_definition(kind, kind, None, None))
    return definitions


def input_content(contents: Any, config: Any) -> Content:
    """The request's contents, system instruction and tools."""
    items = contents if isinstance(contents, list) else [contents]
    messages: list[Message] = []
    for item in items:
        parts = _get(item, "parts")
        if parts is not None:
            messages.append({"role": _role(_get(item, "role")), "parts": [_part(p) for p in parts]})
        elif messages and messages[-1]["role"] == "user" and not isinstance(item, dict):
            messages[-1]["parts"].append(_part(item))
        else:
            messages.append({"role": "user", "parts": [_part(item)]})
    system = _get(config, "system_instruction")
    instructions: list[Part] = []
    if system is not None:
        parts = system if isinstance(system, list) else _get(system, "parts")
        instructions = [_part(p) for p in parts] if parts is not None else [_part(system)]
    return Content(inputs=messages, system=instructions, tools=_tools(_get(config, "tools")))
