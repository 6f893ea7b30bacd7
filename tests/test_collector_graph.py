"""The collector's component graph: named processor instances with their own settings, in the configured
order, in several pipelines; references checked; exporters checked before any port is opened.

Real collectors (in-process, or ``spanledger collector`` as a subprocess), real sockets, the OTel Python
SDK's OTLP exporter as the client.
"""

from __future__ import annotations

import socket
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import duckdb
import pytest
import yaml
from _otlp_downstream import wait_until
from collector_fixtures import SPANLEDGER, collector_config
from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter as GrpcSpanExporter
from opentelemetry.sdk.trace.export import SpanExportResult
from prometheus_client import generate_latest
from spanledger.semconv import SpanledgerMeterValues as Meter
from spanledger_collector._config import BatchSettings, MemoryLimiterSettings
from spanledger_collector._graph import parse_settings
from spanledger_collector._processors import MemoryLimiter
from spanledger_collector._service import CollectorService
from spanledger_collector._telemetry import REGISTRY
from test_collector_service import genai_trace

LLM_SPAN = "chat gpt-4o-mini"


def two_pipelines(tmp_path: Path, first: list[str], second: list[str], processors: dict[str, Any]) -> dict[str, Any]:
    """Receivers ``otlp/first`` and ``otlp/second``, each feeding its own storing traces pipeline."""
    config = collector_config(tmp_path)
    receiver = config["receivers"].pop("otlp")
    del receiver["protocols"]["http"]
    config["receivers"] = {"otlp/first": receiver, "otlp/second": yaml.safe_load(yaml.safe_dump(receiver))}
    config["processors"] = processors
    config["service"]["pipelines"] = {
        "traces/first": {"receivers": ["otlp/first"], "processors": first, "exporters": ["spanledger_store"]},
        "traces/second": {"receivers": ["otlp/second"], "processors": second, "exporters": ["spanledger_store"]},
    }
    return config


@contextmanager
def running(config: dict[str, Any]) -> Iterator[tuple[CollectorService, dict[str, str]]]:
    service = CollectorService(parse_settings(config))
    try:
        yield service, service.start()
    finally:
        service.shutdown()


def send(endpoint: str, tenant: str, traces: int = 1) -> None:
    exporter = GrpcSpanExporter(endpoint=endpoint, insecure=True)
    try:
        spans = [span for _ in range(traces) for span in genai_trace(tenant=tenant)]
        assert exporter.export(spans) == SpanExportResult.SUCCESS
    finally:
        exporter.shutdown()


def counted(tenant: str) -> bool:
    """Whether the cost series count the tenant: the usage processor records a request once it is stored.

    Read from the registry directly: a scrape of /metrics would commit the store writer first.
    """
    return f'spanledger_tenant_id="{tenant}"' in generate_latest(REGISTRY).decode()


def query(store: Path, sql: str) -> list[Any]:
    with duckdb.connect(str(store), read_only=True) as connection:
        return connection.execute(sql).fetchall()


def test_two_named_batch_processors_each_batch_their_own_pipeline(tmp_path: Path) -> None:
    spans_per_trace = len(genai_trace())
    config = two_pipelines(
        tmp_path,
        ["batch/small", "spanledger_usage", "spanledger_cost"],
        ["batch/large", "spanledger_usage", "spanledger_cost"],
        {
            # Both wait long for more spans; only the small one is full after one request of two traces.
            "batch/small": {"send_batch_size": spans_per_trace, "timeout": "60s"},
            "batch/large": {"send_batch_size": 5000, "timeout": "60s"},
            "spanledger_usage": {},
            "spanledger_cost": {},
        },
    )
    settings = parse_settings(config)
    assert settings.processors["batch/small"] == BatchSettings(spans_per_trace, 60.0)
    assert settings.processors["batch/large"] == BatchSettings(5000, 60.0)
    with running(config) as (_, addresses):
        send(addresses["otlp/first.grpc"], "graph-small", traces=2)
        wait_until(lambda: counted("graph-small"), timeout=20)  # appended at once: its batch is full
        send(addresses["otlp/second.grpc"], "graph-large", traces=2)
        with pytest.raises(AssertionError):
            wait_until(lambda: counted("graph-large"), timeout=3)  # waits for 5000 spans or 60 s
    # Shutdown stores what the large batch still held.
    store = tmp_path / "spanledger.duckdb"
    tenants = query(store, "SELECT tenant, count(*) FROM usage_facts GROUP BY tenant ORDER BY tenant")
    assert [tenant for tenant, _ in tenants] == ["graph-large", "graph-small"]
    assert query(store, "SELECT count(*) FROM spans") == [(4 * spans_per_trace,)]


