"""The compiled OTLP decoder gives exactly what the Python reference decoder gives, or hands the request over.

``decode_traces`` runs the compiled decoder (``spanledger_collector._decode._speedups``, built at install time) and
falls back to ``decode_traces_python`` for any request the compiled one declines. So the property checked
here, on generated requests and on mutations of real ones, is: whenever the compiled decoder answers, the
reference decodes the same request without error and to the same rows (compared by ``repr``, so a Decimal's
exponent or an int that should be a float counts as a difference); whenever the reference raises, the
compiled decoder declines. The generated requests stay mostly within what the compiled decoder takes, and
the test checks that it did take most of them.
"""

from __future__ import annotations

import os
import struct
import sys
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, ArrayValue, KeyValue, KeyValueList
from opentelemetry.proto.resource.v1.resource_pb2 import Resource
from opentelemetry.proto.trace.v1.trace_pb2 import ResourceSpans, ScopeSpans, Span, Status
from spanledger import semconv
from spanledger_collector._decode import (
    MAX_TOKENS,
    SPEEDUPS,
    DecodedTraces,
    DecodeError,
    _dialects,
    _usage,
    decode_traces,
    decode_traces_python,
)
from spanledger_collector._decode._producers import RECENT
from test_collector_fuzz import mutations_of
from test_collector_service import genai_trace

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
import bench_collector

if SPEEDUPS:
    from spanledger_collector._decode import _speedups
else:
    _speedups = None

ACCELERATOR_SECONDS = semconv.SpanledgerMeterValues.ACCELERATOR_SECONDS.value
needs_speedups = pytest.mark.skipif(not SPEEDUPS, reason="the compiled decoder is not built")
EXAMPLES = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])

