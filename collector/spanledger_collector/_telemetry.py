"""The collector's Prometheus metrics: its own health under the OTel Collector's names, and what it saw.

One process-wide ``REGISTRY`` (never prometheus-client's global one). Exporter series are read at scrape
time from each exporter's ``stats()`` (``_exporters.ExporterStats``). Every metric name comes from
``spanledger.semconv`` and is exposed under the Prometheus name and labels semconv/generate.py gave it
(``MetricSpec.prometheus_name``, ``semconv.PROMETHEUS_LABELS``).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

from prometheus_client import CollectorRegistry, Counter, Histogram, disable_created_metrics
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from spanledger import semconv
from spanledger.semconv import MetricSpec

from ._batch_metrics import DEFAULT_SERIES_LIMIT, OVERFLOW, BatchCounter, BatchHistogram, BatchMetrics, group_columns
from ._decode import LlmCall
from ._store import DataRead, UsageFact

__all__ = [
    "OTHER",
    "RECEIVER_ACCEPTED_SPANS",
    "RECEIVER_REFUSED_SPANS",
    "REGISTRY",
    "USAGE_SERIES",
    "CardinalityLimits",
    "ExporterStatsCollector",
    "RequestLogCollector",
    "UsageMetrics",
    "UsageSeries",
    "label_name",
    "prometheus_name",
]

# The *_created series double the scrape and no collector dashboard reads them.
disable_created_metrics()  # type: ignore[no-untyped-call]
REGISTRY = CollectorRegistry(auto_describe=True)
OTHER = OVERFLOW
"""The label value standing for every value past a cap (docs/schema.md, "Cardinality")."""
OTHER_TENANT = OTHER
Key = TypeVar("Key")
Value = TypeVar("Value")


def prometheus_name(spec: MetricSpec) -> str:
    """The exposition base name (without ``_total``/``_bucket``), as semconv/generate.py named it."""
    return spec.prometheus_name


def label_name(attribute: str) -> str:
    """The Prometheus label of a registry attribute, as semconv/generate.py named it."""
    return semconv.PROMETHEUS_LABELS[attribute]


def _labels(*attributes: str) -> list[str]:
    return [label_name(attribute) for attribute in attributes]


def _counter(spec: MetricSpec, *attributes: str) -> Counter:
    return Counter(prometheus_name(spec), spec.description, _labels(*attributes), registry=REGISTRY)


RECEIVER_ACCEPTED_SPANS = _counter(semconv.METRIC_OTELCOL_RECEIVER_ACCEPTED_SPANS, semconv.RECEIVER, semconv.TRANSPORT)
RECEIVER_REFUSED_SPANS = _counter(semconv.METRIC_OTELCOL_RECEIVER_REFUSED_SPANS, semconv.RECEIVER, semconv.TRANSPORT)


class ExporterStatsCollector(Collector):
    """``otelcol_exporter_*`` series from the exporters' own counters, read at scrape time."""

    def __init__(self, exporters: Mapping[str, Any]) -> None:
        self.exporters = exporters

    def collect(self) -> Iterator[Metric]:
        label = [label_name(semconv.EXPORTER)]
        families: list[tuple[CounterMetricFamily | GaugeMetricFamily, Callable[[Any], float]]] = [
            (_counter_family(semconv.METRIC_OTELCOL_EXPORTER_SENT_SPANS, label), lambda s: s.sent.get("spans", 0)),
            (
                _counter_family(semconv.METRIC_OTELCOL_EXPORTER_SEND_FAILED_SPANS, label),
                lambda s: s.send_failed.get("spans", 0),
            ),
            (_gauge_family(semconv.METRIC_OTELCOL_EXPORTER_QUEUE_SIZE, label), lambda s: s.queue_size),
            (_gauge_family(semconv.METRIC_OTELCOL_EXPORTER_QUEUE_CAPACITY, label), lambda s: s.queue_capacity),
        ]
        for exporter_id, exporter in self.exporters.items():
            stats = getattr(exporter, "stats", None)
            if stats is None:
                continue
            snapshot = stats()
            for family, value in families:
                family.add_metric([exporter_id], value(snapshot))
        for family, _ in families:
            yield family


class RequestLogCollector(Collector):
    """``spanledger_request_log_damaged_records_total``: damaged log regions quarantined since start, read at
    scrape time from the request log (recovery finds them before the receivers open)."""

    def __init__(self, damaged_records: Callable[[], int]) -> None:
        self.damaged_records = damaged_records

    def collect(self) -> Iterator[Metric]:
        family = _counter_family(semconv.METRIC_SPANLEDGER_REQUEST_LOG_DAMAGED_RECORDS, [])
        family.add_metric([], self.damaged_records())
        yield family


