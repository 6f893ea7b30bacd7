"""Accelerator time: ``with spanledger.accelerator(device=0):`` / ``@spanledger.accelerator()``.

The block gets an ``accelerator`` span that owns the accelerator-seconds it used: this process's SM busy
time on the selected NVML devices over the block's interval (see ``_nvml`` for the method and its
limits), summed over devices, with the GPU model and count. When several measurements overlap in this
process (threads, async tasks, concurrent requests in :mod:`spanledger.asgi`), each sample period's busy
time is split evenly among the measurements active on that device at that moment, so the shares add up
to the process's busy time instead of counting it once per measurement; the span records the peak
number of measurements sharing a device as ``spanledger.accelerator.concurrency``.

No NVML library, no GPU, or an unknown device: the block runs unchanged and the span says
``spanledger.accelerator.measurement = not_measured`` with the reason. A number is never made up.

CUDA-event timing (torch) is not used: a CUDA event's elapsed time is only known after the caller's
stream reaches it, which means synchronizing the application's stream at the end of every block, and it
measures one stream's wall time, not busy time shared with other streams or processes.
"""

from __future__ import annotations

import heapq
import itertools
import threading
import time
import weakref
from collections.abc import Callable, Sequence
from types import TracebackType
from typing import Any, TypeVar

from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.metrics import Counter, Meter
from opentelemetry.trace import Span, SpanKind
from opentelemetry.util.types import AttributeValue

from . import semconv
from ._decorating import run_inside
from ._errors import record_error
from ._internal_errors import internal_errors_logged
from ._metrics import create_instrument
from ._nvml import (
    DEFAULT_SAMPLE_PERIOD_US,
    MAX_SAMPLE_PERIOD_US,
    POLL_INTERVAL_S,
    Device,
    Nvml,
    busy_seconds,
    load_nvml,
)
from ._state import current_telemetry
from ._telemetry import Telemetry

__all__ = [
    "Accelerator",
    "AcceleratorMeasurement",
    "ConcurrencyLedger",
    "DeviceSpec",
    "accelerator",
    "record_accelerator_span",
]

F = TypeVar("F", bound=Callable[..., Any])
DeviceSpec = int | str | Sequence[int | str] | None
"""NVML device index or UUID, a list of them, or ``None`` for every device this process used."""

_Measurement = semconv.SpanledgerAcceleratorMeasurementValues


def _now_us() -> int:
    return time.time_ns() // 1000