# Every attribute the usage extraction reads, plus some it does not.
SPAN_KEYS = [
    semconv.SPANLEDGER_USAGE_OWNER,
    semconv.SPANLEDGER_ACCELERATOR_NOT_MEASURED_REASON,
    semconv.GEN_AI_PROVIDER_NAME,
    semconv.CLOUD_PROVIDER,
    semconv.SPANLEDGER_RESOURCE_TYPE,
    semconv.CLOUD_RESOURCE_ID,
    semconv.CLOUD_ACCOUNT_ID,
    semconv.CLOUD_REGION,
    semconv.GEN_AI_RESPONSE_MODEL,
    semconv.GEN_AI_REQUEST_MODEL,
    semconv.SPANLEDGER_WORKFLOW_NAME,
    semconv.GEN_AI_WORKFLOW_NAME,
    semconv.SPANLEDGER_TENANT_ID,
    semconv.GEN_AI_USAGE_INPUT_TOKENS,
    semconv.GEN_AI_USAGE_CACHE_READ_INPUT_TOKENS,
    semconv.GEN_AI_USAGE_CACHE_WRITE_INPUT_TOKENS,
    semconv.GEN_AI_USAGE_CACHE_CREATION_INPUT_TOKENS,
    semconv.GEN_AI_USAGE_OUTPUT_TOKENS,
    semconv.SPANLEDGER_ACCELERATOR_TIME,
    semconv.SPANLEDGER_ACCELERATOR_TYPE,
    semconv.SPANLEDGER_OCCUPANCY_START,
    semconv.SPANLEDGER_OCCUPANCY_END,
    semconv.SPANLEDGER_EGRESS_BYTES,
    semconv.SPANLEDGER_INGRESS_BYTES,
    semconv.SPANLEDGER_EGRESS_BOUNDARY,
    semconv.GEN_AI_OPERATION_NAME,
    semconv.SERVER_ADDRESS,
    semconv.SERVER_PORT,
    semconv.ERROR_TYPE,
    semconv.GEN_AI_RESPONSE_TIME_TO_FIRST_CHUNK,
    semconv.GEN_AI_REQUEST_TEMPERATURE,
    semconv.HTTP_REQUEST_METHOD,
]
EVENT_KEYS = [
    semconv.SPANLEDGER_DATA_SOURCE,
    semconv.SPANLEDGER_DATA_SOURCE_KIND,
    semconv.SPANLEDGER_DATA_AGE,
    semconv.SPANLEDGER_DATA_LAST_MODIFIED,
    semconv.SPANLEDGER_DATA_BYTES,
    semconv.SPANLEDGER_DATA_STALENESS_METHOD,
    semconv.SPANLEDGER_WORKFLOW_NAME,
]
RESOURCE_KEYS = [
    semconv.SERVICE_NAME,
    semconv.CLOUD_PROVIDER,
    semconv.CLOUD_REGION,
    semconv.CLOUD_ACCOUNT_ID,
    semconv.SPANLEDGER_TENANT_ID,
    semconv.SPANLEDGER_WORKFLOW_NAME,
    semconv.GEN_AI_PROVIDER_NAME,
]
# Values that matter to the extraction: providers, resource types, boundaries, models.
WORDS = [
    "openai",
    "aws",
    "gcp",
    "aws.sagemaker",
    "aws.bedrock",
    "sagemaker_endpoint",
    "gpu_instance",
    "llm_model",
    "internet",
    "inter_region",
    "gpt-4o-mini",
    "chat",
    "",
    "é ☃",
]
# Numbers sent as strings, and the Decimal each is read as (None: refused), by both decoders and by the views of
# `clickhouse init` (tests/test_clickhouse_views.py). Only _usage.NUMBER_TEXT is read: the spellings Python's
# Decimal() reads and ClickHouse does not, or the other way round, are refused, as are those past its bounds.
NUMBER_SPELLINGS: dict[str, Decimal | None] = {
    "2.5": Decimal("2.5"),
    "-3.25": Decimal("-3.25"),
    "-0": Decimal(0),
    "1e3": Decimal(1000),
    "1.5E-7": Decimal("0.00000015"),
    "2.5e+2": Decimal(250),
    "0.0000012345678901234567": Decimal("0.000001235"),  # a double's longest text
    "5.000000000000001e-10": Decimal("1e-9"),  # the tie at the 9th place is broken at the 25th
    "123456789012345678.9": Decimal("123456789012345678.9"),
    "9999999999999999999.9999999995": None,  # rounds to 10**19: 29 digits, past Decimal's 28
    "1e+21": None,  # as the OTel Collector writes the double 10**21
    "1.0000000000000000000000000000005": None,  # 31 digits after the point
    "1e0003": None,  # a 4-digit exponent
    "12e3": None,  # an exponent after other than one nonzero digit
    "0e5": None,
    "1_000": None,
    "\t5": None,
    " 5": None,
    "5 ": None,
    "5\n": None,
    "\u0661\u0662": None,  # Arabic-Indic 12
    "+5": None,
    "0x10": None,
    "1e": None,
    "inf": None,
    "-Infinity": None,
    "nan": None,
    ".5": None,
    "5.": None,
    "007": None,
    "1.2.3": None,
    "e3": None,
    "": None,
}
NANOS = st.one_of(
    st.integers(0, 2**64 - 1),
    st.integers(1_700_000_000 * 10**9, 1_800_000_000 * 10**9),
    st.sampled_from([0, 2**63 - 1, 2**63]),
)

simple_values = st.one_of(
    st.builds(
        lambda text: AnyValue(string_value=text),
        st.sampled_from(WORDS) | st.sampled_from(list(NUMBER_SPELLINGS)) | st.text(max_size=8),
    ),
    st.builds(lambda flag: AnyValue(bool_value=flag), st.booleans()),
    st.builds(
        lambda number: AnyValue(int_value=number),
        st.integers(-(2**63), 2**63 - 1) | st.sampled_from([0, 1, 200, 1000, 10**18, 10**9, 10**9 + 1, -5]),
    ),
    st.builds(
        lambda number: AnyValue(double_value=number),
        st.floats(allow_nan=True, allow_infinity=True) | st.sampled_from([0.0, 0.3, 1.5, 1.7e9, -1.0]),
    ),
    st.builds(lambda data: AnyValue(bytes_value=data), st.binary(max_size=4)),
    st.just(AnyValue()),
)
any_values = st.one_of(
    simple_values,
    st.builds(lambda items: AnyValue(array_value=ArrayValue(values=items)), st.lists(simple_values, max_size=2)),
    st.builds(
        lambda items: AnyValue(kvlist_value=KeyValueList(values=[KeyValue(key="k", value=v) for v in items])),
        st.lists(simple_values, max_size=2),
    ),
)