def _counter_family(spec: MetricSpec, labels: list[str]) -> CounterMetricFamily:
    return CounterMetricFamily(prometheus_name(spec), spec.description, labels=labels)


def _gauge_family(spec: MetricSpec, labels: list[str]) -> GaugeMetricFamily:
    return GaugeMetricFamily(prometheus_name(spec), spec.description, labels=labels)


_GEN_AI_LABELS = (
    semconv.GEN_AI_OPERATION_NAME,
    semconv.GEN_AI_PROVIDER_NAME,
    semconv.GEN_AI_REQUEST_MODEL,
    semconv.GEN_AI_RESPONSE_MODEL,
    semconv.SERVER_ADDRESS,
    semconv.SERVER_PORT,
)


def _histogram(spec: MetricSpec, *attributes: str) -> BatchHistogram:
    buckets: Sequence[float] = spec.buckets or Histogram.DEFAULT_BUCKETS
    return BatchHistogram(prometheus_name(spec), spec.description, _labels(*attributes), buckets)


def _batch_counter(spec: MetricSpec, *attributes: str) -> BatchCounter:
    return BatchCounter(prometheus_name(spec), spec.description, _labels(*attributes))


@dataclass(frozen=True)
class CardinalityLimits:
    """How many distinct values of span data the usage series keep apart (``spanledger_usage`` settings).

    Past a limit, values are reported as :data:`OTHER`, so the series' totals stay whole. Together they bound
    ``/metrics``: at most ``series`` series per family, each label value at most ``value_length`` characters.
    """

    tenant: int = 100
    """Distinct tenants (``spanledger.tenant.id``); the first ones priced keep their label."""
    label: int = 100
    """Distinct values of each other label fed from span data (model, workflow, provider, error type, ...)."""
    series: int = DEFAULT_SERIES_LIMIT
    """Distinct label sets per metric family; further ones are added to the series whose labels are all other."""
    value_length: int = 128
    """Longer label values are reported as other."""

    def __post_init__(self) -> None:
        for name, minimum in (("tenant", 0), ("label", 0), ("series", 1), ("value_length", 1)):
            if getattr(self, name) < minimum:
                raise ValueError(f"cardinality limit {name} must be at least {minimum}")


class _Cap:
    """One label's admitted values: the first ``limit`` distinct ones, in order of arrival; the rest are other."""

    __slots__ = ("admitted", "limit", "value_length")

    def __init__(self, limit: int, value_length: int) -> None:
        self.admitted: set[str] = set()
        self.limit = limit
        self.value_length = value_length

    def __call__(self, value: str | None) -> str:
        if not value:
            return ""
        if value in self.admitted:
            return value
        if len(self.admitted) < self.limit and len(value) <= self.value_length:
            self.admitted.add(value)
            return value
        return OTHER


class UsageSeries(BatchMetrics):
    """The GenAI client and spanledger usage families; ``USAGE_SERIES`` is the one on ``REGISTRY``."""

    def __init__(self) -> None:
        self.token_usage = _histogram(
            semconv.METRIC_GEN_AI_CLIENT_TOKEN_USAGE, *_GEN_AI_LABELS, semconv.GEN_AI_TOKEN_TYPE
        )
        self.operation_duration = _histogram(
            semconv.METRIC_GEN_AI_CLIENT_OPERATION_DURATION, *_GEN_AI_LABELS, semconv.ERROR_TYPE
        )
        self.time_to_first_chunk = _histogram(
            semconv.METRIC_GEN_AI_CLIENT_OPERATION_TIME_TO_FIRST_CHUNK, *_GEN_AI_LABELS
        )
        self.cost_estimate = _batch_counter(
            semconv.METRIC_SPANLEDGER_COST_ESTIMATE,
            semconv.GEN_AI_REQUEST_MODEL,
            semconv.SPANLEDGER_WORKFLOW_NAME,
            semconv.SPANLEDGER_TENANT_ID,
            semconv.SPANLEDGER_METER,
        )
        self.data_age = _histogram(semconv.METRIC_SPANLEDGER_DATA_AGE, semconv.SPANLEDGER_DATA_SOURCE_KIND)
        self.accelerator_time = _batch_counter(
            semconv.METRIC_SPANLEDGER_ACCELERATOR_TIME,
            semconv.SPANLEDGER_ACCELERATOR_TYPE,
            semconv.SPANLEDGER_WORKFLOW_NAME,
        )
        self.egress_bytes = _batch_counter(
            semconv.METRIC_SPANLEDGER_EGRESS_BYTES, semconv.SPANLEDGER_EGRESS_BOUNDARY, semconv.NETWORK_IO_DIRECTION
        )
        self.refused_values = _batch_counter(
            semconv.METRIC_SPANLEDGER_USAGE_REFUSED_VALUES, semconv.SPANLEDGER_USAGE_ATTRIBUTE
        )
        self.usage_retracted = _batch_counter(
            semconv.METRIC_SPANLEDGER_USAGE_RETRACTED,
            semconv.GEN_AI_REQUEST_MODEL,
            semconv.SPANLEDGER_WORKFLOW_NAME,
            semconv.SPANLEDGER_TENANT_ID,
            semconv.SPANLEDGER_METER,
        )
        super().__init__(
            [
                self.token_usage,
                self.operation_duration,
                self.time_to_first_chunk,
                self.cost_estimate,
                self.data_age,
                self.accelerator_time,
                self.egress_bytes,
                self.refused_values,
                self.usage_retracted,
            ]
        )


