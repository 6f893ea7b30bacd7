"""Opt-in message content: what one call said, and where it goes under the capture mode.

Shapes follow the conventions' JSON schemas (``gen-ai-input-messages.json``, ``gen-ai-output-messages.json``,
``gen-ai-system-instructions.json``, ``gen-ai-tool-definitions.json``): messages are ``{role, parts}`` with
``text``, ``tool_call`` (``arguments`` an object) and ``tool_call_response`` parts. On a span each list is a
JSON string attribute; on the ``gen_ai.client.inference.operation.details`` event it is the structured value.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from .. import semconv

__all__ = ["CONTENT_ATTRIBUTES", "Content", "Message", "Part", "arguments_object", "to_json", "tool_definition"]

Part = dict[str, Any]
Message = dict[str, Any]

CONTENT_ATTRIBUTES = (
    semconv.GEN_AI_INPUT_MESSAGES,
    semconv.GEN_AI_OUTPUT_MESSAGES,
    semconv.GEN_AI_SYSTEM_INSTRUCTIONS,
    semconv.GEN_AI_TOOL_DEFINITIONS,
)


def to_json(value: Any) -> str:
    """Captured message content as JSON (binary blocks such as images become their length)."""
    return json.dumps(value, default=_unencodable, ensure_ascii=False)


def _unencodable(value: Any) -> Any:
    if isinstance(value, (bytes, bytearray, memoryview)):
        return f"<{len(value)} bytes>"
    return str(value)


def arguments_object(arguments: Any) -> Any:
    """Tool-call arguments as the object the conventions ask for (providers send a JSON string)."""
    if isinstance(arguments, str):
        try:
            return json.loads(arguments)
        except ValueError:
            return arguments  # a truncated or invalid stream: keep what was said
    return arguments


@dataclass
class Content:
    """One call's content, in the conventions' shapes; filled at the request, completed at the response."""

    inputs: list[Message] = field(default_factory=list)
    system: list[Part] = field(default_factory=list)
    """Only what the API takes as instructions (``instructions``, ``system``); system messages in the chat
    history stay in ``inputs``."""
    tools: list[dict[str, Any]] = field(default_factory=list)
    outputs: list[Message] = field(default_factory=list)

    def _items(self) -> tuple[tuple[str, list[Any]], ...]:
        return (
            (semconv.GEN_AI_INPUT_MESSAGES, self.inputs),
            (semconv.GEN_AI_OUTPUT_MESSAGES, self.outputs),
            (semconv.GEN_AI_SYSTEM_INSTRUCTIONS, self.system),
            (semconv.GEN_AI_TOOL_DEFINITIONS, self.tools),
        )

    def span_attributes(self, attributes: dict[str, Any]) -> None:
        """Add the span form (JSON strings) of what is not empty to ``attributes``."""
        for name, value in self._items():
            if value:
                attributes[name] = to_json(value)

    def event_attributes(self, attributes: dict[str, Any]) -> None:
        """Add the event form (structured values) of what is not empty to ``attributes``."""
        for name, value in self._items():
            if value:
                attributes[name] = json.loads(to_json(value))  # plain JSON types only, as the Logs API takes


def tool_definition(kind: Any, name: Any, description: Any, parameters: Any) -> dict[str, Any]:
    definition: dict[str, Any] = {"type": kind or "function", "name": name}
    if description:
        definition["description"] = description
    if isinstance(parameters, Mapping):
        definition["parameters"] = parameters
    return definition
