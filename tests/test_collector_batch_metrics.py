"""The collector's batch-merged usage series expose what prometheus-client's own Histogram/Counter would.

Both sides are scraped as text and parsed with prometheus-client's parser. Bucket counts and ``_count`` must
be equal; ``_sum``/``_total`` may differ only by float rounding (the batch path adds a request's values
together, or exactly as Decimals, before adding them to the series).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from datetime import datetime
from decimal import Decimal

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.parser import text_string_to_metric_families
from spanledger import semconv
from spanledger_collector._batch_metrics import BatchCounter, BatchHistogram, BatchMetrics, group_columns
from spanledger_collector._decode import LlmCall
from spanledger_collector._store import DataRead, UsageFact
from spanledger_collector._telemetry import (
    OTHER,
    OTHER_TENANT,
    CardinalityLimits,
    UsageMetrics,
    UsageSeries,
    label_name,
    prometheus_name,
)

Exposition = dict[tuple[str, str, str], dict[tuple[str, tuple[tuple[str, str], ...]], float]]

EXAMPLES = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
finite = st.floats(min_value=-1e12, max_value=1e12, allow_nan=False) | st.integers(-(10**12), 10**12)
observed = finite | st.sampled_from([math.inf, -math.inf, math.nan, 0.0, -0.0])
bounds = st.lists(st.floats(min_value=0, max_value=1e9, allow_nan=False), min_size=1, max_size=12, unique=True)
kinds = st.sampled_from(["a", "b", "c"])


def scraped(registry: CollectorRegistry) -> Exposition:
    families: Exposition = {}
    for family in text_string_to_metric_families(generate_latest(registry).decode()):
        samples = families.setdefault((family.name, family.type, family.documentation), {})
        for sample in family.samples:
            key = (sample.name, tuple(sorted(sample.labels.items())))
            assert key not in samples, f"duplicate sample {key}"
            samples[key] = sample.value
    return families


def assert_same(actual: Exposition, expected: Exposition, *, scale: float | None = None) -> None:
    """Equal families and samples; sums equal up to float rounding: relative to the sum itself when every value
    is non-negative (``scale`` None), else relative to ``scale``, the sum of the values' magnitudes."""
    assert list(actual) == list(expected)
    for family, samples in expected.items():
        assert actual[family].keys() == samples.keys(), family
        for key, want in samples.items():
            got = actual[family][key]
            if key[0].endswith(("_sum", "_total")) and math.isfinite(want):
                tolerance = 1e-9 * (abs(want) if scale is None else scale) + 1e-12
                assert abs(got - want) <= tolerance, (key, got, want)
            else:
                assert got == want or (math.isnan(got) and math.isnan(want)), (key, got, want)


def magnitude(values: Iterable[float]) -> float:
    return 1 + sum(abs(value) for value in values if math.isfinite(value))


@EXAMPLES
@given(buckets=bounds, batches=st.lists(st.lists(st.tuples(kinds, observed), max_size=30), max_size=6))
def test_histogram_buckets_count_and_sum_match_prometheus_client(
    buckets: list[float], batches: list[list[tuple[str, float]]]
) -> None:
    buckets.sort()
    expected_registry, actual_registry = CollectorRegistry(), CollectorRegistry()
    reference = Histogram("h_seconds", "Doc.", ["kind"], buckets=buckets, registry=expected_registry)
    histogram = BatchHistogram("h_seconds", "Doc.", ["kind"], buckets)
    metrics = BatchMetrics([histogram])
    actual_registry.register(metrics)
    for batch in batches:
        for kind, value in batch:
            reference.labels(kind).observe(value)
        with metrics.lock:
            for labels, (values,) in group_columns((0,), (1,), batch).items():
                histogram.observe(labels, values)
    scale = magnitude(value for batch in batches for _, value in batch)
    assert_same(scraped(actual_registry), scraped(expected_registry), scale=scale)


@EXAMPLES
@given(
    batches=st.lists(
        st.lists(st.tuples(kinds, st.floats(min_value=0, max_value=1e12) | st.just(0.0)), max_size=30), max_size=6
    )
)
def test_counter_totals_match_prometheus_client(batches: list[list[tuple[str, float]]]) -> None:
    expected_registry, actual_registry = CollectorRegistry(), CollectorRegistry()
    reference = Counter("c_bytes", "Doc.", ["kind"], registry=expected_registry)
    counter = BatchCounter("c_bytes", "Doc.", ["kind"])
    metrics = BatchMetrics([counter])
    actual_registry.register(metrics)
    for batch in batches:
        for kind, amount in batch:
            reference.labels(kind).inc(amount)
        with metrics.lock:
            for labels, (amounts,) in group_columns((0,), (1,), batch).items():
                counter.add(labels, sum(amounts))
    assert_same(scraped(actual_registry), scraped(expected_registry))