def attributes(keys: list[str]) -> st.SearchStrategy[list[KeyValue]]:
    pair = st.builds(
        lambda key, value: KeyValue(key=key, value=value), st.sampled_from(keys) | st.text(max_size=6), any_values
    )
    return st.lists(pair, max_size=12)


@st.composite
def spans(draw: st.DrawFn) -> Span:
    trace_id = draw(
        st.sampled_from([bytes(range(1, 17)), bytes(16), b"\x01" * 15, b""]) | st.binary(min_size=16, max_size=16)
    )
    span_id = draw(st.sampled_from([bytes(range(1, 9)), bytes(8), b"\x02"]) | st.binary(min_size=8, max_size=8))
    span_attributes = draw(attributes(SPAN_KEYS))
    if draw(st.booleans()):
        span_attributes.append(KeyValue(key=semconv.SPANLEDGER_USAGE_OWNER, value=AnyValue(bool_value=True)))
    events = [
        Span.Event(
            time_unix_nano=draw(NANOS),
            name=draw(st.sampled_from([semconv.EVENT_SPANLEDGER_DATA_READ, "other", ""])),
            attributes=draw(attributes(EVENT_KEYS)),
        )
        for _ in range(draw(st.integers(0, 3)))
    ]
    return Span(
        trace_id=trace_id,
        span_id=span_id,
        parent_span_id=draw(st.sampled_from([b"", bytes(range(9, 17)), b"\x07"])),
        name=draw(st.text(max_size=10)),
        kind=draw(st.integers(-3, 8)),
        start_time_unix_nano=draw(NANOS),
        end_time_unix_nano=draw(NANOS),
        attributes=span_attributes,
        events=events,
        status=Status(code=draw(st.integers(-2, 5)), message=draw(st.text(max_size=4))),
    )


@st.composite
def requests(draw: st.DrawFn) -> bytes:
    request = ExportTraceServiceRequest()
    for _ in range(draw(st.integers(1, 3))):
        resource = Resource(attributes=draw(attributes(RESOURCE_KEYS))) if draw(st.booleans()) else None
        scopes = [ScopeSpans(spans=draw(st.lists(spans(), max_size=4))) for _ in range(draw(st.integers(0, 2)))]
        request.resource_spans.append(ResourceSpans(resource=resource, scope_spans=scopes))
    return request.SerializeToString()


def mutations() -> st.SearchStrategy[bytes]:
    return mutations_of(st.sampled_from(REAL_REQUESTS), max_operations=4)


def _rows(decoded: DecodedTraces) -> str:
    batch = decoded.batch
    return repr(
        (
            batch.spans,
            batch.facts,
            batch.data_reads,
            decoded.llm_calls,
            decoded.accepted_spans,
            decoded.rejected_spans,
            decoded.rejection,
            sorted(decoded.refused_values.items()),
        )
    )


def _compared(data: bytes, extract_usage: bool = True) -> bool:
    """Checks the property for one request; whether the compiled decoder answered."""
    assert _speedups is not None
    fast = _speedups.decode_traces(data, extract_usage)
    # Other producers' candidates are resolved against the spans remembered from earlier requests: each decoder
    # starts from none.
    RECENT.clear()
    try:
        reference = decode_traces_python(data, extract_usage=extract_usage)
    except DecodeError:
        assert fast is None, "the compiled decoder accepted a request the reference rejects"
        return False
    if fast is None:
        return False
    RECENT.clear()
    assert _rows(decode_traces(data, extract_usage=extract_usage)) == _rows(reference)
    return True


