"""What a sender needs from a wire protocol, and the OTLP response rules every transport shares."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Protocol

from google.protobuf.message import DecodeError

from ._signals import SIGNALS, Signal

__all__ = ["PartialSuccess", "Transport", "parse_partial_success"]


@dataclass(frozen=True)
class PartialSuccess:
    """The server accepted the request but rejected ``rejected`` items (never retried, per OTLP)."""

    rejected: int
    message: str


class Transport(Protocol):
    """Sends one serialized export request.

    ``send`` returns normally when the server accepted the request (with an optional partial success),
    raises ``RetryableError`` (with ``retry_after`` from Retry-After / RetryInfo) when it should be tried
    again, and ``PermanentError`` when retrying cannot help.
    """

    def send(self, signal: Signal, payload: bytes, timeout: float) -> PartialSuccess | None: ...

    def close(self) -> None: ...


def parse_partial_success(signal: Signal, body: bytes, content_type: str) -> PartialSuccess | None:
    """Read ``partial_success`` from an export response body (protobuf or OTLP/JSON); junk is ignored."""
    if not body:
        return None
    spec = SIGNALS[signal]
    if "json" in content_type:
        try:
            document = json.loads(body)
        except ValueError:
            return None
        partial = document.get("partialSuccess") if isinstance(document, dict) else None
        if not isinstance(partial, dict):
            return None
        words = spec.rejected_field.split("_")
        camel = words[0] + "".join(word.capitalize() for word in words[1:])
        rejected: object = partial.get(camel, 0)
        message = partial.get("errorMessage", "")
        try:
            rejected_count = int(rejected)  # type: ignore[call-overload]
        except (TypeError, ValueError):
            rejected_count = 0
        if not rejected_count and not message:
            return None
        return PartialSuccess(rejected_count, str(message))
    try:
        response = spec.response_type.FromString(body)
    except DecodeError:
        return None
    if not response.HasField("partial_success"):  # type: ignore[attr-defined]
        return None
    partial_message = response.partial_success  # type: ignore[attr-defined]
    rejected_count = int(getattr(partial_message, spec.rejected_field))
    if not rejected_count and not partial_message.error_message:
        return None
    return PartialSuccess(rejected_count, partial_message.error_message)
