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
exported, before their parents). A descendant arriving after its ancestor was counted makes the ancestor's
fact a roll-up after the fact: it is *retracted* (``_store/_retractions.py``), from this memory where it
knows the ancestor, else by the store's check of the stored ancestors (:class:`~.._store.AncestryCheck`).
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Iterable, Sequence
from collections.abc import Set as AbstractSet
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, NamedTuple, Protocol

from .._store import AncestryCheck, CandidateSpan, SpanColumns, UsageFact, UsageRetraction
from ._ancestry import RECENT_SPANS, RecentLinks, SpanKey, ancestors

if TYPE_CHECKING:
    from ._usage import LlmCall

__all__ = [
    "RECENT",
    "STORE_CHECK_MARGIN_S",
    "Candidate",
    "Candidates",
    "Compiled",
    "RecentSpans",
    "Reported",
    "Settled",
]

_NO_METERS: frozenset[str] = frozenset()
_NO_FACTS: tuple[UsageFact, ...] = ()
_new_tuple = tuple.__new__
FORGOTTEN_TRACES = 65_536
"""How many forgotten traces are remembered as such (a trace forgotten longer ago is not checked in the store)."""
STORE_CHECK_MARGIN_S = 60.0
"""Spans that started before the latest end of a span stored before this process started, or up to this
margin after it, may have ancestors stored by an earlier process (an ancestor ends after its descendants
start): their ancestry is checked in the store. The margin is for clock skew between producers' hosts."""


class Candidate(NamedTuple):
    """A span without the owner mark that reports usage: its facts and GenAI calls, kept or not as a whole."""

    trace_id: str
    span_id: str
    facts: list[UsageFact]
    llm_calls: list[LlmCall]


class Reported(NamedTuple):
    """What a reporting span of a request left: the meters it reports, whether it is an owner, and (a candidate)
    the facts that counted, which a later descendant retracts."""

    meters: frozenset[str]
    owner: bool
    counted: tuple[UsageFact, ...] = _NO_FACTS


class RecentSpans:
    """The reporting spans of recent traces and the parent links of their requests (bounded: :class:`RecentLinks`),
    so that a parent arriving after its children is known as a roll-up, and a child arriving after its counted
    parent retracts the parent's facts.

    What it cannot know is said by :meth:`may_miss`: ancestors stored before the process started (see
    :meth:`stored_until`), and the spans of traces it forgot.
    """

    def __init__(self, max_spans: int = RECENT_SPANS) -> None:
        self.links: RecentLinks[Reported] = RecentLinks(max_spans)
        """The links, and per trace its reporting spans."""
        self._forgotten: OrderedDict[str, None] = OrderedDict()
        """Traces with spans forgotten (bounded too: a trace forgotten long ago is not checked again)."""
        self._max_forgotten = FORGOTTEN_TRACES
        self._check_before_ns = -1

    def spans(self, trace_id: str) -> dict[str, Reported]:
        """The trace's remembered reporting spans."""
        return self.links.kept.get(trace_id, {})

    def __len__(self) -> int:
        """How many traces with reporting spans are remembered."""
        return len(self.links.kept)

    def knows_any(self, traces: Iterable[str]) -> set[str]:
        """The traces of ``traces`` that are remembered."""
        remembered = self.links.kept
        return {trace for trace in traces if trace in remembered}

    def stored_until(self, end_time_unix_nano: int) -> None:
        """A store opened by this process holds spans that ended up to then (stored by an earlier process)."""
        self._check_before_ns = max(self._check_before_ns, end_time_unix_nano + int(STORE_CHECK_MARGIN_S * 1e9))

    def may_miss(self, trace_id: str, start_time_unix_nano: int) -> bool:
        """Whether a span of the trace that started then may have ancestors this memory does not hold."""
        return start_time_unix_nano < self._check_before_ns or trace_id in self._forgotten

    def missing(self, traces: set[str]) -> set[str]:
        """The traces of ``traces`` whose spans may have ancestors this memory does not hold (:meth:`may_miss`):
        all of them while spans stored before the process started may be theirs, else those it forgot."""
        if self._check_before_ns > 0:
            return traces
        forgotten = self._forgotten
        return {trace for trace in traces if trace in forgotten} if forgotten else set()

    def may_miss_any(self, traces: Iterable[str]) -> bool:
        """Whether :meth:`may_miss` may say yes for some span of ``traces`` (no, mostly: then it is not asked)."""
        forgotten = self._forgotten
        return self._check_before_ns > 0 or any(trace in forgotten for trace in traces)

    def add_links(self, columns: SpanColumns) -> dict[SpanKey, str | None]:
        """Remember the request's parent links (before its spans are resolved: they walk them); the links."""
        forgotten = self.links.add(columns)
        if forgotten:
            remembered = self._forgotten
            for trace in forgotten:
                remembered[trace] = None
                remembered.move_to_end(trace)
            while len(remembered) > self._max_forgotten:
                remembered.popitem(last=False)
        return self.links.parents

    def remember(self, reporters: dict[SpanKey, Reported]) -> None:
        """The request's reporting spans (their links were remembered by :meth:`add_links`)."""
        self.links.keep(reporters)

    def retract(self, trace_id: str, span_id: str, meter: str) -> None:
        """The span's counted fact of ``meter`` is retracted: it is not retracted again."""
        spans = self.links.kept.get(trace_id)
        earlier = None if spans is None else spans.get(span_id)
        if spans is not None and earlier is not None:
            counted = tuple(fact for fact in earlier.counted if fact.meter != meter)
            spans[span_id] = earlier._replace(counted=counted)

    def clear(self) -> None:
        self.links.clear()
        self._forgotten.clear()


