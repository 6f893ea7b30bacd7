"""The pipelines between receivers and exporters: memory limiter, store writer, usage and cost.

Like the OTel Collector, a receiver calls its pipelines synchronously and maps their errors onto the
wire: :class:`RetryableError` (memory limiter, store behind, an exporter's full queue) -> gRPC UNAVAILABLE /
HTTP 503 with a retry delay; :class:`PermanentError` (undecodable data) -> INVALID_ARGUMENT / 400.

The store writer is the batch processor. A request thread appends the request's body to the request log,
syncs it (one ``fdatasync`` for all the requests written meanwhile) and hands the decoded rows to the writer
thread; then the client is acknowledged. The writer thread appends up to ``send_batch_size`` spans, or
what arrived within ``timeout``, to the store's open transaction, and commits it every ``commit_interval``
(10 s) together with the log position it reached. After a crash the requests logged past that position are
stored again at start, so nothing acknowledged is lost, and a retry of one is still stored once (digests).
"""

from __future__ import annotations

import collections
import gc
import hashlib
import logging
import os
import queue
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from decimal import Decimal
from functools import partial
from typing import Any, NamedTuple

from google.protobuf.message import DecodeError
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import ExportMetricsServiceRequest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from spanledger import semconv

from ._component import Consumer, PermanentError, RetryableError
from ._config import BatchSettings, MemoryLimiterSettings
from ._otlp import double_attribute, string_attribute
from ._store import LoggedRequest, RequestLog, Store, StoreBatch, StoreUnavailableError, UsageFact
from ._telemetry import UsageMetrics
from ._usage import DecodedTraces, decode_traces

__all__ = ["MemoryLimiter", "Pipeline", "Replayer", "StoreWriter", "rss_bytes"]

logger = logging.getLogger("spanledger.collector")

RETRY_AFTER_S = 1.0
COMMIT_INTERVAL_S = 10.0
FLUSH_WAIT_S = 10.0
SUBMIT_WAIT_S = 10.0
RESTORE_CHUNK_REQUESTS = 100
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


class _Queued(NamedTuple):
    seq: int
    batch: StoreBatch
    on_stored: Callable[[], object] | None


Replayer = Callable[[LoggedRequest], StoreBatch]
"""Turns a logged request back into its rows; raises on data it cannot decode."""


