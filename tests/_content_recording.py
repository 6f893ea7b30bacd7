"""What the content-capture tests read: one ``spanledger.configure`` with in-memory span and log exporters."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import _recording
import pytest
from opentelemetry.sdk._logs import ReadableLogRecord
from opentelemetry.sdk._logs.export import InMemoryLogRecordExporter, SimpleLogRecordProcessor
from opentelemetry.sdk.trace import ReadableSpan
from spanledger import semconv

__all__ = ["CONTENT", "EVENT", "Recorded", "plain", "recorded_factory", "span_event"]

EVENT = semconv.EVENT_GEN_AI_CLIENT_INFERENCE_OPERATION_DETAILS
CONTENT = (
    semconv.GEN_AI_INPUT_MESSAGES,
    semconv.GEN_AI_OUTPUT_MESSAGES,
    semconv.GEN_AI_SYSTEM_INSTRUCTIONS,
    semconv.GEN_AI_TOOL_DEFINITIONS,
)


class Recorded(_recording.Recorded):
    """The shared recording, plus the log records (the content event)."""

    def __init__(self, **options: Any) -> None:
        self.logs = InMemoryLogRecordExporter()
        super().__init__(additional_log_record_processors=[SimpleLogRecordProcessor(self.logs)], **options)

    def genai_span(self) -> ReadableSpan:
        """The one GenAI span that owns the call's usage."""
        spans = [s for s in self.llm_spans() if semconv.SPANLEDGER_USAGE_OWNER in (s.attributes or {})]
        assert len(spans) == 1, [s.name for s in spans]
        return spans[0]

    def events(self) -> list[ReadableLogRecord]:
        return [record for record in self.logs.get_finished_logs() if record.log_record.event_name == EVENT]


def span_event(recorded: Recorded, span: ReadableSpan, expected: bool) -> dict[str, Any] | None:
    """The attributes of ``span``'s content event when one is ``expected`` (checked: exactly one, on the span's
    trace and span); None when not (checked: none)."""
    events = recorded.events()
    assert len(events) == int(expected)
    if not expected:
        return None
    record = events[0].log_record
    assert (record.trace_id, record.span_id) == (span.context.trace_id, span.context.span_id)
    return dict(record.attributes or {})


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
