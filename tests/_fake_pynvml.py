"""A ``pynvml`` module for machines without a GPU, substituted at the import boundary (``sys.modules``).

This is the one fake in the suite, because no GPU exists here. It answers the calls spanledger makes with
the real library's own structures (``c_nvmlProcessUtilizationSample_t``, ``NVMLError`` and its codes) from a
simulated device: :meth:`FakeGpu.run` / :meth:`FakeGpu.stop` say when a PID's kernels occupy the SMs and at
what utilization. Like the driver (as measured on an H100, docs/sdk.md "Verified on a real GPU") it samples
once per period, per PID with a context, the share of the period that PID was busy, and a query answers ONE
entry per PID: the average of its samples newer than ``lastSeenTimeStamp``, stamped with the newest one's
end in microseconds since the epoch, or ``NVML_ERROR_NOT_FOUND`` when there is none. Samples only exist for
periods that have ended.
"""

from __future__ import annotations

import threading
import time
import types
from typing import Any

import pynvml as real


class FakeGpu:
    def __init__(self, name: str = "NVIDIA H100 80GB HBM3", uuid: str = "GPU-0f0e0d0c", period_us: int = 166_667):
        self.name, self.uuid, self.period_us = name, uuid, period_us
        self._lock = threading.Lock()
        self._windows: dict[int, list[list[Any]]] = {}  # pid -> [start_us, end_us or None, util percent]

    def run(self, pid: int, util: int = 100) -> None:
        with self._lock:
            self._windows.setdefault(pid, []).append([_now_us(), None, util])

    def stop(self, pid: int) -> None:
        with self._lock:
            for window in self._windows.get(pid, []):
                if window[1] is None:
                    window[1] = _now_us()

    def samples(self, since_us: int) -> list[Any]:
        """What ``nvmlDeviceGetProcessUtilization(since_us)`` answers: per PID with a context, ONE entry
        averaging its samples newer than ``since_us``, stamped with the newest one's time."""
        now = _now_us()
        result = []
        with self._lock:
            for pid, windows in self._windows.items():
                since = max(since_us, windows[0][0])  # no samples before the PID had a context
                ends = range((since // self.period_us + 1) * self.period_us, now + 1, self.period_us)
                utils = [self._util(windows, end, now) for end in ends]
                if utils:
                    sample = real.c_nvmlProcessUtilizationSample_t()
                    sample.pid, sample.timeStamp = pid, ends[-1]
                    sample.smUtil, sample.memUtil = round(sum(utils) / len(utils)), 0
                    result.append(sample)
        return result

    def _util(self, windows: list[list[Any]], end: int, now: int) -> float:
        """The percentage of the period ending at ``end`` that ``windows`` kept the SMs busy."""
        start = end - self.period_us
        busy = sum(max(0, min(end, w[1] if w[1] is not None else now) - max(start, w[0])) * w[2] / 100 for w in windows)
        return float(100 * busy / self.period_us)


def _now_us() -> int:
    return time.time_ns() // 1000


def fake_pynvml(*gpus: FakeGpu) -> types.ModuleType:
    module = types.ModuleType("pynvml")
    module.NVMLError = real.NVMLError  # type: ignore[attr-defined]
    module.NVML_ERROR_NOT_FOUND = real.NVML_ERROR_NOT_FOUND  # type: ignore[attr-defined]
    # Real handles are ctypes pointers, which are unhashable: look them up by identity.
    handles = [real.c_nvmlDevice_t() for _ in gpus]

    def gpu_of(handle: Any) -> FakeGpu:
        return next(gpu for gpu, known in zip(gpus, handles, strict=True) if known is handle)

    def get_process_utilization(handle: Any, since_us: int) -> list[Any]:
        samples = gpu_of(handle).samples(since_us)
        if not samples:
            raise real.NVMLError(real.NVML_ERROR_NOT_FOUND)
        return samples

    module.nvmlInit = lambda: None  # type: ignore[attr-defined]
    module.nvmlDeviceGetCount = lambda: len(gpus)  # type: ignore[attr-defined]
    module.nvmlDeviceGetHandleByIndex = lambda index: handles[index]  # type: ignore[attr-defined]
    module.nvmlDeviceGetUUID = lambda handle: gpu_of(handle).uuid  # type: ignore[attr-defined]
    module.nvmlDeviceGetName = lambda handle: gpu_of(handle).name.encode()  # type: ignore[attr-defined]
    module.nvmlDeviceGetProcessUtilization = get_process_utilization  # type: ignore[attr-defined]
    return module
