"""What both OTLP transports share: the receiver's signals fanned out to its pipelines, bearer tokens, sizes."""

from __future__ import annotations

from collections.abc import Sequence

from google.protobuf.message import DecodeError
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceResponse
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import ExportMetricsServiceResponse
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTracePartialSuccess,
    ExportTraceServiceResponse,
)

from .._bearer import token_ok
from .._component import PermanentError, RetryableError
from .._decode import parse_skinny_traces
from .._pipeline import Pipeline
from .._telemetry import RECEIVER_ACCEPTED_SPANS, RECEIVER_REFUSED_SPANS

__all__ = ["OtlpSignals", "TooLarge", "bound_host", "count_spans", "token_ok"]


class TooLarge(Exception):
    """The request is over the size cap (after decompression)."""


def count_spans(data: bytes) -> int:
    try:
        traces = parse_skinny_traces(data)
        return sum(len(scope.spans) for resource in traces.resource_spans for scope in resource.scope_spans)
    except DecodeError:
        return 0


class OtlpSignals:
    """One receiver's three signals, fanned out to the pipelines that list the receiver."""

    def __init__(self, receiver_id: str, pipelines: Sequence[Pipeline]) -> None:
        self.receiver_id = receiver_id
        self.traces = [pipeline for pipeline in pipelines if pipeline.signal == "traces"]
        self.metrics = [pipeline for pipeline in pipelines if pipeline.signal == "metrics"]
        self.logs = [pipeline for pipeline in pipelines if pipeline.signal == "logs"]

    def export_traces(self, data: bytes, transport: str) -> ExportTraceServiceResponse:
        response = ExportTraceServiceResponse()
        if not self.traces:
            raise PermanentError("no traces pipeline uses this receiver")
        try:
            for pipeline in self.traces:
                decoded = pipeline.consume_traces(data)
        except (RetryableError, PermanentError):
            RECEIVER_REFUSED_SPANS.labels(self.receiver_id, transport).inc(count_spans(data))
            raise
        RECEIVER_ACCEPTED_SPANS.labels(self.receiver_id, transport).inc(decoded.accepted_spans)
        if decoded.rejected_spans:
            RECEIVER_REFUSED_SPANS.labels(self.receiver_id, transport).inc(decoded.rejected_spans)
            response.partial_success.CopyFrom(
                ExportTracePartialSuccess(rejected_spans=decoded.rejected_spans, error_message=decoded.rejection)
            )
        return response

    def export_metrics(self, data: bytes, transport: str) -> ExportMetricsServiceResponse:
        if not self.metrics:
            raise PermanentError("no metrics pipeline uses this receiver")
        for pipeline in self.metrics:
            pipeline.consume_metrics(data)
        return ExportMetricsServiceResponse()

    def export_logs(self, data: bytes, transport: str) -> ExportLogsServiceResponse:
        if not self.logs:
            raise PermanentError("no logs pipeline uses this receiver")
        for pipeline in self.logs:
            pipeline.consume_logs(data)
        return ExportLogsServiceResponse()


def bound_host(host: str) -> str:
    """The host a listener bound, as printed in ``host:port`` (``0.0.0.0``: every interface; IPv6 bracketed)."""
    return f"[{host}]" if ":" in host else host or "0.0.0.0"
