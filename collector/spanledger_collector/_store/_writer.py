"""The store writer: the request log in front of the store, one writer thread, periodic commits.

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
import logging
import threading
import time
from collections.abc import Callable, Iterator
from typing import NamedTuple

from .._component import RetryableError
from .._config import BatchSettings
from ._duckdb import Store, StoreUnavailableError
from ._request_log import LoggedRequest, RequestLog, digest
from ._rows import StoreBatch

__all__ = ["Replayer", "StoreWriter", "digest"]

logger = logging.getLogger("spanledger.collector")

RETRY_AFTER_S = 1.0
COMMIT_INTERVAL_S = 10.0
FLUSH_WAIT_S = 10.0
SUBMIT_WAIT_S = 10.0
RESTORE_CHUNK_REQUESTS = 100


class _Queued(NamedTuple):
    seq: int
    batch: StoreBatch
    on_stored: Callable[[], object] | None
    settings: BatchSettings


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
        self._lock = threading.Lock()
        # Requests for the writer thread, which is woken only when a batch starts, fills, or a flush or stop is
        # asked for (not once per request: at 100 requests/s the wake-ups cost more than the queueing).
        self._work = threading.Condition(self._lock)
        self._pending: collections.deque[_Queued] = collections.deque()
        self._pending_spans = 0
        self._pending_due = 0.0
        """When the pending requests' group is due: the earliest of each one's arrival plus its ``timeout``."""
        self._pending_batch_size = settings.send_batch_size
        """The smallest ``send_batch_size`` among the pending requests' pipelines."""
        self._flushes: list[threading.Event] = []
        self._stop = False
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
        self,
        pipeline_id: str,
        body: bytes,
        batch: StoreBatch,
        on_stored: Callable[[], object] | None = None,
        settings: BatchSettings | None = None,
    ) -> None:
        """Log the request and queue its rows; once this returns the request may be acknowledged.

        ``on_stored`` is called on the writer thread if the rows are stored (not for a retry of a stored request).
        ``settings`` are the batch settings of the request's pipeline (its ``batch`` processor; the writer's own
        when None): the group it is appended in is appended once the first of its requests' limits is reached.
        """
        settings = settings or self.settings
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
                seq = self.log.append(pipeline_id, body, batch.digest)
            except OSError as error:
                logger.error("writing to the request log failed: %s", error)
                raise RetryableError(f"the request log cannot be written: {error}", retry_after=RETRY_AFTER_S) from None
            self._queued_spans += spans
            due = time.monotonic() + settings.timeout_s
            if not self._pending:
                self._pending_due = due
                self._pending_batch_size = settings.send_batch_size
                self._work.notify()
            elif due < self._pending_due or settings.send_batch_size < self._pending_batch_size:
                self._pending_due = min(self._pending_due, due)
                self._pending_batch_size = min(self._pending_batch_size, settings.send_batch_size)
                self._work.notify()
            self._pending.append(_Queued(seq, batch, on_stored, settings))
            self._pending_spans += spans
            if self._pending_spans >= self._pending_batch_size:
                self._work.notify()
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
            self._flushes.append(done)
            self._work.notify()
        return done.wait(timeout)

    def _take(self) -> tuple[list[_Queued], list[threading.Event], bool]:
        """Requests to append (``send_batch_size`` spans, or what arrived within ``timeout``; everything before a
        flush or stop), the flush requests, and whether to stop. Returns when a commit is due, too."""
        with self._lock:
            while not (self._stop or self._flushes or self._pending_spans >= self._pending_batch_size):
                now = time.monotonic()
                due = self._commit_due
                if self._pending:
                    due = self._pending_due if due is None else min(due, self._pending_due)
                if due is not None and now >= due:
                    break
                self._work.wait(None if due is None else due - now)
            everything = self._stop or bool(self._flushes)
            items: list[_Queued] = []
            spans = 0
            batch_size = self._pending_batch_size
            while self._pending and (everything or spans < batch_size):
                item = self._pending.popleft()
                items.append(item)
                spans += len(item.batch.spans)
            self._pending_spans -= spans
            if self._pending:  # the rest starts a new group
                now = time.monotonic()
                self._pending_due = now + min(item.settings.timeout_s for item in self._pending)
                self._pending_batch_size = min(item.settings.send_batch_size for item in self._pending)
            flushes, self._flushes = self._flushes, []
            return items, flushes, self._stop

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
            self._stop = True
            self._work.notify()
            for turn in self._waiting:
                turn.notify()
        self._stopping.set()
        if self._thread is not None:
            self._thread.join()
            waiting = self.log.last_seq - self._committed_seq
            if waiting > 0:
                logger.warning(
                    "shutting down with %d acknowledged requests (%d-%d) not committed to the store (%s): they wait"
                    " in the request log %s and are stored at the next start with this store",
                    waiting,
                    self._committed_seq + 1,
                    self.log.last_seq,
                    self.failure or "its last commit failed",
                    self.log.directory,
                )
        self.log.close()