USAGE_SERIES = UsageSeries()
REGISTRY.register(USAGE_SERIES)


def _indexes(fields: tuple[str, ...], *names: str) -> tuple[int, ...]:
    """The positions of ``names`` in a NamedTuple's fields, for :func:`~._batch_metrics.group_columns`."""
    return tuple(fields.index(name) for name in names)


_CALL_SERIES = _indexes(
    LlmCall._fields,
    "operation",
    "provider",
    "request_model",
    "response_model",
    "server_address",
    "server_port",
    "error_type",
)
_CALL_VALUES = _indexes(LlmCall._fields, "duration_s", "input_tokens", "output_tokens", "time_to_first_chunk_s")
_FACT_SERIES = _indexes(
    UsageFact._fields, "meter", "currency", "model", "workflow", "tenant", "accelerator_type", "boundary"
)
_FACT_VALUES = _indexes(UsageFact._fields, "estimated_cost", "quantity")
_RETRACTED_SERIES = _indexes(UsageFact._fields, "meter", "model", "workflow", "tenant")
_FACT_QUANTITY = _indexes(UsageFact._fields, "quantity")
_READ_SOURCE_KIND = _indexes(DataRead._fields, "source_kind")
_READ_AGE = _indexes(DataRead._fields, "age_seconds")
_INPUT = semconv.GenAiTokenTypeValues.INPUT.value
_OUTPUT = semconv.GenAiTokenTypeValues.OUTPUT.value
_ACCELERATOR_SECONDS = semconv.SpanledgerMeterValues.ACCELERATOR_SECONDS.value
_DIRECTIONS = {
    semconv.SpanledgerMeterValues.EGRESS_BYTES.value: semconv.NetworkIoDirectionValues.TRANSMIT.value,
    semconv.SpanledgerMeterValues.INGRESS_BYTES.value: semconv.NetworkIoDirectionValues.RECEIVE.value,
}


_CallLabels = tuple[tuple[str, ...], tuple[str, ...], tuple[str, ...], tuple[str, ...]]
"""The series of one LLM call's labels: operation duration, time to first chunk, input and output token usage."""


_LABEL_MEMO_LIMIT = 4096
"""Raw label sets whose capped labels ``UsageMetrics`` remembers; past it, further ones are capped each time."""


def _remember(memo: dict[Key, Value], raw: Key, labels: Value) -> Value:
    if len(memo) < _LABEL_MEMO_LIMIT:
        memo[raw] = labels
    return labels


