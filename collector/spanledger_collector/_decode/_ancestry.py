"""A trace's parent links, as the counted-once resolution (``_producers``) and attribution (``_attribution``)
both walk them, and the memory of recent requests' links that lets a walk cross requests."""

from __future__ import annotations

from collections import deque
from typing import TYPE_CHECKING, Any, Final, Generic, TypeVar

if TYPE_CHECKING:
    from .._store import SpanColumns

__all__ = ["RECENT_SPANS", "RecentLinks", "SpanKey", "ancestors"]

SpanKey = tuple[str, str]
"""(trace id, span id), hex."""
RECENT_SPANS: Final = 40_960
"""How many spans of recent requests the collector's memories hold by default: 4 s at 10k spans/s. With the
counted candidates' facts the counted-once memory holds, that is ≈ 30 MiB under bench_collector's otel load."""
Kept = TypeVar("Kept")
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


class RecentLinks(Generic[Kept]):
    """The parent links of the spans of recent requests, for walks that cross requests, and what the memory's
    owner keeps of some of their spans (reporting spans, listed attribute values: :attr:`kept`); bounded by a
    number of spans, the oldest request's forgotten first, with what is kept of its traces.

    A request's spans are remembered whole, in one ``dict.update`` over its columns (a loop per span cost
    more than the resolution it serves), and forgotten whole; :meth:`add` says which traces were forgotten
    (a forgotten trace's later spans may have ancestors the memory no longer holds)."""

    def __init__(self, max_spans: int) -> None:
        self.parents: dict[SpanKey, str | None] = {}
        """Each remembered span's parent span id (None: a root)."""
        self.kept: dict[str, dict[str, Kept]] = {}
        """Per trace, what is kept of some of its spans, by span id."""
        self._requests: deque[tuple[list[SpanKey], set[str]]] = deque()
        """Each remembered request's span keys and traces, oldest first."""
        self._spans = 0
        self._max_spans = max_spans

    def __len__(self) -> int:
        """How many spans are remembered."""
        return len(self.parents)

    def add(self, columns: SpanColumns) -> set[str]:
        """Remember the request's links; the traces whose spans were forgotten to make room (the request being
        added is kept, whatever its size)."""
        keys = list(zip(columns.trace_id, columns.span_id, strict=True))
        self.parents.update(zip(keys, columns.parent_span_id, strict=True))
        self._requests.append((keys, set(columns.trace_id)))
        self._spans += len(keys)
        forgotten: set[str] = set()
        while self._spans > self._max_spans and len(self._requests) > 1:
            old, traces = self._requests.popleft()
            self._spans -= len(old)
            pop = self.parents.pop
            for key in old:  # a key sent again by a later request goes too: its trace is named forgotten
                pop(key, None)
            forgotten |= traces
        for trace in forgotten:
            self.kept.pop(trace, None)
        return forgotten

    def keep(self, spans: dict[SpanKey, Kept]) -> None:
        """Keep these of the request's spans (their links were remembered by :meth:`add`)."""
        kept = self.kept
        for (trace, span), value in spans.items():
            of_trace = kept.get(trace)
            if of_trace is None:
                of_trace = kept[trace] = {}
            of_trace[span] = value

    def clear(self) -> None:
        self.parents.clear()
        self.kept.clear()
        self._requests.clear()
        self._spans = 0
