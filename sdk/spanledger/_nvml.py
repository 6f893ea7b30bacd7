"""The NVML boundary: devices and this process's SM busy time, through ``pynvml`` (nvidia-ml-py).

Per-process busy time comes from ``nvmlDeviceGetProcessUtilization(device, lastSeenTimeStamp)``. The
driver samples every process with a context on the device once per sample period (200 ms on an H100 with
driver 580; 1/6 s to 1 s depending on the product); each sample is the percentage of that period during
which the process's kernels occupied the SMs. A query does not return those samples: it returns ONE entry
per process, whose ``smUtil`` is the average of its samples newer than ``lastSeenTimeStamp`` and whose
``timeStamp`` is the newest one's (microseconds since the epoch), or ``NVML_ERROR_NOT_FOUND`` when no
sample is newer (seen on a real H100, docs/sdk.md "Verified on a real GPU"). So :class:`Nvml` polls
each watched device, chaining every query on the timestamp the previous one returned: entry ``i`` of the
resulting history is this process's average utilization over ``(t[i-1], t[i]]``, exactly, whatever the
gap between polls. Busy seconds over an interval are the integral of ``util / 100`` over it
(:func:`busy_seconds`).

Why not the others: ``nvmlDeviceGetUtilizationRates`` / ``nvmlDeviceGetSamples`` are device-wide (every
process together); ``nvmlDeviceGetAccountingStats`` needs accounting mode switched on by root and gives a
whole-lifetime integer percentage, too coarse to difference over one request.

Limits: the resolution is one sample period (the start and end of a block fall inside sample periods whose
average is spread over the whole period); inside a container NVML reports host PIDs, which do not match
``os.getpid()`` unless the container shares the host PID namespace (then nothing is attributed: the span
says so, see ``_accelerator``).

Nothing here imports ``pynvml`` at import time; :func:`load_nvml` does, once, and caches the outcome.
"""

from __future__ import annotations

import bisect
import contextlib
import functools
import importlib
import itertools
import os
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

__all__ = ["Device", "Nvml", "busy_seconds", "load_nvml"]

DEFAULT_SAMPLE_PERIOD_US = 166_667
"""The shortest sample period of current products (1/6 s), assumed until the history shows the device's."""
MAX_SAMPLE_PERIOD_US = 1_000_000
"""The longest sample period of current products."""
POLL_INTERVAL_S = 0.1
"""How often watched devices are polled: under any product's sample period, so the history keeps its detail."""
MAX_HISTORY = 8192
"""Entries kept per device (~27 min at one per 200 ms) before the older half is merged pairwise."""


@dataclass(frozen=True)
class Device:
    index: int
    uuid: str
    name: str
    handle: Any = field(compare=False)  # a ctypes pointer: unhashable, and the index already identifies it


