"""The pipelines between receivers and exporters: memory limiter, batching store writer, usage and cost.

Like the OTel Collector, a receiver calls its pipelines synchronously and maps their errors onto the
wire: :class:`RetryableError` (memory limiter, store busy, an exporter's full queue) -> gRPC UNAVAILABLE /
HTTP 503 with a retry delay; :class:`PermanentError` (undecodable data) -> INVALID_ARGUMENT / 400.

The store writer is the batch processor: request threads hand it their rows and wait; its one thread
takes everything queued, waits up to ``timeout`` (200 ms) for more until ``send_batch_size`` spans are
there (but no longer than 20 ms without a new request), writes it in one transaction and then releases
the waiting requests. A client is acknowledged only
once its spans are committed, so a crash never loses acknowledged usage; the linger costs a client up to
``timeout`` of latency and saves most of the per-commit cost at low rates.
"""

from __future__ import annotations

import gc
import hashlib
import logging
import os
import queue
import threading
import time
from collections.abc import Sequence
from concurrent.futures import Future
from decimal import Decimal
from typing import Any

from google.protobuf.message import DecodeError
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import ExportMetricsServiceRequest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from spanledger import semconv

from ._component import Consumer, PermanentError, RetryableError
from ._config import BatchSettings, MemoryLimiterSettings
from ._otlp import double_attribute, string_attribute
from ._store import Store, StoreBatch, UsageFact
from ._telemetry import UsageMetrics
from ._usage import DecodedTraces, decode_traces

__all__ = ["MemoryLimiter", "Pipeline", "StoreWriter", "rss_bytes"]

logger = logging.getLogger("spanledger.collector")

RETRY_AFTER_S = 1.0
STORE_WAIT_S = 30.0
LINGER_GAP_S = 0.02
_PRICED_FIELDS = UsageFact._fields.index("estimated_cost")


def rss_bytes() -> int:
    """Resident set size of this process."""
    try:
        with open("/proc/self/statm", "rb") as statm:
            return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        import resource

        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


class MemoryLimiter:
    """Refuses data while RSS is above the soft limit; forces a GC above the hard limit."""

    def __init__(self, settings: MemoryLimiterSettings) -> None:
        self.settings = settings
        self.soft_limit = settings.limit_bytes - settings.spike_limit_bytes
        self._rss = rss_bytes()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        if self._thread is None:
            self._thread = threading.Thread(target=self._watch, name="spanledger-memory-limiter", daemon=True)
            self._thread.start()

    def _watch(self) -> None:
        while not self._stop.wait(self.settings.check_interval_s):
            self._rss = rss_bytes()
            if self._rss > self.settings.limit_bytes:
                gc.collect()
                self._rss = rss_bytes()

    def check(self) -> None:
        if self._rss > self.soft_limit:
            raise RetryableError(
                f"memory usage {self._rss >> 20} MiB is above the soft limit {self.soft_limit >> 20} MiB; retry later",
                retry_after=RETRY_AFTER_S,
            )

    def shutdown(self) -> None:
        self._stop.set()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(timeout=5)


class StoreWriter:
    """The batch processor in front of the store: one writer thread, group commits (see module doc)."""

    def __init__(self, store: Store, settings: BatchSettings) -> None:
        self.store = store
        self.settings = settings
        self._queue: queue.Queue[tuple[StoreBatch, Future[bool]] | None] = queue.Queue()
        self._accepting = True
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="spanledger-store-writer", daemon=True)
            self._thread.start()

    def submit(self, batch: StoreBatch) -> Future[bool]:
        """Queue ``batch``; the future says whether it was stored (``False``: its request was stored before)."""
        done: Future[bool] = Future()
        with self._lock:
            if not self._accepting:
                raise RetryableError("the collector is shutting down", retry_after=RETRY_AFTER_S)
            self._queue.put((batch, done))
        return done

    def _take(self) -> tuple[list[tuple[StoreBatch, Future[bool]]], bool]:
        first = self._queue.get()
        if first is None:
            return [], True
        items = [first]
        rows = len(first[0].spans)
        deadline = time.monotonic() + self.settings.timeout_s
        while rows < self.settings.send_batch_size:
            # Linger only while data keeps arriving: when every client is waiting on this write (a bounded
            # number of senders), the queue goes quiet and waiting longer would only stall them.
            wait = min(deadline - time.monotonic(), LINGER_GAP_S)
            try:
                item = self._queue.get(timeout=wait) if wait > 0 else self._queue.get_nowait()
            except queue.Empty:
                break
            if item is None:
                return items, True
            items.append(item)
            rows += len(item[0].spans)
        return items, False

    def _run(self) -> None:
        stopping = False
        while not stopping:
            items, stopping = self._take()
            if not items:
                continue
            try:
                stored = {id(batch) for batch in self.store.write([batch for batch, _ in items])}
            except Exception:
                # Write request by request so one bad batch cannot fail the others it was grouped with.
                for batch, done in items:
                    self._write_one(batch, done)
            else:
                for batch, done in items:
                    done.set_result(id(batch) in stored)

    def _write_one(self, batch: StoreBatch, done: Future[bool]) -> None:
        try:
            stored = bool(self.store.write([batch]))
        except Exception as error:
            logger.exception("writing %d spans to the store failed", len(batch.spans))
            done.set_exception(RetryableError(f"the store is unavailable: {error}", retry_after=RETRY_AFTER_S))
        else:
            done.set_result(stored)

    def shutdown(self) -> None:
        with self._lock:
            if not self._accepting:
                return
            self._accepting = False
            self._queue.put(None)
        if self._thread is not None:
            self._thread.join()
        else:
            while not self._queue.empty():
                item = self._queue.get_nowait()
                if item is not None:
                    item[1].set_exception(RetryableError("the collector stopped", retry_after=RETRY_AFTER_S))


