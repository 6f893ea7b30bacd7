"""What Gemini requests and responses look like: request settings, ``usage_metadata``, candidates, content.

Token mapping (as Google bills them): input = ``prompt_token_count`` (cached content included) +
``tool_use_prompt_token_count``; cache read = ``cached_content_token_count``; output =
``candidates_token_count`` + ``thoughts_token_count``, the thoughts also being the reasoning tokens.
Stream chunks carry the running ``usage_metadata``; the last one seen wins.
"""

from __future__ import annotations

from typing import Any

from .. import semconv
from .._genai import GenAICall, TokenUsage, to_int, to_json

__all__ = ["config_attributes", "embed_result", "generate_chunk", "generate_result", "input_content"]

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


def _absorb(call: GenAICall, response: Any) -> None:
    version = _get(response, "model_version")
    if isinstance(version, str):
        call.response_model = version
    response_id = _get(response, "response_id")
    if isinstance(response_id, str):
        call.attributes[semconv.GEN_AI_RESPONSE_ID] = response_id
    metadata = _get(response, "usage_metadata")
    if metadata is not None:
        call.usage = usage_of(metadata)
        tool_use = to_int(_get(metadata, "tool_use_prompt_token_count"))
        if tool_use is not None:
            call.attributes[semconv.SPANLEDGER_USAGE_TOOL_USE_PROMPT_INPUT_TOKENS] = tool_use
    reasons = []
    for candidate in _get(response, "candidates") or ():
        reason = _get(candidate, "finish_reason")
        if reason is not None:
            reasons.append(str(getattr(reason, "value", reason)))
    if reasons:
        call.finish_reasons = reasons


def _texts(response: Any) -> list[str]:
    texts = []
    for candidate in (_get(response, "candidates") or ())[:1]:
        for part in _get(_get(candidate, "content"), "parts") or ():
            text = _get(part, "text")
            if isinstance(text, str) and not _get(part, "thought"):
                texts.append(text)
    return texts


def generate_result(call: GenAICall, response: Any) -> None:
    _absorb(call, response)
    if call.recorder.content_on_span:
        message: dict[str, Any] = {
            "role": "assistant",
            "parts": [{"type": "text", "content": "".join(_texts(response))}],
        }
        if call.finish_reasons:
            message["finish_reason"] = call.finish_reasons[0]
        call.attributes[semconv.GEN_AI_OUTPUT_MESSAGES] = to_json([message])


def generate_chunk(call: GenAICall, response: Any) -> None:
    _absorb(call, response)
    if call.texts is not None:
        call.texts.extend(_texts(response))


def embed_result(call: GenAICall, response: Any) -> None:
    counts = [
        to_int(_get(_get(embedding, "statistics"), "token_count")) for embedding in _get(response, "embeddings") or ()
    ]
    known = [count for count in counts if count is not None]
    if known:
        call.usage = TokenUsage(sum(known))


def _part(part: Any) -> dict[str, Any]:
    if isinstance(part, str):
        return {"type": "text", "content": part}
    text = _get(part, "text")
    if isinstance(text, str):
        return {"type": "text", "content": text}
    call = _get(part, "function_call")
    if call is not None:
        return {"type": "tool_call", "name": _get(call, "name"), "arguments": _get(call, "args")}
    response = _get(part, "function_response")
    if response is not None:
        return {"type": "tool_call_response", "name": _get(response, "name"), "response": _get(response, "response")}
    return {"type": "blob"}


def input_content(contents: Any, config: Any, attributes: dict[str, Any]) -> None:
    """Opt-in: the request's contents and system instruction."""
    items = contents if isinstance(contents, list) else [contents]
    messages: list[dict[str, Any]] = []
    for item in items:
        parts = _get(item, "parts")
        if parts is not None:
            messages.append({"role": _get(item, "role") or "user", "parts": [_part(p) for p in parts]})
        elif messages and messages[-1]["role"] == "user" and not isinstance(item, dict):
            messages[-1]["parts"].append(_part(item))
        else:
            messages.append({"role": "user", "parts": [_part(item)]})
    attributes[semconv.GEN_AI_INPUT_MESSAGES] = to_json(messages)
    system = _get(config, "system_instruction")
    if system is not None:
        parts = _get(system, "parts")
        attributes[semconv.GEN_AI_SYSTEM_INSTRUCTIONS] = to_json(
            [_part(p) for p in parts] if parts is not None else [_part(system)]
        )
