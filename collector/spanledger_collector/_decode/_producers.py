"""Counted once: which span's usage counts when several producers report the same call (issue 15).

Frameworks and provider instrumentations nest (an agent span carrying the tokens of the openai span
beneath it, OpenLLMetry and upstream both active, a gateway span over a provider span). The rule, per
trace and meter, over the spans of one request:

* a span marked ``spanledger.usage.owner`` decides outright: ``true`` counts, ``false`` is no usage;
* a span without the mark reports usage (in any dialect, see ``_dialects``) that counts unless
  - a descendant reports the same meter (it is a roll-up), or
  - an ancestor marked as owner reports the same meter (the owner has it).

How later requests correct an earlier decision is described in docs/producers.md.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, NamedTuple

from .._store import UsageFact

if TYPE_CHECKING:
    from ._usage import LlmCall

__all__ = ["Candidate", "Candidates"]

_SpanKey = tuple[str, str]


class Candidate(NamedTuple):
    """A span without the owner mark that reports usage: its facts and GenAI calls, kept or not as a whole."""

    trace_id: str
    span_id: str
    facts: list[UsageFact]
    llm_calls: list[LlmCall]


@dataclass
class Candidates:
    """The candidates of one request, resolved against the request's spans once all are decoded."""

    spans: list[Candidate] = field(default_factory=list)

    def add(self, candidate: Candidate) -> None:
        self.spans.append(candidate)

    def counted(
        self,
        owner_facts: Iterable[UsageFact],
        trace_ids: Sequence[str],
        span_ids: Sequence[str],
        parent_ids: Sequence[str | None],
    ) -> tuple[list[UsageFact], list[LlmCall]]:
        """The facts and calls of the candidates that count, in the request's order."""
        traces = {candidate.trace_id for candidate in self.spans}
        parents: dict[_SpanKey, str | None] = {
            (trace, span): parent
            for trace, span, parent in zip(trace_ids, span_ids, parent_ids, strict=True)
            if trace in traces
        }
        owned: dict[_SpanKey, set[str]] = {}
        for fact in owner_facts:
            if fact.trace_id in traces:
                owned.setdefault((fact.trace_id, fact.span_id), set()).add(fact.meter)
        reported = dict(owned)
        for candidate in self.spans:
            key = (candidate.trace_id, candidate.span_id)
            reported[key] = reported.get(key, set()) | {fact.meter for fact in candidate.facts}
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


def _ancestors(parents: dict[_SpanKey, str | None], trace: str, span: str) -> list[_SpanKey]:
    """The span's ancestors present in the request, nearest first (a parent loop is cut where it closes)."""
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