class Nvml:
    """An initialised NVML library and its devices; safe to share between threads."""

    def __init__(self, module: Any) -> None:
        self._nvml = module
        module.nvmlInit()
        self.devices = tuple(self._device(index) for index in range(module.nvmlDeviceGetCount()))
        self._lock = threading.Lock()
        self._history: dict[int, list[tuple[int, float]]] = {}  # device index -> (timestamp_us, util) of our PID
        self._watchers: dict[int, list[int]] = {}  # device index -> since_us of each running measurement
        self._with_context: set[int] = set()  # device indexes where NVML has reported this PID
        self._pid = os.getpid()
        self._poller: threading.Thread | None = None

    def _device(self, index: int) -> Device:
        handle = self._nvml.nvmlDeviceGetHandleByIndex(index)
        return Device(
            index, _text(self._nvml.nvmlDeviceGetUUID(handle)), _text(self._nvml.nvmlDeviceGetName(handle)), handle
        )

    def select(self, device: int | str | Sequence[int | str] | None) -> tuple[Device, ...]:
        """Devices by NVML index or UUID (``None``: all); raises ``LookupError`` naming an unknown one."""
        if device is None:
            return self.devices
        wanted = [device] if isinstance(device, (int, str)) else list(device)
        selected = []
        for key in wanted:
            found = next((d for d in self.devices if key in (d.index, d.uuid)), None)
            if found is None:
                raise LookupError(f"no NVML device {key!r} (have {[d.index for d in self.devices]})")
            selected.append(found)
        return tuple(selected)

    def watch(self, devices: Sequence[Device]) -> int:
        """Keep a history of this process's utilization on ``devices`` until :meth:`unwatch`; returns the
        time (µs since the epoch) from which it is kept, after polling each device once so its history has
        an entry at or before that time for the next entry's average to start from."""
        for device in devices:
            self.poll(device)
        since_us = time.time_ns() // 1000
        with self._lock:
            for device in devices:
                self._watchers.setdefault(device.index, []).append(since_us)
            if self._poller is None:
                self._poller = threading.Thread(target=self._poll_while_watched, name="spanledger-nvml", daemon=True)
                self._poller.start()
        return since_us

    def unwatch(self, devices: Sequence[Device], since_us: int) -> None:
        with self._lock:
            for device in devices:
                watchers = self._watchers.get(device.index, [])
                if since_us in watchers:
                    watchers.remove(since_us)
                history = self._history.get(device.index, [])
                horizon = min(watchers) if watchers else history[-1][0] if history else 0
                del history[: _entry_at_or_before(history, horizon)]

    def poll(self, device: Device) -> None:
        """Append this process's average utilization since the previous poll to ``device``'s history."""
        pid = os.getpid()
        with self._lock:  # NVML is thread-safe; the lock keeps the chain of timestamps in order
            history = self._history.setdefault(device.index, [])
            if self._pid != pid:  # forked: the parent's history is not ours
                self._pid = pid
                self._with_context.clear()
                for other in self._history.values():
                    other.clear()
            last_seen = history[-1][0] if history else 0
            try:
                samples = self._nvml.nvmlDeviceGetProcessUtilization(device.handle, last_seen)
            except self._nvml.NVMLError as error:
                if getattr(error, "value", None) != self._nvml.NVML_ERROR_NOT_FOUND:
                    raise
                samples = []  # no sample newer than ``last_seen`` yet
            mine = [(int(s.timeStamp), int(s.smUtil)) for s in samples if s.pid == pid and s.timeStamp > last_seen]
            if mine:
                history.append(max(mine))
                self._with_context.add(device.index)
                if len(history) > MAX_HISTORY:
                    _merge_older_half(history)
            elif not history:  # no context here yet: utilization until now is 0, counting starts now
                history.append((time.time_ns() // 1000, 0))

    def has_context(self, device: Device) -> bool:
        """Whether NVML has reported this process on ``device`` (else it has no samples to wait for)."""
        with self._lock:
            return device.index in self._with_context

    def process_samples(self, device: Device, since_us: int) -> list[tuple[int, float]]:
        """``(timestamp_us, sm_util_percent)``: the newest entry at or before ``since_us`` (where the next
        one's average starts), then every newer one, oldest first. Polls first."""
        self.poll(device)
        with self._lock:
            history = self._history.get(device.index, [])
            return history[_entry_at_or_before(history, since_us) :]

    def _poll_while_watched(self) -> None:
        while True:
            with self._lock:
                watched = [d for d in self.devices if self._watchers.get(d.index)]
                if not watched:
                    self._poller = None
                    return
            for device in watched:
                with contextlib.suppress(Exception):  # a measurement reading this device reports the error itself
                    self.poll(device)
            time.sleep(POLL_INTERVAL_S)


def _entry_at_or_before(history: list[tuple[int, float]], timestamp_us: int) -> int:
    """Index of the newest entry at or before ``timestamp_us`` (where the next entry's average starts), else 0."""
    return max(bisect.bisect_right(history, timestamp_us, key=lambda entry: entry[0]) - 1, 0)


def _merge_older_half(history: list[tuple[int, float]]) -> None:
    """Merge the older half of ``history`` in pairs, each into the average over both intervals weighted by their
    durations: a block held open for days keeps a bounded history, exact over any interval that covers whole
    merged entries (only where a concurrency change falls inside one is its split approximated)."""
    merged = [history[0]]
    end = len(history) // 2
    for i in range(1, end - 1, 2):
        (start, _), (middle, first), (stop, second) = history[i - 1], history[i], history[i + 1]
        merged.append((stop, (first * (middle - start) + second * (stop - middle)) / (stop - start)))
    history[: 1 + 2 * ((end - 1) // 2)] = merged


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


@functools.cache
def load_nvml() -> Nvml | str:
    """The NVML library, or why it cannot be used (a short reason for the span). Cached for the process."""
    try:
        module = importlib.import_module("pynvml")
    except ImportError:
        return "nvml_not_installed: pip install 'spanledger[nvml]'"
    try:
        return Nvml(module)
    except Exception as error:  # NVMLError_LibraryNotFound, _DriverNotLoaded, ... : no usable GPU here
        return f"nvml_unavailable: {error}"


def busy_seconds(samples: Sequence[tuple[int, float]], segments: Sequence[tuple[int, int, float]]) -> float:
    """Weighted seconds the SMs were busy within ``segments`` (``(start_us, end_us, weight)``, disjoint).

    Sample ``i`` (from :meth:`Nvml.process_samples`) is the average utilization over ``(t[i-1], t[i]]``;
    the first one only marks where the second one's interval starts. A weight of ``1/n`` gives a
    measurement its share of time when ``n`` measurements overlap.
    """
    busy_us = 0.0
    for (previous, _), (timestamp, util) in itertools.pairwise(samples):
        for start_us, end_us, weight in segments:
            overlap = min(timestamp, end_us) - max(previous, start_us)
            if overlap > 0:
                busy_us += overlap * util / 100 * weight
    return busy_us / 1e6
