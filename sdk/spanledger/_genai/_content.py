"""Opt-in message content as span attribute values."""

from __future__ import annotations

import json
from typing import Any

__all__ = ["to_json"]


def to_json(value: Any) -> str:
    """Captured message content as JSON (binary blocks such as images become their length)."""
    return json.dumps(value, default=_unencodable, ensure_ascii=False)


def _unencodable(value: Any) -> Any:
    if isinstance(value, (bytes, bytearray, memoryview)):
        return f"<{len(value)} bytes>"
    return str(value)
