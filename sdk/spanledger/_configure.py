"""``spanledger.configure()``: tracing and metrics set up from options and the standard ``OTEL_*`` variables.

Providers: if the application already set a global TracerProvider or MeterProvider, spanledger uses it
and never replaces it (it only adds its attribution processor, and any ``additional_span_processors``,
to an SDK TracerProvider; export stays the application's business). A MeterProvider spanledger creates
beside the application's TracerProvider gets that provider's resource, so metrics and spans name the
same service. Otherwise it creates them with a
``BatchSpanProcessor`` and a ``PeriodicExportingMetricReader`` whose OTLP exporters read endpoint,
headers, timeout and compression from ``OTEL_EXPORTER_OTLP_*`` themselves, and sets them as the global
providers. Nothing touches the network at configure time: exporters connect on their first export, on
their own thread, with the SDK's bounded timeouts; a full queue drops spans rather than block the app.
"""

from __future__ import annotations

import os
import threading
import weakref
from collections.abc import Sequence
from typing import Any, Literal

from opentelemetry import _logs, metrics, propagate, trace
from opentelemetry._logs import Logger, LoggerProvider, NoOpLogger
from opentelemetry.metrics import Meter, MeterProvider
from opentelemetry.sdk._logs import LoggerProvider as SdkLoggerProvider
from opentelemetry.sdk._logs import LogRecordProcessor
from opentelemetry.sdk.metrics import MeterProvider as SdkMeterProvider
from opentelemetry.sdk.metrics.export import (
    ConsoleMetricExporter,
    MetricExporter,
    MetricReader,
    PeriodicExportingMetricReader,
)
from opentelemetry.sdk.resources import SERVICE_NAME, Resource
from opentelemetry.sdk.trace import SpanProcessor
from opentelemetry.sdk.trace import TracerProvider as SdkTracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, ConsoleSpanExporter, SpanExporter
from opentelemetry.trace import TracerProvider

from ._config import Settings, options, resolve_settings
from ._internal_errors import internal_errors_logged, logger
from ._lifecycle import track
from ._logs import events_wanted, new_logger_provider
from ._logs import is_unset as logger_provider_unset
from ._manager import manager
from ._state import INSTRUMENTATION_SCOPE, SCHEMA_URL, set_active
from ._telemetry import Telemetry
from ._version import __version__
from ._workflow import AttributionSpanProcessor

__all__ = ["SpanledgerHandle", "configure"]
_PROTOCOL_VARIABLES = ("OTEL_EXPORTER_OTLP_{signal}_PROTOCOL", "OTEL_EXPORTER_OTLP_PROTOCOL")


def _otlp_protocol(signal: str) -> str:
    for template in _PROTOCOL_VARIABLES:
        variable = template.format(signal=signal)
        value = os.environ.get(variable, "").strip().lower()
        if not value:
            continue
        if value in ("grpc", "http/protobuf"):
            return value
        logger.error(
            "spanledger: ignoring %s=%r (expected grpc or http/protobuf); using http/protobuf",
            variable,
            value,
        )
        break
    return "http/protobuf"


def _span_exporter(export: str) -> SpanExporter | None:
    if export == "console":
        return ConsoleSpanExporter()
    if export != "otlp":
        return None
    if _otlp_protocol("TRACES") == "grpc":
        from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter

        return OTLPSpanExporter()
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter as HttpSpanExporter

    return HttpSpanExporter()


def _metric_exporter(export: str) -> MetricExporter | None:
    if export == "console":
        return ConsoleMetricExporter()
    if export != "otlp":
        return None
    if _otlp_protocol("METRICS") == "grpc":
        from opentelemetry.exporter.otlp.proto.grpc.metric_exporter import OTLPMetricExporter

        return OTLPMetricExporter()
    from opentelemetry.exporter.otlp.proto.http.metric_exporter import (
        OTLPMetricExporter as HttpMetricExporter,
    )

    return HttpMetricExporter()


def _is_unset(provider: object) -> bool:
    # The API hands out proxies until a real provider is set.
    return isinstance(provider, (trace.ProxyTracerProvider, metrics._internal._ProxyMeterProvider))