class ConcurrencyLedger:
    """Which measurements were running on which device when; gives each one its share weights."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._ids = itertools.count()
        # device index -> measurement id -> (start_us, end_us or None while running)
        self._intervals: dict[int, dict[int, tuple[int, int | None]]] = {}

    def begin(self, devices: Sequence[int], start_us: int) -> int:
        token = next(self._ids)
        with self._lock:
            for device in devices:
                self._intervals.setdefault(device, {})[token] = (start_us, None)
        return token

    def finish(self, token: int, devices: Sequence[int], end_us: int) -> dict[int, tuple[list[_Segment], int]]:
        """Per device: the disjoint ``(start, end, 1/n)`` segments of this measurement and the peak ``n``."""
        shares: dict[int, tuple[list[_Segment], int]] = {}
        with self._lock:
            for device in devices:
                intervals = self._intervals.get(device, {})
                if token not in intervals:
                    continue
                start_us = intervals[token][0]
                intervals[token] = (start_us, end_us)
                others = [(s, end_us if e is None else e) for t, (s, e) in intervals.items() if t != token]
                shares[device] = _segments(start_us, end_us, others)
                _prune(intervals)
        return shares


_Segment = tuple[int, int, float]


def _prune(intervals: dict[int, tuple[int, int | None]]) -> None:
    """Forget finished measurements no running one overlaps."""
    running_starts = [s for s, e in intervals.values() if e is None]
    horizon = min(running_starts) if running_starts else None
    for token in [t for t, (_, e) in intervals.items() if e is not None and (horizon is None or e <= horizon)]:
        del intervals[token]


def _segments(start_us: int, end_us: int, others: Sequence[tuple[int, int]]) -> tuple[list[_Segment], int]:
    points = sorted({start_us, end_us, *(p for s, e in others for p in (s, e) if start_us < p < end_us)})
    segments: list[_Segment] = []
    peak = 1
    for a, b in itertools.pairwise(points):
        n = 1 + sum(1 for s, e in others if s < b and e > a)
        peak = max(peak, n)
        segments.append((a, b, 1 / n))
    return segments, peak


_ledger = ConcurrencyLedger()


class AcceleratorMeasurement:
    """One interval's accelerator-seconds. ``stop()`` at the end of the work, then ``attributes()``. Never raise."""

    def __init__(self, device: DeviceSpec) -> None:
        self.start_us = self.end_us = _now_us()
        self.reason: str | None = None
        self.busy_by_type: dict[str, float] = {}
        self._nvml: Nvml | None = None
        self._devices: tuple[Device, ...] = ()
        self._token: int | None = None
        self._shares: dict[int, tuple[list[_Segment], int]] = {}
        self._explicit = device is not None
        self.concurrency: int | None = None
        """Set by a caller that knows better (the ASGI middleware: requests in flight); else the device's."""
        try:
            loaded = load_nvml()
            if isinstance(loaded, str):
                self.reason = loaded
                return
            self._nvml = loaded
            self._devices = loaded.select(device)
            if not self._devices:
                self.reason = "no_device: NVML found no GPU"
                return
            self.start_us = loaded.watch(self._devices)
            self._token = _ledger.begin([d.index for d in self._devices], self.start_us)
        except LookupError as error:
            self.reason = f"unknown_device: {error}"
        except Exception as error:
            self.reason = f"nvml_error: {error}"

    @property
    def measuring(self) -> bool:
        return self.reason is None and self._nvml is not None and self._token is not None

    def stop(self) -> None:
        """The work ended: fix the interval and this measurement's share of each device."""
        self.end_us = _now_us()
        if self.measuring:
            assert self._token is not None
            self._shares = _ledger.finish(self._token, [d.index for d in self._devices], self.end_us)

    def seconds_until_sampled(self) -> float:
        """How long until NVML has sampled the period the work ended in (0 when it has, or when it is late
        beyond the longest sample period: then the tail of the work is left out)."""
        if not self.measuring:
            return 0.0
        try:
            assert self._nvml is not None
            now_us = _now_us()
            if now_us > self.end_us + MAX_SAMPLE_PERIOD_US + _SAMPLE_LATENCY_US:
                return 0.0
            due_us = 0
            for device in self._devices:
                samples = self._nvml.process_samples(device, self.start_us)
                latest = samples[-1][0] if samples else 0
                if latest < self.end_us and self._nvml.has_context(device):
                    gaps = [b[0] - a[0] for a, b in itertools.pairwise(samples)]
                    period = min(gaps) if gaps else DEFAULT_SAMPLE_PERIOD_US
                    due_us = max(due_us, latest + period + _SAMPLE_LATENCY_US, now_us + _POLL_INTERVAL_US)
            return min(max(due_us - now_us, 0), MAX_SAMPLE_PERIOD_US) / 1e6
        except Exception as error:
            self.reason = f"nvml_error: {error}"
            return 0.0

    def release(self) -> None:
        """Stop keeping NVML history for this measurement (after :meth:`attributes`)."""
        if self._nvml is not None and self._token is not None:
            with internal_errors_logged("accelerator release"):
                self._nvml.unwatch(self._devices, self.start_us)

    def attributes(self) -> dict[str, AttributeValue]:
        """The span attributes: time, type, count, concurrency, or ``not_measured`` and why."""
        if self.measuring:
            try:
                assert self._nvml is not None
                return self._measure(self._nvml)
            except Exception as error:
                self.reason = f"nvml_error: {error}"
        attributes: dict[str, AttributeValue] = {
            semconv.SPANLEDGER_ACCELERATOR_MEASUREMENT: _Measurement.NOT_MEASURED.value,
            semconv.SPANLEDGER_ACCELERATOR_NOT_MEASURED_REASON: self.reason or "unknown",
        }
        if self.concurrency is not None:
            attributes[semconv.SPANLEDGER_ACCELERATOR_CONCURRENCY] = self.concurrency
        return attributes

    def _measure(self, nvml: Nvml) -> dict[str, AttributeValue]:
        busy: dict[Device, float] = {}
        peak = 1
        for device in self._devices:
            segments, concurrency = self._shares.get(device.index, ([], 1))
            peak = max(peak, concurrency)
            busy[device] = busy_seconds(nvml.process_samples(device, self.start_us), segments)
        used = list(busy) if self._explicit else [d for d, seconds in busy.items() if seconds > 0]
        self.busy_by_type = {}
        for device in used:
            self.busy_by_type[device.name] = self.busy_by_type.get(device.name, 0.0) + busy[device]
        attributes: dict[str, AttributeValue] = {
            semconv.SPANLEDGER_USAGE_OWNER: True,
            semconv.SPANLEDGER_ACCELERATOR_MEASUREMENT: _Measurement.NVML.value,
            semconv.SPANLEDGER_ACCELERATOR_TIME: sum(busy[d] for d in used),
            semconv.SPANLEDGER_ACCELERATOR_COUNT: len(used),
            semconv.SPANLEDGER_ACCELERATOR_CONCURRENCY: peak if self.concurrency is None else self.concurrency,
        }
        if used:
            attributes[semconv.SPANLEDGER_ACCELERATOR_TYPE] = ", ".join(sorted(self.busy_by_type))
        return attributes


