"""The collector service: builds the graph's components from their configs, starts them, stops them in order.

Start order is exporters -> store writer (which first restores what the request log holds beyond the
store's last commit) -> processors -> receivers -> admin (data never arrives before its consumers exist);
shutdown is the reverse: stop accepting (receivers drain their in-flight requests), commit the store writer,
shut processors and exporters down (exporters persist their queues), close the store, stop the admin server.
``shutdown()`` is safe to call twice and from a signal handler's thread.

Processor instances are built once per configured id and shared by the pipelines that list it (each
pipeline runs them in its own order); the one store writer takes each pipeline's batch settings with its
requests (see ``_processors._batch``).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Sequence
from datetime import datetime, timedelta

from google.protobuf.internal import api_implementation
from prometheus_client.registry import Collector

from ._admin import AdminServer
from ._component import Component, ConfigError, Consumer
from ._config import BatchSettings, CollectorSettings, PipelineSettings
from ._decode import SPEEDUPS
from ._decode._producers import RECENT
from ._factories import OpenStore
from ._pipeline import Pipeline
from ._processors import Processor
from ._receivers import GrpcReceiver, HttpReceiver, bound_host
from ._registry import EXPORTERS, PROCESSORS, RECEIVERS, STORES
from ._store import LoggedRequest, Replayer, StoreBatch
from ._telemetry import REGISTRY, ExporterStatsCollector, RequestLogCollector
from .billing.metrics import create_collector as billing_metrics

__all__ = ["CollectorService", "writer_batch_settings"]

logger = logging.getLogger("spanledger.collector")
_EPOCH = datetime(1970, 1, 1)  # the store's timestamps are naive UTC


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


def writer_batch_settings(settings: CollectorSettings, storing: Sequence[PipelineSettings]) -> BatchSettings:
    """The store writer's own batch settings: those of the storing pipelines' batch processor when they
    share one, else the defaults grown to the largest ``send_batch_size`` (the writer's queue holds two
    batches' worth of spans). Each request still carries its own pipeline's settings."""
    batches = {
        settings.processors[processor_id]
        for pipeline in storing
        for processor_id in pipeline.processors
        if processor_id.partition("/")[0] == "batch"
    }
    unbatched = any(not any(p.partition("/")[0] == "batch" for p in pipeline.processors) for pipeline in storing)
    if len(batches) == 1 and not unbatched:
        (only,) = batches
        assert isinstance(only, BatchSettings)
        return only
    defaults = BatchSettings()
    largest = max((batch.send_batch_size for batch in batches), default=defaults.send_batch_size)
    return BatchSettings(max(largest, defaults.send_batch_size), defaults.timeout_s)


class CollectorService:
    def __init__(self, settings: CollectorSettings) -> None:
        self.settings = settings
        self.store: OpenStore | None = None
        self.exporters: dict[str, Consumer] = {}
        self.processors: dict[str, Processor] = {}
        self.receivers: list[GrpcReceiver | HttpReceiver] = []
        self.admin: AdminServer | None = None
        self._registered: list[Collector] = []
        """What this service added to ``REGISTRY``, taken off again at shutdown."""
        self._state = "starting"
        self._lock = threading.Lock()
        self._stopped = threading.Event()

    def health(self) -> tuple[bool, str]:
        if self._state == "ok" and self.store is not None and self.store.writer.failure:
            return False, self.store.writer.failure
        return self._state == "ok", self._state

    def _pipelines(self) -> list[tuple[Pipeline, tuple[str, ...]]]:
        settings = self.settings
        pipelines = []
        for pipeline_settings in settings.pipelines:
            stores = any(exporter_id.partition("/")[0] in STORES for exporter_id in pipeline_settings.exporters)
            pipeline = Pipeline(
                pipeline_settings.pipeline_id,
                pipeline_settings.signal,
                processors=[self.processors[processor_id] for processor_id in pipeline_settings.processors],
                writer=self.store.writer if stores and self.store is not None else None,
                exporters=[
                    (exporter_id, self.exporters[exporter_id])
                    for exporter_id in pipeline_settings.exporters
                    if exporter_id in self.exporters
                ],
            )
            pipelines.append((pipeline, pipeline_settings.receivers))
        return pipelines

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
        used_exporters = {exporter_id for pipeline in settings.pipelines for exporter_id in pipeline.exporters}
        used_processors = {processor_id for pipeline in settings.pipelines for processor_id in pipeline.processors}
        for exporter_id, config in settings.exporters.items():
            exporter_type = exporter_id.partition("/")[0]
            if exporter_type in STORES:
                # Opened even when no pipeline uses it: its request log may hold acknowledged requests.
                storing = [p for p in settings.pipelines if exporter_id in p.exporters]
                self.store = STORES[exporter_type].create(exporter_id, config, writer_batch_settings(settings, storing))
            elif exporter_id in used_exporters:
                self.exporters[exporter_id] = EXPORTERS[exporter_type].create(exporter_id, config)
        for processor_id in sorted(used_processors):
            factory = PROCESSORS[processor_id.partition("/")[0]]
            self.processors[processor_id] = factory.create(processor_id, settings.processors[processor_id])
        pipelines = self._pipelines()

        components: list[Component] = [*self.exporters.values()]
        for component in components:
            component.start()
        if self.store is not None:
            store_id = next(
                exporter_id for exporter_id in settings.exporters if exporter_id.partition("/")[0] in STORES
            )
            writer = self.store.writer
            storing_pipelines = [pipeline for pipeline, _ in pipelines if pipeline.writer is not None]
            pending = writer.log.last_seq - writer.store.committed_log_position()
            if pending > 0 and not storing_pipelines:
                raise ConfigError(
                    f"the request log {writer.log.directory} holds {pending} acknowledged requests not yet"
                    f" stored, but no traces pipeline exports to {store_id}: add it back to store them"
                )
            stored_until = writer.store.stored_until()
            if stored_until is not None:  # issue 15: spans this old may have ancestors only the store knows
                RECENT.stored_until((stored_until - _EPOCH) // timedelta(microseconds=1) * 1000)
            writer.start(_replayer(storing_pipelines))
        for processor in self.processors.values():
            processor.start()
        addresses: dict[str, str] = {}
        for receiver_id, receiver_settings in settings.receivers.items():
            consumers = [pipeline for pipeline, ids in pipelines if receiver_id in ids]
            for receiver in RECEIVERS[receiver_id.partition("/")[0]].create(receiver_id, receiver_settings, consumers):
                receiver.start()
                self.receivers.append(receiver)
                protocol = "grpc" if isinstance(receiver, GrpcReceiver) else "http"
                addresses[f"{receiver_id}.{protocol}"] = f"{bound_host(receiver.settings.host)}:{receiver.port}"
        self._registered.append(ExporterStatsCollector(self.exporters))
        # The billing gauges and the admin API's answers read the store (DuckDB or ClickHouse) through a
        # connection of their own per scrape or request (billing/_store_access.py), never the writer's.
        answer_store = self.store.store if self.store is not None else None
        if answer_store is not None:
            self._registered.append(billing_metrics(answer_store))
        if self.store is not None:
            log = self.store.writer.log
            self._registered.append(RequestLogCollector(lambda: log.damaged_records))
        for collector in self._registered:
            REGISTRY.register(collector)
        self.admin = AdminServer(
            settings.admin,
            REGISTRY,
            answer_store,
            self.health,
            flush=self.store.writer.flush if self.store is not None else None,
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
        if self.store is not None:
            self.store.writer.shutdown()
        for processor_id, processor in self.processors.items():
            try:
                processor.shutdown()
            except Exception:
                logger.exception("shutting processor %s down failed", processor_id)
        for exporter_id, exporter in self.exporters.items():
            try:
                exporter.shutdown()
            except Exception:
                logger.exception("shutting exporter %s down failed", exporter_id)
        if self.store is not None:
            self.store.close()
        if self.admin is not None:
            self.admin.shutdown()
        for collector in self._registered:
            REGISTRY.unregister(collector)
        self._state = "stopped"
        self._stopped.set()