RECENT = RecentSpans()
"""The collector process's memory of recent reporting spans (one per process: trace ids are unique)."""


class Compiled(Protocol):
    """The compiled decoder's part of the resolution (``_speedups``): see :meth:`Candidates.settle`."""

    def settle_quiet(
        self,
        candidates: list[Candidate],
        parents: dict[SpanKey, str | None],
        owner_facts: list[UsageFact],
        traces: set[str],
        /,
    ) -> tuple[list[UsageFact], list[LlmCall], list[CandidateSpan], dict[SpanKey, Reported]] | None:
        """The resolution of the candidates and owner spans of quiet ``traces``, or None to decline."""

    def ancestors(self, parents: dict[SpanKey, str | None], trace_id: str, span_id: str, /) -> list[SpanKey] | None:
        """:func:`ancestors`, or None to decline."""


class Settled(NamedTuple):
    """What resolving a request's candidates gives (besides its owner facts, which count as they are)."""

    facts: list[UsageFact]
    """The candidates' facts that count."""
    llm_calls: list[LlmCall]
    retractions: list[UsageRetraction]
    """Facts of earlier requests that this request's spans roll up."""
    retracted: list[UsageFact]
    """The facts ``retractions`` retract (for the retracted counter)."""
    candidates: list[CandidateSpan]
    """The candidates with facts that count."""
    ancestry: list[AncestryCheck]
    """Reporting spans whose ancestors the memory may not hold: the store checks them."""