class UsageMetrics:
    """Turns what the pipeline stored into the GenAI and spanledger series, every label from span data capped.

    A request's observations are grouped per series first (LLM calls by their labels, usage facts by every
    field a series reads, data reads by source kind) and each group is merged into its series at once,
    under one lock per request. Each label fed from span data keeps its first ``limits.label`` distinct values
    (tenants: ``limits.tenant``) and reports the rest as ``other``; each family keeps ``limits.series`` label
    sets and adds the rest to its all-``other`` series (docs/schema.md, "Cardinality").

    The capped labels of each raw label set are remembered (bounded): a cap's answer for a value never changes,
    since admitted values stay admitted and the admitted set only grows, so a value once turned away always is.
    """

    def __init__(
        self,
        *,
        tenant_cardinality_limit: int | None = None,
        limits: CardinalityLimits | None = None,
        series: UsageSeries = USAGE_SERIES,
    ) -> None:
        if limits is None:
            limits = CardinalityLimits()
        if tenant_cardinality_limit is not None:
            limits = dataclasses.replace(limits, tenant=tenant_cardinality_limit)
        self.limits = limits
        self._tenant_limit = limits.tenant
        self._tenants: set[str] = set()
        self._series = series
        series.limit_series(limits.series)

        def cap() -> _Cap:
            return _Cap(limits.label, limits.value_length)

        self._operation, self._provider, self._model, self._response_model = cap(), cap(), cap(), cap()
        self._server_address, self._server_port, self._error_type = cap(), cap(), cap()
        self._workflow, self._accelerator_type, self._boundary, self._source_kind = cap(), cap(), cap(), cap()
        self._call_memo: dict[tuple[str, ...], _CallLabels] = {}
        self._cost_memo: dict[tuple[str | None, ...], tuple[str, ...]] = {}

    def _tenant(self, tenant: str | None) -> str:
        if not tenant:
            return ""
        if tenant in self._tenants:
            return tenant
        if len(self._tenants) < self._tenant_limit and len(tenant) <= self.limits.value_length:
            self._tenants.add(tenant)
            return tenant
        return OTHER

    def record(
        self,
        calls: Sequence[LlmCall],
        facts: Sequence[UsageFact],
        reads: Sequence[DataRead],
        refused_values: Mapping[str, int] | None = None,
        retracted: Sequence[UsageFact] = (),
    ) -> None:
        """``retracted``: facts counted earlier that the stored request's spans roll up (counters are monotonic:
        the series that counted them keep them, ``spanledger.usage.retracted`` says how much to subtract)."""
        series = self._series
        with series.lock:
            self._record_calls(calls)
            self._record_facts(facts)
            data_age = series.data_age
            for (source_kind,), (ages,) in group_columns(_READ_SOURCE_KIND, _READ_AGE, reads).items():
                if ages:
                    data_age.observe((self._source_kind(source_kind),), ages)
            if refused_values:
                for attribute, count in refused_values.items():
                    series.refused_values.add((attribute,), count)
            for (meter, model, workflow, tenant), (quantities,) in group_columns(
                _RETRACTED_SERIES, _FACT_QUANTITY, retracted
            ).items():
                series.usage_retracted.add(
                    (self._model(model), self._workflow(workflow), self._tenant(tenant), meter), float(sum(quantities))
                )

    def _call_labels(self, raw: tuple[str, ...]) -> _CallLabels:
        labels = self._call_memo.get(raw)
        if labels is not None:
            return labels
        operation, provider, request_model, response_model, server_address, server_port, error_type = raw
        duration = (
            self._operation(operation),
            self._provider(provider),
            self._model(request_model),
            self._response_model(response_model),
            self._server_address(server_address),
            self._server_port(server_port),
            self._error_type(error_type),
        )
        gen_ai = duration[:-1]
        return _remember(self._call_memo, raw, (duration, gen_ai, (*gen_ai, _INPUT), (*gen_ai, _OUTPUT)))

    def _record_calls(self, calls: Sequence[LlmCall]) -> None:
        series = self._series
        groups = group_columns(_CALL_SERIES, _CALL_VALUES, calls)
        for raw_labels, (durations, input_tokens, output_tokens, first_chunks) in groups.items():
            duration, gen_ai, input_labels, output_labels = self._call_labels(raw_labels)
            series.operation_duration.observe(duration, durations)
            if first_chunks:
                series.time_to_first_chunk.observe(gen_ai, first_chunks)
            if input_tokens:
                series.token_usage.observe(input_labels, input_tokens)
            if output_tokens:
                series.token_usage.observe(output_labels, output_tokens)

    def _admit_tenants_in_order(self, facts: Sequence[UsageFact], groups: Iterable[tuple[str | None, ...]]) -> None:
        """Admit this batch's new tenants in the order of their first priced fact, when not all of them fit.

        Series are visited per group, not per fact; without this, which tenants keep their own label when the
        cap is reached would depend on how the facts group.
        """
        room = self._tenant_limit - len(self._tenants)
        if room <= 0:
            return
        new = {tenant for _, currency, _, _, tenant, _, _ in groups if currency == "USD" and tenant} - self._tenants
        if len(new) > room:
            for fact in facts:
                if fact.estimated_cost is not None and fact.currency == "USD":
                    self._tenant(fact.tenant)

    def _record_facts(self, facts: Sequence[UsageFact]) -> None:
        series = self._series
        groups = group_columns(_FACT_SERIES, _FACT_VALUES, facts)
        self._admit_tenants_in_order(facts, groups)
        for raw_labels, (costs, quantities) in groups.items():
            meter, currency, model, workflow, tenant, accelerator_type, boundary = raw_labels
            if currency == "USD" and costs:  # the exact sum of the priced facts' costs
                labels = self._cost_memo.get(raw_labels) or _remember(
                    self._cost_memo,
                    raw_labels,
                    (self._model(model), self._workflow(workflow), self._tenant(tenant), meter),
                )
                series.cost_estimate.add(labels, float(sum(costs)))
            if meter == _ACCELERATOR_SECONDS:
                series.accelerator_time.add(
                    (self._accelerator_type(accelerator_type), self._workflow(workflow)), float(sum(quantities))
                )
            elif meter in _DIRECTIONS:
                series.egress_bytes.add((self._boundary(boundary), _DIRECTIONS[meter]), float(sum(quantities)))