_SAMPLE_LATENCY_US = 50_000
"""Slack after a sample period ends before its sample is asked for."""
_POLL_INTERVAL_US = round(POLL_INTERVAL_S * 1e6)


class _Later:
    """One daemon thread running callbacks after a delay (spans waiting for their last NVML sample)."""

    def __init__(self) -> None:
        self._condition = threading.Condition()
        self._queue: list[tuple[float, int, Callable[[], None]]] = []
        self._sequence = itertools.count()
        self._thread: threading.Thread | None = None

    def call_later(self, delay: float, callback: Callable[[], None]) -> None:
        with self._condition:
            heapq.heappush(self._queue, (time.monotonic() + delay, next(self._sequence), callback))
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="spanledger-accelerator", daemon=True)
                self._thread.start()
            self._condition.notify()

    def _run(self) -> None:
        while True:
            with self._condition:
                while not self._queue:
                    self._condition.wait()
                due, _, callback = self._queue[0]
                wait = due - time.monotonic()
                if wait > 0:
                    self._condition.wait(wait)
                    continue
                heapq.heappop(self._queue)
            with internal_errors_logged("accelerator measurement"):
                callback()


_later = _Later()
_counters: weakref.WeakKeyDictionary[Meter, Counter] = weakref.WeakKeyDictionary()


def record_accelerator_span(telemetry: Telemetry, span: Span, measurement: AcceleratorMeasurement) -> None:
    """For a stopped ``measurement``: once NVML has sampled the end of the work (about a sample period
    later, on a background thread), put the attributes on ``span``, add the seconds to the counter and end
    the span at the time the work ended."""
    delay = measurement.seconds_until_sampled()
    if delay > 0:
        _later.call_later(delay, lambda: record_accelerator_span(telemetry, span, measurement))
    else:
        _complete(telemetry, span, measurement)


def _complete(telemetry: Telemetry, span: Span, measurement: AcceleratorMeasurement) -> None:
    try:
        attributes = measurement.attributes()
        span.set_attributes(attributes)
        if attributes.get(semconv.SPANLEDGER_ACCELERATOR_MEASUREMENT) == _Measurement.NVML.value:
            counter = _counters.get(telemetry.meter)
            if counter is None:
                counter = _counters[telemetry.meter] = create_instrument(
                    telemetry.meter, semconv.METRIC_SPANLEDGER_ACCELERATOR_TIME
                )
            for accelerator_type, seconds in measurement.busy_by_type.items():
                counter.add(seconds, {semconv.SPANLEDGER_ACCELERATOR_TYPE: accelerator_type})
    finally:
        measurement.release()
        span.end(end_time=measurement.end_us * 1000)


class Accelerator:
    """An accelerator-time scope: a context manager (sync or async) or a decorator (sync or async)."""

    def __init__(self, device: DeviceSpec = None, *, name: str = "accelerator") -> None:
        self.device = device
        self.name = name
        self._scopes: list[tuple[Telemetry, Span, AcceleratorMeasurement, object]] = []

    def __enter__(self) -> Span:
        span: Span = trace.INVALID_SPAN
        with internal_errors_logged("accelerator start"):
            telemetry = current_telemetry()
            span = telemetry.tracer.start_span(self.name, kind=SpanKind.INTERNAL)
            token = otel_context.attach(trace.set_span_in_context(span))
            self._scopes.append((telemetry, span, AcceleratorMeasurement(self.device), token))
        return span

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if not self._scopes:
            return
        telemetry, span, measurement, token = self._scopes.pop()
        with internal_errors_logged("accelerator end"):
            otel_context.detach(token)  # type: ignore[arg-type]
        with internal_errors_logged("accelerator end"):
            if exc is not None:
                record_error(span, exc)
            measurement.stop()
            record_accelerator_span(telemetry, span, measurement)

    async def __aenter__(self) -> Span:
        return self.__enter__()

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.__exit__(exc_type, exc, tb)

    def __call__(self, func: F) -> F:
        device, name = self.device, self.name
        return run_inside(lambda: Accelerator(device, name=name), func, "@spanledger.accelerator")


def accelerator(device: DeviceSpec = None, *, name: str = "accelerator") -> Accelerator:
    """Measure the accelerator-seconds the enclosed work used on ``device`` (NVML index or UUID; default all).

    ``with spanledger.accelerator(device=0): model.generate(...)`` or ``@spanledger.accelerator()``.
    """
    return Accelerator(device, name=name)