class StoreWriter:
    """The batch processor in front of the store: a request log, one writer thread, periodic commits.

    A request is appended to the :class:`RequestLog` and synced before it is acknowledged; its rows go to the
    writer thread, which appends groups of them to the store's open transaction and commits every
    ``commit_interval_s`` (see the module doc).
    """

    def __init__(
        self, store: Store, log: RequestLog, settings: BatchSettings, *, commit_interval_s: float = COMMIT_INTERVAL_S
    ) -> None:
        self.store = store
        self.log = log
        self.settings = settings
        self.commit_interval_s = commit_interval_s
        self.max_queued_spans = settings.send_batch_size * 2
        self._queue: queue.SimpleQueue[_Queued | threading.Event | None] = queue.SimpleQueue()
        self._lock = threading.Lock()
        self._waiting: collections.deque[threading.Condition] = collections.deque()
        self._accepting = True
        self._queued_spans = 0
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None
        self._replay: Replayer = lambda request: StoreBatch()
        # Writer thread only: log positions of the last append and the last commit, when the next commit is due.
        self._appended_seq = 0
        self._committed_seq = 0
        self._commit_due: float | None = None
        self._abandoned = False
        self.failure: str | None = None
        """Why the writer is not storing right now (shown on /health), or ``None``."""

    def start(self, replay: Replayer) -> None:
        """Store the logged requests the store has not committed (acknowledged before a crash), then start.

        Raises when the store cannot take them, so a broken store fails the collector's start.
        """
        if self._thread is not None:
            return
        self._replay = replay
        self._committed_seq = self._appended_seq = self.store.committed_log_position()
        if self.log.last_seq > self._committed_seq:
            logger.info("restoring requests %d-%d from the request log", self._committed_seq + 1, self.log.last_seq)
            self._restore(self.log.last_seq, retry=False)
        self._thread = threading.Thread(target=self._run, name="spanledger-store-writer", daemon=True)
        self._thread.start()

    def submit(
        self, pipeline_id: str, body: bytes, batch: StoreBatch, on_stored: Callable[[], object] | None = None
    ) -> None:
        """Log the request and queue its rows; once this returns the request may be acknowledged.

        ``on_stored`` is called on the writer thread if the rows are stored (not for a retry of a stored request).
        """
        spans = len(batch.spans)
        with self._lock:
            if not self._abandoned:
                self._wait_for_room(spans)
            if not self._accepting:
                raise RetryableError("the collector is shutting down", retry_after=RETRY_AFTER_S)
            if self._abandoned:
                raise RetryableError(f"{self.failure}; restart the collector", retry_after=RETRY_AFTER_S)
            if not self._has_room(spans):
                raise RetryableError(
                    f"the store is {self._queued_spans} spans behind; retry later", retry_after=RETRY_AFTER_S
                )
            try:
                seq = self.log.append(pipeline_id, body)
            except OSError as error:
                logger.error("writing to the request log failed: %s", error)
                raise RetryableError(f"the request log cannot be written: {error}", retry_after=RETRY_AFTER_S) from None
            self._queued_spans += spans
            self._queue.put(_Queued(seq, batch, on_stored))
        try:
            self.log.sync(seq)
        except OSError as error:
            logger.error("syncing the request log failed: %s", error)
            raise RetryableError(f"the request log cannot be synced: {error}", retry_after=RETRY_AFTER_S) from None

    def _has_room(self, spans: int) -> bool:
        return not self._queued_spans or self._queued_spans + spans <= self.max_queued_spans

    def _wait_for_room(self, spans: int) -> None:
        """With the lock held: wait, in arrival order, until the queue can take ``spans`` (or time runs out).

        A writer that falls behind slows its clients down, as the wait for a commit used to; only one that stays
        behind gets them refused. Each waiter has its own condition, so freed room wakes one thread, not all.
        """
        if not self._waiting and self._has_room(spans):
            return
        turn = threading.Condition(self._lock)
        self._waiting.append(turn)
        deadline = time.monotonic() + SUBMIT_WAIT_S
        try:
            while self._accepting and not (self._waiting[0] is turn and self._has_room(spans)):
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return
                turn.wait(remaining)
        finally:
            self._waiting.remove(turn)
            if self._waiting:
                self._waiting[0].notify()

    def flush(self, timeout: float = FLUSH_WAIT_S) -> bool:
        """Commit everything submitted so far (readers of the store see committed rows only)."""
        done = threading.Event()
        with self._lock:
            if self._thread is None or not self._accepting:
                return False
            self._queue.put(done)
        return done.wait(timeout)

    def _take(self) -> tuple[list[_Queued], list[threading.Event], bool]:
        """Requests to append (up to ``send_batch_size`` spans within ``timeout``), flush requests, and stop."""
        items: list[_Queued] = []
        flushes: list[threading.Event] = []
        spans = 0
        deadline = self._commit_due
        while spans < self.settings.send_batch_size:
            wait = None if deadline is None else deadline - time.monotonic()
            try:
                item = self._queue.get(timeout=wait) if wait is None or wait > 0 else self._queue.get_nowait()
            except queue.Empty:
                break
            if item is None:
                return items, flushes, True
            if isinstance(item, threading.Event):
                flushes.append(item)
                break
            if not items:
                gather_until = time.monotonic() + self.settings.timeout_s
                deadline = gather_until if deadline is None else min(deadline, gather_until)
            items.append(item)
            spans += len(item.batch.spans)
        return items, flushes, False

    def _run(self) -> None:
        stopping = False
        while not stopping:
            items, flushes, stopping = self._take()
            try:
                # Abandoned: what is left stays in the log, stored at the next start.
                if items and not self._abandoned:
                    self._append(items)
                if not self._abandoned and (
                    stopping or flushes or (self._commit_due is not None and time.monotonic() >= self._commit_due)
                ):
                    self._commit()
            except Exception as error:
                # Not a store error (those are retried): a rollback that fails, an unreadable log. Stop storing
                # and say so on /health; a restart stores everything acknowledged from the log.
                logger.exception("the store writer failed; acknowledged requests wait in the request log for a restart")
                self.failure = f"the store writer failed: {error}"
                self._abandoned = True
            finally:
                with self._lock:
                    self._queued_spans -= sum(len(item.batch.spans) for item in items)
                    if self._waiting:
                        self._waiting[0].notify()
                for flush in flushes:
                    flush.set()

    def _append(self, items: list[_Queued]) -> None:
        try:
            new = self.store.append([item.batch for item in items])
        except Exception:
            logger.exception(
                "appending %d requests to the store failed; restoring them from the request log", len(items)
            )
            stored = self._recover(items[-1].seq)
        else:
            self._appended_seq = items[-1].seq
            if self._commit_due is None:
                self._commit_due = time.monotonic() + self.commit_interval_s
            new_ids = {id(batch) for batch in new}
            stored = {item.seq for item in items if id(item.batch) in new_ids}
        for item in items:
            if item.on_stored is not None and item.seq in stored:
                try:
                    item.on_stored()
                except Exception:
                    logger.exception("recording the usage of request %d failed", item.seq)

    def _commit(self) -> None:
        self._commit_due = None
        if self._appended_seq <= self._committed_seq:
            return
        try:
            self.store.commit(self._appended_seq)
        except Exception:
            logger.exception(
                "committing requests up to %d failed; restoring them from the request log", self._appended_seq
            )
            self._recover(self._appended_seq)
            return
        self._committed_seq = self._appended_seq
        self.failure = None
        self._release()

    def _recover(self, upto: int) -> set[int]:
        self.store.rollback()
        return self._restore(upto, retry=True)

    def _restore(self, upto: int, *, retry: bool) -> set[int]:
        """Store the logged requests after the last commit up to ``upto``; returns the sequence numbers stored.

        All in one transaction if that works. Otherwise one request per transaction, so that a request the
        store rejects (logged, then dropped) cannot hold up the others; an unavailable store is retried every
        second until it recovers or the collector stops (``retry``), or the error is raised.
        """
        try:
            stored = self._store_together(upto)
        except Exception as error:
            self.store.rollback()
            logger.warning("restoring requests up to %d in one transaction failed (%s); one at a time", upto, error)
            stored = set()
            for request in self._logged_requests(upto):
                outcome = self._store_alone(request, retry=retry)
                if outcome is None:
                    self._abandoned = True
                    break
                if outcome:
                    stored.add(request.seq)
        self._appended_seq = self._committed_seq
        self._release()
        return stored

    def _logged_requests(self, upto: int) -> Iterator[LoggedRequest]:
        for request in self.log.replay(self._committed_seq):
            if request.seq > upto:
                return
            yield request

    def _store_together(self, upto: int) -> set[int]:
        stored: set[int] = set()
        last = self._committed_seq
        chunk: list[tuple[int, StoreBatch]] = []
        for request in self._logged_requests(upto):
            last = request.seq
            batch = self._replay(request)
            if len(batch.spans):
                chunk.append((request.seq, batch))
            if len(chunk) >= RESTORE_CHUNK_REQUESTS:
                stored |= self._append_chunk(chunk)
                chunk = []
        stored |= self._append_chunk(chunk)
        if last > self._committed_seq:
            self.store.commit(last)
            self._committed_seq = last
        return stored

    def _append_chunk(self, chunk: list[tuple[int, StoreBatch]]) -> set[int]:
        if not chunk:
            return set()
        new = {id(batch) for batch in self.store.append([batch for _, batch in chunk])}
        return {seq for seq, batch in chunk if id(batch) in new}

    def _store_alone(self, request: LoggedRequest, *, retry: bool) -> bool | None:
        """Store one request in its own transaction: whether it was new; ``None`` if the collector stopped first."""
        try:
            batch = self._replay(request)
        except Exception as error:
            logger.error(
                "request %d (pipeline %s) cannot be decoded and is dropped: %s", request.seq, request.pipeline_id, error
            )
            batch = StoreBatch()
        while True:
            try:
                new = self.store.append([batch]) if len(batch.spans) else []
                self.store.commit(request.seq)
            except Exception as error:
                self.store.rollback()
                if not isinstance(error, StoreUnavailableError) and self._commit_position(request.seq):
                    logger.error(
                        "the store rejects request %d (pipeline %s), which is dropped: %s",
                        request.seq,
                        request.pipeline_id,
                        error,
                    )
                    new = []
                elif not retry:
                    raise
                else:
                    self.failure = f"the store is unavailable: {error}"
                    logger.error("%s; retrying in %.0f s", self.failure, RETRY_AFTER_S)
                    if self._stopping.wait(RETRY_AFTER_S):
                        return None
                    continue
            self._committed_seq = request.seq
            self.failure = None
            return bool(new)

    def _commit_position(self, seq: int) -> bool:
        """Whether the store commits the log position alone (then what failed was the request, not the store)."""
        try:
            self.store.commit(seq)
        except Exception:
            self.store.rollback()
            return False
        return True

    def _release(self) -> None:
        try:
            self.log.release(self._committed_seq)
        except OSError:
            logger.exception("deleting committed segments of the request log failed")

    def shutdown(self) -> None:
        """Stop accepting, commit what was queued and close the log; safe to call twice."""
        with self._lock:
            if not self._accepting:
                return
            self._accepting = False
            self._queue.put(None)
            for turn in self._waiting:
                turn.notify()
        self._stopping.set()
        if self._thread is not None:
            self._thread.join()
        self.log.close()


