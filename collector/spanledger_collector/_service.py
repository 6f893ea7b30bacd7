"""The collector service: builds the pipelines from settings, starts them, and stops them in order.

Start order is exporters -> store writer (which first restores what the request log holds beyond the
store's last commit) -> receivers -> admin (data never arrives before its consumers exist); shutdown is
the reverse: stop accepting (receivers drain their in-flight requests), commit the store writer, shut
exporters down (they persist their queues), close the store, stop the admin server.
``shutdown()`` is safe to call twice and from a signal handler's thread.
"""

from __future__ import annotations

import importlib
import logging
import tempfile
import threading
from datetime import timedelta
from pathlib import Path
from typing import Any

from google.protobuf.internal import api_implementation

from ._admin import AdminServer
from ._component import Component, ConfigError, Consumer
from ._config import STORE_EXPORTER, CollectorSettings
from ._decode import SPEEDUPS
from ._pipeline import Pipeline
from ._processors import MemoryLimiter
from ._receivers import GrpcReceiver, HttpReceiver, OtlpSignals, bound_host
from ._store import DuckDBStore, LoggedRequest, Replayer, RequestLog, StoreBatch, StoreWriter
from ._telemetry import REGISTRY, ExporterStatsCollector, UsageMetrics

__all__ = ["CollectorService"]

logger = logging.getLogger("spanledger.collector")


def _create_exporter(component_id: str, exporter_type: str, config: dict[str, Any], data_dir: Path) -> Consumer:
    module = importlib.import_module("spanledger_collector._exporters")
    factory = module.FACTORIES[exporter_type]
    exporter: Consumer = factory.create(component_id, config, data_dir)
    return exporter


def _request_log_directory(store_path: str) -> tuple[Path, tempfile.TemporaryDirectory[str] | None]:
    """Beside the store (``spanledger.duckdb.requests``), as DuckDB keeps its ``.wal``; a temporary one in memory."""
    if store_path == ":memory:":
        temporary = tempfile.TemporaryDirectory(prefix="spanledger-requests-")
        return Path(temporary.name), temporary
    return Path(f"{store_path}.requests"), None


def _replayer(pipelines: list[Pipeline]) -> Replayer:
    by_id = {pipeline.pipeline_id: pipeline for pipeline in pipelines}

    def replay(request: LoggedRequest) -> StoreBatch:
        pipeline = by_id.get(request.pipeline_id)
        if pipeline is None:
            pipeline = pipelines[0]  # the service refuses to start with logged requests and no storing pipeline
            logger.warning(
                "request %d in the request log came through pipeline %s, which is gone; storing it through %s",
                request.seq,
                request.pipeline_id,
                pipeline.pipeline_id,
            )
        return pipeline.stored_batch(request.body)

    return replay


def _register_billing_metrics(store: Any) -> None:
    try:
        module = importlib.import_module("spanledger_collector.billing.metrics")
    except ImportError:
        return
    create = getattr(module, "create_collector", None)
    if create is not None:
        REGISTRY.register(create(store))


