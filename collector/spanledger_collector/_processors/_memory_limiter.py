"""The memory limiter processor: refuses data (retryable) while the process is over its soft limit."""

from __future__ import annotations

import gc
import os
import threading

from .._component import RetryableError
from .._config import LoadContext, MemoryLimiterSettings
from .._config_reader import ConfigSection
from ._item import PipelineItem

__all__ = ["RETRY_AFTER_S", "MemoryLimiter", "MemoryLimiterFactory", "rss_bytes"]

RETRY_AFTER_S = 1.0


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

    def process(self, item: PipelineItem) -> None:
        if not item.replaying:
            self.check()

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


class MemoryLimiterFactory:
    type = "memory_limiter"
    signals: tuple[str, ...] = ("traces", "metrics", "logs")
    after: tuple[str, ...] = ()

    def read(self, component_id: str, section: ConfigSection, context: LoadContext) -> MemoryLimiterSettings:
        limit = section.integer("limit_mib", 1024, minimum=1)
        spike = section.integer("spike_limit_mib", max(1, limit // 5), minimum=0)
        if spike >= limit:
            raise section.fail("spike_limit_mib", f"must be below limit_mib ({limit})")
        check_interval = section.duration("check_interval", "1s")
        if check_interval <= 0:  # a watcher that never waits would take a whole core
            raise section.fail("check_interval", "must be positive")
        return MemoryLimiterSettings(check_interval, limit << 20, spike << 20)

    def create(self, component_id: str, config: MemoryLimiterSettings) -> MemoryLimiter:
        return MemoryLimiter(config)