def test_a_filter_before_usage_drops_the_usage_and_after_it_keeps_it(tmp_path: Path) -> None:
    config = two_pipelines(
        tmp_path,
        ["filter/llm", "spanledger_usage"],
        ["spanledger_usage", "filter/llm"],
        {"filter/llm": {"spans": {"exclude": {"span_names": [LLM_SPAN]}}}, "spanledger_usage": {}},
    )
    with running(config) as (_, addresses):
        send(addresses["otlp/first.grpc"], "filtered-before")
        send(addresses["otlp/second.grpc"], "filtered-after")
    store = tmp_path / "spanledger.duckdb"
    tokens = query(
        store,
        f"SELECT tenant, sum(quantity) FROM usage_facts WHERE meter = '{Meter.LLM_OUTPUT_TOKENS.value}' GROUP BY 1",
    )
    assert tokens == [("filtered-after", 50)], "the LLM span's usage is kept only when measured before the filter"
    assert query(store, f"SELECT count(*) FROM spans WHERE name = '{LLM_SPAN}'") == [(0,)]
    kept = len(genai_trace()) - 1
    assert query(store, "SELECT count(*) FROM spans") == [(2 * kept,)]
    # Both still measure what the filter left: the GPU span's accelerator time.
    accelerator = query(
        store, f"SELECT count(DISTINCT tenant) FROM usage_facts WHERE meter = '{Meter.ACCELERATOR_SECONDS.value}'"
    )
    assert accelerator == [(2,)]


def test_one_processor_config_in_several_pipelines_and_named_instances_keep_their_settings(tmp_path: Path) -> None:
    config = two_pipelines(
        tmp_path,
        ["memory_limiter/a", "spanledger_usage"],
        ["memory_limiter/b", "spanledger_usage"],
        {
            "memory_limiter/a": {"limit_mib": 4000, "check_interval": "100ms"},
            "memory_limiter/b": {"limit_mib": 3000, "check_interval": "200ms"},
            "spanledger_usage": {},
        },
    )
    with running(config) as (service, addresses):
        limiters = {key: service.processors[key] for key in ("memory_limiter/a", "memory_limiter/b")}
        settings = {key: limiter.settings for key, limiter in limiters.items() if isinstance(limiter, MemoryLimiter)}
        assert settings == {
            "memory_limiter/a": MemoryLimiterSettings(0.1, 4000 << 20, 800 << 20),
            "memory_limiter/b": MemoryLimiterSettings(0.2, 3000 << 20, 600 << 20),
        }
        send(addresses["otlp/first.grpc"], "shared-a")
        send(addresses["otlp/second.grpc"], "shared-b")
    assert len([key for key in service.processors if key == "spanledger_usage"]) == 1
    tenants = query(tmp_path / "spanledger.duckdb", "SELECT DISTINCT tenant FROM usage_facts ORDER BY 1")
    assert tenants == [("shared-a",), ("shared-b",)]


