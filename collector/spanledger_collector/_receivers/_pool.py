"""The gRPC receiver's handler threads: a pool that hands each call to the thread that went idle last."""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Callable
from concurrent.futures import Executor, Future
from typing import Any, TypeVar

__all__ = ["LastIdlePool"]

T = TypeVar("T")

_Work = tuple["Future[Any]", Callable[..., Any], tuple[Any, ...], dict[str, Any]]


class _Idle:
    """One idle thread, waiting for ``work`` (None: exit)."""

    __slots__ = ("wake", "work")

    def __init__(self) -> None:
        self.wake = threading.Lock()
        self.wake.acquire()
        self.work: _Work | None = None


class LastIdlePool(Executor):
    """At most ``max_workers`` threads; a call goes to the thread that finished last.

    ``ThreadPoolExecutor`` wakes its idle threads in turn, so at 100 requests/s a receiver with 20 threads
    runs each request on a thread whose stack, caches and malloc arena have gone cold, and every thread takes
    its share of GIL hand-offs. Here a steady load runs on the one or two threads at the top of the idle stack;
    threads started for a burst stay idle below them. Measured on the collector at 10k spans/s, 100 spans per
    request: benchmarks/README.md ("The receiver round").
    """

    def __init__(self, max_workers: int, thread_name_prefix: str) -> None:
        if max_workers < 1:
            raise ValueError(f"max_workers must be at least 1, not {max_workers}")
        self._max_workers = max_workers
        self._prefix = thread_name_prefix
        self._lock = threading.Lock()
        self._idle: list[_Idle] = []
        self._backlog: deque[_Work] = deque()
        self._threads: list[threading.Thread] = []
        self._shut = False

    def submit(self, fn: Callable[..., T], /, *args: Any, **kwargs: Any) -> Future[T]:
        future: Future[T] = Future()
        work: _Work = (future, fn, args, kwargs)
        with self._lock:
            if self._shut:
                raise RuntimeError("cannot schedule new calls after shutdown")
            if self._idle:
                idle = self._idle.pop()
                idle.work = work
                idle.wake.release()
                return future
            self._backlog.append(work)
            if len(self._threads) < self._max_workers:
                thread = threading.Thread(target=self._run, name=f"{self._prefix}_{len(self._threads)}", daemon=True)
                self._threads.append(thread)
                thread.start()
        return future

    def _run(self) -> None:
        idle = _Idle()
        while True:
            with self._lock:
                if self._backlog:
                    work: _Work | None = self._backlog.popleft()
                elif self._shut:
                    return
                else:
                    self._idle.append(idle)
                    work = None
            if work is None:
                idle.wake.acquire()
                work, idle.work = idle.work, None
                if work is None:
                    return
            future, fn, args, kwargs = work
            if not future.set_running_or_notify_cancel():
                continue
            try:
                result = fn(*args, **kwargs)
            except BaseException as error:
                future.set_exception(error)
            else:
                future.set_result(result)
            del work, future, fn, args, kwargs  # an idle thread holds no request

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
        with self._lock:
            self._shut = True
            if cancel_futures:
                while self._backlog:
                    self._backlog.popleft()[0].cancel()
            for idle in self._idle:
                idle.wake.release()  # with no work: the thread exits
            self._idle.clear()
            threads = list(self._threads)
        if wait:
            for thread in threads:
                thread.join()
