"""configure(): options table, providers (own or the application's), handle contract, public API."""

from __future__ import annotations

import inspect
import logging
import re
from pathlib import Path

import pytest
import spanledger
from opentelemetry import metrics, trace
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from spanledger import _config, semconv
from spanledger._config import Settings, resolve_settings

README = Path(__file__).resolve().parent.parent / "README.md"


# -- options ---------------------------------------------------------------------------------------


def test_defaults() -> None:
    settings = resolve_settings({}, {})
    assert settings == Settings()
    assert settings.export == "otlp"
    assert settings.metrics is True
    assert settings.capture_message_content == "no_content"
    assert settings.openai_stream_usage is True
    assert settings.disabled_instrumentations == frozenset()


def test_keyword_beats_environment_beats_default() -> None:
    env = {"SPANLEDGER_EXPORT": "console", "SPANLEDGER_METRICS": "false", "OTEL_TRACES_EXPORTER": "none"}
    assert resolve_settings({}, env).export == "console"
    assert resolve_settings({"export": "none"}, env).export == "none"
    assert resolve_settings({}, {"OTEL_TRACES_EXPORTER": "none"}).export == "none"
    assert resolve_settings({}, env).metrics is False
    assert resolve_settings({"metrics": True}, env).metrics is True


def test_every_option_has_a_spanledger_variable_and_documentation() -> None:
    for option in _config.options():
        assert option.env_vars[0] == "SPANLEDGER_" + option.name.upper()
        assert option.doc, f"option {option.name} needs doc= in spanledger/_config.py"


@pytest.mark.parametrize(
    ("env", "expected"),
    [
        ({"OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT": "true"}, "span_only"),
        ({"OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT": "SPAN_AND_EVENT"}, "span_and_event"),
        ({"OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT": "EVENT_ONLY"}, "event_only"),
        ({"OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT": "NO_CONTENT"}, "no_content"),
        (
            {"SPANLEDGER_CAPTURE_MESSAGE_CONTENT": "0", "OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT": "1"},
            "no_content",
        ),
    ],
)
def test_capture_message_content_variables(env: dict[str, str], expected: str) -> None:
    assert resolve_settings({}, env).capture_message_content == expected


def test_semconv_opt_in_is_picked_from_the_otel_list() -> None:
    env = {"OTEL_SEMCONV_STABILITY_OPT_IN": "http, gen_ai_latest_experimental/dup"}
    assert resolve_settings({}, env).semconv_opt_in == "gen_ai_latest_experimental/dup"
    assert resolve_settings({}, {"OTEL_SEMCONV_STABILITY_OPT_IN": "http"}).semconv_opt_in == ""


def test_lists_are_comma_separated() -> None:
    env = {
        "SPANLEDGER_DISABLED_INSTRUMENTATIONS": "openai, httpx,",
        "SPANLEDGER_OPENAI_STREAM_USAGE_EXCLUDED_HOSTS": ".azure.com,.local",
    }
    settings = resolve_settings({}, env)
    assert settings.disabled_instrumentations == {"openai", "httpx"}
    assert settings.openai_stream_usage_excluded_hosts == (".azure.com", ".local")


def test_standard_disabled_instrumentations_variable_counts_beside_ours() -> None:
    both = {"SPANLEDGER_DISABLED_INSTRUMENTATIONS": "openai", "OTEL_PYTHON_DISABLED_INSTRUMENTATIONS": "httpx,botocore"}
    assert resolve_settings({}, both).disabled_instrumentations == {"openai", "httpx", "botocore"}
    standard = {"OTEL_PYTHON_DISABLED_INSTRUMENTATIONS": "openai"}
    assert resolve_settings({}, standard).disabled_instrumentations == {"openai"}


def test_standard_disabled_instrumentations_variable_is_honoured(monkeypatch: pytest.MonkeyPatch) -> None:
    import httpx  # noqa: F401
    import openai  # noqa: F401

    monkeypatch.setenv("OTEL_PYTHON_DISABLED_INSTRUMENTATIONS", "openai")
    spanledger.configure(export="none")
    assert "openai" not in spanledger._manager.manager.active
    assert "httpx" in spanledger._manager.manager.active


