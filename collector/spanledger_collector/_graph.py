"""Reads a configuration into the collector's graph: components by ``type[/name]``, pipelines of them.

Like the OTel Collector's ``service/internal/graph``: every configured component is read by its kind's
factory (``_registry``) into a typed config when the configuration is loaded, and each pipeline is checked
as an ordered chain of component ids. Whatever the collector could not honour as written is refused here,
naming the key, before anything is started: an unknown type or key, a bad value, a reference to a
component that is not configured or is listed twice, a processor on a signal it does not handle or before
one it needs (``spanledger_cost`` after ``spanledger_usage``), two ``batch`` processors in one pipeline,
more than one store.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import yaml

from ._admin import AdminSettings, parse_admin_settings
from ._component import ComponentId, ConfigError
from ._config import (
    DEFAULT_CONFIG,
    SIGNALS,
    CollectorSettings,
    LoadContext,
    PipelineSettings,
    ReceiverSettings,
    expand_env,
)
from ._config_reader import ConfigSection, load_yaml
from ._exporters._settings import QueueSettings
from ._registry import EXPORTERS, EXTENSIONS, PROCESSORS, RECEIVERS, STORES
from ._store._location import StoreAddressError, StoreEngine, parse_store_address

__all__ = ["load_settings", "parse_settings"]

logger = logging.getLogger("spanledger.collector")


def _components(
    section: ConfigSection, kind: str, known: Mapping[str, object]
) -> Iterator[tuple[str, str, ConfigSection]]:
    """``(component id, type, its section)`` of each entry; an unknown type is refused naming the entry."""
    for component_id in section.values:
        where = section.key(component_id)
        component_type = ComponentId.parse(component_id, where).type
        if component_type not in known:
            raise ConfigError(f"{where}: unknown {kind} type {component_type!r} (known: {', '.join(sorted(known))})")
        yield component_id, component_type, section.section(component_id)
    section.done()


def _yaml_problem(error: yaml.YAMLError) -> str:
    """What is wrong and where, without the YAML's own rendering, which quotes the lines around the problem (a
    token or password written in the file among them)."""
    if not isinstance(error, yaml.MarkedYAMLError):
        return type(error).__name__
    where = error.problem_mark or error.context_mark
    text = "; ".join(part for part in (error.context, error.problem) if part) or type(error).__name__
    return f"{text}, line {where.line + 1}, column {where.column + 1}" if where is not None else text


def _check_queue_files(exporters: dict[str, Any]) -> None:
    """Refuse two exporters keeping their queues in one file: their ids differ only in characters a file name
    replaces (``otlp/eu west``, ``otlp/eu_west``), and one would send the other's data to its destination."""
    owners: dict[Path, str] = {}
    for component_id, config in exporters.items():
        queue = getattr(config, "queue", None)
        if not isinstance(queue, QueueSettings):
            continue
        other = owners.setdefault(queue.path.resolve(), component_id)
        if other != component_id:
            raise ConfigError(
                f"exporters.{component_id}.sending_queue: its queue file {queue.path} is exporters.{other}'s too "
                "(their ids differ only in characters a file name replaces); rename one, or give it "
                "sending_queue.directory"
            )


def _read_admin(service: ConfigSection, context: LoadContext) -> AdminSettings:
    """``service.telemetry.metrics``: the admin server (/metrics, /health, /api/), its auth, TLS and limits."""
    telemetry = service.section("telemetry")
    admin = parse_admin_settings(telemetry.section("metrics"), authenticators=context.authenticators)
    telemetry.done()
    return admin


def _check_references(
    pipeline: ConfigSection, kind: str, ids: tuple[str, ...], configured: Mapping[str, object]
) -> None:
    seen: set[str] = set()
    for component_id in ids:
        if component_id in seen:
            raise pipeline.fail(kind, f"{component_id!r} is listed twice")
        seen.add(component_id)
        if component_id not in configured:
            raise pipeline.fail(kind, f"{component_id!r} is not configured under {kind}")


def _check_processors(pipeline: ConfigSection, signal: str, ids: tuple[str, ...]) -> None:
    earlier: list[str] = []
    batch: str | None = None
    for processor_id in ids:
        processor_type = processor_id.partition("/")[0]
        factory = PROCESSORS[processor_type]
        if signal not in factory.signals:
            raise pipeline.fail("processors", f"{processor_id!r} works on {', '.join(factory.signals)} pipelines only")
        for needed in factory.after:
            if needed not in earlier:
                raise pipeline.fail(
                    "processors", f"{processor_id!r} needs a {needed} processor before it in this pipeline"
                )
        if processor_type == "batch":
            if batch is not None:
                raise pipeline.fail(
                    "processors", f"{processor_id!r}: a pipeline takes one batch processor ({batch!r} is there too)"
                )
            batch = processor_id
        earlier.append(processor_type)


