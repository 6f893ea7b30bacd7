"""The pipelines between receivers and exporters: memory limiter, usage and cost, then the store writer and exporters.

Like the OTel Collector, a receiver calls its pipelines synchronously and maps their errors onto the
wire: :class:`RetryableError` (memory limiter, store behind, an exporter's full queue) -> gRPC UNAVAILABLE /
HTTP 503 with a retry delay; :class:`PermanentError` (undecodable data) -> INVALID_ARGUMENT / 400.
The store writer (``_store._writer``) is the batch processor in front of the store.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from decimal import Decimal
from functools import partial
from typing import Any

from google.protobuf.message import DecodeError
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import ExportMetricsServiceRequest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from spanledger import semconv

from ._component import Consumer, PermanentError
from ._decode import DecodedTraces, decode_traces, double_attribute, string_attribute
from ._processors import MemoryLimiter
from ._store import StoreBatch, StoreWriter, UsageFact, digest, with_estimate
from ._telemetry import UsageMetrics

__all__ = ["Pipeline"]

logger = logging.getLogger("spanledger.collector")


def _cost_attributes(facts: Sequence[UsageFact]) -> list[Any]:
    currencies = {fact.currency for fact in facts if fact.currency}
    unpriced = [fact for fact in facts if fact.estimated_cost is None]
    attributes = []
    priced = [fact.estimated_cost for fact in facts if fact.estimated_cost is not None]
    if priced and len(currencies) == 1:
        attributes.append(double_attribute(semconv.SPANLEDGER_COST_ESTIMATE, float(sum(priced, Decimal(0)))))
        attributes.append(string_attribute(semconv.SPANLEDGER_COST_CURRENCY, currencies.pop()))
        attributes.append(
            string_attribute(semconv.SPANLEDGER_COST_SOURCE, semconv.SpanledgerCostSourceValues.ESTIMATE.value)
        )
    versions = sorted({fact.catalog_version for fact in facts if fact.catalog_version})
    if versions:
        attributes.append(string_attribute(semconv.SPANLEDGER_COST_CATALOG_VERSION, ", ".join(versions)))
    if unpriced:
        reasons = sorted({f"{fact.meter}: {fact.unpriced_reason or 'no price'}" for fact in unpriced})
        attributes.append(string_attribute(semconv.SPANLEDGER_COST_UNPRICED_REASON, "; ".join(reasons)))
    return attributes


class Pipeline:
    """One ``service.pipelines`` entry: its processors in order, then its exporters."""

    def __init__(
        self,
        pipeline_id: str,
        signal: str,
        *,
        limiter: MemoryLimiter | None = None,
        writer: StoreWriter | None = None,
        extract_usage: bool = False,
        catalog: Any = None,
        usage_metrics: UsageMetrics | None = None,
        exporters: Sequence[tuple[str, Consumer]] = (),
    ) -> None:
        self.pipeline_id = pipeline_id
        self.signal = signal
        self.limiter = limiter
        self.writer = writer
        self.extract_usage = extract_usage
        self.catalog = catalog
        self.usage_metrics = usage_metrics
        self.exporters = list(exporters)

    def _price(self, fact: UsageFact) -> UsageFact:
        # priced(): the fact with its estimate's cost (at the store's scale), currency, catalog_version and
        # unpriced_reason (set whenever cost is None); cheaper per fact than estimate() (see _pricing._rates).
        try:
            priced: UsageFact = self.catalog.priced(fact)
        except Exception as error:
            logger.exception("pricing %s of span %s failed", fact.meter, fact.span_id)
            return with_estimate(fact, (None, None, None, f"pricing failed: {error}"))
        return priced

    def _decode(self, data: bytes) -> DecodedTraces:
        try:
            decoded = decode_traces(data, extract_usage=self.extract_usage)
        except DecodeError as error:
            raise PermanentError(f"the body is not a valid ExportTraceServiceRequest ({error})") from None
        batch = decoded.batch
        if self.catalog is not None and batch.facts:
            batch.facts = [self._price(fact) for fact in batch.facts]
        return decoded

    def consume_traces(self, data: bytes) -> DecodedTraces:
        if self.limiter is not None:
            self.limiter.check()
        decoded = self._decode(data)
        batch = decoded.batch
        if self.exporters:
            request = ExportTraceServiceRequest.FromString(data)
            if batch.facts and self.catalog is not None:
                self._attach_costs(request, batch.facts)
            for _, exporter in self.exporters:
                exporter.consume_traces(request)
        record_usage = None
        if self.usage_metrics is not None:
            record_usage = partial(
                self.usage_metrics.record, decoded.llm_calls, batch.facts, batch.data_reads, decoded.refused_values
            )
        if self.writer is not None and len(batch.spans):
            batch.digest = digest(data)
            # Recorded once stored: a retried request was counted when it was first stored.
            self.writer.submit(self.pipeline_id, data, batch, record_usage)
        elif record_usage is not None:
            record_usage()
        return decoded

    def stored_batch(self, data: bytes) -> StoreBatch:
        """The rows a request puts in the store (for a request restored from the request log)."""
        batch = self._decode(data).batch
        batch.digest = digest(data)
        return batch

    @staticmethod
    def _attach_costs(request: ExportTraceServiceRequest, facts: Sequence[UsageFact]) -> None:
        by_span: dict[tuple[str, str], list[UsageFact]] = {}
        for fact in facts:
            by_span.setdefault((fact.trace_id, fact.span_id), []).append(fact)
        for resource_spans in request.resource_spans:
            for scope_spans in resource_spans.scope_spans:
                for span in scope_spans.spans:
                    owned = by_span.get((span.trace_id.hex(), span.span_id.hex()))
                    if owned:
                        span.attributes.extend(_cost_attributes(owned))

    def consume_metrics(self, data: bytes) -> ExportMetricsServiceRequest:
        if self.limiter is not None:
            self.limiter.check()
        try:
            request: ExportMetricsServiceRequest = ExportMetricsServiceRequest.FromString(data)
        except DecodeError as error:
            raise PermanentError(f"the body is not a valid ExportMetricsServiceRequest ({error})") from None
        for _, exporter in self.exporters:
            exporter.consume_metrics(request)
        return request

    def consume_logs(self, data: bytes) -> ExportLogsServiceRequest:
        if self.limiter is not None:
            self.limiter.check()
        try:
            request: ExportLogsServiceRequest = ExportLogsServiceRequest.FromString(data)
        except DecodeError as error:
            raise PermanentError(f"the body is not a valid ExportLogsServiceRequest ({error})") from None
        for _, exporter in self.exporters:
            exporter.consume_logs(request)
        return request