class SpanledgerHandle:
    """What ``configure()`` set up. ``force_flush()`` and ``shutdown()`` are safe to call any number of times.

    ``owns_tracer_provider`` / ``owns_meter_provider`` say whether spanledger created the provider (and so
    flushes and shuts it down) or reused the application's (which it leaves alone).
    """

    def __init__(
        self,
        settings: Settings,
        tracer_provider: TracerProvider,
        meter_provider: MeterProvider | None,
        *,
        owns_tracer_provider: bool,
        owns_meter_provider: bool,
        added_span_processors: Sequence[SpanProcessor],
        logger_provider: LoggerProvider | None = None,
        owns_logger_provider: bool = False,
        added_log_record_processors: Sequence[LogRecordProcessor] = (),
    ) -> None:
        self.settings = settings
        self.tracer_provider = tracer_provider
        self.meter_provider = meter_provider
        self.logger_provider = logger_provider
        """Where GenAI events go; None when no event can be emitted under these settings."""
        self.owns_tracer_provider = owns_tracer_provider
        self.owns_meter_provider = owns_meter_provider
        self.owns_logger_provider = owns_logger_provider
        self._added_span_processors = tuple(added_span_processors)
        self._added_log_record_processors = tuple(added_log_record_processors)
        self._lock = threading.Lock()
        self._shut_down = False
        meter: Meter = (
            meter_provider.get_meter(INSTRUMENTATION_SCOPE, __version__, schema_url=SCHEMA_URL)
            if meter_provider is not None
            else metrics.NoOpMeter(INSTRUMENTATION_SCOPE)
        )
        event_logger: Logger = (
            logger_provider.get_logger(INSTRUMENTATION_SCOPE, __version__, schema_url=SCHEMA_URL)
            if logger_provider is not None
            else NoOpLogger(INSTRUMENTATION_SCOPE)
        )
        self.telemetry = Telemetry(
            tracer=tracer_provider.get_tracer(INSTRUMENTATION_SCOPE, __version__, schema_url=SCHEMA_URL),
            meter=meter,
            settings=settings,
            logger=event_logger,
        )

    @property
    def is_shut_down(self) -> bool:
        return self._shut_down

    def force_flush(self, timeout_millis: int = 30_000) -> bool:
        """Export everything buffered so far; ``True`` if it all went out in time."""
        ok = True
        with internal_errors_logged("force_flush"):
            if self.owns_tracer_provider and isinstance(self.tracer_provider, SdkTracerProvider):
                ok = self.tracer_provider.force_flush(timeout_millis) and ok
            else:
                for processor in self._added_span_processors:
                    ok = processor.force_flush(timeout_millis) and ok
            if self.owns_meter_provider and isinstance(self.meter_provider, SdkMeterProvider):
                ok = self.meter_provider.force_flush(timeout_millis) and ok
            if self.owns_logger_provider and isinstance(self.logger_provider, SdkLoggerProvider):
                ok = self.logger_provider.force_flush(timeout_millis) and ok
            else:
                for log_processor in self._added_log_record_processors:
                    ok = log_processor.force_flush(timeout_millis) and ok
        return ok

    def _hand_over(self) -> None:
        """Make way for a new configure() that takes over this handle's providers."""
        with self._lock:
            self._shut_down = True
        manager.uninstrument()

    def shutdown(self) -> None:
        """Uninstrument, flush and stop what spanledger created. The application's own providers stay up."""
        with self._lock:
            if self._shut_down:
                return
            self._shut_down = True
        global _active
        with _configure_lock:
            if _active is self:
                _active = None
                set_active(None)
                manager.uninstrument()
        with internal_errors_logged("shutdown"):
            if self.owns_tracer_provider and isinstance(self.tracer_provider, SdkTracerProvider):
                self.tracer_provider.shutdown()
            else:
                for processor in self._added_span_processors:
                    processor.shutdown()
        with internal_errors_logged("shutdown"):
            if self.owns_meter_provider and isinstance(self.meter_provider, SdkMeterProvider):
                self.meter_provider.shutdown()
        with internal_errors_logged("shutdown"):
            if self.owns_logger_provider and isinstance(self.logger_provider, SdkLoggerProvider):
                self.logger_provider.shutdown()
            else:
                for log_processor in self._added_log_record_processors:
                    log_processor.shutdown()


