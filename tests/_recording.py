"""What the provider tests read: one ``spanledger.configure`` recording spans and metrics in memory."""

from __future__ import annotations

from typing import Any

import spanledger
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from spanledger import semconv

__all__ = ["Recorded", "metric_points"]


def metric_points(reader: InMemoryMetricReader) -> dict[str, list[Any]]:
    """Metric name -> its data points (collected now)."""
    points: dict[str, list[Any]] = {}
    data = reader.get_metrics_data()
    for resource_metrics in data.resource_metrics if data else ():
        for scope_metrics in resource_metrics.scope_metrics:
            for metric in scope_metrics.metrics:
                points.setdefault(metric.name, []).extend(metric.data.data_points)
    return points


class Recorded:
    """``spanledger.configure(export="none", **options)`` with an in-memory span exporter and metric reader."""

    def __init__(self, **options: Any) -> None:
        self.exporter = InMemorySpanExporter()
        self.reader = InMemoryMetricReader()
        self.handle = spanledger.configure(
            export="none",
            additional_span_processors=[SimpleSpanProcessor(self.exporter)],
            metric_readers=[self.reader],
            **options,
        )

    def llm_spans(self) -> list[ReadableSpan]:
        """The finished GenAI operation spans (``gen_ai.operation.name`` set)."""
        return [
            span
            for span in self.exporter.get_finished_spans()
            if span.attributes and semconv.GEN_AI_OPERATION_NAME in span.attributes
        ]

    def llm_span(self) -> ReadableSpan:
        """The one GenAI operation span (fails if there are none or several)."""
        spans = self.llm_spans()
        assert len(spans) == 1, [(span.name, span.instrumentation_scope) for span in self.exporter.get_finished_spans()]
        return spans[0]

    def metrics(self) -> dict[str, list[Any]]:
        return metric_points(self.reader)