def _pipelines(
    service: ConfigSection,
    receivers: Mapping[str, object],
    processors: Mapping[str, object],
    exporters: Mapping[str, object],
) -> tuple[PipelineSettings, ...]:
    section = service.section("pipelines")
    pipelines = []
    for pipeline_id in section.values:
        where = section.key(pipeline_id)
        signal = ComponentId.parse(pipeline_id, where).type
        if signal not in SIGNALS:
            raise ConfigError(f"{where}: unknown pipeline type (known: {', '.join(SIGNALS)})")
        entry = section.section(pipeline_id)
        pipeline = PipelineSettings(
            pipeline_id, signal, entry.names("receivers"), entry.names("processors"), entry.names("exporters")
        )
        entry.done()
        if not pipeline.receivers:
            raise entry.fail("receivers", "a pipeline needs at least one receiver")
        _check_references(entry, "receivers", pipeline.receivers, receivers)
        _check_references(entry, "processors", pipeline.processors, processors)
        _check_references(entry, "exporters", pipeline.exporters, exporters)
        _check_processors(entry, signal, pipeline.processors)
        for exporter_id in pipeline.exporters:
            store_type = exporter_id.partition("/")[0]
            if signal != "traces" and store_type in STORES:
                raise entry.fail("exporters", f"{exporter_id!r}: {store_type} stores traces only")
        if any(p.partition("/")[0] == "batch" for p in pipeline.processors) and not any(
            e.partition("/")[0] in STORES for e in pipeline.exporters
        ):
            logger.info(
                "%s: its batch processor has nothing to decide (it groups requests for the store writer; onward"
                " exporters group what they send in their sending queue)",
                where,
            )
        pipelines.append(pipeline)
    section.done()
    if not pipelines:
        raise ConfigError("service.pipelines: configure at least one pipeline")
    return tuple(pipelines)


def parse_settings(document: Any) -> CollectorSettings:
    """Read and check a parsed YAML document; raises ``ConfigError`` naming the offending key."""
    root = ConfigSection(expand_env(document), "")
    service = root.section("service")

    enabled = service.names("extensions")
    context = LoadContext()
    extensions: dict[str, Any] = {}
    for component_id, component_type, section in _components(root.section("extensions"), "extension", EXTENSIONS):
        factory = EXTENSIONS[component_type]
        extensions[component_id] = factory.read(component_id, section, context)
        section.done()
        context = factory.extend(context, component_id, extensions[component_id], enabled=component_id in enabled)
    _check_references(service, "extensions", enabled, extensions)

    receivers: dict[str, ReceiverSettings] = {}
    for component_id, component_type, section in _components(root.section("receivers"), "receiver", RECEIVERS):
        receivers[component_id] = RECEIVERS[component_type].read(component_id, section, context)
        section.done()

    processors: dict[str, Any] = {}
    for component_id, component_type, section in _components(root.section("processors"), "processor", PROCESSORS):
        processors[component_id] = PROCESSORS[component_type].read(component_id, section, context)
        section.done()

    exporters: dict[str, Any] = {}
    store: str | None = None
    known_exporters = {**STORES, **EXPORTERS}
    for component_id, component_type, section in _components(root.section("exporters"), "exporter", known_exporters):
        if component_type in STORES:
            if store is not None:
                raise ConfigError(f"{section.path}: only one store is allowed ({store} is configured)")
            store = component_id
            exporters[component_id] = STORES[component_type].read(component_id, section, context)
        else:
            exporters[component_id] = EXPORTERS[component_type].read(component_id, section, context)
        section.done()
    _check_queue_files(exporters)

    pipelines = _pipelines(service, receivers, processors, exporters)
    admin = _read_admin(service, context)
    service.done()
    root.done()
    return CollectorSettings(
        receivers=receivers,
        processors=processors,
        exporters=exporters,
        extensions=extensions,
        pipelines=pipelines,
        data_dir=context.data_dir,
        admin=admin,
    )


def _store_exporter(store: str) -> tuple[str, dict[str, Any]]:
    """The store exporter (type, config) a ``--store`` value names."""
    try:
        address = parse_store_address(store)
    except StoreAddressError as error:
        raise ConfigError(f"--store: {error}") from None
    if address.engine is StoreEngine.DUCKDB:
        return "spanledger_store", {"path": address.path}
    if address.engine is StoreEngine.CHDB:
        return "clickhouse", {"endpoint": f"chdb:{address.path}", "database": address.database}
    scheme = "https" if address.secure else "http"
    endpoint = f"{scheme}://{address.host}:{address.port}"
    return "clickhouse", {"endpoint": endpoint, "database": address.database, "username": address.username}


def load_settings(path: Path | None, *, store: str | None = None) -> CollectorSettings:
    """Settings from a YAML file, or the embedded defaults when ``path`` is None (their store replaced by
    ``store``, a ``--store`` value)."""
    if path is None:
        document = load_yaml(DEFAULT_CONFIG)
        if store is not None:
            store_type, config = _store_exporter(store)
            document["exporters"] = {store_type: config}
            document["service"]["pipelines"]["traces"]["exporters"] = [store_type]
        return parse_settings(document)
    if store is not None:
        raise ConfigError("--store replaces the default configuration's store; with --config, set it in the file")
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as error:
        raise ConfigError(f"{path}: cannot read the config file ({error.strerror})") from None
    try:
        document = load_yaml(text)
    except yaml.YAMLError as error:
        raise ConfigError(f"{path}: not valid YAML ({_yaml_problem(error)})") from None
    try:
        return parse_settings(document)
    except ConfigError as error:
        raise ConfigError(f"{path}: {error}") from None