class CollectorService:
    def __init__(self, settings: CollectorSettings) -> None:
        self.settings = settings
        self.store: DuckDBStore | None = None
        self._log_directory: tempfile.TemporaryDirectory[str] | None = None
        self.writer: StoreWriter | None = None
        self.limiter: MemoryLimiter | None = None
        self.exporters: dict[str, Consumer] = {}
        self.receivers: list[GrpcReceiver | HttpReceiver] = []
        self.admin: AdminServer | None = None
        self._state = "starting"
        self._lock = threading.Lock()
        self._stopped = threading.Event()

    def health(self) -> tuple[bool, str]:
        if self._state == "ok" and self.writer is not None and self.writer.failure:
            return False, self.writer.failure
        return self._state == "ok", self._state

    def start(self) -> dict[str, str]:
        """Start everything; returns the bound addresses (``otlp.grpc`` -> ``host:port``)."""
        if api_implementation.Type() != "upb":
            logger.warning(
                "protobuf uses its %s backend, which is ~100x slower than upb; reinstall protobuf from a wheel",
                api_implementation.Type(),
            )
        if not SPEEDUPS:
            logger.warning(
                "the compiled OTLP decoder is not built (no C compiler at install time?) or SPANLEDGER_NO_SPEEDUPS "
                "is set, so traces are decoded in Python, several times slower; reinstall spanledger where gcc and "
                "the Python headers are present"
            )
        settings = self.settings
        for exporter_id, exporter_settings in settings.exporters.items():
            if exporter_settings.type != STORE_EXPORTER:
                self.exporters[exporter_id] = _create_exporter(
                    exporter_id, exporter_settings.type, exporter_settings.config, settings.data_dir
                )
        if settings.store_path is not None:
            self.store = DuckDBStore(
                settings.store_path,
                threads=settings.store_threads,
                memory_limit_mib=settings.store_memory_limit_mib,
                retention=timedelta(seconds=settings.store_retention_s) if settings.store_retention_s else None,
            )
            directory, self._log_directory = _request_log_directory(settings.store_path)
            log = RequestLog(directory, committed_seq=self.store.committed_log_position())
            self.writer = StoreWriter(
                self.store, log, settings.batch, commit_interval_s=settings.store_commit_interval_s
            )
        if settings.memory_limiter is not None:
            self.limiter = MemoryLimiter(settings.memory_limiter)
        catalog = None
        if settings.estimate_cost:
            catalog = importlib.import_module("spanledger_collector._pricing").load_catalog(settings.price_overrides)
        usage_metrics = UsageMetrics(tenant_cardinality_limit=settings.tenant_cardinality_limit)
        pipelines: list[tuple[Pipeline, tuple[str, ...]]] = []
        for pipeline_settings in settings.pipelines:
            processor_types = {processor.partition("/")[0] for processor in pipeline_settings.processors}
            pipeline = Pipeline(
                pipeline_settings.pipeline_id,
                pipeline_settings.signal,
                limiter=self.limiter if "memory_limiter" in processor_types else None,
                writer=self.writer if STORE_EXPORTER in pipeline_settings.exporters else None,
                extract_usage="spanledger_usage" in processor_types,
                catalog=catalog if "spanledger_cost" in processor_types else None,
                usage_metrics=usage_metrics if "spanledger_usage" in processor_types else None,
                exporters=[
                    (exporter_id, self.exporters[exporter_id])
                    for exporter_id in pipeline_settings.exporters
                    if exporter_id in self.exporters
                ],
            )
            pipelines.append((pipeline, pipeline_settings.receivers))

        components: list[Component] = [*self.exporters.values()]
        for component in components:
            component.start()
        if self.writer is not None:
            storing = [
                pipeline for pipeline, _ in pipelines if pipeline.signal == "traces" and pipeline.writer is not None
            ]
            pending = self.writer.log.last_seq - self.writer.store.committed_log_position()
            if pending > 0 and not storing:
                raise ConfigError(
                    f"the request log {self.writer.log.directory} holds {pending} acknowledged requests not yet"
                    f" stored, but no traces pipeline exports to {STORE_EXPORTER}: add it back to store them"
                )
            self.writer.start(_replayer(storing))
        if self.limiter is not None:
            self.limiter.start()
        addresses: dict[str, str] = {}
        for receiver_id, receiver_settings in settings.receivers.items():
            signals = OtlpSignals(receiver_id, [pipeline for pipeline, ids in pipelines if receiver_id in ids])
            if receiver_settings.grpc is not None:
                grpc_receiver = GrpcReceiver(signals, receiver_settings.grpc)
                grpc_receiver.start()
                self.receivers.append(grpc_receiver)
                addresses[f"{receiver_id}.grpc"] = f"{bound_host(receiver_settings.grpc.host)}:{grpc_receiver.port}"
            if receiver_settings.http is not None:
                http_receiver = HttpReceiver(signals, receiver_settings.http)
                http_receiver.start()
                self.receivers.append(http_receiver)
                addresses[f"{receiver_id}.http"] = f"{bound_host(receiver_settings.http.host)}:{http_receiver.port}"
        REGISTRY.register(ExporterStatsCollector(self.exporters))
        if self.store is not None:
            _register_billing_metrics(self.store)
        self.admin = AdminServer(
            settings.admin,
            REGISTRY,
            self.store,
            self.health,
            flush=self.writer.flush if self.writer is not None else None,
        )
        self.admin.start()
        addresses["admin"] = self.admin.address
        self._state = "ok"
        return addresses

    def shutdown(self) -> None:
        with self._lock:
            if self._state in ("stopping", "stopped"):
                return
            self._state = "stopping"
        for receiver in self.receivers:
            receiver.shutdown()
        if self.writer is not None:
            self.writer.shutdown()
        for exporter_id, exporter in self.exporters.items():
            try:
                exporter.shutdown()
            except Exception:
                logger.exception("shutting exporter %s down failed", exporter_id)
        if self.limiter is not None:
            self.limiter.shutdown()
        if self.store is not None:
            self.store.close()
        if self._log_directory is not None:
            self._log_directory.cleanup()
        if self.admin is not None:
            self.admin.shutdown()
        self._state = "stopped"
        self._stopped.set()
