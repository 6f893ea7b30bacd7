"""OpenAI requests and responses as the conventions' content shapes (see ``_genai/_content.py``).

Only called when content is collected. System and developer messages in a chat history stay in the input
messages; only the Responses API's ``instructions`` are system instructions. Tool-call arguments become
objects; ``tools`` become tool definitions. Part kinds other than text and tool calls keep only their type.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from .._genai import Content, arguments_object, tool_definition
from .._genai._content import Message, Part

__all__ = [
    "chat_input",
    "chat_output",
    "responses_input",
    "responses_output",
    "text_output",
]


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


def _tool_call(call_id: Any, name: Any, arguments: Any) -> Part:
    return {"type": "tool_call", "id": call_id, "name": name, "arguments": arguments_object(arguments)}


def _chat_tools(tools: Any) -> list[dict[str, Any]]:
    definitions = []
    for tool in tools if isinstance(tools, Iterable) else ():
        if isinstance(tool, Mapping):
            function = tool.get("function") or {}
            definitions.append(
                tool_definition(
                    tool.get("type"), function.get("name"), function.get("description"), function.get("parameters")
                )
            )
    return definitions


def chat_input(body: Mapping[str, Any]) -> Content:
    """A chat request's messages (all of them, system ones included) and tools."""
    inputs: list[Message] = []
    messages = body.get("messages")
    for message in messages if isinstance(messages, Iterable) else ():
        if not isinstance(message, Mapping):
            continue
        role = message.get("role")
        if role == "tool":
            parts: list[Part] = [
                {"type": "tool_call_response", "id": message.get("tool_call_id"), "response": message.get("content")}
            ]
        else:
            parts = _text_parts(message.get("content"))
            for call in message.get("tool_calls") or ():
                function = call.get("function") or {}
                parts.append(_tool_call(call.get("id"), function.get("name"), function.get("arguments")))
        inputs.append({"role": role, "parts": parts})
    return Content(inputs=inputs, tools=_chat_tools(body.get("tools")))


def chat_output(choices: Any) -> list[Message]:
    """Output messages from a ``ChatCompletion``'s choices."""
    outputs: list[Message] = []
    for choice in choices or ():
        message = getattr(choice, "message", None)
        parts = _text_parts(getattr(message, "content", None))
        for call in getattr(message, "tool_calls", None) or ():
            function = getattr(call, "function", None)
            name, arguments = getattr(function, "name", None), getattr(function, "arguments", None)
            parts.append(_tool_call(getattr(call, "id", None), name, arguments))
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


def _responses_tools(tools: Any) -> list[dict[str, Any]]:
    definitions = []
    for tool in tools if isinstance(tools, Iterable) else ():
        if isinstance(tool, Mapping):
            kind = tool.get("type")
            name = tool.get("name") if kind == "function" else kind  # built-in tools are named by their type
            definitions.append(tool_definition(kind, name, tool.get("description"), tool.get("parameters")))
    return definitions


def responses_input(body: Mapping[str, Any]) -> Content:
    """A Responses request's input items, its ``instructions`` (the system instructions) and tools."""
    content = Content(system=_text_parts(body.get("instructions")), tools=_responses_tools(body.get("tools")))
    items = body.get("input")
    if isinstance(items, str):
        content.inputs.append({"role": "user", "parts": [{"type": "text", "content": items}]})
        return content
    for item in items if isinstance(items, Iterable) else ():
        if not isinstance(item, Mapping):
            continue
        kind = item.get("type", "message")
        if kind == "message":
            content.inputs.append({"role": item.get("role"), "parts": _text_parts(item.get("content"))})
        elif kind == "function_call_output":
            part = {"type": "tool_call_response", "id": item.get("call_id"), "response": item.get("output")}
            content.inputs.append({"role": "tool", "parts": [part]})
        elif kind == "function_call":
            part = _tool_call(item.get("call_id"), item.get("name"), item.get("arguments"))
            content.inputs.append({"role": "assistant", "parts": [part]})
    return content


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
            name, arguments = getattr(item, "name", None), getattr(item, "arguments", None)
            parts.append(_tool_call(getattr(item, "call_id", None), name, arguments))
    return [{"role": "assistant", "parts": parts, "finish_reason": finish_reason}]