_configure_lock = threading.RLock()
_active: SpanledgerHandle | None = None
# Providers spanledger set as the global ones. Once such a handle is shut down the API will not let its
# provider be replaced, so a later configure() builds a fresh provider and hands its tracer/meter to the
# instrumentations instead of reusing the dead one.
_own_global_providers: weakref.WeakSet[Any] = weakref.WeakSet()
# Application providers that already carry our attribution processor (configure() may run again).
_attributed_providers: weakref.WeakSet[Any] = weakref.WeakSet()


def _reusable(provider: object) -> bool:
    return not _is_unset(provider) and provider not in _own_global_providers


def _set_up_tracing(
    settings: Settings, resource: Resource, processors: Sequence[SpanProcessor], previous: SpanledgerHandle | None
) -> tuple[TracerProvider, bool, list[SpanProcessor]]:
    if previous is not None and previous.owns_tracer_provider:
        inherited = previous.tracer_provider
        for processor in processors:
            inherited.add_span_processor(processor)  # type: ignore[attr-defined]
        return inherited, True, list(processors)
    existing = trace.get_tracer_provider()
    if _reusable(existing):
        add = getattr(existing, "add_span_processor", None)
        if add is None:
            logger.warning(
                "spanledger: the application's TracerProvider (%s) cannot take span processors; "
                "workflow and tenant attributes will only be on workflow spans",
                type(existing).__name__,
            )
            return existing, False, []
        if existing not in _attributed_providers:
            add(AttributionSpanProcessor())
            _attributed_providers.add(existing)
        for processor in processors:
            add(processor)
        return existing, False, list(processors)
    provider = SdkTracerProvider(resource=resource, shutdown_on_exit=False)  # see _lifecycle
    provider.add_span_processor(AttributionSpanProcessor())
    exporter = _span_exporter(settings.export)
    if exporter is not None:
        provider.add_span_processor(BatchSpanProcessor(exporter))
    for processor in processors:
        provider.add_span_processor(processor)
    if _is_unset(existing):
        trace.set_tracer_provider(provider)
        _own_global_providers.add(provider)
    return provider, True, list(processors)


def _set_up_metrics(
    settings: Settings, resource: Resource, readers: Sequence[MetricReader], previous: SpanledgerHandle | None
) -> tuple[MeterProvider | None, bool]:
    if not settings.metrics:
        return None, False
    if previous is not None and previous.owns_meter_provider and previous.meter_provider is not None:
        if readers:
            logger.warning("spanledger: metric_readers ignored; configure() was already called and keeps its meters")
        return previous.meter_provider, True
    existing = metrics.get_meter_provider()
    if _reusable(existing):
        if readers:
            logger.warning("spanledger: metric_readers ignored; the application's MeterProvider is used as it is")
        return existing, False
    all_readers = list(readers)
    exporter = _metric_exporter(settings.export)
    if exporter is not None:
        all_readers.append(PeriodicExportingMetricReader(exporter))
    provider = SdkMeterProvider(resource=resource, metric_readers=all_readers, shutdown_on_exit=False)
    if _is_unset(existing):
        metrics.set_meter_provider(provider)
        _own_global_providers.add(provider)
    return provider, True


