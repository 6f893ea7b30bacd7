"""A trace's parent links, as the counted-once resolution (``_producers``) and attribution (``_attribution``)
both walk them."""

from __future__ import annotations

from typing import Any, Final

__all__ = ["SpanKey", "ancestors"]

SpanKey = tuple[str, str]
"""(trace id, span id), hex."""
_UNKNOWN: Final[Any] = object()
"""What ``parents`` gives for a span it does not know (any ``str`` or None is a known span's parent)."""


def ancestors(parents: dict[SpanKey, str | None], trace: str, span: str) -> list[SpanKey]:
    """The span's ancestors that ``parents`` knows, nearest first (a parent loop is cut where it closes)."""
    chain: list[SpanKey] = []
    seen = {span}  # span ids: the trace is the same all along
    parent = parents.get((trace, span))
    while parent is not None and parent not in seen:
        seen.add(parent)
        key = (trace, parent)
        parent = parents.get(key, _UNKNOWN)  # one lookup a step: an unknown span ends the chain
        if parent is _UNKNOWN:
            break
        chain.append(key)
    return chain
