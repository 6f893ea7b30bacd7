"""What a per-service extension adds to the generic AWS span (the dispatcher picks one by service)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ._call import AwsCall

__all__ = ["ServiceExtension", "content_length", "response_content_length"]


class ServiceExtension:
    """The generic AWS call: RPC attributes, region, account and wire bytes only."""

    def span_name(self, call: AwsCall, service_id: str) -> str:
        return f"{service_id}.{call.operation}"

    def before_call(self, call: AwsCall) -> None:
        """Add request attributes to ``call.attributes`` (the span does not exist yet)."""

    def on_success(self, call: AwsCall, result: dict[str, Any]) -> bool:
        """Add response attributes; return False when a wrapped stream will end the span later."""
        call.record_wire_bytes(response_content_length(result))
        return True

    def on_error(self, call: AwsCall, error: BaseException) -> None:
        response = getattr(error, "response", None)
        call.record_wire_bytes(response_content_length(response) if isinstance(response, Mapping) else None)


def response_content_length(result: Mapping[str, Any] | None) -> int | None:
    """The response body's size from its ``Content-Length`` header (None when streamed without one)."""
    if not result:
        return None
    headers = result.get("ResponseMetadata", {}).get("HTTPHeaders", {})
    return content_length(headers.get("content-length"))


def content_length(value: str | None) -> int | None:
    """A ``Content-Length`` header's bytes, from ASCII digits only (``int()`` also reads ``-5``, ``1_000`` and
    non-ASCII digits, none of them a length); None otherwise."""
    if value is None:
        return None
    text = value.strip()
    return int(text) if text.isascii() and text.isdigit() else None