def run_cli(tmp_path: Path, config: dict[str, Any]) -> subprocess.CompletedProcess[str]:
    path = tmp_path / "collector.yaml"
    path.write_text(yaml.safe_dump(config))
    return subprocess.run(
        [str(SPANLEDGER), "collector", "--config", str(path)], capture_output=True, text=True, timeout=60
    )


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"processors": ["memory_limiter", "batch", "batch"]}, "traces.processors: 'batch' is listed twice"),
        ({"processors": ["batch/missing"]}, "service.pipelines.traces.processors: 'batch/missing' is not configured"),
        ({"receivers": ["otlp", "otlp"]}, "service.pipelines.traces.receivers: 'otlp' is listed twice"),
        ({"exporters": ["spanledger_store", "otlp/gone"]},
         "service.pipelines.traces.exporters: 'otlp/gone' is not configured under exporters"),
    ],
)  # fmt: skip
def test_a_duplicate_or_unknown_reference_is_refused_naming_it(
    tmp_path: Path, change: dict[str, Any], message: str
) -> None:
    config = collector_config(tmp_path)
    config["service"]["pipelines"]["traces"].update(change)
    result = run_cli(tmp_path, config)
    assert result.returncode == 2, result.stderr
    assert message in result.stderr


@pytest.mark.parametrize(
    ("exporter", "message"),
    [
        ({"endpoint": "127.0.0.1:4317", "sending_queue": {"enabled": False}},
         "exporters.otlp/down.sending_queue.enabled: the persistent sending queue cannot be disabled"),
        ({"endpoint": "127.0.0.1:4317", "compression": "zstd"},
         "exporters.otlp/down.compression: must be one of ['gzip', 'none'], not 'zstd'"),
        ({"endpoint": "127.0.0.1:4317", "retry_on_failure": {"multiplier": 0.5}},
         "exporters.otlp/down.retry_on_failure.multiplier: expected a number >= 1.0"),
    ],
)  # fmt: skip
def test_an_exporter_with_a_bad_setting_is_refused_before_any_port_is_opened(
    tmp_path: Path, exporter: dict[str, Any], message: str
) -> None:
    # The receiver's and admin's ports are held here: a collector that got as far as opening ports would
    # fail with "cannot start" (exit 1); refusing the config first exits 2 naming the key.
    held = [socket.create_server(("127.0.0.1", 0)) for _ in range(2)]
    try:
        grpc_port, admin_port = (server.getsockname()[1] for server in held)
        config = collector_config(tmp_path)
        del config["receivers"]["otlp"]["protocols"]["http"]
        config["receivers"]["otlp"]["protocols"]["grpc"]["endpoint"] = f"127.0.0.1:{grpc_port}"
        config["service"]["telemetry"]["metrics"]["address"] = f"127.0.0.1:{admin_port}"
        config["exporters"]["otlp/down"] = exporter
        config["service"]["pipelines"]["traces"]["exporters"].append("otlp/down")
        result = run_cli(tmp_path, config)
    finally:
        for server in held:
            server.close()
    assert result.returncode == 2, result.stderr
    assert message in result.stderr
    assert "cannot start" not in result.stderr
    with pytest.raises(Exception, match=message.replace("[", r"\[").replace("]", r"\]").replace(".", r"\.")):
        parse_settings(config)  # refused when the config is read, before a service exists
    assert not (tmp_path / "spanledger.duckdb").exists(), "nothing was opened"


def test_a_component_defined_twice_is_refused_naming_it(tmp_path: Path) -> None:
    # YAML readers keep the last of two equal keys; the collector refuses the file instead.
    text = yaml.safe_dump(collector_config(tmp_path)).replace(
        "processors:\n",
        "processors:\n  batch/small: {send_batch_size: 10}\n  batch/small: {send_batch_size: 5000}\n",
        1,
    )
    path = tmp_path / "collector.yaml"
    path.write_text(text)
    result = subprocess.run(
        [str(SPANLEDGER), "collector", "--config", str(path)], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 2, result.stderr
    assert f"{path}: not valid YAML" in result.stderr and "found 'batch/small' twice" in result.stderr
