"""The NVML boundary: devices and this process's per-sample SM utilization, through ``pynvml`` (nvidia-ml-py).

Per-process busy time comes from ``nvmlDeviceGetProcessUtilization(device, lastSeenTimeStamp)``: the
driver samples every process with a context on the device once per sample period (1/6 s to 1 s depending
on the product) and reports, per sample, the percentage of that period during which the process's kernels
occupied the SMs (``smUtil``) and a CPU timestamp in microseconds since the epoch. Busy seconds over an
interval are the integral of ``smUtil / 100`` over it (see :func:`busy_seconds`).

Why not the others: ``nvmlDeviceGetUtilizationRates`` / ``nvmlDeviceGetSamples`` are device-wide (every
process together); ``nvmlDeviceGetAccountingStats`` needs accounting mode switched on by root and gives a
whole-lifetime integer percentage, too coarse to difference over one request.

Limits: the resolution is one sample period (a block much shorter than that can read as 0 or as a whole
period's share); a sample can be reported a period after the work, so the tail of a block may be missed;
inside a container NVML reports host PIDs, which do not match ``os.getpid()`` unless the container shares
the host PID namespace (then nothing is attributed: the span says so, see ``_accelerator``).

Nothing here imports ``pynvml`` at import time; :func:`load_nvml` does, once, and caches the outcome.
"""

from __future__ import annotations

import functools
import importlib
import itertools
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

__all__ = ["Device", "Nvml", "busy_seconds", "load_nvml"]

DEFAULT_SAMPLE_PERIOD_US = 166_667
"""The driver's usual sample period (1/6 s), used when a device reports a single sample."""
MAX_SAMPLE_PERIOD_US = 1_000_000


@dataclass(frozen=True)
class Device:
    index: int
    uuid: str
    name: str
    handle: Any


class Nvml:
    """An initialised NVML library and its devices; safe to share between threads."""

    def __init__(self, module: Any) -> None:
        self._nvml = module
        module.nvmlInit()
        self.devices = tuple(self._device(index) for index in range(module.nvmlDeviceGetCount()))
        self._lock = threading.Lock()

    def _device(self, index: int) -> Device:
        handle = self._nvml.nvmlDeviceGetHandleByIndex(index)
        return Device(index, _text(self._nvml.nvmlDeviceGetUUID(handle)), _text(self._nvml.nvmlDeviceGetName(handle)),
                      handle)

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

    def process_samples(self, device: Device, pid: int, since_us: int) -> list[tuple[int, int]]:
        """``(timestamp_us, sm_util_percent)`` samples of ``pid`` newer than ``since_us``, oldest first."""
        with self._lock:  # NVML is thread-safe; the lock keeps one query per device at a time
            try:
                samples = self._nvml.nvmlDeviceGetProcessUtilization(device.handle, since_us)
            except self._nvml.NVMLError as error:
                if getattr(error, "value", None) == self._nvml.NVML_ERROR_NOT_FOUND:
                    return []  # no sample since ``since_us``
                raise
        return sorted((int(s.timeStamp), int(s.smUtil)) for s in samples if s.pid == pid)


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


def busy_seconds(samples: Sequence[tuple[int, int]], segments: Sequence[tuple[int, int, float]]) -> float:
    """Weighted seconds the SMs were busy within ``segments`` (``(start_us, end_us, weight)``, disjoint).

    Sample ``i`` covers ``(t[i-1], t[i]]`` at ``util[i]`` percent; the first one covers one typical period
    before it. Periods are capped at one second so a gap in the samples is not filled with a stale value.
    A weight of ``1/n`` gives a measurement its share of time when ``n`` measurements overlap.
    """
    if not samples or not segments:
        return 0.0
    gaps = [b[0] - a[0] for a, b in itertools.pairwise(samples) if b[0] > a[0]]
    typical = min(gaps) if gaps else DEFAULT_SAMPLE_PERIOD_US
    busy_us = 0.0
    previous = samples[0][0] - typical
    for timestamp, util in samples:
        period_start = max(previous, timestamp - MAX_SAMPLE_PERIOD_US)
        for start_us, end_us, weight in segments:
            overlap = min(timestamp, end_us) - max(period_start, start_us)
            if overlap > 0:
                busy_us += overlap * util / 100 * weight
        previous = timestamp
    return busy_us / 1e6
