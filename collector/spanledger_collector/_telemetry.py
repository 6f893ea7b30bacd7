"""The collector's Prometheus metrics: its own health under the OTel Collector's names, and what it saw.

One process-wide ``REGISTRY`` (never prometheus-client's global one). Exporter series are read at scrape
time from each exporter's ``stats()`` (``_exporters.ExporterStats``). Every metric name comes from
``spanledger.semconv`` and is exposed under its Prometheus form (see
``semconv/generated/prometheus-names.json``; a test keeps the two in step).
"""

from __future__ import annotations

import re
import threading
from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Histogram, disable_created_metrics
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from spanledger import semconv
from spanledger.semconv import MetricSpec

from ._store import DataRead, UsageFact
from ._usage import LlmCall

__all__ = [
    "RECEIVER_ACCEPTED_SPANS",
    "RECEIVER_REFUSED_SPANS",
    "REGISTRY",
    "ExporterStatsCollector",
    "UsageMetrics",
    "label_name",
    "prometheus_name",
]

# The *_created series double the scrape and no collector dashboard reads them.
disable_created_metrics()  # type: ignore[no-untyped-call]
REGISTRY = CollectorRegistry(auto_describe=True)
OTHER_TENANT = "other"
_UNIT_SUFFIXES = {"s": "seconds", "ms": "milliseconds", "By": "bytes", "h": "hours"}


def prometheus_name(spec: MetricSpec) -> str:
    """The exposition base name (without ``_total``/``_bucket``), by the rule semconv/generate.py uses."""
    base = re.sub(r"[^A-Za-z0-9_]", "_", spec.name)
    suffix = _UNIT_SUFFIXES.get(spec.unit)
    if suffix and not base.endswith("_" + suffix):
        base = f"{base}_{suffix}"
    return base


def label_name(attribute: str) -> str:
    return re.sub(r"[^A-Za-z0-9_]", "_", attribute)


def _labels(*attributes: str) -> list[str]:
    return [label_name(attribute) for attribute in attributes]


def _counter(spec: MetricSpec, *attributes: str) -> Counter:
    return Counter(prometheus_name(spec), spec.description, _labels(*attributes), registry=REGISTRY)


def _histogram(spec: MetricSpec, *attributes: str) -> Histogram:
    buckets: Sequence[float] = spec.buckets or Histogram.DEFAULT_BUCKETS
    return Histogram(prometheus_name(spec), spec.description, _labels(*attributes), buckets=buckets, registry=REGISTRY)


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
TOKEN_USAGE = _histogram(semconv.METRIC_GEN_AI_CLIENT_TOKEN_USAGE, *_GEN_AI_LABELS, semconv.GEN_AI_TOKEN_TYPE)
OPERATION_DURATION = _histogram(semconv.METRIC_GEN_AI_CLIENT_OPERATION_DURATION, *_GEN_AI_LABELS, semconv.ERROR_TYPE)
TIME_TO_FIRST_CHUNK = _histogram(semconv.METRIC_GEN_AI_CLIENT_OPERATION_TIME_TO_FIRST_CHUNK, *_GEN_AI_LABELS)
COST_ESTIMATE = _counter(
    semconv.METRIC_SPANLEDGER_COST_ESTIMATE,
    semconv.GEN_AI_REQUEST_MODEL,
    semconv.SPANLEDGER_WORKFLOW_NAME,
    semconv.SPANLEDGER_TENANT_ID,
    semconv.SPANLEDGER_METER,
)
DATA_AGE = _histogram(semconv.METRIC_SPANLEDGER_DATA_AGE, semconv.SPANLEDGER_DATA_SOURCE_KIND)
ACCELERATOR_TIME = _counter(
    semconv.METRIC_SPANLEDGER_ACCELERATOR_TIME, semconv.SPANLEDGER_ACCELERATOR_TYPE, semconv.SPANLEDGER_WORKFLOW_NAME
)
EGRESS_BYTES = _counter(
    semconv.METRIC_SPANLEDGER_EGRESS_BYTES, semconv.SPANLEDGER_EGRESS_BOUNDARY, semconv.NETWORK_IO_DIRECTION
)


class UsageMetrics:
    """Turns what the pipeline stored into the GenAI and spanledger series (tenant label capped)."""

    def __init__(self, *, tenant_cardinality_limit: int) -> None:
        self._tenant_limit = tenant_cardinality_limit
        self._tenants: set[str] = set()
        self._lock = threading.Lock()

    def _tenant(self, tenant: str | None) -> str:
        if not tenant:
            return ""
        with self._lock:
            if tenant in self._tenants:
                return tenant
            if len(self._tenants) < self._tenant_limit:
                self._tenants.add(tenant)
                return tenant
        return OTHER_TENANT

    def record(self, calls: Iterable[LlmCall], facts: Iterable[UsageFact], reads: Iterable[DataRead]) -> None:
        token_types = semconv.GenAiTokenTypeValues
        for call in calls:
            labels = (
                call.operation,
                call.provider,
                call.request_model,
                call.response_model,
                call.server_address,
                call.server_port,
            )
            OPERATION_DURATION.labels(*labels, call.error_type).observe(call.duration_s)
            if call.time_to_first_chunk_s is not None:
                TIME_TO_FIRST_CHUNK.labels(*labels).observe(call.time_to_first_chunk_s)
            if call.input_tokens is not None:
                TOKEN_USAGE.labels(*labels, token_types.INPUT.value).observe(call.input_tokens)
            if call.output_tokens is not None:
                TOKEN_USAGE.labels(*labels, token_types.OUTPUT.value).observe(call.output_tokens)
        meters = semconv.SpanledgerMeterValues
        directions = semconv.NetworkIoDirectionValues
        # Sum per label set first: one prometheus-client call per series instead of one per fact.
        sums: dict[tuple[Counter, tuple[str, ...]], float] = defaultdict(float)
        for fact in facts:
            if fact.estimated_cost is not None and fact.currency == "USD":
                series = (fact.model or "", fact.workflow or "", self._tenant(fact.tenant), fact.meter)
                sums[COST_ESTIMATE, series] += float(fact.estimated_cost)
            if fact.meter == meters.ACCELERATOR_SECONDS.value:
                sums[ACCELERATOR_TIME, (fact.accelerator_type or "", fact.workflow or "")] += float(fact.quantity)
            elif fact.meter == meters.EGRESS_BYTES.value:
                sums[EGRESS_BYTES, (fact.boundary or "", directions.TRANSMIT.value)] += float(fact.quantity)
            elif fact.meter == meters.INGRESS_BYTES.value:
                sums[EGRESS_BYTES, (fact.boundary or "", directions.RECEIVE.value)] += float(fact.quantity)
        for (counter, values), total in sums.items():
            counter.labels(*values).inc(total)
        for read in reads:
            if read.age_seconds is not None:
                DATA_AGE.labels(read.source_kind or "").observe(read.age_seconds)
