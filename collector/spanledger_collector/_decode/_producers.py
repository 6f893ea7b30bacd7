"""Counted once: which span's usage counts when several producers report the same call (issue 15).

Frameworks and provider instrumentations nest (an agent span carrying the tokens of the openai span
beneath it, OpenLLMetry and upstream both active, a gateway span over a provider span). The rule, per
trace and meter:

* a span marked ``spanledger.usage.owner`` decides outright: ``true`` counts, ``false`` is no usage;
* a span without the mark that reports usage (in any dialect, see ``_dialects``) counts unless
  - a descendant reports the same meter (it is a roll-up), or
  - an ancestor marked as owner reports the same meter (the owner has it).

A span is decided when its request is decoded, against that request's spans and the spans that reported
usage in earlier requests of traces with candidates (:class:`RecentSpans`: children normally end, and are
exported, before their parents). A child arriving after its parent was counted is not corrected yet;
docs/producers.md says how it will be.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, NamedTuple

from .._store import SpanColumns, UsageFact

if TYPE_CHECKING:
    from ._usage import LlmCall

__all__ = ["RECENT", "Candidate", "Candidates", "RecentSpans"]

_SpanKey = tuple[str, str]
_NO_METERS: frozenset[str] = frozenset()


class Candidate(NamedTuple):
    """A span without the owner mark that reports usage: its facts and GenAI calls, kept or not as a whole."""

    trace_id: str
    span_id: str
    facts: list[UsageFact]
    llm_calls: list[LlmCall]


class _Remembered(NamedTuple):
    parent: str | None
    meters: frozenset[str]
    owner: bool


class RecentSpans:
    """The spans of recent traces that reported usage, with their traces' parent links (bounded, least recently
    used traces forgotten first), so that a parent arriving after its children is known as a roll-up."""

    def __init__(self, max_traces: int = 4096, max_spans_per_trace: int = 512) -> None:
        self._traces: OrderedDict[str, dict[str, _Remembered]] = OrderedDict()
        self._max_traces = max_traces
        self._max_spans = max_spans_per_trace

    def spans(self, trace_id: str) -> dict[str, _Remembered]:
        spans = self._traces.get(trace_id)
        if spans is None:
            return {}
        self._traces.move_to_end(trace_id)
        return spans

    def remember(self, reporters: dict[_SpanKey, tuple[frozenset[str], bool]], columns: SpanColumns) -> None:
        """The request's spans of the traces where some span reported usage (``reporters``: meters, owner)."""
        traces = {trace for trace, _ in reporters}
        for trace, span, parent in zip(columns.trace_id, columns.span_id, columns.parent_span_id, strict=True):
            if trace not in traces:
                continue
            spans = self._traces.get(trace)
            if spans is None:
                if len(self._traces) >= self._max_traces:
                    self._traces.popitem(last=False)
                spans = self._traces[trace] = {}
            else:
                self._traces.move_to_end(trace)
            if len(spans) < self._max_spans or span in spans:
                meters, owner = reporters.get((trace, span), (_NO_METERS, False))
                spans[span] = _Remembered(parent, meters, owner)

    def clear(self) -> None:
        self._traces.clear()


RECENT = RecentSpans()
"""The collector process's memory of recent reporting spans (one per process: trace ids are unique)."""


@dataclass
class Candidates:
    """The candidates of one request, resolved against the request's spans once all are decoded."""

    spans: list[Candidate] = field(default_factory=list)

    def add(self, candidate: Candidate) -> None:
        self.spans.append(candidate)

    def counted(
        self, owner_facts: Iterable[UsageFact], columns: SpanColumns, recent: RecentSpans
    ) -> tuple[list[UsageFact], list[LlmCall]]:
        """The facts and calls of the candidates that count, in the request's order."""
        traces = {candidate.trace_id for candidate in self.spans}
        parents: dict[_SpanKey, str | None] = {}
        owned: dict[_SpanKey, set[str]] = {}
        reported: dict[_SpanKey, set[str]] = {}
        for trace in traces:
            for span, earlier in recent.spans(trace).items():
                parents[trace, span] = earlier.parent
                if earlier.meters:
                    reported.setdefault((trace, span), set()).update(earlier.meters)
                    if earlier.owner:
                        owned.setdefault((trace, span), set()).update(earlier.meters)
        for trace, span, parent in zip(columns.trace_id, columns.span_id, columns.parent_span_id, strict=True):
            if trace in traces:
                parents[trace, span] = parent
        for fact in owner_facts:
            if fact.trace_id in traces:
                owned.setdefault((fact.trace_id, fact.span_id), set()).add(fact.meter)
                reported.setdefault((fact.trace_id, fact.span_id), set()).add(fact.meter)
        for candidate in self.spans:
            reported.setdefault((candidate.trace_id, candidate.span_id), set()).update(
                fact.meter for fact in candidate.facts
            )
        below: dict[_SpanKey, set[str]] = {}
        for (trace, span), meters in reported.items():
            for ancestor in _ancestors(parents, trace, span):
                below.setdefault(ancestor, set()).update(meters)

        facts: list[UsageFact] = []
        calls: list[LlmCall] = []
        for candidate in self.spans:
            key = (candidate.trace_id, candidate.span_id)
            taken = below.get(key, set()).union(*(owned.get(ancestor, ()) for ancestor in _ancestors(parents, *key)))
            kept = [fact for fact in candidate.facts if fact.meter not in taken]
            facts.extend(kept)
            if kept or not candidate.facts:
                calls.extend(candidate.llm_calls)
        return facts, calls

    def settle(
        self, owner_facts: Sequence[UsageFact], columns: SpanColumns, recent: RecentSpans | None = None
    ) -> tuple[list[UsageFact], list[LlmCall]]:
        """:meth:`counted`, then the reporting spans of the candidates' traces remembered (counted or not:
        reporting is what makes an ancestor a roll-up). Only traces with candidates are remembered, so that
        requests of spanledger's spans alone (the compiled decoder's) cost nothing more."""
        if not self.spans:
            return [], []
        recent = RECENT if recent is None else recent
        facts, calls = self.counted(owner_facts, columns, recent)
        traces = {candidate.trace_id for candidate in self.spans}
        reporters = _owner_reporters(fact for fact in owner_facts if fact.trace_id in traces)
        for c in self.spans:
            reporters[c.trace_id, c.span_id] = (frozenset(fact.meter for fact in c.facts), False)
        recent.remember(reporters, columns)
        return facts, calls


def _owner_reporters(facts: Iterable[UsageFact]) -> dict[_SpanKey, tuple[frozenset[str], bool]]:
    meters: dict[_SpanKey, set[str]] = {}
    for fact in facts:
        meters.setdefault((fact.trace_id, fact.span_id), set()).add(fact.meter)
    return {key: (frozenset(found), True) for key, found in meters.items()}


def _ancestors(parents: dict[_SpanKey, str | None], trace: str, span: str) -> list[_SpanKey]:
    """The span's ancestors that are known, nearest first (a parent loop is cut where it closes)."""
    chain: list[_SpanKey] = []
    seen = {(trace, span)}
    parent = parents.get((trace, span))
    while parent is not None and (trace, parent) not in seen:
        key = (trace, parent)
        seen.add(key)
        if key in parents:
            chain.append(key)
        parent = parents.get(key)
    return chain
