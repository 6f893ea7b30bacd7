"""The OTel Logs API side of ``configure()``: the LoggerProvider GenAI events are emitted through.

Only set up when events can be emitted (a capture mode with events, ``emit_event``, or log record processors
given), so an application that never asks for events gets no third exporter. The rules are the tracing
ones: a global LoggerProvider the application set is used and never replaced (log record processors given
to ``configure()`` are added to an SDK one); otherwise spanledger creates one with the resource of its
spans, a ``BatchLogRecordProcessor`` and the OTLP log exporter (``OTEL_EXPORTER_OTLP_LOGS_*`` and the
common variables, read by the exporter), with ``shutdown_on_exit=False``: the bounded exit flush in
``_lifecycle`` covers it.
"""

from __future__ import annotations

import os
from collections.abc import Sequence

from opentelemetry._logs import LoggerProvider, NoOpLoggerProvider
from opentelemetry._logs._internal import ProxyLoggerProvider
from opentelemetry.sdk._logs import LoggerProvider as SdkLoggerProvider
from opentelemetry.sdk._logs import LogRecordProcessor
from opentelemetry.sdk._logs.export import BatchLogRecordProcessor, ConsoleLogRecordExporter, LogRecordExporter
from opentelemetry.sdk.resources import Resource

from ._config import Settings
from ._internal_errors import logger

__all__ = ["events_wanted", "is_unset", "log_exporter", "new_logger_provider"]

_EVENT_MODES = ("event_only", "span_and_event")


def events_wanted(settings: Settings) -> bool:
    """Whether GenAI calls may emit events under ``settings``."""
    if settings.emit_event is not None:
        return settings.emit_event
    return settings.capture_message_content in _EVENT_MODES


def is_unset(provider: object) -> bool:
    # The API hands out a proxy (or, with OTEL_SDK_DISABLED, a no-op) until a real provider is set.
    return isinstance(provider, (ProxyLoggerProvider, NoOpLoggerProvider))


def log_exporter(export: str) -> LogRecordExporter | None:
    if export == "console":
        return ConsoleLogRecordExporter()
    if export != "otlp":
        return None
    protocol = (
        os.environ.get("OTEL_EXPORTER_OTLP_LOGS_PROTOCOL") or os.environ.get("OTEL_EXPORTER_OTLP_PROTOCOL") or ""
    ).strip().lower()
    if protocol == "grpc":
        from opentelemetry.exporter.otlp.proto.grpc._log_exporter import OTLPLogExporter

        return OTLPLogExporter()
    if protocol not in ("", "http/protobuf"):
        logger.error("spanledger: unknown OTLP protocol %r for logs; using http/protobuf", protocol)
    from opentelemetry.exporter.otlp.proto.http._log_exporter import OTLPLogExporter as HttpLogExporter

    return HttpLogExporter()


def new_logger_provider(
    settings: Settings, resource: Resource, processors: Sequence[LogRecordProcessor]
) -> LoggerProvider:
    provider = SdkLoggerProvider(resource=resource, shutdown_on_exit=False)
    exporter = log_exporter(settings.export)
    if exporter is not None:
        provider.add_log_record_processor(BatchLogRecordProcessor(exporter))
    for processor in processors:
        provider.add_log_record_processor(processor)
    return provider
