"""OTLP/HTTP exporter against a real local OTLP/HTTP server: headers, gzip, retries, drops, outages."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest
from _otlp_downstream import free_port, http_downstream, make_traces, wait_until
from google.rpc import status_pb2
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceResponse
from spanledger_collector._component import ConfigError, RetryableError
from spanledger_collector._exporters import QueuedExporter
from spanledger_collector._exporters._http import parse_retry_after
from spanledger_collector._registry import EXPORTERS

FAST_RETRY = {"initial_interval": "10ms", "max_interval": "50ms", "max_elapsed_time": "60s"}


def create(data_dir: Path, **config: Any) -> QueuedExporter:
    config.setdefault("retry_on_failure", FAST_RETRY)
    exporter = EXPORTERS["otlphttp"].from_mapping("otlphttp/test", config, data_dir)
    exporter.start()
    return exporter


def test_delivers_with_datadog_headers_and_gzip(tmp_path: Path) -> None:
    with http_downstream() as downstream:
        exporter = create(
            tmp_path,
            endpoint=downstream.url,
            headers={"dd-api-key": "secret-key", "dd-otlp-source": "llmobs"},
        )
        try:
            exporter.consume_traces(make_traces(spans=5))
            wait_until(lambda: exporter.stats().sent.get("spans") == 5)
        finally:
            exporter.shutdown()
        (received,) = downstream.received
        assert received.path == "/v1/traces"
        assert received.headers["dd-api-key"] == "secret-key"
        assert received.headers["dd-otlp-source"] == "llmobs"
        assert received.headers["Content-Encoding"] == "gzip"
        assert received.headers["Content-Type"] == "application/x-protobuf"
        assert downstream.span_ids() == [0, 1, 2, 3, 4]
        assert exporter.stats().queue_size == 0


def test_splits_to_the_size_limit_keeping_everything(tmp_path: Path) -> None:
    with http_downstream() as downstream:
        exporter = create(tmp_path, endpoint=downstream.url, compression="none", max_request_size=20_000)
        try:
            exporter.consume_traces(make_traces(resources=3, scopes=2, spans=40, attr_bytes=200))
            wait_until(lambda: exporter.stats().sent.get("spans") == 240)
        finally:
            exporter.shutdown()
        assert len(downstream.received) > 1
        assert all(len(item.raw_body) <= 20_000 for item in downstream.received)
        assert downstream.span_ids() == list(range(240))


@pytest.mark.parametrize(("value", "seconds"), [("7", 7.0), (" 7 ", 7.0), ("²", None), ("soon", None), ("", None)])
def test_retry_after_is_seconds_or_a_date_and_anything_else_is_ignored(value: str, seconds: float | None) -> None:
    assert parse_retry_after(value) == seconds


def test_retry_after_is_honoured(tmp_path: Path) -> None:
    with http_downstream() as downstream:
        downstream.behaviour.responses.append((503, {"Retry-After": "1"}, b"busy"))
        exporter = create(tmp_path, endpoint=downstream.url)
        try:
            exporter.consume_traces(make_traces(spans=3))
            wait_until(lambda: exporter.stats().sent.get("spans") == 3)
        finally:
            exporter.shutdown()
        refused_at, delivered_at = downstream.attempts
        # Backoff alone would have retried after ~10 ms; the server asked for a second.
        assert delivered_at - refused_at >= 0.9
        assert downstream.span_ids() == [0, 1, 2]


def test_permanent_error_is_dropped_and_counted_and_the_queue_moves_on(tmp_path: Path) -> None:
    status = status_pb2.Status(code=3, message="span 7 has a bad trace id").SerializeToString()
    with http_downstream() as downstream:
        downstream.behaviour.responses.append((400, {"Content-Type": "application/x-protobuf"}, status))
        exporter = create(tmp_path, endpoint=downstream.url)
        try:
            exporter.consume_traces(make_traces(spans=4))
            wait_until(lambda: exporter.stats().send_failed.get("spans") == 4)
            exporter.consume_traces(make_traces(spans=2, start=100))
            wait_until(lambda: exporter.stats().sent.get("spans") == 2)
            stats = exporter.stats()
        finally:
            exporter.shutdown()
        assert stats.send_failed == {"spans": 4}
        assert stats.queue_size == 0
        assert len(downstream.attempts) == 2  # the 400 was not retried
        assert downstream.span_ids() == [100, 101]


def test_partial_success_counts_rejected_spans_and_is_not_retried(tmp_path: Path) -> None:
    response = ExportTraceServiceResponse()
    response.partial_success.rejected_spans = 2
    response.partial_success.error_message = "2 spans older than 14 days"
    with http_downstream() as downstream:
        downstream.behaviour.success_body = response.SerializeToString()
        exporter = create(tmp_path, endpoint=downstream.url)
        try:
            exporter.consume_traces(make_traces(spans=5))
            wait_until(lambda: exporter.stats().send_failed.get("spans") == 2)
            stats = exporter.stats()
        finally:
            exporter.shutdown()
        assert stats.sent == {"spans": 3}
        assert len(downstream.attempts) == 1


def test_downstream_down_for_a_while_then_back_delivers_everything(tmp_path: Path) -> None:
    port = free_port()
    exporter = create(tmp_path, endpoint=f"http://127.0.0.1:{port}")
    try:
        for batch in range(20):
            exporter.consume_traces(make_traces(spans=10, start=batch * 10))
        time.sleep(0.3)  # let the sender fail against the closed port a few times
        assert exporter.stats().queue_size == 20
        assert exporter.stats().sent == {}
        with http_downstream(port) as downstream:
            wait_until(lambda: exporter.stats().sent.get("spans") == 200)
            assert downstream.span_ids() == list(range(200))
        assert exporter.stats().send_failed == {}
    finally:
        exporter.shutdown()


def test_queue_survives_a_restart(tmp_path: Path) -> None:
    port = free_port()
    first = create(tmp_path, endpoint=f"http://127.0.0.1:{port}")
    first.consume_traces(make_traces(spans=7))
    first.shutdown()
    with http_downstream(port) as downstream:
        second = create(tmp_path, endpoint=f"http://127.0.0.1:{port}")
        try:
            assert second.stats().queue_size == 1
            wait_until(lambda: second.stats().sent.get("spans") == 7)
        finally:
            second.shutdown()
        assert downstream.span_ids() == list(range(7))


def test_full_queue_refuses_with_a_retryable_error(tmp_path: Path) -> None:
    exporter = create(tmp_path, endpoint=f"http://127.0.0.1:{free_port()}", sending_queue={"queue_size": 2})
    try:
        exporter.consume_traces(make_traces(spans=1))
        exporter.consume_traces(make_traces(spans=1))
        with pytest.raises(RetryableError) as refused:
            exporter.consume_traces(make_traces(spans=3))
        assert refused.value.retry_after
        stats = exporter.stats()
        assert (stats.queue_size, stats.queue_capacity, stats.enqueue_failed) == (2, 2, {"spans": 3})
    finally:
        exporter.shutdown()


def test_gives_up_after_max_elapsed_time_and_counts_the_loss(tmp_path: Path) -> None:
    retry = {"initial_interval": "10ms", "max_interval": "20ms", "max_elapsed_time": "200ms"}
    exporter = create(tmp_path, endpoint=f"http://127.0.0.1:{free_port()}", retry_on_failure=retry)
    try:
        exporter.consume_traces(make_traces(spans=6))
        wait_until(lambda: exporter.stats().send_failed.get("spans") == 6)
        assert exporter.stats().queue_size == 0
    finally:
        exporter.shutdown()


def test_shutdown_is_safe_twice_and_without_start(tmp_path: Path) -> None:
    exporter = EXPORTERS["otlphttp"].from_mapping("otlphttp/idle", {"endpoint": "http://127.0.0.1:1"}, tmp_path)
    exporter.shutdown()
    exporter.shutdown()
    with pytest.raises(RetryableError):
        exporter.consume_traces(make_traces())


def test_per_signal_endpoint_only(tmp_path: Path) -> None:
    with http_downstream() as downstream:
        exporter = create(tmp_path, traces_endpoint=f"{downstream.url}/custom/traces")
        try:
            exporter.consume_traces(make_traces(spans=1))
            wait_until(lambda: exporter.stats().sent.get("spans") == 1)
        finally:
            exporter.shutdown()
        assert downstream.received[0].path == "/custom/traces"


@pytest.mark.parametrize(
    ("config", "key"),
    [
        ({}, "exporters.otlphttp/x.endpoint"),
        ({"endpoint": "localhost:4318"}, "exporters.otlphttp/x.endpoint"),
        ({"endpoint": "http://h:1", "compresion": "gzip"}, "exporters.otlphttp/x.compresion"),
        ({"endpoint": "http://h:1", "compression": "zstd"}, "exporters.otlphttp/x.compression"),
        ({"endpoint": "http://h:1", "timeout": "soon"}, "exporters.otlphttp/x.timeout"),
        ({"endpoint": "http://h:1", "headers": {"bad header": "1"}}, "exporters.otlphttp/x.headers"),
        ({"endpoint": "http://h:1", "retry_on_failure": {"multiplier": 0.5}}, "exporters.otlphttp/x.retry_on_failure"),
        ({"endpoint": "http://h:1", "sending_queue": {"enabled": False}}, "exporters.otlphttp/x.sending_queue.enabled"),
        ({"endpoint": "http://h:1", "sending_queue": {"size": 3}}, "exporters.otlphttp/x.sending_queue.size"),
    ],
)
def test_bad_config_names_the_key(tmp_path: Path, config: dict[str, Any], key: str) -> None:
    with pytest.raises(ConfigError, match=key.replace("/", "/").replace(".", r"\.")):
        EXPORTERS["otlphttp"].from_mapping("otlphttp/x", config, tmp_path)


def test_one_bad_request_does_not_take_down_the_requests_merged_with_it(tmp_path: Path) -> None:
    port = free_port()
    exporter = create(tmp_path, endpoint=f"http://127.0.0.1:{port}")
    try:
        for batch in range(3):  # queued while the downstream is down; sent merged as one request
            exporter.consume_traces(make_traces(spans=2, start=batch * 2))
        with http_downstream(port) as downstream:
            downstream.behaviour.responses.append((400, {}, b"bad"))
            wait_until(lambda: exporter.stats().sent.get("spans") == 6)
            assert downstream.span_ids() == list(range(6))
            assert len(downstream.received) == 3  # retried one by one after the merged request's 400
        assert exporter.stats().send_failed == {}
    finally:
        exporter.shutdown()


def test_requests_queued_during_an_outage_go_out_merged(tmp_path: Path) -> None:
    port = free_port()
    exporter = create(tmp_path, endpoint=f"http://127.0.0.1:{port}", max_request_items=25)
    try:
        for batch in range(10):
            exporter.consume_traces(make_traces(spans=10, start=batch * 10))
        with http_downstream(port) as downstream:
            wait_until(lambda: exporter.stats().sent.get("spans") == 100)
            assert downstream.span_ids() == list(range(100))
            assert [len(request.resource_spans) for request in downstream.traces()] == [2, 2, 2, 2, 2]
    finally:
        exporter.shutdown()


def test_datadog_intake_defaults_to_its_size_limit(tmp_path: Path) -> None:
    datadog = EXPORTERS["otlphttp"].from_mapping(
        "otlphttp/datadog",
        {"traces_endpoint": "https://otlp.datadoghq.com/v1/traces", "headers": {"dd-api-key": "k"}},
        tmp_path,
    )
    other = EXPORTERS["otlphttp"].from_mapping("otlphttp/other", {"endpoint": "https://otel.example.com"}, tmp_path)
    assert datadog._max_request_bytes == 3_200_000
    assert other._max_request_bytes == 4 * 1024 * 1024


def test_empty_requests_are_not_queued(tmp_path: Path) -> None:
    exporter = create(tmp_path, endpoint=f"http://127.0.0.1:{free_port()}")
    try:
        exporter.consume_traces(make_traces(spans=0))
        assert exporter.stats().queue_size == 0
    finally:
        exporter.shutdown()
