"""The billing lock of a ClickHouse store (billing/_lock.py), on chdb with one client per writer: imports and
allocations at once leave one current snapshot per scope and one current run per period, each run with its own id
and rows; a writer waits for the holder and then names it; a silent holder is taken over and stops before its
results become current; a working holder keeps its lock."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from spanledger_collector._store._clickhouse_client import open_clickhouse
from spanledger_collector._store._location import StoreAddress
from spanledger_collector.billing import BillingLockError, allocate, import_billing
from spanledger_collector.billing._engine import ClickHouseEngine
from spanledger_collector.billing._lock import LockTiming
from spanledger_collector.billing._schema import ensure_billing_tables
from spanledger_collector.billing.api import handle_request
from test_billing_clickhouse import _focus_export


@pytest.fixture
def clients(clickhouse_address: StoreAddress) -> Iterator[list[Any]]:
    """Four clients on one store, as four writers (chdb: one engine per process, so these run in threads)."""
    opened = [open_clickhouse(clickhouse_address, create_database=True) for _ in range(4)]
    yield opened
    for client in opened:
        client.close()


def _at_once(work: Callable[[int], None], writers: int) -> list[BaseException]:
    errors: list[BaseException] = []
    start = threading.Barrier(writers)

    def run(index: int) -> None:
        start.wait()
        try:
            work(index)
        except BaseException as error:  # reported by the test
            errors.append(error)

    threads = [threading.Thread(target=run, args=(index,)) for index in range(writers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return errors


def test_allocations_at_once_leave_one_current_run_each_with_its_own_id(clients: list[Any], tmp_path: Path) -> None:
    """(Failed before the lock: the runs of three writers at once took each other's ids, several current.)"""
    import_billing(clients[0], [str(_focus_export(tmp_path))])
    allocate(clients[0])

    def work(index: int) -> None:
        for _ in range(2):
            allocate(clients[index + 1], force=True)

    assert _at_once(work, 3) == []
    runs = clients[0].query("SELECT run_id, superseded_by FROM allocation_runs FINAL ORDER BY run_id").result_rows
    assert [run for run, _ in runs] == list(range(1, 8))
    # a chain: each run superseded by the next one, the last one current
    assert [superseded for _, superseded in runs] == [*range(2, 8), None]
    rows = clients[0].query("SELECT run_id, count() FROM allocation_lines FINAL GROUP BY run_id").result_rows
    assert sorted(rows) == [(run, 5) for run in range(1, 8)]


def test_imports_at_once_leave_one_current_snapshot_of_the_scope(clients: list[Any], tmp_path: Path) -> None:
    """Three different deliveries of one month at once: one of them current, the others superseded in turn."""
    exports = []
    for index in range(3):
        directory = tmp_path / str(index)
        directory.mkdir()
        export = _focus_export(directory)
        export.write_text(export.read_text().replace("0.7,0.7,0.7", f"0.{index + 1},0.{index + 1},0.7"))
        exports.append(export)
    import_billing(clients[0], [str(_focus_export(tmp_path))])

    assert _at_once(lambda index: import_billing(clients[index + 1], [str(exports[index])]) and None, 3) == []
    snapshots = (
        clients[0].query("SELECT snapshot_id, seq, superseded_by FROM billing_snapshots FINAL ORDER BY seq").result_rows
    )
    assert [seq for _, seq, _ in snapshots] == [1, 2, 3, 4]
    assert [superseded for _, _, superseded in snapshots] == [*(row[0] for row in snapshots[1:]), None]


def test_a_writer_waits_for_the_holder_then_names_it(clients: list[Any], tmp_path: Path) -> None:
    export = _focus_export(tmp_path)
    import_billing(clients[0], [str(export)])
    holder = ClickHouseEngine(clients[0])
    waiting = ClickHouseEngine(clients[1], lock_timing=LockTiming(wait_s=0.3, poll_s=0.05))
    with holder.transaction():
        with pytest.raises(BillingLockError, match=r"billing lock is held by .* pid \d+ since .* waited 0.3 s"):
            allocate(waiting)
        # the admin API answers it with 409 Conflict
        status, answer = handle_request("POST", "/api/billing/allocate", {}, b"", waiting)
        assert status == 409 and "billing lock is held" in answer["error"]
    assert [run.status for run in allocate(waiting)] == ["allocated"]
    # released: the next writer does not wait
    assert [run.status for run in allocate(holder, force=True)] == ["allocated"]


def test_a_silent_holder_is_taken_over_and_stops_before_its_run_is_current(clients: list[Any], tmp_path: Path) -> None:
    import_billing(clients[0], [str(_focus_export(tmp_path))])
    timing = LockTiming(wait_s=10, lease_s=0.5, poll_s=0.05)
    silent, other = ClickHouseEngine(clients[0], lock_timing=timing), ClickHouseEngine(clients[1], lock_timing=timing)
    taken_over = r"taken over by .* pid .*: this writer was silent for longer than the 0.5 s lease"
    with pytest.raises(BillingLockError, match=taken_over), silent.transaction():
        time.sleep(1.0)  # longer than the lease, no statement run (a process stopped, a network split)
        assert [run.status for run in allocate(other)] == ["allocated"]
        allocate(silent, force=True)  # it goes on: reentrant, and stopped before its run row
    runs = clients[0].query("SELECT run_id, superseded_by FROM allocation_runs FINAL").result_rows
    assert runs == [(1, None)]


def test_a_working_holder_keeps_its_lock(clients: list[Any], tmp_path: Path) -> None:
    """A holder renews the lock between statements, so a lock older than the lease is not taken over."""
    import_billing(clients[0], [str(_focus_export(tmp_path))])
    timing = LockTiming(wait_s=0.2, lease_s=3.0, poll_s=0.05)  # renewed every 0.75 s: a wide margin on a busy box
    working, other = ClickHouseEngine(clients[0], lock_timing=timing), ClickHouseEngine(clients[1], lock_timing=timing)
    with working.transaction():
        until = time.monotonic() + 4.0
        while time.monotonic() < until:
            working.rows("SELECT 1")
            time.sleep(0.05)
        with pytest.raises(BillingLockError, match="held by"):
            allocate(other)
        working.check_lock()


def test_one_holder_at_a_time(clients: list[Any]) -> None:
    """Claims of one lock number at once: the engine keeps one, so the holders never overlap."""
    engines = [ClickHouseEngine(client, lock_timing=LockTiming(wait_s=60, poll_s=0.01)) for client in clients]
    ensure_billing_tables(engines[0])
    inside: list[int] = []
    overlaps: list[list[int]] = []

    def work(index: int) -> None:
        for _ in range(5):
            with engines[index].transaction():
                inside.append(index)
                if len(inside) > 1:
                    overlaps.append(list(inside))
                time.sleep(0.01)
                inside.remove(index)

    assert _at_once(work, 4) == []
    assert overlaps == []
    counts = "SELECT lock_no, countIf(event = 'acquired'), countIf(event = 'released') FROM billing_locks"
    events = clients[0].query(f"{counts} GROUP BY lock_no ORDER BY lock_no").result_rows
    assert events == [(number, 1, 1) for number in range(1, 21)]


def test_a_lock_table_emptied_under_its_deduplication_log_is_a_clear_error(clients: list[Any]) -> None:
    """DELETE keeps the tokens the engine deduplicates by (TRUNCATE does not): the next claim would be dropped as a
    repeat, so it fails naming the table and the fix instead of looking for its row for ever."""
    engine = ClickHouseEngine(clients[0], lock_timing=LockTiming(poll_s=0.01))
    ensure_billing_tables(engine)
    with engine.transaction():
        pass
    clients[0].command("DELETE FROM billing_locks WHERE 1")
    with (
        pytest.raises(BillingLockError, match=r"claim of lock 1 was dropped .* DROP TABLE billing_locks"),
        engine.transaction(),
    ):
        pass
    clients[0].command("DROP TABLE billing_locks")
    ensure_billing_tables(engine)
    with engine.transaction():
        pass