def _sdk_request() -> bytes:
    return encode_spans(genai_trace()).SerializeToString()


def _benchmark_request() -> bytes:
    return bench_collector.build_template(40).replace(bench_collector.TRACE_PREFIX, struct.pack(">Q", 7))


REAL_REQUESTS = [_sdk_request(), _benchmark_request()]


def test_the_compiled_decoder_is_built() -> None:
    if os.environ.get("SPANLEDGER_NO_SPEEDUPS"):
        pytest.skip("SPANLEDGER_NO_SPEEDUPS is set")
    assert SPEEDUPS, "pip install should have built the compiled decoder (gcc and Python headers present)"


@needs_speedups
@pytest.mark.parametrize("extract_usage", [True, False])
def test_real_requests_decode_the_same(extract_usage: bool) -> None:
    for data in REAL_REQUESTS:
        assert _compared(data, extract_usage), "the compiled decoder declined a request the SDK sends"
    facts = decode_traces(REAL_REQUESTS[0]).batch.facts
    assert {fact.meter for fact in facts} >= {"llm.input_tokens", "accelerator.seconds", "endpoint.seconds"}


@needs_speedups
@EXAMPLES
@given(requests(), st.booleans())
def test_generated_requests_decode_the_same(data: bytes, extract_usage: bool) -> None:
    _compared(data, extract_usage)