def _set_up_logs(
    settings: Settings,
    resource: Resource,
    processors: Sequence[LogRecordProcessor],
    previous: SpanledgerHandle | None,
) -> tuple[LoggerProvider | None, bool, list[LogRecordProcessor]]:
    if not processors and not events_wanted(settings):
        return None, False, []
    if previous is not None and previous.owns_logger_provider and previous.logger_provider is not None:
        inherited = previous.logger_provider
        for processor in processors:
            inherited.add_log_record_processor(processor)  # type: ignore[attr-defined]
        return inherited, True, list(processors)
    existing = _logs.get_logger_provider()
    if not logger_provider_unset(existing) and existing not in _own_global_providers:
        add = getattr(existing, "add_log_record_processor", None)
        if add is not None:
            for processor in processors:
                add(processor)
        elif processors:
            logger.warning("spanledger: the application's LoggerProvider cannot take log record processors")
        return existing, False, list(processors) if add is not None else []
    provider = new_logger_provider(settings, resource, processors)
    if logger_provider_unset(existing):
        _logs.set_logger_provider(provider)
        _own_global_providers.add(provider)
    return provider, True, list(processors)


_PROVIDER_OPTIONS = ("service_name", "export")


def _warn_unchangeable(previous: Settings, settings: Settings) -> None:
    changed = [name for name in _PROVIDER_OPTIONS if getattr(previous, name) != getattr(settings, name)]
    if changed:
        logger.warning(
            "spanledger: configure() was already called; %s cannot change without a restart (or shutdown() first)",
            ", ".join(changed),
        )


