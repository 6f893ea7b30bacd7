"""The compiled ``with_estimate`` (``_columns.c``) builds the same usage fact as the Python reference, or raises.

``spanledger_collector._store.with_estimate`` sets a fact's estimate for every priced fact; where the store's
compiled module is built it is ``_columns.estimate_builder(UsageFact, width)``, else ``_facts._with_estimate``.
For any fact both give an equal ``UsageFact`` holding the same objects; for anything but a ``UsageFact`` of its
22 fields both raise ``TypeError``.
"""

from __future__ import annotations

import sys
from datetime import datetime, timezone
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from spanledger_collector._store import UsageFact, with_estimate
from spanledger_collector._store._compiled import columns
from spanledger_collector._store._facts import ESTIMATE_FIELDS, _with_estimate

needs_columns = pytest.mark.skipif(columns is None, reason="the compiled module is not built")
WIDTH = len(UsageFact._fields)

texts = st.none() | st.text(max_size=8) | st.sampled_from(["gpt-4o-mini", "aws.bedrock", "", "é☃"])
decimals = st.none() | st.decimals(allow_nan=True) | st.sampled_from([Decimal("0E-12"), Decimal("-0")])
times = st.datetimes() | st.datetimes(timezones=st.just(timezone.utc))
facts = st.builds(
    UsageFact,
    trace_id=st.text(max_size=32),
    span_id=st.text(max_size=16),
    meter=st.sampled_from(["llm.input_tokens", "egress.bytes", "x"]),
    start_time=times,
    end_time=times,
    quantity=st.decimals(allow_nan=False, places=9) | st.integers(),
    unit=st.text(max_size=4),
    **{name: texts for name in UsageFact._fields[7 : WIDTH - len(ESTIMATE_FIELDS)]},
    estimated_cost=decimals,
    currency=texts,
    catalog_version=texts,
    unpriced_reason=texts,
)
estimates = st.tuples(decimals | st.integers() | st.floats(), texts, texts, texts)


def _builder() -> Any:
    return columns.estimate_builder(UsageFact, WIDTH)


@needs_columns
def test_the_store_uses_the_compiled_builder_where_it_is_built() -> None:
    assert with_estimate.__name__ == "with_estimate"
    assert with_estimate is not _with_estimate


@needs_columns
@settings(max_examples=300, deadline=None)
@given(fact=facts, estimate=estimates)
def test_the_compiled_builder_builds_the_reference_s_fact(fact: UsageFact, estimate: tuple[Any, ...]) -> None:
    built = _builder()(fact, *estimate)
    expected = _with_estimate(fact, *estimate)
    assert type(built) is UsageFact
    assert len(built) == WIDTH
    assert built == expected
    # The same objects, not equal copies (the reference's slice shares them too).
    assert all(a is b for a, b in zip(built, expected, strict=True))
    assert built._fields == UsageFact._fields
    assert built[WIDTH - len(ESTIMATE_FIELDS) :] == estimate


class _Subclass(UsageFact):
    __slots__ = ()


def _fact() -> UsageFact:
    return UsageFact("t", "s", "m", datetime(2026, 1, 1), datetime(2026, 1, 1), Decimal(1), "u")


def _wrong_facts() -> list[Any]:
    fact = _fact()
    return [
        tuple(fact),  # a plain tuple of the same length
        _Subclass(*fact),
        tuple.__new__(UsageFact, tuple(fact)[:-1]),  # a UsageFact short of a field
        tuple.__new__(UsageFact, (*fact, None)),  # and one with a field too many
        list(fact),
        None,
        7,
    ]


def _id(value: Any) -> str:
    return f"{type(value).__name__}-{len(value)}" if isinstance(value, (tuple, list)) else type(value).__name__


@pytest.mark.parametrize("wrong", _wrong_facts(), ids=_id)
def test_anything_but_a_usage_fact_is_refused_by_both(wrong: Any) -> None:
    builders = [_with_estimate] if columns is None else [_with_estimate, _builder()]
    for build in builders:
        with pytest.raises(TypeError, match=rf"expected a UsageFact of {WIDTH} fields, got a {type(wrong).__name__}"):
            build(wrong, Decimal(1), "USD", "v1", None)


@needs_columns
def test_the_compiled_builder_checks_its_arguments() -> None:
    with pytest.raises(TypeError, match="with_estimate"):
        _builder()(_fact(), Decimal(1), "USD", "v1")
    with pytest.raises(TypeError, match="estimate_builder"):
        columns.estimate_builder(dict, WIDTH)
    with pytest.raises(ValueError, match="no room"):
        columns.estimate_builder(UsageFact, 3)


@needs_columns
def test_the_compiled_builder_holds_one_reference_per_field() -> None:
    fact, build = _fact(), _builder()
    cost, version = Decimal("1.5"), "catalog-v1"
    before = sys.getrefcount(cost), sys.getrefcount(version), sys.getrefcount(fact[0]), sys.getrefcount(UsageFact)
    built = [build(fact, cost, "USD", version, None) for _ in range(100)]
    assert sys.getrefcount(cost) == before[0] + 100
    del built
    after = sys.getrefcount(cost), sys.getrefcount(version), sys.getrefcount(fact[0]), sys.getrefcount(UsageFact)
    assert after == before