@dataclass
class Candidates:
    """The candidates of one request, resolved against the request's spans once all are decoded."""

    spans: list[Candidate] = field(default_factory=list)

    def add(self, candidate: Candidate) -> None:
        self.spans.append(candidate)

    def settle(
        self,
        owner_facts: list[UsageFact],
        columns: SpanColumns,
        recent: RecentSpans | None = None,
        *,
        compiled: Compiled | None = None,
    ) -> Settled | None:
        """Which candidates count, which earlier counted facts this request retracts, and what the store checks.
        A request with traces to settle (with candidates, or already remembered) is remembered: its links, and
        its reporting spans (counted or not: reporting is what makes an ancestor a roll-up). Requests of
        spanledger's spans alone of traces not remembered cost one set lookup per trace (the compiled decoder's).
        None: nothing to settle.

        The candidates of quiet traces (no reporting span remembered) come first, those of the
        others (loud) after them; the resolution of each trace is its own. ``compiled`` (the compiled decoder) resolves
        the quiet ones in one C call (``settle_quiet``), :func:`_resolve` the rest (walking the links in
        C too); :func:`_resolve` of them all, in Python, is its reference (the reference decoder's requests take
        it always)."""
        recent = RECENT if recent is None else recent
        candidates = self.spans
        traces = {candidate.trace_id for candidate in candidates}
        if owner_facts and recent:
            traces |= recent.knows_any({fact.trace_id for fact in owner_facts})
        if not traces:
            return None

        had_reporters = bool(recent)
        parents = recent.add_links(columns)  # the request's links and the earlier ones
        # Loud traces: with reporting spans remembered, or whose spans' ancestors the memory may miss. The
        # candidates of the others (quiet) are resolved first: in C where it is built, all at once.
        loud = (recent.knows_any(traces) if had_reporters else set()) | recent.missing(traces)
        quiet = [candidate for candidate in candidates if candidate.trace_id not in loud] if loud else candidates
        if loud and quiet:
            candidates = quiet + [candidate for candidate in candidates if candidate.trace_id in loud]
        settled = Settled([], [], [], [], [], [])
        if (
            compiled is not None
            and quiet
            and (resolved := compiled.settle_quiet(quiet, parents, owner_facts, traces - loud)) is not None
        ):
            counted_facts, counted_calls, counted_spans, reporters = resolved
            recent.remember(reporters)
            settled = Settled(counted_facts, counted_calls, [], [], counted_spans, [])
            if not loud:
                return settled
            candidates, traces = candidates[len(quiet) :], loud
        walk = ancestors if compiled is None else _compiled_walk(compiled)
        return _resolve(candidates, traces, owner_facts, columns, recent, parents, had_reporters, settled, walk)


