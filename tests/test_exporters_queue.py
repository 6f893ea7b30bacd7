"""The on-disk sending queue: durable appends, capacity, merged heads, space returned after a drain."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest
from spanledger_collector._exporters._queue import PersistentQueue, QueueFullError


def test_items_survive_reopening_in_order(tmp_path: Path) -> None:
    queue = PersistentQueue(tmp_path / "q.sqlite", capacity=10)
    queue.put_many([("traces", 2, b"a"), ("traces", 3, b"b")])
    queue.close()
    reopened = PersistentQueue(tmp_path / "q.sqlite", capacity=10)
    assert (len(reopened), reopened.queued_items) == (2, 5)
    assert [item.payload for item in reopened.head(1 << 20, 1000)] == [b"a", b"b"]
    reopened.close()
    reopened.close()


def test_capacity_is_all_or_nothing(tmp_path: Path) -> None:
    queue = PersistentQueue(tmp_path / "q.sqlite", capacity=3)
    queue.put_many([("logs", 1, b"x")] * 2)
    with pytest.raises(QueueFullError):
        queue.put_many([("logs", 1, b"y")] * 2)
    assert len(queue) == 2
    queue.close()
    with pytest.raises(QueueFullError):
        queue.put_many([("logs", 1, b"z")])


def test_head_merges_one_signal_within_limits(tmp_path: Path) -> None:
    queue = PersistentQueue(tmp_path / "q.sqlite", capacity=100)
    queue.put_many(
        [
            ("traces", 5, b"1" * 10),
            ("traces", 5, b"2" * 10),
            ("traces", 5, b"3" * 10),
            ("logs", 1, b"4"),
            ("traces", 1, b"5"),
        ]
    )
    assert [item.payload[:1] for item in queue.head(25, 100)] == [b"1", b"2"]
    assert [item.payload[:1] for item in queue.head(1000, 12)] == [b"1", b"2"]
    first = queue.head(1000, 100)
    assert [item.payload[:1] for item in first] == [b"1", b"2", b"3"]
    queue.remove(first)
    assert [item.signal for item in queue.head(1000, 100)] == ["logs"]
    assert (len(queue), queue.queued_items) == (2, 2)
    queue.close()


def test_a_drained_queue_gives_its_space_back(tmp_path: Path) -> None:
    path = tmp_path / "q.sqlite"
    queue = PersistentQueue(path, capacity=1000)
    queue.put_many([("traces", 1, b"x" * 100_000)] * 300)
    full_size = path.stat().st_size
    while batch := queue.head(1 << 20, 1000):
        queue.remove(batch)
    queue.close()  # checkpoints the WAL into the main file
    assert path.stat().st_size < full_size / 10


def test_concurrent_appends_share_commits_and_lose_nothing(tmp_path: Path) -> None:
    queue = PersistentQueue(tmp_path / "q.sqlite", capacity=10_000)

    def append(worker: int) -> None:
        for index in range(50):
            queue.put_many(
                [("traces", 1, f"{worker}:{index}:a".encode()), ("traces", 1, f"{worker}:{index}:b".encode())]
            )

    threads = [threading.Thread(target=append, args=(worker,)) for worker in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert (len(queue), queue.queued_items) == (800, 800)
    payloads = [item.payload.decode() for item in queue.head(1 << 30, 1 << 30)]
    assert len(payloads) == 256  # one merged head is capped
    queue.close()
    reopened = PersistentQueue(tmp_path / "q.sqlite", capacity=10_000)
    seen: list[str] = []
    while batch := reopened.head(1 << 30, 1 << 30):
        seen += [item.payload.decode() for item in batch]
        reopened.remove(batch)
    assert len(seen) == 800 and len(set(seen)) == 800
    for worker in range(8):  # each caller's entries stay in order and adjacent
        mine = [entry for entry in seen if entry.startswith(f"{worker}:")]
        assert mine == [f"{worker}:{index}:{part}" for index in range(50) for part in "ab"]
        positions = [seen.index(f"{worker}:{index}:a") for index in range(50)]
        assert all(seen[position + 1] == seen[position][:-1] + "b" for position in positions)