def test_bad_environment_value_is_logged_naming_the_variable(caplog: pytest.LogCaptureFixture) -> None:
    env = {
        "SPANLEDGER_METRICS": "maybe",
        "SPANLEDGER_EXPORT": "carrier-pigeon",
        "SPANLEDGER_SEMCONV_OPT_IN": "gen_ai_x",
    }
    with caplog.at_level(logging.ERROR, logger="spanledger"):
        settings = resolve_settings({}, env)
    assert settings == Settings()
    for variable in env:
        assert variable in caplog.text
    assert "'maybe'" in caplog.text and "expected one of otlp, console, none" in caplog.text


def test_bad_keyword_raises() -> None:
    with pytest.raises(ValueError, match="export='carrier-pigeon'"):
        spanledger.configure(export="carrier-pigeon")  # type: ignore[arg-type]


def test_configure_takes_every_option_as_a_keyword() -> None:
    parameters = inspect.signature(spanledger.configure).parameters
    for option in _config.options():
        assert parameters[option.name].kind is inspect.Parameter.KEYWORD_ONLY, option.name
        assert option.name in (spanledger.configure.__doc__ or ""), f"document {option.name} in configure()"


def test_environment_only_configure(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SPANLEDGER_EXPORT", "none")
    monkeypatch.setenv("SPANLEDGER_CAPTURE_MESSAGE_CONTENT", "true")
    monkeypatch.setenv("SPANLEDGER_SERVICE_NAME", "from-env")
    handle = spanledger.configure(instrument=False)
    assert handle.settings.capture_message_content == "span_only"
    assert handle.telemetry.settings is handle.settings
    assert isinstance(handle.tracer_provider, TracerProvider)
    assert handle.tracer_provider.resource.attributes[semconv.SERVICE_NAME] == "from-env"


def test_otel_service_name_and_resource_attributes_are_read_by_the_sdk(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OTEL_SERVICE_NAME", "otel-name")
    monkeypatch.setenv("OTEL_RESOURCE_ATTRIBUTES", "deployment.environment.name=test")
    handle = spanledger.configure(export="none", instrument=False)
    assert isinstance(handle.tracer_provider, TracerProvider)
    attributes = handle.tracer_provider.resource.attributes
    assert attributes[semconv.SERVICE_NAME] == "otel-name"
    assert attributes["deployment.environment.name"] == "test"


# -- providers and handle ----------------------------------------------------------------------------


def test_sets_global_providers_when_none_exist() -> None:
    handle = spanledger.configure(export="none", instrument=False)
    assert handle.owns_tracer_provider and handle.owns_meter_provider
    assert trace.get_tracer_provider() is handle.tracer_provider
    assert metrics.get_meter_provider() is handle.meter_provider


def test_application_providers_are_reused_not_replaced() -> None:
    app_exporter = InMemorySpanExporter()
    app_tracer_provider = TracerProvider(resource=Resource.create({"service.name": "app"}))
    app_tracer_provider.add_span_processor(SimpleSpanProcessor(app_exporter))
    app_reader = InMemoryMetricReader()
    app_meter_provider = MeterProvider(metric_readers=[app_reader])
    trace.set_tracer_provider(app_tracer_provider)
    metrics.set_meter_provider(app_meter_provider)

    handle = spanledger.configure(instrument=False)  # export=otlp would add an exporter to our own provider only
    assert handle.tracer_provider is app_tracer_provider and not handle.owns_tracer_provider
    assert handle.meter_provider is app_meter_provider and not handle.owns_meter_provider
    assert trace.get_tracer_provider() is app_tracer_provider
    with spanledger.workflow("w", tenant="acme"), trace.get_tracer("app").start_as_current_span("app-span"):
        handle.telemetry.meter.create_counter("spanledger.test.calls").add(1)
    (app_span,) = [span for span in app_exporter.get_finished_spans() if span.name == "app-span"]
    assert app_span.attributes is not None and app_span.attributes[semconv.SPANLEDGER_TENANT_ID] == "acme"
    handle.shutdown()
    # The application's providers keep working after spanledger shuts down.
    with trace.get_tracer("app").start_as_current_span("later"):
        pass
    assert [span.name for span in app_exporter.get_finished_spans()][-1] == "later"
    assert app_reader.get_metrics_data() is not None

    # Configuring again does not stack a second attribution processor on the application's provider.
    spanledger.configure(instrument=False, service_name="again")
    processors = app_tracer_provider._active_span_processor._span_processors
    assert sum(type(p).__name__ == "AttributionSpanProcessor" for p in processors) == 1


def test_own_meter_provider_takes_the_resource_of_the_applications_tracer_provider() -> None:
    trace.set_tracer_provider(TracerProvider(resource=Resource.create({"service.name": "app", "team": "ml"})))
    reader = InMemoryMetricReader()
    handle = spanledger.configure(export="none", metric_readers=[reader], instrument=False)
    assert handle.owns_meter_provider and not handle.owns_tracer_provider
    handle.telemetry.meter.create_counter("spanledger.test.calls").add(1)
    data = reader.get_metrics_data()
    assert data is not None
    resource = data.resource_metrics[0].resource.attributes
    assert resource["service.name"] == "app" and resource["team"] == "ml"


def test_application_provider_without_add_span_processor_is_used_as_is(caplog: pytest.LogCaptureFixture) -> None:
    class VendorTracerProvider(trace.NoOpTracerProvider):
        pass

    vendor = VendorTracerProvider()
    trace.set_tracer_provider(vendor)
    with caplog.at_level(logging.WARNING, logger="spanledger"):
        handle = spanledger.configure(export="none", instrument=False)
    assert handle.tracer_provider is vendor
    assert "cannot take span processors" in caplog.text
    with spanledger.workflow("w"):
        pass


def test_metrics_off() -> None:
    handle = spanledger.configure(export="none", metrics=False, instrument=False)
    assert handle.meter_provider is None
    handle.telemetry.meter.create_counter("spanledger.test.calls").add(1)


def test_shutdown_and_force_flush_are_safe_twice() -> None:
    exporter = InMemorySpanExporter()
    handle = spanledger.configure(
        export="console", additional_span_processors=[SimpleSpanProcessor(exporter)], instrument=False
    )
    with spanledger.workflow("w"):
        pass
    assert handle.force_flush() and handle.force_flush()
    handle.shutdown()
    handle.shutdown()
    assert handle.is_shut_down
    assert handle.force_flush() in (True, False)
    assert [span.name for span in exporter.get_finished_spans()] == ["invoke_workflow w"]


def test_configure_after_shutdown_records_again() -> None:
    spanledger.configure(export="none", instrument=False).shutdown()
    exporter = InMemorySpanExporter()
    handle = spanledger.configure(
        export="none", additional_span_processors=[SimpleSpanProcessor(exporter)], instrument=False
    )
    with spanledger.workflow("again"):
        pass
    assert handle.owns_tracer_provider
    assert [span.name for span in exporter.get_finished_spans()] == ["invoke_workflow again"]


# -- public API -------------------------------------------------------------------------------------


def test_all_is_sorted_and_resolves() -> None:
    assert spanledger.__all__ == sorted(spanledger.__all__)
    for name in spanledger.__all__:
        assert getattr(spanledger, name) is not None, name
    public = {name for name in vars(spanledger) if not name.startswith("_") and name not in {"auto"}}
    submodules = {name for name in public if inspect.ismodule(getattr(spanledger, name))} - {"semconv"}
    assert public - submodules == set(spanledger.__all__) - {"__version__"}


# -- README -----------------------------------------------------------------------------------------


def _readme_table() -> str:
    text = README.read_text()
    match = re.search(r"<!-- options:start -->\n(.*?)<!-- options:end -->", text, re.S)
    assert match, "README.md needs the generated configuration table between the options markers"
    return match.group(1)


def test_readme_configuration_table_matches_the_code() -> None:
    assert _readme_table() == _config.options_markdown(), (
        "README configuration table is stale; regenerate with: "
        ".venv/bin/python -c 'from spanledger._config import options_markdown; print(options_markdown(), end=\"\")'"
    )


def test_configure_again_keeps_the_global_providers_alive(caplog: pytest.LogCaptureFixture) -> None:
    first = spanledger.configure(export="none", instrument=False)
    exporter = InMemorySpanExporter()
    with caplog.at_level(logging.WARNING, logger="spanledger"):
        second = spanledger.configure(
            export="console",
            capture_message_content=True,
            additional_span_processors=[SimpleSpanProcessor(exporter)],
            instrument=False,
        )
    assert "export cannot change" in caplog.text
    assert first.is_shut_down and second.telemetry.settings.capture_message_content
    assert second.tracer_provider is first.tracer_provider is trace.get_tracer_provider()
    assert second.meter_provider is first.meter_provider is metrics.get_meter_provider()
    with trace.get_tracer("app").start_as_current_span("still-recorded"):
        pass
    first.shutdown()  # the superseded handle no longer owns anything
    with trace.get_tracer("app").start_as_current_span("after-old-shutdown"):
        pass
    assert [span.name for span in exporter.get_finished_spans()] == ["still-recorded", "after-old-shutdown"]
