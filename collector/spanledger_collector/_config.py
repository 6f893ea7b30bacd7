"""The collector's configuration: OTel Collector-shaped YAML, validated at start.

Shape (every key optional unless noted; ``${env:VAR}`` and ``${env:VAR:-default}`` are expanded)::

    receivers:
      otlp[/name]:
        protocols:
          grpc: {endpoint: "localhost:4317", max_recv_msg_size_mib: 4, max_workers: 128,
                 tls: {cert_file, key_file}, auth: {authenticator: bearertokenauth[/name]}}
          http: {endpoint: "localhost:4318", max_request_body_size: 20971520, listen_backlog: 1024,
                 max_connections: 512, tls, auth}
    processors:
      memory_limiter: {check_interval: 1s, limit_mib: 1024, spike_limit_mib: 20% of limit_mib}
      batch: {send_batch_size: 8192, timeout: 200ms}
      spanledger_usage: {tenant_cardinality_limit: 100}   # usage facts, data reads, GenAI metrics
      spanledger_cost: {price_overrides: FILE}             # attaches spanledger.cost.* to usage
    exporters:
      spanledger_store: {path: ./spanledger.duckdb, threads: 1, memory_limit_mib: 32,  # the store (at most one)
                         retention: 0,                     # e.g. 2160h: delete usage older than that; 0 keeps it
                         commit_interval: 10s}             # acknowledged requests wait in a request log meanwhile
      TYPE[/name]: {...}                                   # onward exporters, see below
    extensions:
      bearertokenauth[/name]: {token: T} or {tokens: [T1, T2]}
      file_storage: {directory: ./spanledger-data}         # where exporters keep their queues
    service:
      extensions: [bearertokenauth]
      pipelines: {traces|metrics|logs[/name]: {receivers: [...], processors: [...], exporters: [...]}}
      telemetry: {metrics: {address: "localhost:9464"}}   # admin server: /metrics, /health, /api/

Without ``--config`` the collector runs on :data:`DEFAULT_CONFIG`. Any unknown key or bad value raises
:class:`ConfigError` naming the key (``receivers.otlp.protocols.grpc.endpoint``).

Seams with the other collector parts (see docs/design.md, "Collector service"):

* onward exporters: ``spanledger_collector._exporters.FACTORIES[type].create(component_id: str,
  config: dict[str, Any], data_dir: Path) -> Consumer``; ``create`` raises ``ConfigError`` naming the
  key (``exporters.<id>.<key>``). An exporter type not in ``FACTORIES`` is a config error.
* pricing: ``spanledger_collector._pricing.load_catalog(overrides: Path | None)`` returns an object with
  ``estimate(fact: UsageFact) -> (cost, currency, catalog_version, unpriced_reason)`` and ``priced(fact)``,
  the fact with those four fields set (what the pipeline calls per fact). The
  ``spanledger_cost`` processor is in the default pipeline only when that module imports.
"""

from __future__ import annotations

import importlib
import os
import re
import ssl
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from ._component import ConfigError
from ._config_reader import ConfigSection

__all__ = [
    "DEFAULT_CONFIG",
    "BatchSettings",
    "CollectorSettings",
    "ConfigError",
    "ExporterSettings",
    "MemoryLimiterSettings",
    "PipelineSettings",
    "ProtocolSettings",
    "ReceiverSettings",
    "load_settings",
    "parse_settings",
]

STORE_EXPORTER = "spanledger_store"
SIGNALS = ("traces", "metrics", "logs")
_TRACE_ONLY_PROCESSORS = ("spanledger_usage", "spanledger_cost")

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
    component_id: str
    grpc: ProtocolSettings | None
    http: ProtocolSettings | None


@dataclass(frozen=True)
class MemoryLimiterSettings:
    check_interval_s: float
    limit_bytes: int
    spike_limit_bytes: int


@dataclass(frozen=True)
class BatchSettings:
    send_batch_size: int = 8192
    timeout_s: float = 0.2


@dataclass(frozen=True)
class ExporterSettings:
    component_id: str
    type: str
    config: dict[str, Any]


@dataclass(frozen=True)
class PipelineSettings:
    pipeline_id: str
    signal: str
    receivers: tuple[str, ...]
    processors: tuple[str, ...]
    exporters: tuple[str, ...]


@dataclass(frozen=True)
class CollectorSettings:
    receivers: dict[str, ReceiverSettings]
    pipelines: tuple[PipelineSettings, ...]
    exporters: dict[str, ExporterSettings]
    admin_host: str
    admin_port: int
    store_path: str | None = None
    store_threads: int = 1
    store_memory_limit_mib: int = 32
    store_retention_s: float = 0.0
    """Spans, data reads and usage facts older than this are deleted; 0 keeps them."""
    store_commit_interval_s: float = 10.0
    memory_limiter: MemoryLimiterSettings | None = None
    batch: BatchSettings = field(default_factory=BatchSettings)
    tenant_cardinality_limit: int = 100
    extract_usage: bool = False
    estimate_cost: bool = False
    price_overrides: Path | None = None
    data_dir: Path = Path("spanledger-data")


