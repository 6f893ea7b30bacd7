"""The collector's configuration types: OTel Collector-shaped YAML, read into typed, frozen settings.

Shape (every key optional unless noted; ``${env:VAR}`` and ``${env:VAR:-default}`` are expanded)::

    receivers:
      otlp[/name]:
        protocols:
          grpc: {endpoint: "localhost:4317", max_recv_msg_size_mib: 4, max_workers: 128,
                 tls: {cert_file, key_file}, auth: {authenticator: bearertokenauth[/name]}}
          http: {endpoint: "localhost:4318", max_request_body_size: 20971520, listen_backlog: 1024,
                 max_connections: 512, tls, auth}
    processors:                                            # each TYPE[/name] is its own instance
      memory_limiter: {check_interval: 1s, limit_mib: 1024, spike_limit_mib: 20% of limit_mib}
      batch: {send_batch_size: 8192, timeout: 200ms}      # how the pipeline's requests reach the store writer
      filter: {spans: {exclude: {match_type: strict, span_names: [...], attributes: [{key, value}]}}}
      spanledger_usage: {tenant_cardinality_limit: 100,   # usage facts, data reads, GenAI metrics; metric labels
                         label_cardinality_limit: 100,    # from span data are capped (docs/schema.md)
                         series_cardinality_limit: 1000, label_value_length_limit: 128,
                         attribution: {workflow: [NAME, ...], tenant: [NAME, ...]}}  # docs/producers.md
      spanledger_cost: {price_overrides: FILE}             # prices the usage facts (after spanledger_usage)
    exporters:
      spanledger_store: {path: ./spanledger.duckdb, threads: 1, memory_limit_mib: 32,  # the store (at most one)
                         retention: 0,                     # e.g. 2160h: delete usage older than that; 0 keeps it
                         commit_interval: 10s}             # acknowledged requests wait in a request log meanwhile
      TYPE[/name]: {...}                                   # onward exporters (otlp, otlphttp, awsotlp)
    extensions:
      bearertokenauth[/name]: {token: T} or {tokens: [T1, T2]}
      file_storage: {directory: ./spanledger-data}         # where exporters keep their queues
    service:
      extensions: [bearertokenauth]
      pipelines: {traces|metrics|logs[/name]: {receivers: [...], processors: [...], exporters: [...]}}
      telemetry: {metrics: {address: "localhost:9464"}}   # admin server: /metrics, /health, /api/
                                                           # (auth, write_auth, tls, import_directories,
                                                           #  max_request_body_size: see _admin/_settings.py)

The graph (which factory reads which section, how pipelines are checked) is in ``_graph``; the factories
are listed in ``_registry``. Without ``--config`` the collector runs on :data:`DEFAULT_CONFIG`.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

from ._component import ConfigError
from ._config_reader import ConfigSection, EnvValue

if TYPE_CHECKING:  # the admin package imports the store, whose writer imports this module
    from ._admin import AdminSettings

__all__ = [
    "DEFAULT_CONFIG",
    "SIGNALS",
    "BatchSettings",
    "CollectorSettings",
    "ConfigError",
    "LoadContext",
    "MemoryLimiterSettings",
    "PipelineSettings",
    "ProtocolSettings",
    "ReceiverSettings",
    "expand_env",
    "read_endpoint",
]

SIGNALS = ("traces", "metrics", "logs")

DEFAULT_CONFIG = """
receivers:
  otlp:
    protocols:
      grpc: {endpoint: "localhost:4317"}
      http: {endpoint: "localhost:4318"}
processors:
  memory_limiter: {check_interval: 1s, limit_mib: 1024}
  batch: {}
  spanledger_usage: {}
  spanledger_cost: {}
exporters:
  spanledger_store: {path: ./spanledger.duckdb}
service:
  pipelines:
    traces:
      receivers: [otlp]
      processors: [memory_limiter, batch, spanledger_usage, spanledger_cost]
      exporters: [spanledger_store]
    metrics: {receivers: [otlp], processors: [memory_limiter], exporters: []}
    logs: {receivers: [otlp], processors: [memory_limiter], exporters: []}
  telemetry:
    metrics: {address: "localhost:9464"}
