"""The gRPC receiver's handler pool: results and errors, the thread that went idle last, its bound, shutdown."""

from __future__ import annotations

import threading

import pytest
from spanledger_collector._receivers._pool import LastIdlePool


def test_results_and_errors_reach_the_futures() -> None:
    pool = LastIdlePool(4, "test-pool")
    assert pool.submit(lambda a, b=0: a + b, 2, b=3).result(timeout=10) == 5
    with pytest.raises(ZeroDivisionError):
        pool.submit(lambda: 1 / 0).result(timeout=10)
    pool.shutdown()
    with pytest.raises(RuntimeError, match="after shutdown"):
        pool.submit(lambda: None)


def test_one_call_at_a_time_runs_on_the_thread_that_went_idle_last() -> None:
    pool = LastIdlePool(8, "test-pool")
    release = threading.Event()
    started = threading.Barrier(4)

    def burst() -> str:
        started.wait(timeout=10)
        release.wait(timeout=10)
        return threading.current_thread().name

    burst_threads = [pool.submit(burst) for _ in range(3)]
    started.wait(timeout=10)
    release.set()
    assert len({future.result(timeout=10) for future in burst_threads}) == 3
    # Calls one after another use the thread that went idle last, or the one before it while that thread is
    # still on its way back (its result is set before it is idle again); never the third: a FIFO pool would
    # rotate through all three.
    names = {pool.submit(lambda: threading.current_thread().name).result(timeout=10) for _ in range(30)}
    assert len(names) <= 2
    pool.shutdown()


def test_calls_beyond_max_workers_wait_for_a_thread() -> None:
    pool = LastIdlePool(2, "test-pool")
    gate = threading.Event()
    running = threading.Semaphore(0)

    def held() -> str:
        running.release()
        gate.wait(timeout=10)
        return threading.current_thread().name

    futures = [pool.submit(held) for _ in range(5)]
    assert running.acquire(timeout=10) and running.acquire(timeout=10)
    assert not running.acquire(timeout=0.2)  # the third waits: both threads are busy
    gate.set()
    assert {future.result(timeout=10) for future in futures} <= {"test-pool_0", "test-pool_1"}
    pool.shutdown()


def test_shutdown_waits_for_running_and_queued_calls() -> None:
    pool = LastIdlePool(1, "test-pool")
    gate = threading.Event()
    done: list[int] = []

    def work(number: int) -> None:
        gate.wait(timeout=10)
        done.append(number)

    futures = [pool.submit(work, number) for number in range(3)]
    stopper = threading.Thread(target=pool.shutdown)
    stopper.start()
    gate.set()
    stopper.join(timeout=10)
    assert not stopper.is_alive()
    assert done == [0, 1, 2] and all(future.done() for future in futures)
    assert not any(thread.name.startswith("test-pool") for thread in threading.enumerate())
