"""What a per-service extension adds to the generic AWS span (the dispatcher picks one by service)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ._call import AwsCall

__all__ = ["ServiceExtension", "response_content_length"]


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
    value = headers.get("content-length")
    if value is None:
        return None
    try:
        return int(value)
    except ValueError:
        return None
