"""Configuration errors stop the collector at start (exit 2) with a message naming the key."""

from __future__ import annotations

import copy
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml
from collector_fixtures import SPANLEDGER, collector_config
from spanledger_collector._component import ConfigError
from spanledger_collector._config import DEFAULT_CONFIG, parse_settings


def _break(config: dict[str, Any], path: str, value: Any) -> dict[str, Any]:
    broken = copy.deepcopy(config)
    *parents, last = path.split(".")
    node = broken
    for key in parents:
        node = node.setdefault(key, {})
    node[last] = value
    return broken


@pytest.mark.parametrize(
    ("path", "value", "message"),
    [
        ("receivers.otlp.protocols.grpc.endpont", "x:1", "receivers.otlp.protocols.grpc.endpont: unknown key"),
        ("receivers.otlp.protocols.http.endpoint", "nope", "protocols.http.endpoint: expected host:port"),
        ("receivers.otlp.protocols.http.endpoint", "h:99999", "receivers.otlp.protocols.http.endpoint: '99999'"),
        ("processors.batch.send_batch_size", -1, "processors.batch.send_batch_size: expected an integer >= 1"),
        ("processors.memory_limiter.check_interval", "soon", "processors.memory_limiter.check_interval: expected a"),
        ("processors.sampler", {}, "processors.sampler: unknown processor type"),
        ("exporters.kafka", {}, "exporters.kafka: unknown exporter type 'kafka'"),
        ("service.pipelines.traces.processors", ["missing"], "service.pipelines.traces.processors: 'missing' is not"),
        ("service.pipelines.spans", {"receivers": ["otlp"]}, "service.pipelines.spans: unknown pipeline type"),
        ("service.telemetry.metrics.address", 9464, "service.telemetry.metrics.address: expected host:port"),
        ("receivers.otlp.protocols.grpc.tls", {"cert_file": "/no/cert.pem", "key_file": "/no/key.pem"},
         "receivers.otlp.protocols.grpc.tls.cert_file: file /no/cert.pem does not exist"),
        ("receivers.otlp.protocols.http.auth", {"authenticator": "bearertokenauth"},
         "receivers.otlp.protocols.http.auth.authenticator: unknown authenticator"),
        ("exporters.spanledger_store.path", "${env:SPANLEDGER_TEST_UNSET_VARIABLE}",
         "exporters.spanledger_store.path: environment variable SPANLEDGER_TEST_UNSET_VARIABLE is not set"),
        ("exporters.spanledger_store.retention", "90d",
         "exporters.spanledger_store.retention: expected a duration such as 200ms, 5s or 1m, got '90d'"),
        ("exporters.spanledger_store.commit_interval", "-1s",
         "exporters.spanledger_store.commit_interval: expected a duration such as 200ms, 5s or 1m, got '-1s'"),
        ("colour", "blue", "colour: unknown key"),
    ],
)  # fmt: skip
def test_bad_config_is_refused_naming_the_key(tmp_path: Path, path: str, value: Any, message: str) -> None:
    with pytest.raises(ConfigError) as error:
        parse_settings(_break(collector_config(tmp_path), path, value))
    assert message in str(error.value)


def test_cli_exits_2_with_the_message(tmp_path: Path) -> None:
    config_path = tmp_path / "bad.yaml"
    config_path.write_text(yaml.safe_dump(_break(collector_config(tmp_path), "processors.batch.timeout", "later")))
    result = subprocess.run(
        [str(SPANLEDGER), "collector", "--config", str(config_path)], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 2
    assert "processors.batch.timeout: expected a duration" in result.stderr
    assert str(config_path) in result.stderr
    config_path.write_text("receivers: [unclosed")
    result = subprocess.run(
        [str(SPANLEDGER), "collector", "--config", str(config_path)], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 2
    assert "not valid YAML" in result.stderr


def test_env_expansion_and_defaults(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SPANLEDGER_TEST_PORT", "4999")
    endpoint = "0.0.0.0:${env:SPANLEDGER_TEST_PORT}"
    config = _break(collector_config(tmp_path), "receivers.otlp.protocols.grpc.endpoint", endpoint)
    config = _break(config, "processors.batch.send_batch_size", "${env:SPANLEDGER_TEST_SIZE:-512}")
    settings = parse_settings(config)
    grpc = settings.receivers["otlp"].grpc
    assert grpc is not None and grpc.port == 4999
    assert settings.batch.send_batch_size == 512
    defaults = parse_settings(yaml.safe_load(DEFAULT_CONFIG))
    assert defaults.store_path == "./spanledger.duckdb"
    assert (defaults.admin_host, defaults.admin_port) == ("localhost", 9464)
    assert defaults.extract_usage