def test_a_negative_batch_total_leaves_the_counter_unchanged() -> None:
    counter = BatchCounter("c_bytes", "Doc.", ["kind"])
    counter.add(("a",), 2.0)
    counter.add(("a",), -1.0)
    assert [sample.value for sample in counter.family().samples] == [2.0]


def test_negative_bucket_bounds_are_refused() -> None:
    with pytest.raises(ValueError, match="h_seconds: negative bucket bounds"):
        BatchHistogram("h_seconds", "Doc.", [], [-1.0, 1.0])


class ReferenceUsage:
    """``UsageMetrics.record`` as it was before batching: one prometheus-client call per observation."""

    def __init__(self, registry: CollectorRegistry, tenant_limit: int) -> None:
        gen_ai = [
            semconv.GEN_AI_OPERATION_NAME,
            semconv.GEN_AI_PROVIDER_NAME,
            semconv.GEN_AI_REQUEST_MODEL,
            semconv.GEN_AI_RESPONSE_MODEL,
            semconv.SERVER_ADDRESS,
            semconv.SERVER_PORT,
        ]

        def histogram(spec: semconv.MetricSpec, *attributes: str) -> Histogram:
            labels = [label_name(attribute) for attribute in attributes]
            buckets = spec.buckets or Histogram.DEFAULT_BUCKETS
            return Histogram(prometheus_name(spec), spec.description, labels, buckets=buckets, registry=registry)

        def counter(spec: semconv.MetricSpec, *attributes: str) -> Counter:
            labels = [label_name(attribute) for attribute in attributes]
            return Counter(prometheus_name(spec), spec.description, labels, registry=registry)

        # Registered in the order UsageSeries exposes its families.
        self.tokens = histogram(semconv.METRIC_GEN_AI_CLIENT_TOKEN_USAGE, *gen_ai, semconv.GEN_AI_TOKEN_TYPE)
        self.duration = histogram(semconv.METRIC_GEN_AI_CLIENT_OPERATION_DURATION, *gen_ai, semconv.ERROR_TYPE)
        self.first_chunk = histogram(semconv.METRIC_GEN_AI_CLIENT_OPERATION_TIME_TO_FIRST_CHUNK, *gen_ai)
        self.cost = counter(
            semconv.METRIC_SPANLEDGER_COST_ESTIMATE,
            semconv.GEN_AI_REQUEST_MODEL,
            semconv.SPANLEDGER_WORKFLOW_NAME,
            semconv.SPANLEDGER_TENANT_ID,
            semconv.SPANLEDGER_METER,
        )
        self.age = histogram(semconv.METRIC_SPANLEDGER_DATA_AGE, semconv.SPANLEDGER_DATA_SOURCE_KIND)
        self.accelerator = counter(
            semconv.METRIC_SPANLEDGER_ACCELERATOR_TIME,
            semconv.SPANLEDGER_ACCELERATOR_TYPE,
            semconv.SPANLEDGER_WORKFLOW_NAME,
        )
        self.egress = counter(
            semconv.METRIC_SPANLEDGER_EGRESS_BYTES, semconv.SPANLEDGER_EGRESS_BOUNDARY, semconv.NETWORK_IO_DIRECTION
        )
        self.refused = counter(semconv.METRIC_SPANLEDGER_USAGE_REFUSED_VALUES, semconv.SPANLEDGER_USAGE_ATTRIBUTE)
        # Fed by late children (tests/test_collector_late_children.py checks its values); here only its family.
        self.retracted = counter(
            semconv.METRIC_SPANLEDGER_USAGE_RETRACTED,
            semconv.GEN_AI_REQUEST_MODEL,
            semconv.SPANLEDGER_WORKFLOW_NAME,
            semconv.SPANLEDGER_TENANT_ID,
            semconv.SPANLEDGER_METER,
        )
        self.tenant_limit = tenant_limit
        self.tenants: list[str] = []

    def tenant(self, tenant: str | None) -> str:
        if not tenant:
            return ""
        if tenant not in self.tenants and len(self.tenants) < self.tenant_limit:
            self.tenants.append(tenant)
        return tenant if tenant in self.tenants else OTHER_TENANT

    def record(self, calls: Sequence[LlmCall], facts: Sequence[UsageFact], reads: Sequence[DataRead]) -> None:
        for call in calls:
            labels = call[:6]
            self.duration.labels(*labels, call.error_type).observe(call.duration_s)
            if call.time_to_first_chunk_s is not None:
                self.first_chunk.labels(*labels).observe(call.time_to_first_chunk_s)
            if call.input_tokens is not None:
                self.tokens.labels(*labels, semconv.GenAiTokenTypeValues.INPUT.value).observe(call.input_tokens)
            if call.output_tokens is not None:
                self.tokens.labels(*labels, semconv.GenAiTokenTypeValues.OUTPUT.value).observe(call.output_tokens)
        meters = semconv.SpanledgerMeterValues
        directions = semconv.NetworkIoDirectionValues
        for fact in facts:
            if fact.estimated_cost is not None and fact.currency == "USD":
                series = (fact.model or "", fact.workflow or "", self.tenant(fact.tenant), fact.meter)
                self.cost.labels(*series).inc(float(fact.estimated_cost))
            if fact.meter == meters.ACCELERATOR_SECONDS.value:
                self.accelerator.labels(fact.accelerator_type or "", fact.workflow or "").inc(float(fact.quantity))
            elif fact.meter == meters.EGRESS_BYTES.value:
                self.egress.labels(fact.boundary or "", directions.TRANSMIT.value).inc(float(fact.quantity))
            elif fact.meter == meters.INGRESS_BYTES.value:
                self.egress.labels(fact.boundary or "", directions.RECEIVE.value).inc(float(fact.quantity))
        for read in reads:
            if read.age_seconds is not None:
                self.age.labels(read.source_kind or "").observe(read.age_seconds)


