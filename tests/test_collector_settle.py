"""The compiled decoder's counted-once resolution of a quiet request (``settle_quiet``: no reporting span of its
traces remembered, no owner span) against ``Candidates.settle``'s own, its reference."""

from __future__ import annotations

import random
from datetime import UTC, datetime
from decimal import Decimal

import pytest
from spanledger_collector._decode import SPEEDUPS
from spanledger_collector._decode._producers import Candidate, Candidates, RecentSpans
from spanledger_collector._store import SpanColumns, UsageFact

if SPEEDUPS:
    from spanledger_collector._decode._usage import _speedups

pytestmark = pytest.mark.skipif(not SPEEDUPS, reason="the compiled decoder is not built")

_AT = datetime(2026, 12, 6, tzinfo=UTC)


def _fact(trace: str, span: str, meter: str) -> UsageFact:
    return UsageFact(trace, span, meter, _AT, _AT, Decimal(7), "token")


def _request(rng: random.Random, spans: int) -> tuple[SpanColumns, list[Candidate]]:
    """Spans of one to three traces linked at random (roots, loops, unknown and empty parents), some of them
    candidates (now and then one twice) with zero to three facts of three meters."""
    columns = SpanColumns()
    ids = [f"{index + 1:016x}" for index in range(spans)]
    for trace in [f"{index + 1:032x}" for index in range(rng.randint(1, 3))]:
        for span in ids:
            columns.trace_id.append(trace)
            columns.span_id.append(span)
            columns.parent_span_id.append(rng.choice([*ids, None, "", "ffffffffffffffff"]))
            columns.start_time_unix_nano.append(0)
    candidates = []
    for trace, span in zip(columns.trace_id, columns.span_id, strict=True):
        for _ in range(2 if rng.random() < 0.02 else int(rng.random() < 0.4)):
            meters = rng.sample(["input_tokens", "output_tokens", "cache_read_tokens"], rng.randint(0, 3))
            calls = [object()] if rng.random() < 0.8 else []
            candidates.append(Candidate(trace, span, [_fact(trace, span, meter) for meter in meters], calls))
    rng.shuffle(candidates)
    return columns, candidates


def _settled(columns: SpanColumns, candidates: list[Candidate], compiled: bool) -> tuple[object, str]:
    recent = RecentSpans()
    quiet = _speedups if compiled else None
    settled = Candidates(list(candidates)).settle([], columns, recent, compiled=quiet)
    return settled, (recent.links.parents, recent.links.kept)


def test_the_compiled_resolution_matches_the_reference_on_random_requests() -> None:
    rng = random.Random(1506)
    compiled = declined = 0
    for _ in range(600):
        columns, candidates = _request(rng, rng.randint(1, 12))
        assert _settled(columns, candidates, True) == _settled(columns, candidates, False)
        recent = RecentSpans()
        if _speedups.settle_quiet(candidates, recent.add_links(columns), [], set(columns.trace_id)) is None:
            declined += 1
        else:
            compiled += 1
    assert compiled > 400 and declined > 0  # the candidates twice are declined, and only those


def _part(columns: SpanColumns, rows: list[int]) -> SpanColumns:
    return SpanColumns(
        trace_id=[columns.trace_id[row] for row in rows],
        span_id=[columns.span_id[row] for row in rows],
        parent_span_id=[columns.parent_span_id[row] for row in rows],
        start_time_unix_nano=[0] * len(rows),
    )


def test_traces_split_over_requests_with_owner_spans_are_resolved_alike() -> None:
    """Loud traces (reporting spans remembered from the first request; forgotten ones, or all while spans stored
    before may be their ancestors) in Python, the quiet ones (owner spans included) in C, against the reference:
    the same results and memory, request after request (retractions and the store's checks included)."""
    rng = random.Random(1507)
    mixed = checked = 0
    for _ in range(400):
        columns, candidates = _request(rng, rng.randint(2, 10))
        part_of = [rng.randint(0, 1) for _ in columns.span_id]
        keys = list(zip(columns.trace_id, columns.span_id, strict=True))
        owners = [_fact(trace, span, rng.choice(["input_tokens", "output_tokens"])) for trace, span in keys]
        owners = [fact for fact in owners if rng.random() < 0.1]
        row_of = {key: row for row, key in enumerate(keys)}
        budget, stored = rng.choice([4, 40_960]), rng.random() < 0.2  # traces forgotten; spans stored before
        recents, results = (RecentSpans(max_spans=budget), RecentSpans(max_spans=budget)), []
        for recent in recents if stored else ():
            recent.stored_until(1)
        for part in (0, 1):
            rows = [row for row, chosen in enumerate(part_of) if chosen == part]
            here = [c for c in candidates if part_of[row_of[c.trace_id, c.span_id]] == part]
            own = [fact for fact in owners if part_of[row_of[fact.trace_id, fact.span_id]] == part]
            traces = {candidate.trace_id for candidate in here}
            mixed += 0 < len(recents[0].knows_any(traces)) < len(traces)
            for recent, compiled in zip(recents, (_speedups, None), strict=True):
                settled = Candidates(list(here)).settle(own, _part(columns, rows), recent, compiled=compiled)
                results.append((settled, (recent.links.parents, recent.links.kept)))
            assert results[-2] == results[-1]
            checked += bool(results[-1][0] and results[-1][0].ancestry)
    assert mixed > 50, mixed  # requests with quiet and loud traces
    assert checked > 20, checked  # requests with spans the store checks


def test_a_chain_longer_than_the_compiled_walk_is_declined_and_settled_alike() -> None:
    trace = "a" * 32
    ids = [f"{index + 1:016x}" for index in range(100)]
    columns = SpanColumns(trace_id=[trace] * 100, span_id=ids, parent_span_id=[None, *ids[:-1]])
    deep = [Candidate(trace, ids[-1], [_fact(trace, ids[-1], "input_tokens")], []),
            Candidate(trace, ids[0], [_fact(trace, ids[0], "input_tokens")], [])]  # fmt: skip
    assert _speedups.settle_quiet(deep, RecentSpans().add_links(columns), [], {trace}) is None
    settled, _ = _settled(columns, deep, True)
    assert settled == _settled(columns, deep, False)[0]
    assert settled is not None and [fact.span_id for fact in settled.facts] == [ids[-1]]  # the root rolls it up
    shallow = [Candidate(trace, span, [_fact(trace, span, "input_tokens")], []) for span in (ids[60], ids[30])]
    found = _speedups.settle_quiet(shallow, RecentSpans().add_links(columns), [], {trace})  # 60 ancestors: walked in C
    assert found is not None and [fact.span_id for fact in found[0]] == [ids[60]]


def test_what_is_not_a_candidate_list_is_refused() -> None:
    with pytest.raises(TypeError, match="candidates must be Candidate records"):
        _speedups.settle_quiet([("a", "b", [], [])], {}, [], set())
    with pytest.raises(TypeError, match="facts and calls must be lists"):
        _speedups.settle_quiet([Candidate("a", "b", (), [])], {}, [], set())
    with pytest.raises(TypeError, match="owner_facts must be UsageFact records"):
        _speedups.settle_quiet([], {}, [("a", "b")], {"a"})
    with pytest.raises(
        TypeError, match=r"settle_quiet\(candidates: list, parents: dict, owner_facts: list, traces: set\)"
    ):
        _speedups.settle_quiet((), {}, [], set())
