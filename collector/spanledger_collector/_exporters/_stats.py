"""Exporter self-telemetry, read by the collector's Prometheus endpoint."""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass

__all__ = ["ExporterCounters", "ExporterStats"]


@dataclass(frozen=True)
class ExporterStats:
    """A snapshot of one exporter's counters, named after the OTel Collector's own metrics.

    ``sent``, ``send_failed`` and ``enqueue_failed`` are keyed by item kind (``spans``, ``metric_points``,
    ``log_records``), the suffix of ``otelcol_exporter_sent_<kind>`` and friends. ``queue_size`` and
    ``queue_capacity`` count requests, like ``otelcol_exporter_queue_size`` / ``..._capacity``.
    """

    queue_size: int
    queue_capacity: int
    in_flight_requests: int
    sent: Mapping[str, int]
    send_failed: Mapping[str, int]
    enqueue_failed: Mapping[str, int]


class ExporterCounters:
    """Thread-safe monotonic counters behind :class:`ExporterStats`."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._sent: Counter[str] = Counter()
        self._send_failed: Counter[str] = Counter()
        self._enqueue_failed: Counter[str] = Counter()
        self.in_flight = 0

    def add_sent(self, kind: str, count: int) -> None:
        with self._lock:
            self._sent[kind] += count

    def add_send_failed(self, kind: str, count: int) -> None:
        with self._lock:
            self._send_failed[kind] += count

    def add_enqueue_failed(self, kind: str, count: int) -> None:
        with self._lock:
            self._enqueue_failed[kind] += count

    def snapshot(self, queue_size: int, queue_capacity: int) -> ExporterStats:
        with self._lock:
            return ExporterStats(
                queue_size=queue_size,
                queue_capacity=queue_capacity,
                in_flight_requests=self.in_flight,
                sent=dict(self._sent),
                send_failed=dict(self._send_failed),
                enqueue_failed=dict(self._enqueue_failed),
            )