NOW = datetime(2026, 11, 24, 8)
maybe_text = st.sampled_from([None, "", "x", "y"])
seconds = st.floats(min_value=0, max_value=1e5, allow_nan=False)
tokens = st.none() | st.integers(0, 10**7)
amounts = st.decimals(min_value=0, max_value=10**6, places=9, allow_nan=False, allow_infinity=False)
calls = st.builds(
    LlmCall,
    operation=st.sampled_from(["chat", "embeddings"]),
    provider=st.sampled_from(["openai", "aws.bedrock"]),
    request_model=st.sampled_from(["gpt-4o-mini", "m"]),
    response_model=st.sampled_from(["gpt-4o-mini-2024-07-18", ""]),
    server_address=st.just("api.openai.com"),
    server_port=st.sampled_from(["443", ""]),
    error_type=st.sampled_from(["", "timeout"]),
    duration_s=seconds,
    input_tokens=tokens,
    output_tokens=tokens,
    time_to_first_chunk_s=st.none() | seconds,
)
facts = st.builds(
    UsageFact,
    trace_id=st.just("0" * 32),
    span_id=st.just("0" * 16),
    meter=st.sampled_from([meter.value for meter in semconv.SpanledgerMeterValues]),
    start_time=st.just(NOW),
    end_time=st.just(NOW),
    quantity=amounts,
    unit=st.just("1"),
    model=maybe_text,
    boundary=maybe_text,
    accelerator_type=maybe_text,
    workflow=maybe_text,
    tenant=st.sampled_from([None, "", "t1", "t2", "t3", "t4"]),
    estimated_cost=st.none() | amounts,
    currency=st.sampled_from([None, "USD", "EUR"]),
)
reads = st.builds(
    DataRead,
    trace_id=st.just("0" * 32),
    span_id=st.just("0" * 16),
    seq=st.just(0),
    read_time=st.just(NOW),
    source=st.none(),
    source_kind=maybe_text,
    last_modified=st.none(),
    age_seconds=st.none() | seconds,
    bytes=st.none(),
    staleness_method=st.none(),
    workflow=st.none(),
    tenant=st.none(),
    service=st.none(),
)
requests = st.lists(
    st.tuples(st.lists(calls, max_size=12), st.lists(facts, max_size=25), st.lists(reads, max_size=6)), max_size=5
)


@EXAMPLES
@given(requests=requests, tenant_limit=st.integers(0, 3))
def test_usage_metrics_expose_what_per_observation_prometheus_client_calls_would(
    requests: list[tuple[list[LlmCall], list[UsageFact], list[DataRead]]], tenant_limit: int
) -> None:
    expected_registry, actual_registry = CollectorRegistry(), CollectorRegistry()
    reference = ReferenceUsage(expected_registry, tenant_limit)
    series = UsageSeries()
    actual_registry.register(series)
    usage = UsageMetrics(tenant_cardinality_limit=tenant_limit, series=series)
    for request in requests:
        reference.record(*request)
        usage.record(*request)
    assert_same(scraped(actual_registry), scraped(expected_registry))