def _endpoint(section: ConfigSection, name: str, default: str) -> tuple[str, int]:
    value = section.get(name, default)
    where = section.key(name)
    if not isinstance(value, str) or ":" not in value:
        raise ConfigError(f"{where}: expected host:port, got {value!r}")
    host, _, port_text = value.rpartition(":")
    host = host.strip("[]") or "0.0.0.0"
    if not port_text.isdigit() or not 0 <= int(port_text) <= 65535:
        raise ConfigError(f"{where}: {port_text!r} is not a port number (0-65535; 0 picks a free port)")
    return host, int(port_text)


def _component_type(component_id: str, where: str) -> str:
    component_type, _, name = component_id.partition("/")
    if not re.fullmatch(r"[a-zA-Z][a-zA-Z0-9_]*", component_type) or (component_id.count("/") and not name):
        raise ConfigError(f"{where}: {component_id!r} is not a component id (type[/name])")
    return component_type


def _expand_env(node: Any, path: str) -> Any:
    if isinstance(node, dict):
        return {key: _expand_env(value, f"{path}.{key}" if path else str(key)) for key, value in node.items()}
    if isinstance(node, list):
        return [_expand_env(item, f"{path}[{index}]") for index, item in enumerate(node)]
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
    if _ENV_REFERENCE.fullmatch(node):
        # A value that is one reference takes the type YAML gives the variable's text (as otelcol does).
        try:
            return yaml.safe_load(expanded) if expanded else expanded
        except yaml.YAMLError:
            return expanded
    return expanded


def _tls(section: ConfigSection) -> tuple[Path | None, Path | None]:
    if section.get("tls") is None:
        return None, None
    tls = section.section("tls")
    cert, key = tls.text("cert_file"), tls.text("key_file")
    tls.done()
    if cert is None or key is None:
        raise ConfigError(f"{tls.path}: both cert_file and key_file are required")
    for name, value in (("cert_file", cert), ("key_file", key)):
        if not Path(value).is_file():
            raise ConfigError(f"{tls.key(name)}: file {value} does not exist")
    try:
        ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER).load_cert_chain(cert, key)
    except ssl.SSLError as error:
        raise ConfigError(
            f"{tls.path}: cert_file {cert} and key_file {key} are not a PEM certificate and its private key ({error})"
        ) from None
    return Path(cert), Path(key)


def _auth(section: ConfigSection, authenticators: dict[str, tuple[str, ...]]) -> tuple[str, ...]:
    if section.get("auth") is None:
        return ()
    auth = section.section("auth")
    authenticator = auth.text("authenticator")
    auth.done()
    if authenticator is None or authenticator not in authenticators:
        known = ", ".join(sorted(authenticators)) or "none configured in extensions and service.extensions"
        raise ConfigError(f"{auth.key('authenticator')}: unknown authenticator {authenticator!r} (known: {known})")
    return authenticators[authenticator]


def _receiver(
    component_id: str, section: ConfigSection, authenticators: dict[str, tuple[str, ...]]
) -> ReceiverSettings:
    protocols = section.section("protocols")
    section.done()
    grpc = http = None
    if "grpc" in protocols.values:
        settings = protocols.section("grpc")
        host, port = _endpoint(settings, "endpoint", "localhost:4317")
        cert, key = _tls(settings)
        grpc = ProtocolSettings(
            host=host,
            port=port,
            max_request_bytes=settings.integer("max_recv_msg_size_mib", 4, minimum=1) * 1024 * 1024,
            bearer_tokens=_auth(settings, authenticators),
            cert_file=cert,
            key_file=key,
            max_workers=settings.integer("max_workers", 128, minimum=1),
        )
        settings.done()
    if "http" in protocols.values:
        settings = protocols.section("http")
        host, port = _endpoint(settings, "endpoint", "localhost:4318")
        cert, key = _tls(settings)
        http = ProtocolSettings(
            host=host,
            port=port,
            max_request_bytes=settings.integer("max_request_body_size", 20 * 1024 * 1024, minimum=1),
            bearer_tokens=_auth(settings, authenticators),
            cert_file=cert,
            key_file=key,
            listen_backlog=settings.integer("listen_backlog", 1024, minimum=1),
            max_connections=settings.integer("max_connections", 512, minimum=1),
        )
        settings.done()
    protocols.done()
    if grpc is None and http is None:
        raise ConfigError(f"{protocols.path}: enable at least one of grpc, http")
    return ReceiverSettings(component_id, grpc, http)


