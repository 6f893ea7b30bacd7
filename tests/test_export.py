"""configure() exports over real OTLP/HTTP and OTLP/gRPC to local receivers, and copes with no collector."""

from __future__ import annotations

import logging
import socket

import pytest
import spanledger
from otlp_receiver import OtlpGrpcReceiver, OtlpHttpReceiver, Received
from spanledger import semconv


def _record_some_telemetry(handle: spanledger.SpanledgerHandle) -> int:
    counter = handle.telemetry.meter.create_counter("spanledger.test.calls")
    with spanledger.workflow("answer-question", tenant="acme"), handle.telemetry.tracer.start_as_current_span("inner"):
        counter.add(1)
        return 42


def _assert_exported(received: Received) -> None:
    spans = {span.name: span for span in received.wait_for_spans(2)}
    assert set(spans) == {"invoke_workflow answer-question", "inner"}
    inner = spans["inner"]
    assert inner.attributes[semconv.SPANLEDGER_WORKFLOW_NAME] == "answer-question"
    assert inner.attributes[semconv.SPANLEDGER_TENANT_ID] == "acme"
    assert inner.resource[semconv.SERVICE_NAME] == "export-test"
    assert inner.parent_span_id == spans["invoke_workflow answer-question"].span_id
    assert "spanledger.test.calls" in received.metric_names()


@pytest.mark.parametrize("variable", ["OTEL_EXPORTER_OTLP_PROTOCOL", "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL"])
def test_exports_over_otlp_http(monkeypatch: pytest.MonkeyPatch, variable: str) -> None:
    with OtlpHttpReceiver() as receiver:
        monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", receiver.endpoint)
        monkeypatch.setenv(variable, "http/protobuf")
        monkeypatch.setenv("OTEL_EXPORTER_OTLP_HEADERS", "x-tenant-key=secret")
        handle = spanledger.configure(service_name="export-test", instrument=False)
        assert _record_some_telemetry(handle) == 42
        assert handle.force_flush()
        _assert_exported(receiver.received)
        assert receiver.received.headers[0]["x-tenant-key"] == "secret"
        handle.shutdown()


def test_http_protobuf_is_the_default(monkeypatch: pytest.MonkeyPatch) -> None:
    with OtlpHttpReceiver() as receiver:
        monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", receiver.endpoint)
        monkeypatch.setenv("OTEL_SERVICE_NAME", "export-test")
        handle = spanledger.configure(instrument=False)
        _record_some_telemetry(handle)
        handle.force_flush()
        _assert_exported(receiver.received)
        handle.shutdown()


def test_exports_over_otlp_grpc(monkeypatch: pytest.MonkeyPatch) -> None:
    with OtlpGrpcReceiver() as receiver:
        monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", receiver.endpoint)
        monkeypatch.setenv("OTEL_EXPORTER_OTLP_PROTOCOL", "grpc")
        monkeypatch.setenv("OTEL_EXPORTER_OTLP_INSECURE", "true")
        handle = spanledger.configure(service_name="export-test", instrument=False)
        assert _record_some_telemetry(handle) == 42
        assert handle.force_flush()
        _assert_exported(receiver.received)
        handle.shutdown()


def test_bad_protocol_is_logged_naming_the_variable(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    with OtlpHttpReceiver() as receiver:
        monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", receiver.endpoint)
        monkeypatch.setenv("OTEL_EXPORTER_OTLP_PROTOCOL", "carrier-pigeon")
        with caplog.at_level(logging.ERROR, logger="spanledger"):
            handle = spanledger.configure(service_name="export-test", instrument=False)
        assert "OTEL_EXPORTER_OTLP_PROTOCOL" in caplog.text
        _record_some_telemetry(handle)
        handle.force_flush()
        _assert_exported(receiver.received)
        handle.shutdown()


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


@pytest.mark.timeout(60)
@pytest.mark.parametrize("protocol", ["http/protobuf", "grpc"])
def test_unreachable_collector_changes_nothing_for_the_app(monkeypatch: pytest.MonkeyPatch, protocol: str) -> None:
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", f"http://127.0.0.1:{_closed_port()}")
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_PROTOCOL", protocol)
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_TIMEOUT", "1")
    monkeypatch.setenv("OTEL_BSP_SCHEDULE_DELAY", "10")
    monkeypatch.setenv("OTEL_BSP_MAX_QUEUE_SIZE", "64")
    monkeypatch.setenv("OTEL_BSP_MAX_EXPORT_BATCH_SIZE", "16")
    handle = spanledger.configure(service_name="export-test", instrument=False)
    # More spans than the queue holds: the processor drops them instead of blocking the caller.
    results = [_record_some_telemetry(handle) for _ in range(500)]
    assert results == [42] * 500
    assert handle.force_flush(timeout_millis=2_000) in (True, False)
    handle.shutdown()  # bounded by the exporter timeout; pytest-timeout fails the test if it hangs
    handle.shutdown()
