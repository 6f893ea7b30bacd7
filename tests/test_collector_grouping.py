"""``_grouping.c`` against its Python references in ``_batch_metrics.py``, on random input.

The usage metrics group a request's observations and count histogram buckets with the compiled module where it
is built; the Python functions are the reference and the fallback. Both must give the same groups (keys in the
same order, the same value objects) and the same bucket counts and sums.
"""

from __future__ import annotations

import math
import struct
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from spanledger_collector import _batch_metrics
from spanledger_collector._batch_metrics import _group_columns, _histogram_add
from spanledger_collector._store import UsageFact

compiled = _batch_metrics.COMPILED
pytestmark = pytest.mark.skipif(compiled is None, reason="_grouping.c is not built")

EXAMPLES = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
WIDTH = 6
labels = st.sampled_from(["a", "b", "", "other", None]) | st.text(max_size=3)
numbers = (
    st.floats(allow_nan=True, allow_infinity=True)
    | st.integers(-(2**70), 2**70)
    | st.decimals(allow_nan=False, allow_infinity=False, places=3)
    | st.sampled_from([None, -1, 0, -0.0, math.nan, Decimal("-3.5")])
)
fields = labels | numbers
rows = st.lists(st.tuples(*[fields] * WIDTH), max_size=40)
indexes = st.lists(st.integers(0, WIDTH - 1), max_size=WIDTH).map(tuple)


def same_float(a: float, b: float) -> bool:
    return struct.pack("<d", a) == struct.pack("<d", b)


@EXAMPLES
@given(rows=rows, key=indexes, columns=indexes)
def test_group_columns_matches_the_reference(
    rows: list[tuple[Any, ...]], key: tuple[int, ...], columns: tuple[int, ...]
) -> None:
    expected = _group_columns(key, columns, rows)
    actual = compiled.group_columns(key, columns, rows)
    assert list(actual) == list(expected)  # the same keys, in the same order (NaN: the same objects)
    assert [[id(label) for label in labels] for labels in actual] == [
        [id(label) for label in labels] for labels in expected
    ]
    for labels_, group in expected.items():
        assert type(actual[labels_]) is tuple
        assert len(actual[labels_]) == len(group)
        for actual_column, expected_column in zip(actual[labels_], group, strict=True):
            assert [id(value) for value in actual_column] == [id(value) for value in expected_column]


def test_group_columns_of_named_tuples_and_of_nothing() -> None:
    fact = UsageFact(
        "t", "s", "m", None, None, Decimal(2), "u", "r", "rt", "p", "a", "e", "model", None, None, "w", "x"
    )  # type: ignore[arg-type]
    unpriced = fact._replace(quantity=Decimal(-1), estimated_cost=None)
    priced = fact._replace(estimated_cost=Decimal("0.5"), currency="USD")
    facts = [fact, unpriced, priced]
    key, columns = (2, 12, 15, 16), (18, 5)
    assert compiled.group_columns(key, columns, facts) == _group_columns(key, columns, facts)
    assert compiled.group_columns(key, columns, []) == {} == _group_columns(key, columns, [])
    assert compiled.group_columns(key, (), facts) == {("m", "model", "w", "x"): ()}


def test_group_columns_past_the_groups_compared_in_turn() -> None:
    # Equal labels as distinct str objects (as the decoder makes them), 20 groups: past the first 8, the dict's.
    rows = [("".join(["label-", str(number % 20)]), 1 if number % 3 else 1.0, number) for number in range(200)]
    expected = _group_columns((0, 1), (2,), rows)
    actual = compiled.group_columns((0, 1), (2,), rows)
    assert len(expected) == 20
    assert list(actual.items()) == list(expected.items())
    first_labels = [[id(label) for label in labels] for labels in expected]  # each group's first item's
    assert [[id(label) for label in labels] for labels in actual] == first_labels


bounds = st.lists(st.floats(min_value=0, max_value=1e9, allow_nan=False), min_size=0, max_size=70, unique=True).map(
    lambda found: (*sorted(found), math.inf)
)
observed = (
    st.floats(allow_nan=True, allow_infinity=True)
    | st.integers(-(2**64), 2**64)
    | st.sampled_from([True, False, 2**53, 2**53 + 1, -(2**53) - 1, math.nan, -0.0])
)


@EXAMPLES
@given(bounds=bounds, batches=st.lists(st.lists(observed, max_size=30), max_size=4), total=st.floats(allow_nan=False))
def test_histogram_add_matches_the_reference(
    bounds: tuple[float, ...], batches: list[list[float]], total: float
) -> None:
    if len(bounds) > compiled.MAX_BUCKETS:
        with pytest.raises(ValueError, match="buckets"):
            compiled.histogram_add(bounds, [0] * len(bounds), [], 0.0)
        return
    expected_counts, actual_counts = [0] * len(bounds), [0] * len(bounds)
    expected_total = actual_total = total
    for values in batches:
        expected_total = _histogram_add(bounds, expected_counts, values, expected_total)
        actual_total = compiled.histogram_add(bounds, actual_counts, values, actual_total)
        assert actual_counts == expected_counts
        assert same_float(actual_total, expected_total)


def test_histogram_add_raises_where_the_reference_does_and_counts_nothing() -> None:
    bounds = (1.0, 10.0, math.inf)
    for values in ([1.0, Decimal(2)], [1.0, "2"]):
        counts = [0, 0, 0]
        with pytest.raises(TypeError):
            _histogram_add(bounds, counts, values, 0.0)
        with pytest.raises(TypeError):
            compiled.histogram_add(bounds, counts, values, 0.0)
        assert counts == [0, 0, 0]


class _Meddling:
    """A value whose comparisons empty the list it came in (or the counts): the compiled code must not crash."""

    def __init__(self, victim: list[Any]) -> None:
        self.victim = victim

    def __hash__(self) -> int:
        return 0

    def __eq__(self, other: object) -> bool:
        self.victim.clear()
        return False

    def __gt__(self, other: object) -> bool:
        self.victim.clear()
        return False

    def __radd__(self, other: object) -> float:
        return 0.0


def test_values_whose_comparisons_change_the_input_do_not_crash_it() -> None:
    rows: list[Any] = []
    rows.extend((_Meddling(rows), number) for number in range(10))
    assert len(compiled.group_columns((0,), (1,), rows)) == 10  # it walked its own copy of the rows
    counts = [0, 0]
    with pytest.raises(RuntimeError, match="counts changed size"):
        compiled.histogram_add((1.0, math.inf), counts, [_Meddling(counts)], 0.0)