def _exporter_factories() -> dict[str, Any]:
    try:
        module = importlib.import_module("spanledger_collector._exporters")
    except ImportError:
        return {}
    factories: dict[str, Any] = getattr(module, "FACTORIES", {})
    return factories


def pricing_available() -> bool:
    try:
        module = importlib.import_module("spanledger_collector._pricing")
    except ImportError:
        return False
    return hasattr(module, "load_catalog")


def parse_settings(document: Any) -> CollectorSettings:
    """Validate a parsed YAML document; raises ``ConfigError`` naming the offending key."""
    root = ConfigSection(_expand_env(document, ""), "")
    service = root.section("service")
    extensions = root.section("extensions")
    enabled_extensions = service.names("extensions")
    authenticators: dict[str, tuple[str, ...]] = {}
    data_dir = Path("spanledger-data")
    for extension_id in extensions.values:
        where = extensions.key(str(extension_id))
        extension_type = _component_type(str(extension_id), where)
        settings = extensions.section(str(extension_id))
        if extension_type == "bearertokenauth":
            token, tokens = settings.get("token"), settings.get("tokens")
            values = ([token] if token is not None else []) + (list(tokens) if isinstance(tokens, list) else [])
            if tokens is not None and not isinstance(tokens, list):
                raise ConfigError(f"{settings.key('tokens')}: expected a list of tokens")
            if not values or not all(isinstance(value, str) and value for value in values):
                raise ConfigError(f"{settings.key('token')}: expected a non-empty token (or a tokens list)")
            if extension_id in enabled_extensions:
                authenticators[str(extension_id)] = tuple(values)
        elif extension_type == "file_storage":
            data_dir = Path(settings.text("directory", str(data_dir)) or data_dir)
        else:
            known = "bearertokenauth, file_storage"
            raise ConfigError(f"{where}: unknown extension type {extension_type!r} (known: {known})")
        settings.done()
    extensions.done()
    for extension_id in enabled_extensions:
        if extension_id not in extensions.values:
            raise ConfigError(f"service.extensions: {extension_id!r} is not configured under extensions")

    receivers_section = root.section("receivers")
    receivers: dict[str, ReceiverSettings] = {}
    for receiver_id in receivers_section.values:
        where = receivers_section.key(str(receiver_id))
        if _component_type(str(receiver_id), where) != "otlp":
            raise ConfigError(f"{where}: unknown receiver type (known: otlp)")
        section = receivers_section.section(str(receiver_id))
        receivers[str(receiver_id)] = _receiver(str(receiver_id), section, authenticators)
    receivers_section.done()

    processors_section = root.section("processors")
    fields: dict[str, Any] = {}
    known_processors = ("memory_limiter", "batch", *_TRACE_ONLY_PROCESSORS)
    for processor_id in processors_section.values:
        where = processors_section.key(str(processor_id))
        processor_type = _component_type(str(processor_id), where)
        settings = processors_section.section(str(processor_id))
        if processor_type == "memory_limiter":
            limit = settings.integer("limit_mib", 1024, minimum=1)
            spike = settings.integer("spike_limit_mib", max(1, limit // 5), minimum=0)
            if spike >= limit:
                raise ConfigError(f"{settings.key('spike_limit_mib')}: must be below limit_mib ({limit})")
            fields["memory_limiter"] = MemoryLimiterSettings(
                settings.duration("check_interval", "1s"), limit * 1024 * 1024, spike * 1024 * 1024
            )
        elif processor_type == "batch":
            fields["batch"] = BatchSettings(
                settings.integer("send_batch_size", 8192, minimum=1), settings.duration("timeout", "200ms")
            )
        elif processor_type == "spanledger_usage":
            fields["tenant_cardinality_limit"] = settings.integer("tenant_cardinality_limit", 100)
        elif processor_type == "spanledger_cost":
            overrides = settings.text("price_overrides")
            if overrides is not None and not Path(overrides).is_file():
                raise ConfigError(f"{settings.key('price_overrides')}: file {overrides} does not exist")
            fields["price_overrides"] = Path(overrides) if overrides else None
        else:
            raise ConfigError(f"{where}: unknown processor type (known: {', '.join(known_processors)})")
        settings.done()
    processors_section.done()

    exporters_section = root.section("exporters")
    exporters: dict[str, ExporterSettings] = {}
    factories = _exporter_factories()
    for exporter_id in exporters_section.values:
        where = exporters_section.key(str(exporter_id))
        exporter_type = _component_type(str(exporter_id), where)
        if exporter_type == STORE_EXPORTER:
            settings = exporters_section.section(str(exporter_id))
            if "store_path" in fields:
                raise ConfigError(f"{where}: only one {STORE_EXPORTER} exporter is allowed")
            fields["store_path"] = settings.text("path", "./spanledger.duckdb")
            fields["store_threads"] = settings.integer("threads", 1, minimum=1)
            fields["store_memory_limit_mib"] = settings.integer("memory_limit_mib", 32, minimum=16)
            fields["store_retention_s"] = settings.duration("retention", 0)
            fields["store_commit_interval_s"] = settings.duration("commit_interval", "10s")
            settings.done()
        elif exporter_type not in factories:
            known = ", ".join(sorted([STORE_EXPORTER, *factories]))
            raise ConfigError(f"{where}: unknown exporter type {exporter_type!r} (known: {known})")
        else:
            raw = exporters_section.get(str(exporter_id)) or {}
            if not isinstance(raw, Mapping):
                raise ConfigError(f"{where}: expected a mapping")
        exporters[str(exporter_id)] = ExporterSettings(
            str(exporter_id), exporter_type, dict(exporters_section.get(str(exporter_id)) or {})
        )
    exporters_section.done()

    pipelines_section = service.section("pipelines")
    pipelines = []
    for pipeline_id in pipelines_section.values:
        where = pipelines_section.key(str(pipeline_id))
        signal = str(pipeline_id).partition("/")[0]
        if signal not in SIGNALS:
            raise ConfigError(f"{where}: unknown pipeline type (known: {', '.join(SIGNALS)})")
        settings = pipelines_section.section(str(pipeline_id))
        pipeline = PipelineSettings(
            str(pipeline_id),
            signal,
            settings.names("receivers"),
            settings.names("processors"),
            settings.names("exporters"),
        )
        settings.done()
        if not pipeline.receivers:
            raise ConfigError(f"{settings.key('receivers')}: a pipeline needs at least one receiver")
        for kind, ids, known_ids in (
            ("receivers", pipeline.receivers, receivers),
            ("processors", pipeline.processors, processors_section.values),
            ("exporters", pipeline.exporters, exporters),
        ):
            for component_id in ids:
                if component_id not in known_ids:
                    raise ConfigError(f"{settings.key(kind)}: {component_id!r} is not configured under {kind}")
        for processor_id in pipeline.processors:
            if signal != "traces" and processor_id.partition("/")[0] in _TRACE_ONLY_PROCESSORS:
                raise ConfigError(f"{settings.key('processors')}: {processor_id!r} works on traces pipelines only")
        if signal != "traces" and STORE_EXPORTER in pipeline.exporters:
            raise ConfigError(f"{settings.key('exporters')}: {STORE_EXPORTER} stores traces only")
        pipelines.append(pipeline)
    pipelines_section.done()
    if not pipelines:
        raise ConfigError("service.pipelines: configure at least one pipeline")

    telemetry = service.section("telemetry")
    metrics = telemetry.section("metrics")
    admin_host, admin_port = _endpoint(metrics, "address", "localhost:9464")
    metrics.done()
    telemetry.done()
    service.done()
    root.done()

    used = {(pipeline.signal, name.partition("/")[0]) for pipeline in pipelines for name in pipeline.processors}
    trace_processors = {processor for signal, processor in used if signal == "traces"}
    if "memory_limiter" not in {processor for _, processor in used}:
        fields.pop("memory_limiter", None)
    if "spanledger_cost" in trace_processors and not pricing_available():
        raise ConfigError("processors.spanledger_cost: the price catalog (spanledger_collector._pricing) is missing")
    return CollectorSettings(
        receivers=receivers,
        pipelines=tuple(pipelines),
        exporters=exporters,
        admin_host=admin_host,
        admin_port=admin_port,
        extract_usage="spanledger_usage" in trace_processors,
        estimate_cost="spanledger_cost" in trace_processors,
        data_dir=data_dir,
        **fields,
    )


def load_settings(path: Path | None) -> CollectorSettings:
    """Settings from a YAML file, or the embedded defaults when ``path`` is None."""
    if path is None:
        document = yaml.safe_load(DEFAULT_CONFIG)
        if not pricing_available():
            document["processors"].pop("spanledger_cost")
            document["service"]["pipelines"]["traces"]["processors"].remove("spanledger_cost")
        return parse_settings(document)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as error:
        raise ConfigError(f"{path}: cannot read the config file ({error.strerror})") from None
    try:
        document = yaml.safe_load(text)
    except yaml.YAMLError as error:
        raise ConfigError(f"{path}: not valid YAML ({error})") from None
    try:
        return parse_settings(document)
    except ConfigError as error:
        raise ConfigError(f"{path}: {error}") from None