@needs_speedups
@settings(max_examples=10, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(st.lists(requests(), min_size=8, max_size=8))
def test_most_generated_requests_take_the_compiled_path(batch: list[bytes]) -> None:
    """So that the property above is checked on the compiled decoder, not on declines."""
    taken = sum(_compared(data) for data in batch)
    assert taken >= len(batch) // 3, f"only {taken} of {len(batch)} generated requests were compiled"


@needs_speedups
@EXAMPLES
@given(mutations())
def test_mutated_requests_decode_the_same_or_fall_back(data: bytes) -> None:
    _compared(data)


@needs_speedups
def test_declined_requests_still_decode() -> None:
    """A request the compiled decoder declines (here a span field with an unexpected wire type) is decoded
    by the reference, and a malformed one raises DecodeError as before."""
    span = Span(trace_id=bytes(range(1, 17)), span_id=bytes(range(1, 9)), name="x").SerializeToString()
    odd = span + bytes([(5 << 3) | 0, 1])  # name (field 5) as a varint: upb keeps it as an unknown field
    scope = bytes([(2 << 3) | 2, len(odd)]) + odd
    resource_spans = bytes([(2 << 3) | 2, len(scope)]) + scope
    data = bytes([(1 << 3) | 2, len(resource_spans)]) + resource_spans
    assert _speedups is not None and _speedups.decode_traces(data, True) is None
    assert decode_traces(data).batch.spans.name == ["x"]
    with pytest.raises(DecodeError):
        decode_traces(data[:-1])


def _varint(number: int) -> bytes:
    out = bytearray()
    while True:
        out.append((number & 0x7F) | (0x80 if number > 0x7F else 0))
        number >>= 7
        if not number:
            return bytes(out)


def _one_span(**fields: Any) -> Span:
    """A span of the tests' one trace and span id, 1 s long from 2023-11-14 (``fields`` set or override the rest)."""
    defaults: dict[str, Any] = {
        "trace_id": bytes(range(1, 17)),
        "span_id": bytes(range(1, 9)),
        "start_time_unix_nano": 1_700_000_000 * 10**9,
        "end_time_unix_nano": 1_700_000_001 * 10**9,
    }
    return Span(**{**defaults, **fields})


def _field(number: int, payload: bytes) -> bytes:
    return _varint(number << 3 | 2) + _varint(len(payload)) + payload


def _owner_span(*extra_attributes: bytes) -> bytes:
    span = _one_span(
        name="llm",
        attributes=[
            KeyValue(key=semconv.SPANLEDGER_USAGE_OWNER, value=AnyValue(bool_value=True)),
            KeyValue(key=semconv.GEN_AI_USAGE_INPUT_TOKENS, value=AnyValue(int_value=100)),
        ],
    ).SerializeToString()
    return span + b"".join(_field(9, attribute) for attribute in extra_attributes)


@needs_speedups
@pytest.mark.parametrize(
    "data",
    [
        # A tag written as a 6-byte varint: upb rejects it.
        pytest.param(b"\x8a\x80\x80\x80\x80\x00\x00", id="overlong-tag"),
        # A later attribute entry with an unknown field: upb keeps it as an unknown field, not as the value.
        pytest.param(
            _field(
                1,
                _field(
                    2,
                    _field(
                        2,
                        _owner_span(
                            KeyValue(
                                key=semconv.GEN_AI_USAGE_INPUT_TOKENS, value=AnyValue(int_value=5)
                            ).SerializeToString()
                            + b"\x18\x01"
                        ),
                    ),
                ),
            ),
            id="attribute-with-unknown-field",
        ),
    ],
)
def test_wire_details_upb_treats_specially_are_declined(data: bytes) -> None:
    """Cases a review found the compiled decoder accepting differently from upb (now declined)."""
    assert _speedups is not None and _speedups.decode_traces(data, True) is None
    _compared(data)


TOKEN_KEYS = [
    semconv.GEN_AI_USAGE_INPUT_TOKENS,
    semconv.GEN_AI_USAGE_CACHE_READ_INPUT_TOKENS,
    semconv.GEN_AI_USAGE_CACHE_WRITE_INPUT_TOKENS,
    semconv.GEN_AI_USAGE_CACHE_CREATION_INPUT_TOKENS,
    semconv.GEN_AI_USAGE_OUTPUT_TOKENS,
]
REFUSED_TOKEN_VALUES = [
    pytest.param(AnyValue(int_value=-5), id="negative"),
    pytest.param(AnyValue(int_value=2**63 - 1), id="int64-max"),
    pytest.param(AnyValue(int_value=MAX_TOKENS + 1), id="past-the-bound"),
    pytest.param(AnyValue(double_value=0.5), id="fraction"),
    pytest.param(AnyValue(double_value=12.0), id="double"),
    pytest.param(AnyValue(string_value="12"), id="string"),
    pytest.param(AnyValue(bool_value=True), id="bool"),
    pytest.param(AnyValue(array_value=ArrayValue(values=[AnyValue(int_value=1)])), id="array"),
]


def _token_request(key: str, value: AnyValue) -> bytes:
    span = _one_span(
        name="chat",
        attributes=[
            KeyValue(key=semconv.SPANLEDGER_USAGE_OWNER, value=AnyValue(bool_value=True)),
            KeyValue(key=semconv.GEN_AI_OPERATION_NAME, value=AnyValue(string_value="chat")),
            KeyValue(key=semconv.GEN_AI_USAGE_INPUT_TOKENS, value=AnyValue(int_value=100)),
            KeyValue(key=semconv.GEN_AI_USAGE_OUTPUT_TOKENS, value=AnyValue(int_value=7)),
            KeyValue(key=key, value=value),  # the last value of a key wins
        ],
    )
    return ExportTraceServiceRequest(
        resource_spans=[ResourceSpans(scope_spans=[ScopeSpans(spans=[span])])]
    ).SerializeToString()


@pytest.mark.parametrize("key", TOKEN_KEYS)
@pytest.mark.parametrize("value", REFUSED_TOKEN_VALUES)
def test_token_counts_the_conventions_do_not_allow_are_refused_and_counted_by_both_decoders(
    key: str, value: AnyValue
) -> None:
    """Not an int in [0, MAX_TOKENS]: no fact, no metric observation, one refusal counted (issue 19 item 4)."""
    data = _token_request(key, value)
    reference = decode_traces_python(data)
    assert reference.refused_values == {key: 1}
    assert reference.accepted_spans == 1, "the span itself is kept"
    token_meters = {fact.meter: fact.quantity for fact in reference.batch.facts}
    (call,) = reference.llm_calls
    if key == semconv.GEN_AI_USAGE_INPUT_TOKENS:
        assert call.input_tokens is None and "llm.input_tokens" not in token_meters
    if key == semconv.GEN_AI_USAGE_OUTPUT_TOKENS:
        assert call.output_tokens is None and "llm.output_tokens" not in token_meters
    assert all(0 < quantity <= MAX_TOKENS for quantity in token_meters.values())
    if _speedups is not None:
        assert _speedups.decode_traces(data, True) is not None, "the compiled decoder declined"
        assert _compared(data)


@pytest.mark.parametrize("count", [0, 1, MAX_TOKENS])
def test_token_counts_within_the_bound_are_kept_by_both_decoders(count: int) -> None:
    data = _token_request(semconv.GEN_AI_USAGE_OUTPUT_TOKENS, AnyValue(int_value=count))
    reference = decode_traces_python(data)
    assert reference.refused_values == {}
    assert reference.llm_calls[0].output_tokens == count
    outputs = [fact.quantity for fact in reference.batch.facts if fact.meter == "llm.output_tokens"]
    assert outputs == ([] if count == 0 else [count])
    if _speedups is not None:
        assert _compared(data)


def test_the_compiled_decoder_builds_records_in_the_field_tables_order() -> None:
    if _speedups is None:
        pytest.skip("the compiled decoder is not built")
    assert _usage.field_order_differences(_speedups) == []


def test_a_compiled_decoder_with_another_field_order_is_declined_loudly(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    if _speedups is None:
        pytest.skip("the compiled decoder is not built")
    reordered = ("span_id", "trace_id", *_speedups.USAGE_FACT_FIELDS[2:])
    monkeypatch.setattr(_speedups, "USAGE_FACT_FIELDS", reordered)
    with caplog.at_level("ERROR", logger="spanledger.collector"):
        assert _usage._load_speedups() is None
    assert "USAGE_FACT_FIELDS" in caplog.text and "rebuild" in caplog.text


# Floats the compiled decoder quantizes to 1e-9 itself (float(Decimal(str(x)).quantize(...)) in the reference):
# ties both ways, a carry into a new digit, values that round to (negative) zero, and those it leaves to Python
# (too many digits, not finite).
QUANTIZED_FLOATS = [
    0.0,
    -0.0,
    86400.0,
    0.1 + 0.2,
    1.0000000005,
    1.0000000015,
    2.5e-10,
    5e-10,
    1.5e-9,
    -5e-10,
    -1e-12,
    9.9999999995,
    999999999999.9999999995,
    1e16,
    123456789012345.67,
    1.2345678901234567e17,
    1e300,
    -1e300,
    5e-324,
    1.7976931348623157e308,
    float("inf"),
    float("nan"),
]


@needs_speedups
@pytest.mark.parametrize("number", QUANTIZED_FLOATS)
def test_float_values_are_quantized_as_the_reference_quantizes_them(number: float) -> None:
    data = _token_request(semconv.GEN_AI_RESPONSE_TIME_TO_FIRST_CHUNK, AnyValue(double_value=number))
    assert _compared(data)
    assert repr(decode_traces(data).llm_calls[0].time_to_first_chunk_s) == repr(_usage._float(number))


@needs_speedups
@EXAMPLES
@given(st.floats() | st.decimals(places=10, allow_nan=False, allow_infinity=False).map(float))
def test_any_float_value_is_quantized_as_the_reference_quantizes_it(number: float) -> None:
    data = _token_request(semconv.GEN_AI_RESPONSE_TIME_TO_FIRST_CHUNK, AnyValue(double_value=number))
    assert _compared(data)


@pytest.mark.parametrize(("spelling", "expected"), NUMBER_SPELLINGS.items())
def test_numbers_sent_as_strings_are_read_in_one_spelling(spelling: str, expected: Decimal | None) -> None:
    assert _usage._number(spelling) == expected
    assert (_usage._number(spelling) is None) == (expected is None)


@needs_speedups
@pytest.mark.parametrize("spelling", NUMBER_SPELLINGS)
def test_numbers_sent_as_strings_decode_the_same(spelling: str) -> None:
    """Each spelling on every number the extraction reads (seconds, times, bytes) and on a token count."""
    text = AnyValue(string_value=spelling)
    numbers = (semconv.SPANLEDGER_ACCELERATOR_TIME, semconv.SPANLEDGER_EGRESS_BYTES, semconv.SPANLEDGER_INGRESS_BYTES,
               semconv.SPANLEDGER_OCCUPANCY_START, semconv.GEN_AI_RESPONSE_TIME_TO_FIRST_CHUNK,
               semconv.GEN_AI_USAGE_OUTPUT_TOKENS)  # fmt: skip
    span = _one_span(
        name="chat",
        attributes=[
            KeyValue(key=semconv.SPANLEDGER_USAGE_OWNER, value=AnyValue(bool_value=True)),
            KeyValue(key=semconv.GEN_AI_OPERATION_NAME, value=AnyValue(string_value="chat")),
            KeyValue(key=semconv.SPANLEDGER_RESOURCE_TYPE, value=AnyValue(string_value="sagemaker_endpoint")),
            KeyValue(key=semconv.SPANLEDGER_OCCUPANCY_END, value=AnyValue(double_value=1.8e9)),
            *(KeyValue(key=key, value=text) for key in numbers),
        ],
        events=[
            Span.Event(
                name=semconv.EVENT_SPANLEDGER_DATA_READ,
                time_unix_nano=1_700_000_000 * 10**9,
                attributes=[KeyValue(key=key, value=text) for key in attributes],
            )
            for attributes in (
                (semconv.SPANLEDGER_DATA_AGE, semconv.SPANLEDGER_DATA_LAST_MODIFIED, semconv.SPANLEDGER_DATA_BYTES),
                (semconv.SPANLEDGER_DATA_LAST_MODIFIED,),  # the age from the last modification
            )
        ],
    )
    data = ExportTraceServiceRequest(
        resource_spans=[ResourceSpans(scope_spans=[ScopeSpans(spans=[span])])]
    ).SerializeToString()
    assert _compared(data), "the compiled decoder declined"
    reference = decode_traces_python(data)
    read = NUMBER_SPELLINGS[spelling]
    assert [fact.quantity for fact in reference.batch.facts if fact.meter == ACCELERATOR_SECONDS] == (
        [read] if read is not None and 0 < read < 10**18 else []
    )


@needs_speedups
@pytest.mark.parametrize(
    "value",
    [
        AnyValue(string_value=semconv.SPANLEDGER_USAGE_OWNER),
        AnyValue(string_value=f"x{semconv.EVENT_SPANLEDGER_DATA_READ}{semconv.SPANLEDGER_USAGE_OWNER}"),
        AnyValue(bytes_value=semconv.SPANLEDGER_ACCELERATOR_NOT_MEASURED_REASON.encode()),
        AnyValue(string_value="gen_ai.usage.input_tokens"),
    ],
)
def test_marks_inside_values_decode_the_same(value: AnyValue) -> None:
    """The marks are looked for in the span's bytes: one inside a value (of an owner span, of another producer's
    span reporting tokens, of a span with neither) changes nothing the reference would not change."""
    for owner in (True, False):
        attributes = [
            KeyValue(key=semconv.SERVER_ADDRESS, value=value),
            KeyValue(key=semconv.GEN_AI_USAGE_INPUT_TOKENS, value=AnyValue(int_value=12)),
            KeyValue(key=semconv.SERVER_PORT, value=AnyValue(int_value=443)),
            KeyValue(key=semconv.GEN_AI_OPERATION_NAME, value=AnyValue(string_value="chat")),
        ]
        if owner:
            attributes.append(KeyValue(key=semconv.SPANLEDGER_USAGE_OWNER, value=AnyValue(bool_value=True)))
        span = _one_span(
            name="chat",
            attributes=attributes,
            events=[Span.Event(name="other", attributes=[KeyValue(key="note", value=value)])],
        )
        data = ExportTraceServiceRequest(
            resource_spans=[ResourceSpans(scope_spans=[ScopeSpans(spans=[span])])]
        ).SerializeToString()
        # Another producer's span with a bytes value among its sources goes to the reference (as before).
        assert _compared(data) or not owner, "the compiled decoder declined an owner span"


@needs_speedups
@pytest.mark.parametrize(
    "value",
    [
        AnyValue(int_value=0),
        AnyValue(int_value=65536),
        AnyValue(int_value=-1),
        AnyValue(int_value=2**63 - 2),
        AnyValue(int_value=2**63 - 1),
        AnyValue(int_value=-(2**63)),
        AnyValue(double_value=65536.7),
        AnyValue(string_value="12"),
        AnyValue(bool_value=True),
    ],
)
def test_data_read_sizes_decode_the_same(value: AnyValue) -> None:
    """The size of a read: an int is kept as it is when in [0, 2**63 - 1), other values go through Decimal."""
    span = Span(
        trace_id=bytes(range(1, 17)),
        span_id=bytes(range(1, 9)),
        name="retrieve",
        events=[
            Span.Event(
                name=semconv.EVENT_SPANLEDGER_DATA_READ,
                time_unix_nano=1_700_000_000 * 10**9,
                attributes=[KeyValue(key=semconv.SPANLEDGER_DATA_BYTES, value=value)],
            )
        ],
    )
    data = ExportTraceServiceRequest(
        resource_spans=[ResourceSpans(scope_spans=[ScopeSpans(spans=[span])])]
    ).SerializeToString()
    assert _compared(data)


MARKS = [_usage._OWNER_MARK, _usage._DATA_READ_MARK, _usage._NOT_MEASURED_MARK, *_dialects.REPORT_MARKS]
# The marks, their halves and single bytes: joined, they make marks that overlap, repeat a mark's start, or stop
# one byte short of a mark.
MARK_PIECES = [
    *MARKS,
    *(mark[: len(mark) // 2] for mark in MARKS),
    *(mark[len(mark) // 2 :] for mark in MARKS),
    *(mark[:-1] for mark in MARKS),
    b".",
    b"\n",
    b"x",
]


def _span_with_marks(name: bytes, tail: bytes, last_key: str = semconv.GEN_AI_USAGE_INPUT_TOKENS) -> bytes:
    """A request of one span whose name (its first field on the wire) is name, then its status message tail, then
    an attribute last_key = 12 as its last bytes: a mark in either is as near the span's start or end as the wire
    allows, and a report mark in last_key decides whether its tokens are read."""
    rest = _one_span().SerializeToString()
    attribute = KeyValue(key=last_key, value=AnyValue(int_value=12)).SerializeToString()
    span = _field(5, name) + rest + _field(15, _field(2, tail)) + _field(9, attribute)
    return _field(1, _field(2, _field(2, span)))


TOKEN_KEYS_AT_THE_END = [semconv.GEN_AI_USAGE_INPUT_TOKENS, semconv.GEN_AI_USAGE_OUTPUT_TOKENS, "x"]


@needs_speedups
@pytest.mark.parametrize("mark", MARKS)
@pytest.mark.parametrize("last_key", TOKEN_KEYS_AT_THE_END)
def test_marks_at_a_spans_ends_decode_the_same(mark: bytes, last_key: str) -> None:
    for name, tail in [(mark, b""), (b"", mark), (mark[:-1], mark[1:]), (mark + mark[:-1], b"x" + mark)]:
        for extract_usage in (True, False):
            assert _compared(_span_with_marks(name, tail, last_key), extract_usage)


@needs_speedups
@EXAMPLES
@given(
    st.lists(st.sampled_from(MARK_PIECES), max_size=6),
    st.lists(st.sampled_from(MARK_PIECES), max_size=6),
    st.sampled_from(TOKEN_KEYS_AT_THE_END),
)
def test_overlapping_and_cut_marks_decode_the_same(name: list[bytes], tail: list[bytes], last_key: str) -> None:
    _compared(_span_with_marks(b"".join(name), b"".join(tail), last_key))