def _digest(data: bytes) -> bytes:
    return hashlib.sha256(data).digest()[:16]  # sha256: CPUs hash it in hardware (~1.6 GB/s)


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

    def _decode(self, data: bytes) -> DecodedTraces:
        try:
            decoded = decode_traces(data, extract_usage=self.extract_usage)
        except DecodeError as error:
            raise PermanentError(f"the body is not a valid ExportTraceServiceRequest ({error})") from None
        batch = decoded.batch
        if self.catalog is not None and batch.facts:
            batch.facts = [self._price(fact) for fact in batch.facts]
        return decoded

    def consume_traces(self, data: bytes) -> DecodedTraces:
        if self.limiter is not None:
            self.limiter.check()
        decoded = self._decode(data)
        batch = decoded.batch
        if self.exporters:
            request = ExportTraceServiceRequest.FromString(data)
            if batch.facts and self.catalog is not None:
                self._attach_costs(request, batch.facts)
            for _, exporter in self.exporters:
                exporter.consume_traces(request)
        record_usage = None
        if self.usage_metrics is not None:
            record_usage = partial(self.usage_metrics.record, decoded.llm_calls, batch.facts, batch.data_reads)
        if self.writer is not None and len(batch.spans):
            batch.digest = _digest(data)
            # Recorded once stored: a retried request was counted when it was first stored.
            self.writer.submit(self.pipeline_id, data, batch, record_usage)
        elif record_usage is not None:
            record_usage()
        return decoded

    def stored_batch(self, data: bytes) -> StoreBatch:
        """The rows a request puts in the store (for a request restored from the request log)."""
        batch = self._decode(data).batch
        batch.digest = _digest(data)
        return batch

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
