"""Component contracts of the collector pipeline (receivers -> processors -> exporters).

Modelled on the OTel Collector's ``component.Component`` and ``consumer.Traces``:

* ``start()`` is called once before any data flows; ``shutdown()`` stops the component, flushes what
  it holds and releases resources. ``shutdown()`` is safe to call twice and without ``start()``.
* ``consume_*`` takes one OTLP export request (the decoded protobuf message). Returning normally means
  the data is accepted: for an exporter with a persistent queue, it is on disk. Raising
  :class:`RetryableError` means "not accepted, try again" (the receiver maps it to gRPC UNAVAILABLE /
  HTTP 503 with the retry delay); :class:`PermanentError` means the data can never be accepted
  (INVALID_ARGUMENT / HTTP 400).
"""

from __future__ import annotations

import re
from typing import NamedTuple, Protocol

from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import ExportMetricsServiceRequest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

__all__ = ["Component", "ComponentId", "ConfigError", "Consumer", "NothingToStart", "PermanentError", "RetryableError"]

_COMPONENT_TYPE = re.compile(r"[a-zA-Z][a-zA-Z0-9_]*")


class ConfigError(Exception):
    """The configuration is invalid; the message names the key (``exporters.otlp/dd.endpoint``)."""


class RetryableError(Exception):
    """Data was not accepted now; the sender should retry after ``retry_after`` seconds (if given)."""

    def __init__(self, message: str, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class PermanentError(Exception):
    """Data can never be accepted; retrying will not help."""


class Component(Protocol):
    def start(self) -> None: ...

    def shutdown(self) -> None: ...


class NothingToStart:
    """The start and shutdown of a component that holds nothing between requests (the OTel Collector's
    ``component.StartFunc``/``ShutdownFunc`` defaults)."""

    def start(self) -> None:
        pass

    def shutdown(self) -> None:
        pass


class Consumer(Component, Protocol):
    def consume_traces(self, request: ExportTraceServiceRequest) -> None: ...

    def consume_metrics(self, request: ExportMetricsServiceRequest) -> None: ...

    def consume_logs(self, request: ExportLogsServiceRequest) -> None: ...


class ComponentId(NamedTuple):
    """``type[/name]``: the factory's type and the instance's name (``batch/small``: type batch, name small)."""

    type: str
    name: str

    @classmethod
    def parse(cls, text: str, where: str) -> ComponentId:
        """Raises ``ConfigError`` naming ``where`` when ``text`` is not ``type[/name]``."""
        component_type, slash, name = str(text).partition("/")
        if not _COMPONENT_TYPE.fullmatch(component_type) or (slash and not name):
            raise ConfigError(f"{where}: {text!r} is not a component id (type[/name])")
        return cls(component_type, name)

    def __str__(self) -> str:
        return f"{self.type}/{self.name}" if self.name else self.type