def _cost_attributes(facts: Sequence[UsageFact]) -> list[Any]:
    currencies = {fact.currency for fact in facts if fact.currency}
    unpriced = [fact for fact in facts if fact.estimated_cost is None]
    attributes = []
    priced = [fact.estimated_cost for fact in facts if fact.estimated_cost is not None]
    if priced and len(currencies) == 1:
        attributes.append(double_attribute(semconv.SPANLEDGER_COST_ESTIMATE, float(sum(priced, Decimal(0)))))
        attributes.append(string_attribute(semconv.SPANLEDGER_COST_CURRENCY, currencies.pop()))
        attributes.append(
            string_attribute(semconv.SPANLEDGER_COST_SOURCE, semconv.SpanledgerCostSourceValues.ESTIMATE.value)
        )
    versions = sorted({fact.catalog_version for fact in facts if fact.catalog_version})
    if versions:
        attributes.append(string_attribute(semconv.SPANLEDGER_COST_CATALOG_VERSION, ", ".join(versions)))
    if unpriced:
        reasons = sorted({f"{fact.meter}: {fact.unpriced_reason or 'no price'}" for fact in unpriced})
        attributes.append(string_attribute(semconv.SPANLEDGER_COST_UNPRICED_REASON, "; ".join(reasons)))
    return attributes


class Pipeline:
    """One ``service.pipelines`` entry: its processors in order, then its exporters."""

    def __init__(
        self,
        pipeline_id: str,
        signal: str,
        *,
        limiter: MemoryLimiter | None = None,
        writer: StoreWriter | None = None,
        extract_usage: bool = False,
        catalog: Any = None,
        usage_metrics: UsageMetrics | None = None,
        exporters: Sequence[tuple[str, Consumer]] = (),
    ) -> None:
        self.pipeline_id = pipeline_id
        self.signal = signal
        self.limiter = limiter
        self.writer = writer
        self.extract_usage = extract_usage
        self.catalog = catalog
        self.usage_metrics = usage_metrics
        self.exporters = list(exporters)

    def _price(self, fact: UsageFact) -> UsageFact:
        # priced(): the fact with its estimate's cost (at the store's scale), currency, catalog_version and
        # unpriced_reason (set whenever cost is None); cheaper per fact than estimate() (see _pricing._rates).
        try:
            priced: UsageFact = self.catalog.priced(fact)
        except Exception as error:
            logger.exception("pricing %s of span %s failed", fact.meter, fact.span_id)
            # tuple.__new__ instead of _replace, as the catalog does.
            return tuple.__new__(UsageFact, (*fact[:_PRICED_FIELDS], None, None, None, f"pricing failed: {error}"))
        return priced

    def consume_traces(self, data: bytes) -> DecodedTraces:
        if self.limiter is not None:
            self.limiter.check()
        try:
            decoded = decode_traces(data, extract_usage=self.extract_usage)
        except DecodeError as error:
            raise PermanentError(f"the body is not a valid ExportTraceServiceRequest ({error})") from None
        batch = decoded.batch
        if self.catalog is not None and batch.facts:
            batch.facts = [self._price(fact) for fact in batch.facts]
        if self.exporters:
            request = ExportTraceServiceRequest.FromString(data)
            if batch.facts and self.catalog is not None:
                self._attach_costs(request, batch.facts)
            for _, exporter in self.exporters:
                exporter.consume_traces(request)
        first_delivery = True
        if self.writer is not None and len(batch.spans):
            batch.digest = hashlib.sha256(data).digest()[:16]  # sha256: CPUs hash it in hardware (~1.6 GB/s)
            done = self.writer.submit(batch)
            try:
                first_delivery = done.result(timeout=STORE_WAIT_S)
            except TimeoutError:
                raise RetryableError("the store is busy; retry later", retry_after=RETRY_AFTER_S) from None
        # A retried request was counted when it was stored; counting it again would inflate the series.
        if self.usage_metrics is not None and first_delivery:
            self.usage_metrics.record(decoded.llm_calls, batch.facts, batch.data_reads)
        return decoded

    @staticmethod
    def _attach_costs(request: ExportTraceServiceRequest, facts: Sequence[UsageFact]) -> None:
        by_span: dict[tuple[str, str], list[UsageFact]] = {}
        for fact in facts:
            by_span.setdefault((fact.trace_id, fact.span_id), []).append(fact)
        for resource_spans in request.resource_spans:
            for scope_spans in resource_spans.scope_spans:
                for span in scope_spans.spans:
                    owned = by_span.get((span.trace_id.hex(), span.span_id.hex()))
                    if owned:
                        span.attributes.extend(_cost_attributes(owned))

    def consume_metrics(self, data: bytes) -> ExportMetricsServiceRequest:
        if self.limiter is not None:
            self.limiter.check()
        try:
            request: ExportMetricsServiceRequest = ExportMetricsServiceRequest.FromString(data)
        except DecodeError as error:
            raise PermanentError(f"the body is not a valid ExportMetricsServiceRequest ({error})") from None
        for _, exporter in self.exporters:
            exporter.consume_metrics(request)
        return request

    def consume_logs(self, data: bytes) -> ExportLogsServiceRequest:
        if self.limiter is not None:
            self.limiter.check()
        try:
            request: ExportLogsServiceRequest = ExportLogsServiceRequest.FromString(data)
        except DecodeError as error:
            raise PermanentError(f"the body is not a valid ExportLogsServiceRequest ({error})") from None
        for _, exporter in self.exporters:
            exporter.consume_logs(request)
        return request
