"""Configuration errors stop the collector at start (exit 2) with a message naming the key."""

from __future__ import annotations

import copy
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml
from collector_fixtures import SPANLEDGER, collector_config
from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
from spanledger.semconv import SpanledgerMeterValues as Meter
from spanledger_collector._component import ConfigError
from spanledger_collector._config import DEFAULT_CONFIG, BatchSettings
from spanledger_collector._graph import load_settings, parse_settings
from spanledger_collector._pipeline import Pipeline
from spanledger_collector._registry import PROCESSORS
from test_collector_service import genai_trace


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
        ("receivers.otlp.protocols.http.endpoint", "h:4318²", "receivers.otlp.protocols.http.endpoint: '4318²'"),
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
        ("processors.batch/small", {"send_batch_size": 0}, "processors.batch/small.send_batch_size: expected an"),
        ("processors.batch.send_batch_max_size", 100, "processors.batch.send_batch_max_size: unknown key"),
        ("processors.memory_limiter.spike_limit_mib", 4096, "processors.memory_limiter.spike_limit_mib: must be"),
        ("processors.filter", {"spans": {"exclude": {"match_type": "glob", "span_names": ["x"]}}},
         "processors.filter.spans.exclude.match_type: must be one of ['strict', 'regexp'], not 'glob'"),
        ("processors.filter", {"spans": {"exclude": {}}}, "processors.filter.spans.exclude: give span_names"),
        ("processors.spanledger_cost.price_overrides", "/no/prices.yaml",
         "processors.spanledger_cost.price_overrides: file /no/prices.yaml does not exist"),
        ("processors.batch/", {}, "processors.batch/: 'batch/' is not a component id"),
        ("exporters.otlp/down", {"endpoint": "nowhere"}, "exporters.otlp/down.endpoint: expected host:port"),
        ("exporters.otlphttp/down", {"endpoint": "h:1"}, "exporters.otlphttp/down.endpoint: expected an http://"),
        ("exporters.spanledger_store/second", {}, "exporters.spanledger_store/second: only one store is allowed"),
        ("extensions.oauth2client", {}, "extensions.oauth2client: unknown extension type 'oauth2client'"),
        ("service.extensions", ["bearertokenauth"], "service.extensions: 'bearertokenauth' is not configured"),
        ("service.pipelines.traces.processors", ["batch", "batch"], "traces.processors: 'batch' is listed twice"),
        ("service.pipelines.metrics.processors", ["spanledger_usage"],
         "service.pipelines.metrics.processors: 'spanledger_usage' works on traces pipelines only"),
        ("service.pipelines.traces.exporters", ["otlp/nowhere"],
         "service.pipelines.traces.exporters: 'otlp/nowhere' is not configured under exporters"),
        ("service.pipelines.logs.exporters", ["spanledger_store"], "spanledger_store stores traces only"),
        # (the three below were accepted before: a watcher spinning a core; a token no client could match)
        ("processors.memory_limiter.check_interval", "0s", "processors.memory_limiter.check_interval: must be posi"),
        ("extensions.bearertokenauth", {"token": "tok-1\n"},
         "extensions.bearertokenauth.token: a token has leading or trailing whitespace"),
        ("extensions.bearertokenauth", {"tokens": ["tok-1", " tok-2"]},
         "extensions.bearertokenauth.tokens: a token has leading or trailing whitespace"),
    ],
)  # fmt: skip
def test_bad_config_is_refused_naming_the_key(tmp_path: Path, path: str, value: Any, message: str) -> None:
    with pytest.raises(ConfigError) as error:
        parse_settings(_break(collector_config(tmp_path), path, value))
    assert message in str(error.value)


def test_exporters_sharing_a_queue_file_are_refused(tmp_path: Path) -> None:
    """Ids that differ only in characters a file name replaces would share one queue, and one exporter would send
    the other's data to its own destination. (Failed before: accepted.)"""
    config = _break(collector_config(tmp_path), "exporters.otlphttp/eu west", {"endpoint": "http://127.0.0.1:1"})
    config = _break(config, "exporters.otlphttp/eu_west", {"endpoint": "http://127.0.0.1:2"})
    with pytest.raises(ConfigError, match=r"exporters\.otlphttp/eu_west\.sending_queue: its queue file .* is "
                       r"exporters\.otlphttp/eu west's too"):
        parse_settings(config)
    config["exporters"]["otlphttp/eu_west"]["sending_queue"] = {"directory": str(tmp_path / "elsewhere")}
    parse_settings(config)


def test_a_yaml_error_does_not_quote_the_file(tmp_path: Path) -> None:
    """PyYAML's messages quote the lines around the problem: a token written in the file among them. (Failed
    before: both values of a token given twice were in the message.)"""
    config_path = tmp_path / "twice.yaml"
    config_path.write_text("extensions:\n  bearertokenauth:\n    token: first-secret\n    token: second-secret\n")
    with pytest.raises(ConfigError) as error:
        load_settings(config_path)
    assert "found 'token' twice, line 4, column 5" in str(error.value)
    assert "secret" not in str(error.value)


def test_cost_before_usage_is_refused(tmp_path: Path) -> None:
    config = _break(collector_config(tmp_path), "processors.spanledger_cost", {})
    config = _break(config, "service.pipelines.traces.processors", ["spanledger_cost", "spanledger_usage"])
    with pytest.raises(ConfigError) as error:
        parse_settings(config)
    assert str(error.value) == (
        "service.pipelines.traces.processors: 'spanledger_cost' needs a spanledger_usage processor before it in"
        " this pipeline"
    )


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
    assert settings.processors["batch"] == BatchSettings(send_batch_size=512, timeout_s=0.2)
    defaults = parse_settings(yaml.safe_load(DEFAULT_CONFIG))
    assert defaults.exporters["spanledger_store"].path == "./spanledger.duckdb"
    assert (defaults.admin.host, defaults.admin.port) == ("localhost", 9464)


def test_the_default_traces_pipeline_extracts_and_prices_usage_before_storing() -> None:
    """The embedded defaults, built as the service builds them: the chain stores priced usage facts."""
    defaults = parse_settings(yaml.safe_load(DEFAULT_CONFIG))
    (traces,) = [pipeline for pipeline in defaults.pipelines if pipeline.signal == "traces"]
    assert traces.processors == ("memory_limiter", "batch", "spanledger_usage", "spanledger_cost")
    assert traces.exporters == ("spanledger_store",)
    processors = [
        PROCESSORS[processor_id].create(processor_id, defaults.processors[processor_id])
        for processor_id in traces.processors
    ]
    body = encode_spans(genai_trace()).SerializeToString()
    batch = Pipeline(traces.pipeline_id, "traces", processors=processors).stored_batch(body)
    assert len(batch.spans) == len(genai_trace())
    tokens = [fact for fact in batch.facts if fact.meter == Meter.LLM_OUTPUT_TOKENS.value]
    assert tokens and all(fact.estimated_cost is not None and fact.currency == "USD" for fact in tokens)
    assert batch.data_reads
