"""A trace's parent links, as the counted-once resolution (``_producers``) and attribution (``_attribution``)
both walk them."""

from __future__ import annotations

__all__ = ["SpanKey", "ancestors"]

SpanKey = tuple[str, str]
"""(trace id, span id), hex."""


def ancestors(parents: dict[SpanKey, str | None], trace: str, span: str) -> list[SpanKey]:
    """The span's ancestors that ``parents`` knows, nearest first (a parent loop is cut where it closes)."""
    chain: list[SpanKey] = []
    seen = {(trace, span)}
    parent = parents.get((trace, span))
    while parent is not None and (trace, parent) not in seen:
        key = (trace, parent)
        seen.add(key)
        if key in parents:
            chain.append(key)
        parent = parents.get(key)
    return chain
