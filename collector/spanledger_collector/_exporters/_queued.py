"""An exporter = a persistent sending queue + one sender thread that retries with backoff.

``consume_*`` splits the request to the destination's size limits, appends the parts to the on-disk
queue (fsync'd) and returns: the data is then acknowledged. The sender thread sends the oldest items,
retries retryable failures with exponential backoff and jitter (never sooner than the server's
Retry-After / RetryInfo), drops permanent failures and items that outlived ``max_elapsed_time``
(counted in ``send_failed``), and removes an item only once it is done with it.
"""

from __future__ import annotations

import logging
import threading
import time

from google.protobuf.message import Message
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import ExportMetricsServiceRequest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

from .._component import PermanentError, RetryableError
from ._queue import PersistentQueue, QueuedItem, QueueFullError
from ._settings import QueueSettings, RetrySettings
from ._signals import SIGNALS, Signal, count_items, split_request
from ._stats import ExporterCounters, ExporterStats
from ._transport import Transport

__all__ = ["QueuedExporter"]

_logger = logging.getLogger("spanledger_collector.exporters")
# How long a refused client is asked to wait when the queue is full.
_QUEUE_FULL_RETRY_AFTER = 5.0


class QueuedExporter:
    """A :class:`~spanledger_collector._component.Consumer` that delivers to one destination."""

    def __init__(
        self,
        component_id: str,
        transport: Transport,
        *,
        queue: QueueSettings,
        retry: RetrySettings,
        timeout: float,
        max_request_bytes: int,
        max_request_items: int,
        shutdown_timeout: float = 5.0,
    ) -> None:
        self.component_id = component_id
        self._transport = transport
        self._queue_settings = queue
        self._retry = retry
        self._timeout = timeout
        self._max_request_bytes = max_request_bytes
        self._max_request_items = max_request_items
        self._shutdown_timeout = shutdown_timeout
        self._counters = ExporterCounters()
        self._queue: PersistentQueue | None = None
        self._thread: threading.Thread | None = None
        self._has_work = threading.Event()
        self._draining = threading.Event()
        self._stop_now = threading.Event()
        self._lifecycle_lock = threading.Lock()
        self._shut_down = False

    # -- Component ---------------------------------------------------------------------------------

    def start(self) -> None:
        with self._lifecycle_lock:
            if self._queue is not None or self._shut_down:
                return
            self._queue = PersistentQueue(self._queue_settings.path, self._queue_settings.queue_size)
            if len(self._queue):
                _logger.info(
                    "%s: %d requests left in the sending queue from a previous run will be sent",
                    self.component_id,
                    len(self._queue),
                )
            self._thread = threading.Thread(target=self._run, name=f"exporter {self.component_id}", daemon=True)
            self._thread.start()

    def shutdown(self) -> None:
        """Send what the destination accepts within ``shutdown_timeout``; everything else stays on disk."""
        with self._lifecycle_lock:
            if self._shut_down:
                return
            self._shut_down = True
        self._draining.set()
        self._has_work.set()
        if self._thread is not None:
            self._thread.join(self._shutdown_timeout)
            self._stop_now.set()
            self._has_work.set()
            self._thread.join()
        self._transport.close()
        if self._queue is not None:
            self._queue.close()

    # -- Consumer ----------------------------------------------------------------------------------

    def consume_traces(self, request: ExportTraceServiceRequest) -> None:
        self._enqueue("traces", request)

    def consume_metrics(self, request: ExportMetricsServiceRequest) -> None:
        self._enqueue("metrics", request)

    def consume_logs(self, request: ExportLogsServiceRequest) -> None:
        self._enqueue("logs", request)

    # -- self-telemetry ----------------------------------------------------------------------------

    def stats(self) -> ExporterStats:
        queue = self._queue
        size = len(queue) if queue is not None else 0
        return self._counters.snapshot(size, self._queue_settings.queue_size)

    # -- internals ---------------------------------------------------------------------------------

    def _enqueue(self, signal: Signal, request: Message) -> None:
        queue = self._queue
        if queue is None or self._shut_down:
            raise RetryableError(f"exporter {self.component_id} is not running", retry_after=1.0)
        payload = request.SerializeToString()
        items = count_items(signal, request)
        if len(payload) <= self._max_request_bytes and (signal == "metrics" or items <= self._max_request_items):
            entries = [(signal, items, payload)]
        else:
            parts = split_request(signal, request, self._max_request_bytes, self._max_request_items)
            entries = [(signal, count_items(signal, part), part.SerializeToString()) for part in parts]
        entries = [entry for entry in entries if entry[1]]
        if not entries:
            return
        try:
            queue.put_many(entries)
        except QueueFullError as exc:
            self._counters.add_enqueue_failed(SIGNALS[signal].items, sum(entry[1] for entry in entries))
            raise RetryableError(f"exporter {self.component_id}: {exc}", retry_after=_QUEUE_FULL_RETRY_AFTER) from None
        self._has_work.set()

    def _run(self) -> None:
        queue = self._queue
        assert queue is not None
        while not self._stop_now.is_set():
            # Cleared before looking, so an enqueue that lands after an empty look still wakes the sender.
            self._has_work.clear()
            batch = queue.head(self._max_request_bytes, self._max_request_items)
            if not batch:
                if self._draining.is_set():
                    return
                self._has_work.wait()
                continue
            if not self._deliver(queue, batch):
                return

    def _deliver(self, queue: PersistentQueue, batch: list[QueuedItem]) -> bool:
        """Send queued requests as one until done with; ``False`` when the sender must stop and leave them."""
        signal: Signal = batch[0].signal  # type: ignore[assignment]
        kind = SIGNALS[signal].items
        payload = batch[0].payload if len(batch) == 1 else b"".join(item.payload for item in batch)
        items = sum(item.items for item in batch)
        delays = self._retry.delays()
        first_attempt = time.monotonic()
        while True:
            self._counters.in_flight += 1
            try:
                partial = self._transport.send(signal, payload, self._timeout)
            except PermanentError as exc:
                if len(batch) > 1:
                    # One bad request must not take the requests merged with it down: send them one by one.
                    return all(self._deliver(queue, [item]) for item in batch)
                _logger.error(
                    "%s: dropping %d %s the destination refused permanently: %s",
                    self.component_id,
                    items,
                    kind,
                    exc,
                )
                queue.remove(batch)
                self._counters.add_send_failed(kind, items)
                return True
            except RetryableError as exc:
                delay = max(next(delays), exc.retry_after or 0.0)
                elapsed = time.monotonic() - first_attempt
                if not self._retry.enabled or (
                    self._retry.max_elapsed_time and elapsed + delay > self._retry.max_elapsed_time
                ):
                    _logger.error(
                        "%s: dropping %d %s after %.0f s of retries: %s",
                        self.component_id,
                        items,
                        kind,
                        elapsed,
                        exc,
                    )
                    queue.remove(batch)
                    self._counters.add_send_failed(kind, items)
                    return True
                if self._draining.is_set():
                    return False
                _logger.warning("%s: export failed, retrying in %.1f s: %s", self.component_id, delay, exc)
                if self._draining.wait(delay):
                    return False
                continue
            finally:
                self._counters.in_flight -= 1
            rejected = min(partial.rejected, items) if partial is not None else 0
            if partial is not None:
                _logger.warning(
                    "%s: the destination rejected %d of %d %s: %s",
                    self.component_id,
                    rejected,
                    items,
                    kind,
                    partial.message,
                )
            queue.remove(batch)
            self._counters.add_sent(kind, items - rejected)
            if rejected:
                self._counters.add_send_failed(kind, rejected)
            return True
