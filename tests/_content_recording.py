"""What the content-capture tests read: one ``spanledger.configure`` with in-memory span and log exporters."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
import spanledger
from opentelemetry.sdk._logs import ReadableLogRecord
from opentelemetry.sdk._logs.export import InMemoryLogRecordExporter, SimpleLogRecordProcessor
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from spanledger import semconv

__all__ = ["CONTENT", "EVENT", "Recorded", "plain", "recorded_factory"]

EVENT = semconv.EVENT_GEN_AI_CLIENT_INFERENCE_OPERATION_DETAILS
CONTENT = (
    semconv.GEN_AI_INPUT_MESSAGES,
    semconv.GEN_AI_OUTPUT_MESSAGES,
    semconv.GEN_AI_SYSTEM_INSTRUCTIONS,
    semconv.GEN_AI_TOOL_DEFINITIONS,
)


class Recorded:
    def __init__(self, **options: Any) -> None:
        self.spans = InMemorySpanExporter()
        self.logs = InMemoryLogRecordExporter()
        self.handle = spanledger.configure(
            export="none",
            additional_span_processors=[SimpleSpanProcessor(self.spans)],
            additional_log_record_processors=[SimpleLogRecordProcessor(self.logs)],
            **options,
        )

    def genai_spans(self) -> list[ReadableSpan]:
        return [s for s in self.spans.get_finished_spans() if semconv.GEN_AI_OPERATION_NAME in (s.attributes or {})]

    def genai_span(self) -> ReadableSpan:
        """The one GenAI span that owns the call's usage."""
        spans = [s for s in self.genai_spans() if semconv.SPANLEDGER_USAGE_OWNER in (s.attributes or {})]
        assert len(spans) == 1, [s.name for s in spans]
        return spans[0]

    def events(self) -> list[ReadableLogRecord]:
        return [record for record in self.logs.get_finished_logs() if record.log_record.event_name == EVENT]


@pytest.fixture
def recorded_factory() -> Iterator[Callable[..., Recorded]]:
    made: list[Recorded] = []

    def make(**options: Any) -> Recorded:
        made.append(Recorded(**options))
        return made[-1]

    yield make
    for recorded in made:
        recorded.handle.shutdown()


def plain(value: Any) -> Any:
    """An event attribute as plain JSON types (the SDK stores sequences as tuples)."""
    if isinstance(value, (list, tuple)):
        return [plain(item) for item in value]
    if isinstance(value, dict) or hasattr(value, "items"):
        return {key: plain(item) for key, item in value.items()}
    return value
