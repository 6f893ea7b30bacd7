"""Opt-in message content in the GenAI conventions' parts format, as JSON strings.

Only called when ``capture_message_content`` is on. Shapes follow ``gen-ai-input-messages.json`` /
``gen-ai-output-messages.json`` / ``gen-ai-system-instructions.json``: ``[{role, parts: [...]}]`` with
``text``, ``tool_call`` and ``tool_call_response`` parts; other part kinds keep only their type.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from typing import Any

__all__ = [
    "chat_input",
    "chat_output",
    "dumps",
    "responses_input",
    "responses_output",
    "text_output",
]

Part = dict[str, Any]
Message = dict[str, Any]


def dumps(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, default=str)


def _text_parts(content: Any) -> list[Part]:
    if content is None:
        return []
    if isinstance(content, str):
        return [{"type": "text", "content": content}]
    parts: list[Part] = []
    if isinstance(content, Iterable):
        for item in content:
            if not isinstance(item, Mapping):
                continue
            kind = item.get("type")
            text = item.get("text")
            if isinstance(text, str) and kind in ("text", "input_text", "output_text"):
                parts.append({"type": "text", "content": text})
            else:
                parts.append({"type": str(kind)})
    return parts


def chat_input(messages: Any) -> tuple[list[Message], list[Part]]:
    """(input messages, system instructions) from a chat request's ``messages``."""
    inputs: list[Message] = []
    system: list[Part] = []
    if not isinstance(messages, Iterable):
        return inputs, system
    for message in messages:
        if not isinstance(message, Mapping):
            continue
        role = message.get("role")
        if role in ("system", "developer"):
            system.extend(_text_parts(message.get("content")))
            continue
        if role == "tool":
            parts: list[Part] = [
                {"type": "tool_call_response", "id": message.get("tool_call_id"), "response": message.get("content")}
            ]
        else:
            parts = _text_parts(message.get("content"))
            for call in message.get("tool_calls") or ():
                function = call.get("function") or {}
                parts.append(
                    {
                        "type": "tool_call",
                        "id": call.get("id"),
                        "name": function.get("name"),
                        "arguments": function.get("arguments"),
                    }
                )
        inputs.append({"role": role, "parts": parts})
    return inputs, system


def chat_output(choices: Any) -> list[Message]:
    """Output messages from a ``ChatCompletion``'s choices."""
    outputs: list[Message] = []
    for choice in choices or ():
        message = getattr(choice, "message", None)
        parts = _text_parts(getattr(message, "content", None))
        for call in getattr(message, "tool_calls", None) or ():
            function = getattr(call, "function", None)
            parts.append(
                {
                    "type": "tool_call",
                    "id": getattr(call, "id", None),
                    "name": getattr(function, "name", None),
                    "arguments": getattr(function, "arguments", None),
                }
            )
        outputs.append({"role": "assistant", "parts": parts, "finish_reason": getattr(choice, "finish_reason", None)})
    return outputs


def text_output(texts: Mapping[int, list[str]], finish_reasons: Mapping[int, str]) -> list[Message]:
    """Output messages from text accumulated per choice index while streaming."""
    return [
        {
            "role": "assistant",
            "parts": [{"type": "text", "content": "".join(texts[index])}],
            "finish_reason": finish_reasons.get(index),
        }
        for index in sorted(texts)
    ]


def responses_input(body: Mapping[str, Any]) -> tuple[list[Message], list[Part]]:
    """(input messages, system instructions) from a Responses request."""
    system = _text_parts(body.get("instructions"))
    items = body.get("input")
    if isinstance(items, str):
        return [{"role": "user", "parts": [{"type": "text", "content": items}]}], system
    inputs: list[Message] = []
    for item in items if isinstance(items, Iterable) else ():
        if not isinstance(item, Mapping):
            continue
        kind = item.get("type", "message")
        if kind == "message":
            if item.get("role") in ("system", "developer"):
                system.extend(_text_parts(item.get("content")))
            else:
                inputs.append({"role": item.get("role"), "parts": _text_parts(item.get("content"))})
        elif kind == "function_call_output":
            part = {"type": "tool_call_response", "id": item.get("call_id"), "response": item.get("output")}
            inputs.append({"role": "tool", "parts": [part]})
        elif kind == "function_call":
            part = {
                "type": "tool_call",
                "id": item.get("call_id"),
                "name": item.get("name"),
                "arguments": item.get("arguments"),
            }
            inputs.append({"role": "assistant", "parts": [part]})
    return inputs, system


def responses_output(response: Any, finish_reason: str | None) -> list[Message]:
    """Output messages from a ``Response`` object."""
    parts: list[Part] = []
    for item in getattr(response, "output", None) or ():
        kind = getattr(item, "type", None)
        if kind == "message":
            for content in getattr(item, "content", None) or ():
                text = getattr(content, "text", None)
                if isinstance(text, str):
                    parts.append({"type": "text", "content": text})
                else:
                    parts.append({"type": str(getattr(content, "type", None))})
        elif kind == "function_call":
            parts.append(
                {
                    "type": "tool_call",
                    "id": getattr(item, "call_id", None),
                    "name": getattr(item, "name", None),
                    "arguments": getattr(item, "arguments", None),
                }
            )
    return [{"role": "assistant", "parts": parts, "finish_reason": finish_reason}]