"""

_ENV_REFERENCE = re.compile(r"\$\{(?:env:)?([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")


@dataclass(frozen=True)
class ProtocolSettings:
    """One protocol of an ``otlp`` receiver."""

    host: str
    port: int
    max_request_bytes: int
    bearer_tokens: tuple[str, ...] = ()
    cert_file: Path | None = None
    key_file: Path | None = None
    max_workers: int = 128
    listen_backlog: int = 1024
    """Connections the kernel queues before the receiver accepts them (HTTP; Python's default of 5 stalls)."""
    max_connections: int = 512
    """HTTP connections (each a thread) open at once; more are answered 503."""


@dataclass(frozen=True)
class ReceiverSettings:
    """An ``otlp[/name]`` receiver: at least one of its protocols."""

    component_id: str
    grpc: ProtocolSettings | None
    http: ProtocolSettings | None


@dataclass(frozen=True)
class MemoryLimiterSettings:
    """A ``memory_limiter[/name]`` processor."""

    check_interval_s: float
    limit_bytes: int
    spike_limit_bytes: int


@dataclass(frozen=True)
class BatchSettings:
    """A ``batch[/name]`` processor: how its pipeline's requests are grouped into the store writer's appends."""

    send_batch_size: int = 8192
    timeout_s: float = 0.2


@dataclass(frozen=True)
class LoadContext:
    """What the extensions provide to the other components' configs when they are read."""

    data_dir: Path = Path("spanledger-data")
    """``file_storage``'s directory: where exporters keep their persistent queues."""
    authenticators: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    """Enabled ``bearertokenauth`` extensions by id: their tokens."""


@dataclass(frozen=True)
class PipelineSettings:
    """One ``service.pipelines`` entry: component ids in the configured order."""

    pipeline_id: str
    signal: str
    receivers: tuple[str, ...]
    processors: tuple[str, ...]
    exporters: tuple[str, ...]


@dataclass(frozen=True)
class CollectorSettings:
    """The whole configuration, read and checked: every component's typed config by its ``type[/name]`` id.

    ``processors``, ``exporters`` and ``extensions`` hold each configured component's config as its factory
    read it (``BatchSettings``, ``StoreSettings``, ...); only those the pipelines use are built at start.
    """

    receivers: Mapping[str, ReceiverSettings]
    processors: Mapping[str, Any]
    exporters: Mapping[str, Any]
    extensions: Mapping[str, Any]
    pipelines: tuple[PipelineSettings, ...]
    admin: AdminSettings
    """``service.telemetry.metrics``: the admin server's address, auth, TLS and limits."""
    data_dir: Path = Path("spanledger-data")


def read_endpoint(section: ConfigSection, name: str, default: str) -> tuple[str, int]:
    """``host:port`` (port 0 picks a free one; an empty host or ``[::]`` binds every address)."""
    value = section.get(name, default)
    if not isinstance(value, str) or ":" not in value:
        raise section.fail(name, f"expected host:port, got {value!r}")
    host, _, port_text = value.rpartition(":")
    host = host.strip("[]") or "0.0.0.0"
    if not (port_text.isascii() and port_text.isdigit()) or not 0 <= int(port_text) <= 65535:
        raise section.fail(name, f"{port_text!r} is not a port number (0-65535; 0 picks a free port)")
    return host, int(port_text)


def expand_env(node: Any, path: str = "") -> Any:
    """``${env:VAR}`` / ``${env:VAR:-default}`` replaced in every string of a parsed YAML document."""
    if isinstance(node, dict):
        return {key: expand_env(value, f"{path}.{key}" if path else str(key)) for key, value in node.items()}
    if isinstance(node, list):
        return [expand_env(item, f"{path}[{index}]") for index, item in enumerate(node)]
    if not isinstance(node, str) or "${" not in node:
        return node

    def substitute(match: re.Match[str]) -> str:
        variable, default = match.group(1), match.group(2)
        value = os.environ.get(variable)
        if value is None:
            if default is None:
                raise ConfigError(f"{path}: environment variable {variable} is not set")
            return default
        return value

    expanded = _ENV_REFERENCE.sub(substitute, node)
    if _ENV_REFERENCE.fullmatch(node) and expanded:
        # A value that is one reference takes the type YAML gives the variable's text, and keeps the text for
        # the keys that read strings (as otelcol does): a password of digits is not a number there.
        try:
            typed = yaml.safe_load(expanded)
        except yaml.YAMLError:
            return expanded
        return expanded if isinstance(typed, str) else EnvValue(typed, expanded)
    return expanded
