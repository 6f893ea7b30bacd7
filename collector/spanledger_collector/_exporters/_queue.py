"""The on-disk sending queue: SQLite in WAL mode, every enqueue durable (fsync'd) before it returns.

SQLite (stdlib, WAL, ``synchronous=FULL``) gives atomic multi-item appends and crash safety without a
file format of our own. An item is removed only after the sender is done with it, so an item that was
being sent when the process died is sent again after a restart (at-least-once, like the OTel Collector's
persistent queue; OTLP receivers accept duplicates).
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

__all__ = ["PersistentQueue", "QueueFullError", "QueuedItem"]

# Most queued requests merged into one send.
_MAX_MERGED = 256
# Free pages (4 KiB each) a drained queue may keep before it returns them to the file system.
_VACUUM_FREE_PAGES = 2560


class QueueFullError(Exception):
    """The queue holds ``capacity`` requests already."""


@dataclass(frozen=True)
class QueuedItem:
    item_id: int
    signal: str
    items: int
    payload: bytes


class _Ticket:
    """One caller's entries waiting for the group commit that writes them."""

    def __init__(self, entries: Sequence[tuple[str, int, bytes]]) -> None:
        self.entries = entries
        self.done = False
        self.error: BaseException | None = None


class PersistentQueue:
    """A FIFO of serialized export requests in ``path``; safe to use from several threads."""

    def __init__(self, path: Path, capacity: int) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.capacity = capacity
        self._lock = threading.Lock()
        self._db = sqlite3.connect(str(path), check_same_thread=False, isolation_level=None)
        # Must precede the first table; lets a drained queue give its disk space back.
        self._db.execute("PRAGMA auto_vacuum=INCREMENTAL")
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=FULL")
        self._db.execute("PRAGMA journal_size_limit=16777216")  # truncate the WAL back after an outage
        self._db.execute(
            "CREATE TABLE IF NOT EXISTS queue ("
            " id INTEGER PRIMARY KEY AUTOINCREMENT, signal TEXT NOT NULL, items INTEGER NOT NULL,"
            " payload BLOB NOT NULL)"
        )
        row = self._db.execute("SELECT count(*), coalesce(sum(items), 0) FROM queue").fetchone()
        self._size: int = row[0]
        self._queued_items: int = row[1]
        self._closed = False
        self._commit = threading.Condition()
        self._pending: list[_Ticket] = []
        self._committing = False
        self._reserved = 0

    def __len__(self) -> int:
        return self._size

    @property
    def queued_items(self) -> int:
        """Spans, data points and log records waiting (all signals together)."""
        return self._queued_items

    def put_many(self, entries: Sequence[tuple[str, int, bytes]]) -> None:
        """Append ``(signal, items, payload)`` entries atomically; durable on disk when this returns.

        Concurrent callers share one transaction and one fsync (group commit): whoever finds no commit
        in progress writes everything pending, the others wait for that commit to finish.
        """
        ticket = _Ticket(entries)
        with self._commit:
            if self._closed:
                raise QueueFullError("the sending queue is closed")
            if self._size + self._reserved + len(entries) > self.capacity:
                raise QueueFullError(f"the sending queue is full ({self._size} of {self.capacity} requests)")
            self._reserved += len(entries)
            self._pending.append(ticket)
            while not ticket.done:
                if self._committing:
                    self._commit.wait()
                    continue
                group, self._pending = self._pending, []
                self._committing = True
                self._commit.release()
                try:
                    error = self._write(group)
                finally:
                    self._commit.acquire()
                    self._committing = False
                for member in group:
                    member.done, member.error = True, error
                    self._reserved -= len(member.entries)
                self._commit.notify_all()
        if ticket.error is not None:
            raise ticket.error

    def _write(self, group: list[_Ticket]) -> BaseException | None:
        rows = [entry for ticket in group for entry in ticket.entries]
        with self._lock:
            if self._closed:
                return QueueFullError("the sending queue is closed")
            try:
                self._db.execute("BEGIN IMMEDIATE")
                try:
                    self._db.executemany("INSERT INTO queue (signal, items, payload) VALUES (?, ?, ?)", rows)
                    self._db.execute("COMMIT")
                except BaseException:
                    self._db.execute("ROLLBACK")
                    raise
            except Exception as error:
                return error
            self._size += len(rows)
            self._queued_items += sum(row[1] for row in rows)
        return None

    def head(self, max_bytes: int, max_items: int) -> list[QueuedItem]:
        """The oldest item and the items of the same signal right after it that fit in one request.

        Items stay in the queue until :meth:`remove`. Serialized OTLP requests of one signal can be
        concatenated into one valid request (their repeated fields merge), so small requests that
        queued up during an outage go out together.
        """
        with self._lock:
            rows = self._db.execute(
                "SELECT id, signal, items, length(payload) FROM queue ORDER BY id LIMIT ?", (_MAX_MERGED,)
            ).fetchall()
            chosen: list[tuple[int, str, int]] = []
            total_bytes = total_items = 0
            for item_id, signal, items, size in rows:
                if chosen and (
                    signal != chosen[0][1] or total_bytes + size > max_bytes or total_items + items > max_items
                ):
                    break
                chosen.append((item_id, signal, items))
                total_bytes += size
                total_items += items
            payloads = (
                dict(
                    self._db.execute(
                        f"SELECT id, payload FROM queue WHERE id IN ({', '.join('?' * len(chosen))})",
                        [item_id for item_id, _, _ in chosen],
                    ).fetchall()
                )
                if chosen
                else {}
            )
        return [QueuedItem(item_id, signal, items, payloads[item_id]) for item_id, signal, items in chosen]

    def remove(self, items: Sequence[QueuedItem]) -> None:
        with self._lock:
            # A delete lost in a crash only means a duplicate send, so it does not wait for an fsync; the
            # next enqueue's fsync makes it durable anyway.
            self._db.execute("PRAGMA synchronous=NORMAL")
            try:
                cursor = self._db.executemany("DELETE FROM queue WHERE id = ?", [(item.item_id,) for item in items])
            finally:
                self._db.execute("PRAGMA synchronous=FULL")
            if cursor.rowcount == len(items):
                self._size -= len(items)
                self._queued_items -= sum(item.items for item in items)
            else:
                row = self._db.execute("SELECT count(*), coalesce(sum(items), 0) FROM queue").fetchone()
                self._size, self._queued_items = row
            if not self._size and self._db.execute("PRAGMA freelist_count").fetchone()[0] > _VACUUM_FREE_PAGES:
                # executescript steps the pragma to completion (execute frees one page per step).
                self._db.executescript("PRAGMA incremental_vacuum;")

    def close(self) -> None:
        with self._lock:
            if not self._closed:
                self._closed = True
                self._db.close()
