"""The ``bearertokenauth`` check every collector port shares (receivers and the admin server)."""

from __future__ import annotations

import hmac
from collections.abc import Sequence

__all__ = ["token_ok"]


def token_ok(header: str | None, tokens: Sequence[str]) -> bool:
    """Whether an ``Authorization`` header carries one of ``tokens`` (any header when there are none)."""
    if not tokens:
        return True
    if not header or not header.startswith("Bearer "):
        return False
    presented = header[len("Bearer ") :].strip().encode()
    return any(hmac.compare_digest(presented, token.encode()) for token in tokens)
