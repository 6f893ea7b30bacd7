"""The billing lock of a ClickHouse store: one import or allocation at a time, as DuckDB's single writer gives.

Without it, two writers at once (two replicas' admin APIs, two cron jobs) took the same next run id and mixed their
rows, and both superseded the same run or snapshot, leaving two current. ClickHouse has neither transactions nor a
lock statement, so the lock is a claim: the n-th acquisition inserts a row under the deduplication token
``billing_lock/<n>/acquired`` into ``billing_locks``; of several inserts with one token the engine keeps the
first, and each writer reads the row back to learn whether its claim is the one kept. The holder renews the lock
between its statements; a lock silent for ``lease`` seconds (its holder died) is taken over by the next claim, and
a holder checks that it still holds the lock (:meth:`BillingLock.check`) just before the writes that make its
results current. Times are the server's, so the writers' clocks do not matter.
"""

from __future__ import annotations

import os
import socket
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from .._store._clickhouse_client import quote_string
from ._errors import BillingLockError

__all__ = ["DEFAULT_LOCK_TIMING", "BillingLock", "LockTiming"]


@dataclass(frozen=True)
class LockTiming:
    wait_s: float = 900.0
    """How long a writer waits for the lock before it gives up."""
    lease_s: float = 900.0
    """A lock neither renewed nor released for this long is taken over. The holder renews it between statements,
    so a single statement running longer loses it (and the run stops at :meth:`BillingLock.check`)."""
    poll_s: float = 0.5
    """How often a waiting writer looks again."""


DEFAULT_LOCK_TIMING = LockTiming()

# How many times a claim's row is looked for after its insert before the claim counts as dropped.
_OWNER_READS = 10


class BillingLock:
    """The lock, for one ClickHouse client; reentrant (a write inside another of the same engine holds it once)."""

    def __init__(self, client: Any, sql: Callable[..., str], timing: LockTiming) -> None:
        """``sql(name, **params)``: the engine's SQL files (``lock/*.sql``)."""
        self._client = client
        self._sql = sql
        self._timing = timing
        self._owner = str(uuid.uuid4())
        self._holder = f"{socket.gethostname()} pid {os.getpid()}"
        self._lock_no: int | None = None
        self._depth = 0
        self._renewals = 0
        self._last_event = 0.0

    def acquire(self) -> None:
        self._depth += 1
        if self._depth > 1:
            return
        try:
            self._lock_no = self._claim()
        except BaseException:
            self._depth = 0
            raise
        self._last_event = time.monotonic()

    def release(self) -> None:
        self._depth -= 1
        if self._depth > 0 or self._lock_no is None:
            return
        lock_no, self._lock_no = self._lock_no, None
        self._event(lock_no, "released", f"billing_lock/{lock_no}/released/{self._owner}")

    def renew_if_due(self) -> None:
        """Show life: an event row once a quarter of the lease has passed since the last one."""
        if self._lock_no is None or time.monotonic() - self._last_event < self._timing.lease_s / 4:
            return
        self._renewals += 1
        self._event(self._lock_no, "renewed", f"billing_lock/{self._lock_no}/renewed/{self._owner}/{self._renewals}")
        self._last_event = time.monotonic()

    def check(self) -> None:
        """Raise :class:`BillingLockError` when another writer took the lock over (this one fell silent)."""
        if self._lock_no is None:
            return
        newest = int(self._rows("lock/newest")[0][0])
        if newest != self._lock_no:
            state = self._rows("lock/state")
            holder = f" by {state[0][1]} at {state[0][2]:%Y-%m-%d %H:%M:%S} UTC" if state else ""
            raise BillingLockError(
                f"the store's billing lock was taken over{holder}: this writer was silent for longer than the "
                f"{self._timing.lease_s:g} s lease; nothing it wrote is current, run it again"
            )

    def _claim(self) -> int:
        deadline = time.monotonic() + self._timing.wait_s
        while True:
            state = self._rows("lock/state")
            if state:
                lock_no, holder, acquired_at, _, released, silent_s = state[0]
                if not released and float(silent_s) < self._timing.lease_s:
                    if time.monotonic() >= deadline:
                        raise BillingLockError(
                            f"the store's billing lock is held by {holder} since {acquired_at:%Y-%m-%d %H:%M:%S} "
                            f"UTC (an import or allocation); waited {self._timing.wait_s:g} s. Run again once it "
                            f"is done; a holder silent for {self._timing.lease_s:g} s is taken over"
                        )
                    time.sleep(self._timing.poll_s)
                    continue
                candidate = int(lock_no) + 1
            else:
                candidate = 1
            self._event(candidate, "acquired", f"billing_lock/{candidate}/acquired")
            owner = self._owner_of(candidate)
            if owner == self._owner:
                return candidate

    def _owner_of(self, lock_no: int) -> str:
        """Who acquired ``lock_no``, once its row is readable (on a replica that has not fetched it yet: soon)."""
        for _ in range(_OWNER_READS):
            owners = self._rows("lock/owner", lock_no=lock_no)
            if owners:
                return str(owners[0][0])
            time.sleep(self._timing.poll_s)
        # The engine dropped the claim as a duplicate of a row the table no longer has: its rows were deleted
        # (DELETE; TRUNCATE empties the deduplication log too) while the log still holds their tokens.
        raise BillingLockError(
            f"billing_locks: the claim of lock {lock_no} was dropped as a repeat of an earlier one the table no "
            "longer holds (were its rows deleted?); DROP TABLE billing_locks and run again: the next write recreates it"
        )

    def _rows(self, name: str, **params: object) -> list[tuple[Any, ...]]:
        return [tuple(row) for row in self._client.query(self._sql(name, **params)).result_rows]

    def _event(self, lock_no: int, event: str, token: str) -> None:
        values = {"token": token, "event": event, "owner": self._owner, "holder": self._holder}
        self._client.command(
            self._sql("lock/event", lock_no=lock_no, **{key: quote_string(value) for key, value in values.items()})
        )