def _resolve(
    candidates: list[Candidate],
    traces: set[str],
    owner_facts: Sequence[UsageFact],
    columns: SpanColumns,
    recent: RecentSpans,
    parents: dict[SpanKey, str | None],
    had_reporters: bool,
    settled: Settled,
    walk: Callable[[dict[SpanKey, str | None], str, str], list[SpanKey]],
) -> Settled:
    """:meth:`Candidates.settle`'s resolution of the candidates of ``traces`` (the reference), into ``settled``."""
    owned: dict[SpanKey, frozenset[str]] = {}
    reported: dict[SpanKey, frozenset[str]] = {}
    counted_before: dict[SpanKey, tuple[UsageFact, ...]] = {}
    for trace in traces if had_reporters else ():  # an empty memory has no earlier spans
        for span, earlier in recent.spans(trace).items():
            key = (trace, span)
            if earlier.meters:
                reported[key] = earlier.meters
                if earlier.owner:
                    owned[key] = earlier.meters
            if earlier.counted:
                counted_before[key] = earlier.counted
    starts: dict[SpanKey, int] = {}
    if recent.may_miss_any(traces):  # else the spans' starts are not needed (mostly)
        for trace, span, start in zip(columns.trace_id, columns.span_id, columns.start_time_unix_nano, strict=True):
            if trace in traces:
                starts[trace, span] = start
    # This request's reporting spans: (meters, owner).
    now: dict[SpanKey, tuple[frozenset[str], bool]] = {}
    for fact in owner_facts:
        if fact.trace_id in traces:
            key = (fact.trace_id, fact.span_id)
            meter = frozenset((fact.meter,))
            owned[key] = owned.get(key, _NO_METERS) | meter
            reported[key] = reported.get(key, _NO_METERS) | meter
            meters, owner = now.get(key, (_NO_METERS, True))
            now[key] = (meters | meter, owner)
    keyed: list[tuple[Candidate, SpanKey, frozenset[str]]] = []
    for candidate in candidates:
        key = (candidate.trace_id, candidate.span_id)
        meters = frozenset([fact.meter for fact in candidate.facts])
        keyed.append((candidate, key, meters))
        earlier_meters = reported.get(key)
        reported[key] = meters if earlier_meters is None else earlier_meters | meters
        known = now.get(key)
        now[key] = (meters, False) if known is None else (known[0] | meters, known[1])
    below: dict[SpanKey, set[str]] = {}
    chains: dict[SpanKey, list[SpanKey]] = {}  # the ancestors of each reporting span, walked once
    for key, meters in reported.items():
        chain = chains[key] = walk(parents, *key)
        for ancestor in chain:
            if ancestor in below:
                below[ancestor].update(meters)
            else:
                below[ancestor] = set(meters)

    counted, calls, spans = settled.facts, settled.llm_calls, settled.candidates
    # tuple.__new__ rather than the NamedTuples' constructors: a few per reporting span.
    remembered: dict[SpanKey, Reported] = {
        key: _new_tuple(Reported, (meters, True, _NO_FACTS)) for key, (meters, owner) in now.items() if owner
    }
    for candidate, key, meters in keyed:
        taken: set[str] | frozenset[str] = below.get(key, _NO_METERS)
        if owned:
            taken = taken.union(*(owned.get(ancestor, ()) for ancestor in chains[key]))
        reported_facts = candidate.facts
        kept = [fact for fact in reported_facts if fact.meter not in taken] if taken else list(reported_facts)
        if kept:
            counted.extend(kept)
            calls.extend(candidate.llm_calls)
            spans.append(_new_tuple(CandidateSpan, key))
        elif not reported_facts:
            calls.extend(candidate.llm_calls)
        remembered[key] = _new_tuple(Reported, (meters, False, tuple(kept)))

    # Earlier counted candidates that this request's spans roll up: their ancestors (any reporting span
    # of this request), and their descendants under an owner of this request (the owner has the usage).
    for (trace, span), (meters, owner) in now.items() if counted_before else ():
        for ancestor in chains[trace, span]:
            _retract(settled, recent, counted_before, ancestor, meters, span)
        if owner:
            for below_owner in list(counted_before):
                if below_owner[0] == trace and (trace, span) in walk(parents, *below_owner):
                    _retract(settled, recent, counted_before, below_owner, meters, span)
    # What the memory may not hold: the store checks the ancestors of the spans whose facts count.
    for facts, owner in ((settled.facts, False), (owner_facts, True)) if starts else ():
        for fact in facts:
            key = (fact.trace_id, fact.span_id)
            if key in starts and recent.may_miss(fact.trace_id, starts[key]):
                settled.ancestry.append(AncestryCheck(fact.trace_id, fact.span_id, fact.meter, owner))
    recent.remember(remembered)
    return settled


def _compiled_walk(compiled: Compiled) -> Callable[[dict[SpanKey, str | None], str, str], list[SpanKey]]:
    """:func:`ancestors` in C, in Python for the chains it declines."""
    walked = compiled.ancestors

    def walk(parents: dict[SpanKey, str | None], trace: str, span: str) -> list[SpanKey]:
        chain = walked(parents, trace, span)
        return ancestors(parents, trace, span) if chain is None else chain

    return walk


def _retract(
    settled: Settled,
    recent: RecentSpans,
    counted_before: dict[SpanKey, tuple[UsageFact, ...]],
    span: SpanKey,
    meters: AbstractSet[str],
    by: str,
) -> None:
    """Retract the span's earlier counted facts of ``meters`` (each once), rolled up by span ``by``."""
    facts = counted_before.get(span)
    if not facts:
        return
    kept = []
    for fact in facts:
        if fact.meter in meters:
            settled.retractions.append(UsageRetraction(fact.trace_id, fact.span_id, fact.meter, by))
            settled.retracted.append(fact)
            recent.retract(fact.trace_id, fact.span_id, fact.meter)
        else:
            kept.append(fact)
    counted_before[span] = tuple(kept)
