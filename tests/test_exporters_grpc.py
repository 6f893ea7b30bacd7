"""OTLP/gRPC exporter against a real grpcio OTLP server: metadata, gzip, RetryInfo, permanent codes."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import grpc
import pytest
from _otlp_downstream import OtlpGrpcDownstream, make_traces, wait_until
from spanledger_collector._component import ConfigError
from spanledger_collector._exporters import QueuedExporter
from spanledger_collector._registry import EXPORTERS

FAST_RETRY = {"initial_interval": "10ms", "max_interval": "50ms", "max_elapsed_time": "60s"}


@pytest.fixture
def downstream() -> Any:
    server = OtlpGrpcDownstream()
    server.start()
    yield server
    server.stop()


def create(data_dir: Path, **config: Any) -> QueuedExporter:
    config.setdefault("retry_on_failure", FAST_RETRY)
    config.setdefault("tls", {"insecure": True})
    exporter = EXPORTERS["otlp"].from_mapping("otlp/test", config, data_dir)
    exporter.start()
    return exporter


def test_delivers_gzipped_with_metadata(tmp_path: Path, downstream: OtlpGrpcDownstream) -> None:
    exporter = create(tmp_path, endpoint=f"127.0.0.1:{downstream.port}", headers={"dd-api-key": "k"})
    try:
        exporter.consume_traces(make_traces(resources=2, spans=3))
        wait_until(lambda: exporter.stats().sent.get("spans") == 6)
    finally:
        exporter.shutdown()
    assert downstream.span_ids() == list(range(6))
    assert downstream.metadata[0]["dd-api-key"] == "k"


def test_unavailable_is_retried_and_retry_info_honoured(tmp_path: Path, downstream: OtlpGrpcDownstream) -> None:
    downstream.failures += [(grpc.StatusCode.UNAVAILABLE, None), (grpc.StatusCode.RESOURCE_EXHAUSTED, 1.0)]
    exporter = create(tmp_path, endpoint=f"http://127.0.0.1:{downstream.port}")
    try:
        exporter.consume_traces(make_traces(spans=2))
        wait_until(lambda: exporter.stats().sent.get("spans") == 2)
    finally:
        exporter.shutdown()
    _, throttled_at, delivered_at = downstream.attempts
    assert delivered_at - throttled_at >= 0.9  # RetryInfo asked for 1 s; backoff alone is ~10 ms
    assert downstream.span_ids() == [0, 1]


@pytest.mark.parametrize("code", [grpc.StatusCode.INVALID_ARGUMENT, grpc.StatusCode.RESOURCE_EXHAUSTED])
def test_permanent_codes_are_dropped_and_counted(
    tmp_path: Path, downstream: OtlpGrpcDownstream, code: grpc.StatusCode
) -> None:
    downstream.failures.append((code, None))  # RESOURCE_EXHAUSTED without RetryInfo is not retryable
    exporter = create(tmp_path, endpoint=f"127.0.0.1:{downstream.port}")
    try:
        exporter.consume_traces(make_traces(spans=3))
        wait_until(lambda: exporter.stats().send_failed.get("spans") == 3)
        exporter.consume_traces(make_traces(spans=1, start=50))
        wait_until(lambda: exporter.stats().sent.get("spans") == 1)
        assert exporter.stats().send_failed == {"spans": 3}
    finally:
        exporter.shutdown()
    assert len(downstream.attempts) == 2
    assert downstream.span_ids() == [50]


def test_partial_success(tmp_path: Path, downstream: OtlpGrpcDownstream) -> None:
    downstream.partial_rejected = 1
    exporter = create(tmp_path, endpoint=f"127.0.0.1:{downstream.port}")
    try:
        exporter.consume_traces(make_traces(spans=4))
        wait_until(lambda: exporter.stats().send_failed.get("spans") == 1)
        assert exporter.stats().sent == {"spans": 3}
    finally:
        exporter.shutdown()
    assert len(downstream.attempts) == 1


def test_downstream_down_then_back(tmp_path: Path) -> None:
    server = OtlpGrpcDownstream()
    exporter = create(tmp_path, endpoint=f"127.0.0.1:{server.port}")
    try:
        for batch in range(10):
            exporter.consume_traces(make_traces(spans=5, start=batch * 5))
        wait_until(lambda: exporter.stats().queue_size == 10)
        server.start()
        try:
            wait_until(lambda: exporter.stats().sent.get("spans") == 50)
        finally:
            server.stop()
    finally:
        exporter.shutdown()
    assert server.span_ids() == list(range(50))


@pytest.mark.parametrize(
    ("config", "key"),
    [
        ({"endpoint": "127.0.0.1"}, "exporters.otlp/x.endpoint"),
        ({"endpoint": "ftp://h:1"}, "exporters.otlp/x.endpoint"),
        ({"endpoint": "h:1", "tls": {"insecure": "yes"}}, "exporters.otlp/x.tls.insecure"),
        ({"endpoint": "h:1", "tls": {"ca": "x"}}, "exporters.otlp/x.tls.ca"),
    ],
)
def test_bad_config_names_the_key(tmp_path: Path, config: dict[str, Any], key: str) -> None:
    with pytest.raises(ConfigError, match=key.replace(".", r"\.")):
        EXPORTERS["otlp"].from_mapping("otlp/x", config, tmp_path)