def test_tenants_past_the_cap_share_the_other_label_in_order_of_their_first_priced_fact() -> None:
    registry = CollectorRegistry()
    series = UsageSeries()
    registry.register(series)
    usage = UsageMetrics(tenant_cardinality_limit=2, series=series)
    meter = semconv.SpanledgerMeterValues.LLM_INPUT_TOKENS.value

    def fact(tenant: str, cost: str | None) -> UsageFact:
        price = None if cost is None else Decimal(cost)
        return UsageFact(
            "0" * 32, "0" * 16, meter, NOW, NOW, Decimal(1), "1", tenant=tenant, estimated_cost=price, currency="USD"
        )

    # t1's first fact is unpriced, so t2 and t3 are the first two tenants with a cost.
    usage.record([], [fact("t1", None), fact("t2", "1"), fact("t3", "2"), fact("t1", "4")], [])
    usage.record([], [fact("t4", "8"), fact("t2", "16")], [])
    family = next(
        family
        for family in scraped(registry).items()
        if family[0][0] == prometheus_name(semconv.METRIC_SPANLEDGER_COST_ESTIMATE)
    )
    tenant = label_name(semconv.SPANLEDGER_TENANT_ID)
    totals = {dict(labels)[tenant]: value for (_, labels), value in family[1].items()}
    assert totals == {"t2": 17.0, "t3": 2.0, OTHER_TENANT: 12.0}


def test_label_sets_past_a_family_s_series_limit_share_the_all_other_series() -> None:
    registry = CollectorRegistry()
    series = UsageSeries()
    registry.register(series)
    usage = UsageMetrics(limits=CardinalityLimits(label=1000, series=3), series=series)
    egress = semconv.SpanledgerMeterValues.EGRESS_BYTES.value
    facts = [UsageFact("0" * 32, "0" * 16, egress, NOW, NOW, Decimal(n + 1), "By", boundary=f"b{n}") for n in range(10)]
    usage.record([], facts, [])
    family = next(
        family
        for family in scraped(registry).items()
        if family[0][0] == prometheus_name(semconv.METRIC_SPANLEDGER_EGRESS_BYTES)
    )
    boundary = label_name(semconv.SPANLEDGER_EGRESS_BOUNDARY)
    totals = {dict(labels)[boundary]: value for (_, labels), value in family[1].items()}
    assert totals == {"b0": 1.0, "b1": 2.0, "b2": 3.0, OTHER: float(sum(range(4, 11)))}


def test_long_label_values_are_reported_as_other() -> None:
    registry = CollectorRegistry()
    series = UsageSeries()
    registry.register(series)
    usage = UsageMetrics(limits=CardinalityLimits(value_length=8), series=series)
    seconds = semconv.SpanledgerMeterValues.ACCELERATOR_SECONDS.value
    usage.record([], [UsageFact("0" * 32, "0" * 16, seconds, NOW, NOW, Decimal(2), "s", accelerator_type="x" * 9)], [])
    family = next(
        family
        for family in scraped(registry).items()
        if family[0][0] == prometheus_name(semconv.METRIC_SPANLEDGER_ACCELERATOR_TIME)
    )
    assert [dict(labels)[label_name(semconv.SPANLEDGER_ACCELERATOR_TYPE)] for (_, labels) in family[1]] == [OTHER]


def test_a_label_set_seen_again_keeps_the_labels_its_values_got_first() -> None:
    """The capped labels remembered per label set are what the caps answer: a model turned away once (the cap
    full) stays other in later requests and orders, the admitted one keeps its label, on every family."""
    registry = CollectorRegistry()
    series = UsageSeries()
    registry.register(series)
    usage = UsageMetrics(limits=CardinalityLimits(label=1), series=series)
    admitted = LlmCall("chat", "openai", "a", "a", "api.openai.com", "443", "", 1.0, 10, 5, None)
    turned_away = admitted._replace(request_model="b", response_model="b")
    meter = semconv.SpanledgerMeterValues.LLM_INPUT_TOKENS.value

    def fact(model: str) -> UsageFact:
        return UsageFact(
            "0" * 32, "0" * 16, meter, NOW, NOW, Decimal(1), "1", model=model, estimated_cost=Decimal(1), currency="USD"
        )

    usage.record([admitted, turned_away], [fact("a"), fact("b")], [])
    usage.record([turned_away, admitted], [fact("b"), fact("a")], [])
    model = label_name(semconv.GEN_AI_REQUEST_MODEL)
    exposition = scraped(registry)
    costs = next(
        samples
        for family, samples in exposition.items()
        if family[0] == prometheus_name(semconv.METRIC_SPANLEDGER_COST_ESTIMATE)
    )
    assert {dict(labels)[model]: value for (_, labels), value in costs.items()} == {"a": 2.0, OTHER: 2.0}
    durations = next(
        samples
        for family, samples in exposition.items()
        if family[0] == prometheus_name(semconv.METRIC_GEN_AI_CLIENT_OPERATION_DURATION)
    )
    counts = {dict(labels)[model]: value for (name, labels), value in durations.items() if name.endswith("_count")}
    assert counts == {"a": 2.0, OTHER: 2.0}
