"""A pipeline: its processor instances in the configured order, then the store writer and onward exporters.

Like the OTel Collector, a receiver calls its pipelines synchronously and maps their errors onto the
wire: :class:`RetryableError` (memory limiter, store behind, an exporter's full queue) -> gRPC UNAVAILABLE /
HTTP 503 with a retry delay; :class:`PermanentError` (undecodable data) -> INVALID_ARGUMENT / 400.

Each request becomes a :class:`PipelineItem` that every processor sees in turn. At the end, the spans
(decoded once, by ``spanledger_usage`` or here) go to the store writer with the usage the processors
derived, and the request as the processors left it goes to each onward exporter. A request restored from
the request log runs through the same processors (``replaying``: no admission control, no metrics), so it
is stored exactly as it would have been.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from decimal import Decimal
from typing import Any

from google.protobuf.message import DecodeError
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import ExportMetricsServiceRequest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from spanledger import semconv

from ._component import Consumer, PermanentError
from ._decode import DecodedTraces, double_attribute, string_attribute
from ._processors import PipelineItem, Processor, decode_or_refuse
from ._store import StoreBatch, StoreWriter, UsageFact, digest

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


class Pipeline:
    """One ``service.pipelines`` entry: its processors in order, then its exporters."""

    def __init__(
        self,
        pipeline_id: str,
        signal: str,
        *,
        processors: Sequence[Processor] = (),
        writer: StoreWriter | None = None,
        exporters: Sequence[tuple[str, Consumer]] = (),
    ) -> None:
        self.pipeline_id = pipeline_id
        self.signal = signal
        self.processors = list(processors)
        self.writer = writer
        self.exporters = list(exporters)

    def _process(self, data: bytes, *, replaying: bool = False) -> PipelineItem:
        item = PipelineItem(self.signal, data, data, replaying=replaying)
        for processor in self.processors:
            processor.process(item)
        return item

    @staticmethod
    def _store_batch(item: PipelineItem) -> tuple[DecodedTraces, StoreBatch]:
        if item.decoded is None:
            decode_or_refuse(item, extract_usage=False)
        assert item.decoded is not None
        batch = item.decoded.batch
        batch.facts, batch.data_reads = item.facts, item.data_reads
        batch.requests = [item.data]
        counted_once = item.counted_once
        if counted_once is not None and counted_once is not batch:  # decoded again after a filter
            batch.retractions, batch.retracted = counted_once.retractions, counted_once.retracted
            batch.candidates, batch.ancestry = counted_once.candidates, counted_once.ancestry
        return item.decoded, batch

    def consume_traces(self, data: bytes) -> DecodedTraces:
        item = self._process(data)
        decoded, batch = self._store_batch(item)
        if self.exporters:
            try:
                request = ExportTraceServiceRequest.FromString(item.data)
            except DecodeError as error:
                # The decoder reads only the fields it needs; the exporters need every one (a string field
                # that is not UTF-8, say, which proto3 forbids): refused as the other signals are.
                raise PermanentError(f"the body is not a valid ExportTraceServiceRequest ({error})") from None
            if item.priced and item.facts:
                _attach_costs(request, item.facts)
            for _, exporter in self.exporters:
                exporter.consume_traces(request)
        if self.writer is not None and len(batch.spans):
            # Usage is recorded once stored: a retried request was counted when it was first stored.
            on_stored = item.on_stored
            batch.digest = digest(item.body)
            self.writer.submit(
                self.pipeline_id,
                item.body,
                batch,
                (lambda: [callback() for callback in on_stored]) if on_stored else None,
                item.store_batch,
            )
        else:
            for callback in item.on_stored:
                callback()
        decoded.accepted_spans += item.dropped_spans
        return decoded

    def stored_batch(self, data: bytes) -> StoreBatch:
        """The rows a request puts in the store (for a request restored from the request log)."""
        batch = self._store_batch(self._process(data, replaying=True))[1]
        batch.digest = digest(data)
        return batch

    def consume_metrics(self, data: bytes) -> ExportMetricsServiceRequest:
        item = self._process(data)
        try:
            request: ExportMetricsServiceRequest = ExportMetricsServiceRequest.FromString(item.data)
        except DecodeError as error:
            raise PermanentError(f"the body is not a valid ExportMetricsServiceRequest ({error})") from None
        for _, exporter in self.exporters:
            exporter.consume_metrics(request)
        return request

    def consume_logs(self, data: bytes) -> ExportLogsServiceRequest:
        item = self._process(data)
        try:
            request: ExportLogsServiceRequest = ExportLogsServiceRequest.FromString(item.data)
        except DecodeError as error:
            raise PermanentError(f"the body is not a valid ExportLogsServiceRequest ({error})") from None
        for _, exporter in self.exporters:
            exporter.consume_logs(request)
        return request
