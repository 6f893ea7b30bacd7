"""The store's compiled row converter builds the same Arrow arrays as pyarrow.array(), or declines.

``spanledger_collector._store._columns`` turns usage facts, data reads and span columns into Arrow buffers
for DuckDB. For any rows, either it declines (returns None, and the store converts them with pyarrow, which
then converts or raises as before) or its arrays equal pyarrow's, nulls and all. Rows pyarrow rejects must
be declined.
"""

from __future__ import annotations

import math
import sys
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from typing import Any

import pyarrow as pa
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from spanledger_collector._store import USAGE_FACTS, _duckdb
from spanledger_collector._store._compiled import columns

needs_columns = pytest.mark.skipif(columns is None, reason="the compiled converter is not built")
EXAMPLES = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])

naive_datetimes = st.datetimes(min_value=datetime(1, 1, 1), max_value=datetime(9999, 12, 31, 23, 59, 59))
decimals = st.one_of(
    st.decimals(allow_nan=False, allow_infinity=False, places=9, min_value=-(10**20), max_value=10**20),
    st.decimals(allow_nan=True, allow_infinity=True),
    st.sampled_from(
        [Decimal("806"), Decimal("0E-9"), Decimal("0E-12"), Decimal("1.2E+3"), Decimal("-0"), Decimal("1.0000000000")]
    ),
    st.sampled_from([Decimal("0E+26"), Decimal("0E+27"), Decimal("0E+29"), Decimal("0E+30"), Decimal("0E+50")]),
    st.sampled_from([1.5, "1.5", 7, 1e20, "1e 5"]),  # not Decimals: pyarrow takes the int only
    st.builds(  # read in place or from str(): across one, two and three coefficient words and exponent -100
        lambda negative, coefficient, exponent: Decimal((negative, tuple(map(int, str(coefficient))), exponent)),
        st.integers(0, 1),
        st.integers(0, 10**40) | st.sampled_from([10**19 - 1, 10**19, 10**38 - 1, 10**38, 10**57 - 1, 10**57]),
        st.integers(-110, 3) | st.sampled_from([-101, -100, -12, -9, 0]),
    ),
)
VALUES: dict[str, st.SearchStrategy[Any]] = {
    "s": st.text(max_size=12) | st.sampled_from(["gpt-4o-mini", "", "é☃"]) | st.integers(0, 3),
    "t": naive_datetimes | st.just(datetime(2026, 1, 1, tzinfo=timezone.utc)) | st.just("2026-01-01"),
    "b": st.integers(-200, 200),
    "i": st.integers(-(2**33), 2**33),
    "l": st.integers(-(2**64), 2**64),
    "f": st.floats(allow_nan=True) | st.integers(-5, 5),
    "q": decimals,
    "c": decimals,
}
TYPES = {
    "s": pa.string(),
    "t": pa.timestamp("us"),
    "n": pa.timestamp("us"),
    "b": pa.int8(),
    "i": pa.int32(),
    "l": pa.int64(),
    "f": pa.float64(),
    "q": pa.decimal128(38, 9),
    "c": pa.decimal128(38, 12),
}


def _read_stream(kinds: str, chunks: list[tuple[int, Any]]) -> pa.Table:
    """What DuckDB reads: the Arrow C stream the store hands it, imported and fully validated by pyarrow."""
    names = tuple(f"c{index}" for index in range(len(kinds)))
    reader = pa.RecordBatchReader._import_from_c_capsule(columns.arrow_stream(kinds, names, chunks))
    assert reader.schema == pa.schema([(name, TYPES[kind]) for name, kind in zip(names, kinds, strict=True)])
    table = reader.read_all()
    table.validate(full=True)
    return table


def _reference(values: list[Any], arrow_type: pa.DataType) -> pa.Array | None:
    try:
        return pa.array(values, arrow_type)
    except (pa.ArrowException, TypeError, ValueError, OverflowError):
        return None


@st.composite
def tables(draw: st.DrawFn) -> tuple[str, list[tuple[Any, ...]]]:
    kinds = "".join(draw(st.lists(st.sampled_from(sorted(VALUES)), min_size=1, max_size=6)))
    rows = [
        tuple(draw(st.none() | VALUES[kind]) if draw(st.integers(0, 9)) else None for kind in kinds)
        for _ in range(draw(st.integers(0, 12)))
    ]
    return kinds, rows


@needs_columns
@EXAMPLES
@given(tables())
def test_rows_convert_as_pyarrow_does(table: tuple[str, list[tuple[Any, ...]]]) -> None:
    kinds, rows = table
    converted = columns.rows_to_buffers(rows, kinds)
    references = [_reference([row[i] for row in rows], TYPES[kind]) for i, kind in enumerate(kinds)]
    if any(reference is None for reference in references):
        assert converted is None, "the converter accepted values pyarrow rejects"
        return
    if converted is None:
        return
    table = _read_stream(kinds, [(len(rows), converted), (len(rows), converted)])
    for kind, column, reference in zip(kinds, table.columns, references, strict=True):
        expected = pa.chunked_array([reference, reference])
        assert _same(column, expected), (kind, column, reference)


