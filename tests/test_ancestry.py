"""The parent-link walk shared by counted-once and attribution, against the obvious walk it replaced."""

from __future__ import annotations

import random
from collections.abc import Iterator

import pytest
from spanledger_collector._decode import SPEEDUPS
from spanledger_collector._decode._ancestry import SpanKey, ancestors


def _reference(parents: dict[SpanKey, str | None], trace: str, span: str) -> list[SpanKey]:
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


def _random_walks(seed: int) -> Iterator[tuple[dict[SpanKey, str | None], str, str]]:
    """Random links (loops, roots, unknown and empty parent ids) of two traces, and each span to walk from."""
    rng = random.Random(seed)
    for _ in range(500):
        spans = [f"{index:016x}" for index in range(rng.randint(1, 12))]
        names = [*spans, "", "ffffffffffffffff"]  # an empty parent id and a span nobody knows
        parents: dict[SpanKey, str | None] = {}
        for trace in ("a" * 32, "b" * 32):
            for span in spans:
                if rng.random() < 0.85:
                    parents[trace, span] = rng.choice([*names, None])
        for trace in ("a" * 32, "b" * 32):
            for span in names:
                yield parents, trace, span


def test_the_walk_matches_the_reference_on_random_links_with_loops_roots_and_unknown_spans() -> None:
    for parents, trace, span in _random_walks(15):
        assert ancestors(parents, trace, span) == _reference(parents, trace, span)


def test_a_loop_is_cut_where_it_closes_and_an_unknown_span_ends_the_chain() -> None:
    t = "c" * 32
    looped: dict[SpanKey, str | None] = {(t, "1"): "2", (t, "2"): "3", (t, "3"): "1"}
    assert ancestors(looped, t, "1") == [(t, "2"), (t, "3")]
    assert ancestors({(t, "1"): "2", (t, "2"): "9", (t, "3"): None}, t, "1") == [(t, "2")]
    assert ancestors({(t, "1"): "", (t, ""): "2", (t, "2"): None}, t, "1") == [(t, ""), (t, "2")]
    assert ancestors({(t, "1"): "2", (t, "2"): ""}, t, "1") == [(t, "2")]  # a known span with an empty parent


@pytest.mark.skipif(not SPEEDUPS, reason="the compiled decoder is not built")
def test_the_compiled_walk_matches_the_walk_or_declines_past_64_ancestors() -> None:
    from spanledger_collector._decode._usage import _speedups

    for parents, trace, span in _random_walks(16):
        assert _speedups.ancestors(parents, trace, span) == ancestors(parents, trace, span)
    t = "d" * 32
    chain = [f"{index:016x}" for index in range(70)]
    deep: dict[SpanKey, str | None] = {(t, span): parent for span, parent in zip(chain, [None, *chain], strict=False)}
    assert _speedups.ancestors(deep, t, chain[64]) == ancestors(deep, t, chain[64])  # 64 ancestors
    assert _speedups.ancestors(deep, t, chain[65]) is None
    with pytest.raises(TypeError, match=r"ancestors\(parents: dict, trace_id, span_id\)"):
        _speedups.ancestors([], t, chain[0])