def configure(
    *,
    service_name: str | None = None,
    export: Literal["otlp", "console", "none"] | None = None,
    metrics: bool | None = None,
    exit_timeout: float | None = None,
    capture_message_content: Literal["no_content", "span_only", "event_only", "span_and_event"] | bool | None = None,
    emit_event: bool | None = None,
    completion_hook: Any = None,
    content_upload_path: str | None = None,
    experimental_metrics: bool | None = None,
    semconv_opt_in: str | None = None,
    http_semconv_opt_in: Literal["http", "http/dup"] | None = None,
    openai_stream_usage: bool | None = None,
    openai_stream_usage_excluded_hosts: Sequence[str] | None = None,
    disabled_instrumentations: Sequence[str] | None = None,
    region: str | None = None,
    availability_zone: str | None = None,
    egress_rules: str | None = None,
    additional_span_processors: Sequence[SpanProcessor] = (),
    metric_readers: Sequence[MetricReader] = (),
    additional_log_record_processors: Sequence[LogRecordProcessor] = (),
    instrument: bool = True,
) -> SpanledgerHandle:
    """Set up tracing and metrics and instrument every supported library that is installed.

    Every option left as ``None`` comes from its environment variable, then its default (see the
    README's configuration table or ``spanledger._config``):

    Args:
        service_name: ``service.name``. Env ``SPANLEDGER_SERVICE_NAME``; else ``OTEL_SERVICE_NAME``.
        export: ``"otlp"``, ``"console"`` or ``"none"``. Env ``SPANLEDGER_EXPORT``, ``OTEL_TRACES_EXPORTER``.
        metrics: record metrics. Env ``SPANLEDGER_METRICS``.
        exit_timeout: seconds the exit waits for spanledger's exporters (default 2). Env
            ``SPANLEDGER_EXIT_TIMEOUT``.
        capture_message_content: where prompts and completions go: ``"no_content"``, ``"span_only"``,
            ``"event_only"``, ``"span_and_event"`` (``True``: span only). Env
            ``SPANLEDGER_CAPTURE_MESSAGE_CONTENT``, ``OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT``.
        emit_event: emit the ``gen_ai.client.inference.operation.details`` event even without content. Env
            ``SPANLEDGER_EMIT_EVENT``, ``OTEL_INSTRUMENTATION_GENAI_EMIT_EVENT``.
        completion_hook: an object with ``on_completion(*, inputs, outputs, system_instruction,
            tool_definitions, span, log_record)``, called with each GenAI call's content. Env
            ``SPANLEDGER_COMPLETION_HOOK`` (``module:name``).
        content_upload_path: a directory each call's content is written to (``ContentUploadHook``). Env
            ``SPANLEDGER_CONTENT_UPLOAD_PATH``, ``OTEL_INSTRUMENTATION_GENAI_UPLOAD_BASE_PATH``.
        experimental_metrics: also record the draft token metrics. Env ``SPANLEDGER_EXPERIMENTAL_METRICS``.
        semconv_opt_in: GenAI attribute naming. Env ``SPANLEDGER_SEMCONV_OPT_IN``, ``OTEL_SEMCONV_STABILITY_OPT_IN``.
        http_semconv_opt_in: HTTP names on httpx spans, ``"http"`` (stable, default) or ``"http/dup"``.
            Env ``SPANLEDGER_HTTP_SEMCONV_OPT_IN``, ``OTEL_SEMCONV_STABILITY_OPT_IN``.
        openai_stream_usage: request stream usage chunks. Env ``SPANLEDGER_OPENAI_STREAM_USAGE``.
        openai_stream_usage_excluded_hosts: host suffixes never sent ``stream_options``.
            Env ``SPANLEDGER_OPENAI_STREAM_USAGE_EXCLUDED_HOSTS``.
        disabled_instrumentations: names not to instrument. Env ``SPANLEDGER_DISABLED_INSTRUMENTATIONS``.
        region: the cloud region this process runs in (egress boundaries). Env ``SPANLEDGER_REGION``,
            ``AWS_REGION``, ``AWS_DEFAULT_REGION``.
        availability_zone: the zone this process runs in. Env ``SPANLEDGER_AVAILABILITY_ZONE``.
        egress_rules: ``PATTERN=TARGET`` rules placing destinations. Env ``SPANLEDGER_EGRESS_RULES``.
        additional_span_processors: more span processors (e.g. a ``SimpleSpanProcessor`` around an
            ``InMemorySpanExporter`` in tests).
        metric_readers: more metric readers (e.g. ``InMemoryMetricReader``); only used when spanledger
            creates the MeterProvider.
        additional_log_record_processors: more log record processors for the GenAI events (e.g. a
            ``SimpleLogRecordProcessor`` around an ``InMemoryLogRecordExporter``).
        instrument: instrument the supported libraries (``spanledger.instrument()``).

    Calling it again with the same options returns the same handle. With different options the new handle
    takes over the providers (``service_name`` and ``export`` keep their first values) and re-instruments
    with the new settings; libraries are never instrumented twice. A bad keyword value raises
    ``ValueError``; bad environment values are logged and ignored.
    """
    given = locals()
    overrides: dict[str, Any] = {option.name: given.get(option.name) for option in options()}
    settings = resolve_settings(overrides)
    global _active
    with _configure_lock:
        previous = _active
        if previous is not None:
            unchanged = not additional_span_processors and not metric_readers and not additional_log_record_processors
            if previous.settings == settings and unchanged:
                if instrument:
                    manager.instrument(previous.telemetry)
                return previous
            _warn_unchangeable(previous.settings, settings)
            previous._hand_over()
        resource = Resource.create({SERVICE_NAME: settings.service_name} if settings.service_name else {})
        tracer_provider, owns_tracer, added = _set_up_tracing(settings, resource, additional_span_processors, previous)
        if not owns_tracer:
            # Our meter describes the same service as the application's spans.
            app_resource = getattr(tracer_provider, "resource", None)
            if isinstance(app_resource, Resource):
                resource = app_resource
        meter_provider, owns_meter = _set_up_metrics(settings, resource, metric_readers, previous)
        logger_provider, owns_logger, added_log = _set_up_logs(
            settings, resource, additional_log_record_processors, previous
        )
        handle = SpanledgerHandle(
            settings,
            tracer_provider,
            meter_provider,
            owns_tracer_provider=owns_tracer,
            owns_meter_provider=owns_meter,
            added_span_processors=added,
            logger_provider=logger_provider,
            owns_logger_provider=owns_logger,
            added_log_record_processors=added_log,
        )
        _active = handle
        set_active(handle.telemetry)
        track(handle)
        if instrument:
            manager.instrument(handle.telemetry)
    if "baggage" not in propagate.get_global_textmap().fields:
        logger.warning(
            "spanledger: the propagators (OTEL_PROPAGATORS=%r) do not include W3C baggage; workflow and "
            "tenant will not reach downstream services",
            os.environ.get("OTEL_PROPAGATORS"),
        )
    return handle

