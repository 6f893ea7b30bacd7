"""AWS CloudWatch / X-Ray OTLP exporter: SigV4 verified on the receiving side by recomputing it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from _otlp_downstream import (
    ACCESS_KEY,
    SECRET_KEY,
    SESSION_TOKEN,
    http_downstream,
    make_traces,
    verify_sigv4,
    wait_until,
)
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest
from opentelemetry.proto.logs.v1.logs_pb2 import LogRecord
from spanledger_collector._component import ConfigError
from spanledger_collector._exporters import QueuedExporter
from spanledger_collector._registry import EXPORTERS


@pytest.fixture(autouse=True)
def aws_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    # botocore's default credential chain reads these; nothing else on this machine may leak in.
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", ACCESS_KEY)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", SECRET_KEY)
    monkeypatch.setenv("AWS_SESSION_TOKEN", SESSION_TOKEN)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "no-credentials"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    monkeypatch.delenv("AWS_PROFILE", raising=False)


def create(data_dir: Path, **config: Any) -> QueuedExporter:
    config.setdefault("retry_on_failure", {"initial_interval": "10ms", "max_interval": "50ms"})
    exporter = EXPORTERS["awsotlp"].from_mapping("awsotlp/test", config, data_dir)
    exporter.start()
    return exporter


def test_traces_are_signed_for_xray(tmp_path: Path) -> None:
    with http_downstream() as downstream:
        url = f"{downstream.url}/v1/traces"
        exporter = create(tmp_path, region="eu-west-1", traces_endpoint=url)
        try:
            exporter.consume_traces(make_traces(spans=3))
            wait_until(lambda: exporter.stats().sent.get("spans") == 3)
        finally:
            exporter.shutdown()
        (received,) = downstream.received
        assert received.headers["Content-Encoding"] == "gzip"
        assert received.headers["X-Amz-Security-Token"] == SESSION_TOKEN
        assert "content-encoding" in received.headers["Authorization"]
        assert verify_sigv4(received, url, service="xray", region="eu-west-1")
        assert not verify_sigv4(received, url, service="xray", region="eu-west-1", secret="wrong")
        assert downstream.span_ids() == [0, 1, 2]


def test_logs_are_signed_for_logs_with_group_and_stream(tmp_path: Path) -> None:
    with http_downstream() as downstream:
        url = f"{downstream.url}/v1/logs"
        exporter = create(
            tmp_path, region="us-west-2", logs_endpoint=url, log_group="/app/genai", log_stream="collector-1"
        )
        request = ExportLogsServiceRequest()
        request.resource_logs.add().scope_logs.add().log_records.append(LogRecord(time_unix_nano=1))
        try:
            exporter.consume_logs(request)
            wait_until(lambda: exporter.stats().sent.get("log_records") == 1)
        finally:
            exporter.shutdown()
        (received,) = downstream.received
        assert received.headers["x-aws-log-group"] == "/app/genai"
        assert received.headers["x-aws-log-stream"] == "collector-1"
        assert "x-aws-log-group" in received.headers["Authorization"]
        assert verify_sigv4(received, url, service="logs", region="us-west-2")


def test_every_retry_is_signed_afresh(tmp_path: Path) -> None:
    with http_downstream() as downstream:
        downstream.behaviour.responses.append((503, {"Retry-After": "1"}, b""))
        url = f"{downstream.url}/v1/traces"
        exporter = create(tmp_path, region="us-east-1", traces_endpoint=url)
        try:
            exporter.consume_traces(make_traces(spans=1))
            wait_until(lambda: exporter.stats().sent.get("spans") == 1)
        finally:
            exporter.shutdown()
        (received,) = downstream.received
        assert verify_sigv4(received, url, service="xray", region="us-east-1")


def test_default_endpoints_and_limits(tmp_path: Path) -> None:
    exporter = EXPORTERS["awsotlp"].from_mapping("awsotlp/x", {"region": "ap-south-1"}, tmp_path)
    transport: Any = exporter._transport
    assert transport._endpoints == {
        "traces": "https://xray.ap-south-1.amazonaws.com/v1/traces",
        "metrics": "https://monitoring.ap-south-1.amazonaws.com/v1/metrics",
        "logs": "https://logs.ap-south-1.amazonaws.com/v1/logs",
    }
    assert (exporter._max_request_bytes, exporter._max_request_items) == (5_000_000, 10_000)


@pytest.mark.parametrize(
    ("config", "key"),
    [
        ({}, "exporters.awsotlp/x.region"),
        ({"region": "us-east-1", "max_request_items": 20_000}, "exporters.awsotlp/x.max_request_items"),
        ({"region": "us-east-1", "max_request_size": 6_000_000}, "exporters.awsotlp/x.max_request_size"),
        ({"region": "us-east-1", "log_group": "g"}, "exporters.awsotlp/x.log_stream"),
        ({"region": "us-east-1", "traces_endpoint": "xray"}, "exporters.awsotlp/x.traces_endpoint"),
    ],
)
def test_bad_config_names_the_key(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, config: dict[str, Any], key: str
) -> None:
    monkeypatch.delenv("AWS_REGION", raising=False)
    monkeypatch.delenv("AWS_DEFAULT_REGION", raising=False)
    with pytest.raises(ConfigError, match=key.replace(".", r"\.")):
        EXPORTERS["awsotlp"].from_mapping("awsotlp/x", config, tmp_path)