def _same(column: pa.ChunkedArray, expected: pa.ChunkedArray) -> bool:
    """Arrow's ``equals`` holds NaN unequal to itself; a float NaN converted as pyarrow does is the same value."""
    if not pa.types.is_floating(column.type):
        return bool(column.equals(expected))

    def key(value: Any) -> Any:
        return ("nan",) if isinstance(value, float) and math.isnan(value) else value

    return column.type == expected.type and [key(v) for v in column.to_pylist()] == [
        key(v) for v in expected.to_pylist()
    ]


@needs_columns
def test_usual_rows_are_converted_not_declined() -> None:
    start = datetime(2026, 11, 24, 15, 50, 30, 718210)
    fact = (
        "0" * 32, "1" * 16, "llm.input_tokens", start, start + timedelta(seconds=1), Decimal("806"), "{token}",
        None, "llm_model", "openai", None, "us-east-1", "gpt-4o-mini", None, None, "answer", "acme", "rag-api",
        Decimal("0.000016120000"), "USD", "aws-2026.11.1", None,
    )  # fmt: skip
    kinds = USAGE_FACTS.kinds
    chunk = _duckdb._rows_chunk([fact, fact], USAGE_FACTS)
    assert isinstance(chunk, tuple), "declined"
    table = _read_stream(kinds, [chunk])
    assert table.column(5).to_pylist() == [Decimal("806.000000000")] * 2
    assert table.column(3).to_pylist() == [start] * 2
    nanos = columns.column_to_buffers([1_700_000_000_123_456_789], "n")
    assert _read_stream("n", [(1, [nanos])]).column(0).to_pylist() == [datetime(2023, 11, 14, 22, 13, 20, 123456)]


@needs_columns
@pytest.mark.skipif(sys.implementation.name != "cpython" or sys.maxsize < 2**32, reason="a 64-bit CPython's layout")
def test_decimals_are_read_in_place_on_64_bit_cpython() -> None:
    """At import the converter reads known Decimals in place and from their str(): they agreed."""
    assert columns.DECIMALS_IN_PLACE


@needs_columns
def test_decimals_convert_as_pyarrow_does_and_usual_ones_are_not_declined() -> None:
    """Decimals are read in place where their layout is known: each value here as pyarrow converts it."""
    usual = ["806", "0.000016120000", "7.25035E-7", "0E-12", "-0", "-12.5", "99999999999999999999.999999999"]
    edges = ["1.2E+3", "0E+3", "1E-101", "0E-101", "0E-100", "1E-100", "NaN", "-Infinity", "sNaN", "1E-13"]
    wide = [str(10**19 - 1), str(10**19), str(10**29 - 1) + ".999999999", str(10**38 - 1) + "E-12", str(10**38)]
    for text in usual + edges + wide:
        for value in (Decimal(text), Decimal(text).copy_negate()):  # exact, unlike unary minus
            for kind in "qc":
                converted = columns.column_to_buffers([value, None, value], kind)
                reference = _reference([value, None, value], TYPES[kind])
                if text in usual and -value.as_tuple().exponent <= {"q": 9, "c": 12}[kind]:
                    assert converted is not None, (value, kind)
                if converted is None:
                    continue
                assert reference is not None, (value, kind)
                assert _read_stream(kind, [(3, [converted])]).column(0).equals(pa.chunked_array([reference]))


@needs_columns
@EXAMPLES
@given(st.lists(st.none() | st.integers(0, 2**63 - 1), max_size=10))
def test_nanosecond_timestamps_convert_as_pyarrow_does(nanos: list[int | None]) -> None:
    reference = pa.array(nanos, pa.int64()).cast(pa.timestamp("ns")).cast(pa.timestamp("us"), safe=False)
    buffers = columns.column_to_buffers(nanos, "n")
    assert buffers is not None
    assert _read_stream("n", [(len(nanos), [buffers])]).column(0).equals(pa.chunked_array([reference]))


@needs_columns
def test_a_value_whose_str_changes_the_rows_is_declined_without_harm() -> None:
    """Only exact Decimals are converted (their str() runs no Python code), and the rows are held meanwhile."""

    class Changing:
        def __str__(self) -> str:
            rows.clear()
            return "1"

    rows: list[tuple[Any, ...]] = [(Changing(), Decimal(2))] + [(Decimal(1), Decimal(1))] * 1000
    assert columns.rows_to_buffers(rows, "qq") is None
    assert columns.column_to_buffers([Changing()] + [Decimal(1)] * 1000, "q") is None


@needs_columns
def test_buffers_that_do_not_fit_their_kind_are_refused_not_read() -> None:
    strings = columns.column_to_buffers(["abc", "de"], "s")
    assert strings is not None
    null_count, validity, values, offsets = strings
    bad = [
        (3, [strings]),  # more rows than the buffers hold
        (2, [(null_count, validity, values[:2], offsets)]),  # offsets past the values
        (2, [(1, None, values, offsets)]),  # nulls without a validity bitmap
        (2, [(null_count, validity, values, None)]),  # a string column without offsets
    ]
    for chunk in bad:
        with pytest.raises(ValueError):
            columns.arrow_stream("s", ("c0",), [chunk])
    with pytest.raises(ValueError):
        columns.arrow_stream("x", ("c0",), [])


@needs_columns
def test_a_stream_never_read_is_freed_and_an_empty_one_ends_at_once() -> None:
    strings = columns.column_to_buffers(["abc"], "s")
    for _ in range(1000):
        columns.arrow_stream("s", ("c0",), [(1, [strings])])  # released by the capsule's destructor
    assert _read_stream("s", []).num_rows == 0
