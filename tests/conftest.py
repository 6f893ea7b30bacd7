"""Shared pytest fixtures.

* ``capture`` (a :class:`Capture`): ``spanledger.configure()`` wired to an in-memory span exporter and
  metric reader, with every installed library instrumented. Use ``capture.spans()`` / ``capture.metrics()``.
* ``clean_telemetry`` (autouse): each test starts and ends with no global OpenTelemetry providers, no
  active spanledger configuration, no instrumentation, and no ``SPANLEDGER_*`` / ``OTEL_*`` variables.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import spanledger
from _recording import metric_points
from opentelemetry import trace
from opentelemetry._logs import _internal as logs_internal
from opentelemetry.metrics import _internal as metrics_internal
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.util._once import Once
from spanledger import _configure, _manager

# The example apps and the local OpenAI-compatible server are importable from tests.
sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "examples"))

# Shared fixtures: ``store``, ``db`` of the billing tests; ``clickhouse_address``, ``clickhouse_client`` (chdb).
pytest_plugins = ["fixtures.usage_store", "fixtures.clickhouse"]


def reset_otel_globals() -> None:
    """Forget the global Tracer/Meter/LoggerProvider (the API only lets them be set once per process)."""
    trace._TRACER_PROVIDER_SET_ONCE = Once()
    trace._TRACER_PROVIDER = None
    metrics_internal._METER_PROVIDER_SET_ONCE = Once()
    metrics_internal._METER_PROVIDER = None
    metrics_internal._PROXY_METER_PROVIDER = metrics_internal._ProxyMeterProvider()
    logs_internal._LOGGER_PROVIDER_SET_ONCE = Once()
    logs_internal._LOGGER_PROVIDER = None


def reset_spanledger() -> None:
    handle = _configure._active
    if handle is not None:
        handle.shutdown()
    _manager.manager.uninstrument()


@pytest.fixture(autouse=True)
def clean_telemetry(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    for name in list(os.environ):
        if name.startswith(("SPANLEDGER_", "OTEL_")):
            monkeypatch.delenv(name)
    reset_spanledger()
    reset_otel_globals()
    yield
    reset_spanledger()
    reset_otel_globals()


@dataclass
class Capture:
    """What ``configure()`` recorded during a test."""

    exporter: InMemorySpanExporter
    metric_reader: InMemoryMetricReader
    handle: spanledger.SpanledgerHandle

    def spans(self) -> list[ReadableSpan]:
        """Finished spans, in the order they ended."""
        return list(self.exporter.get_finished_spans())

    def span(self, name: str) -> ReadableSpan:
        """The one finished span called ``name`` (fails if there are none or several)."""
        found = [span for span in self.spans() if span.name == name]
        assert len(found) == 1, f"expected one span {name!r}, got {[span.name for span in self.spans()]}"
        return found[0]

    def metrics(self) -> dict[str, list[Any]]:
        """Metric name -> its data points (collected now)."""
        return metric_points(self.metric_reader)

    def clear(self) -> None:
        self.exporter.clear()


@pytest.fixture
def capture() -> Iterator[Capture]:
    """``spanledger.configure(export="none")`` recording into memory; every installed library instrumented."""
    exporter = InMemorySpanExporter()
    reader = InMemoryMetricReader()
    handle = spanledger.configure(
        export="none", additional_span_processors=[SimpleSpanProcessor(exporter)], metric_readers=[reader]
    )
    yield Capture(exporter=exporter, metric_reader=reader, handle=handle)
    handle.shutdown()
