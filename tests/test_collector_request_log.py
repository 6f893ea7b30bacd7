"""The collector's request log: what a crash leaves behind, replay, release, and a store outage behind it."""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any

from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
from spanledger_collector._store import RequestLog, StoreUnavailableError
from test_collector_service import genai_trace


def test_a_torn_last_record_is_cut_and_the_intact_ones_replay_in_order(tmp_path: Path) -> None:
    log = RequestLog(tmp_path)
    for body in (b"first", b"second", b"third"):
        log.append("traces", body)
    log.sync(log.last_seq)
    log.close()
    (segment,) = tmp_path.glob("*.log")
    intact = segment.stat().st_size
    with segment.open("ab") as file:
        file.write(b"\x04\x00\x00\x00\x00\x00\x00\x00\x06\x00\xff")  # a header the crash cut short

    reopened = RequestLog(tmp_path)
    assert segment.stat().st_size == intact
    assert [(request.seq, request.pipeline_id, request.body) for request in reopened.replay(1)] == [
        (2, "traces", b"second"),
        (3, "traces", b"third"),
    ]
    assert reopened.append("traces/b", b"fourth") == 4
    reopened.close()


def test_a_damaged_record_ends_the_replay_of_its_segment(tmp_path: Path) -> None:
    log = RequestLog(tmp_path)
    log.append("traces", b"kept")
    log.append("traces", b"damaged")
    log.close()
    (segment,) = tmp_path.glob("*.log")
    data = bytearray(segment.read_bytes())
    data[-1] ^= 0xFF
    segment.write_bytes(bytes(data))
    assert [request.body for request in RequestLog(tmp_path).replay(0)] == [b"kept"]


def test_release_deletes_committed_segments_and_numbering_continues_after_the_store(tmp_path: Path) -> None:
    log = RequestLog(tmp_path, segment_bytes=64)
    seqs = [log.append("traces", bytes(40)) for _ in range(4)]
    assert seqs == [1, 2, 3, 4]
    assert len(list(tmp_path.glob("*.log"))) == 4
    log.release(2)
    assert [request.seq for request in log.replay(0)] == [3, 4]
    log.release(4)
    assert not list(tmp_path.glob("*.log"))
    log.close()
    log.close()

    # Every segment is gone; the store's committed position (4) keeps the numbering from starting over.
    reopened = RequestLog(tmp_path, committed_seq=4)
    assert reopened.append("traces", b"next") == 5
    reopened.close()


def test_a_zero_filled_tail_is_cut_and_acknowledged_requests_before_it_still_replay(tmp_path: Path) -> None:
    """Some file systems leave zeros after a file's last data on a crash; a zero header must not pass as a record
    (its CRC-32 of nothing is 0) and hide the requests before it."""
    log = RequestLog(tmp_path, committed_seq=100)
    for body in (b"101", b"102", b"103"):
        log.append("traces", body)
    log.sync(log.last_seq)
    log.close()
    (segment,) = tmp_path.glob("*.log")
    with segment.open("ab") as file:
        file.write(bytes(4096))

    reopened = RequestLog(tmp_path, committed_seq=100)
    assert reopened.last_seq == 103
    assert [request.body for request in reopened.replay(100)] == [b"101", b"102", b"103"]
    assert reopened.append("traces", b"104") == 104
    reopened.close()


class _StoreWithAnOutage:
    """The real DuckDB store behind the Store protocol, whose appends fail while ``down`` is set: a store outage
    cannot be produced on demand here, so it is injected at that seam."""

    def __init__(self, store: Any) -> None:
        self.store = store
        self.down = threading.Event()

    def append(self, batches: Any) -> Any:
        if self.down.is_set():
            raise StoreUnavailableError("IOException: could not write the database file")
        return self.store.append(batches)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.store, name)


def test_an_unavailable_store_is_retried_and_shown_on_health_and_nothing_acknowledged_is_lost(tmp_path: Path) -> None:
    from spanledger_collector._config import BatchSettings
    from spanledger_collector._pipeline import Pipeline
    from spanledger_collector._processors import UsageProcessor, UsageSettings
    from spanledger_collector._store import DuckDBStore, StoreWriter

    store = DuckDBStore(tmp_path / "store.duckdb")
    flaky = _StoreWithAnOutage(store)
    settings = BatchSettings(send_batch_size=100, timeout_s=0)
    writer = StoreWriter(flaky, RequestLog(tmp_path / "requests"), settings, commit_interval_s=0.05)
    pipeline = Pipeline("traces", "traces", processors=[UsageProcessor("spanledger_usage", UsageSettings())])
    writer.start(lambda request: pipeline.stored_batch(request.body))
    counted: list[int] = []
    bodies = [encode_spans(genai_trace(tenant=f"tenant-{n}")).SerializeToString() for n in range(5)]

    def submit(n: int) -> None:
        writer.submit("traces", bodies[n], pipeline.stored_batch(bodies[n]), lambda: counted.append(n))

    for n in range(3):
        submit(n)
    assert writer.flush()
    flaky.down.set()
    submit(3)
    deadline = time.monotonic() + 30
    while writer.failure is None and time.monotonic() < deadline:
        time.sleep(0.05)
    assert writer.failure is not None and "the store is unavailable: IOException" in writer.failure
    submit(4)  # acknowledged while the store is down: it waits in the log
    submit(0)  # a client's retry of a stored request
    flaky.down.clear()
    assert writer.flush()
    assert writer.failure is None
    writer.shutdown()
    with store.cursor() as cursor:
        per_trace = cursor.execute("SELECT count(*) FROM spans GROUP BY trace_id").fetchall()
    assert sorted(count for (count,) in per_trace) == [len(genai_trace())] * 5
    assert sorted(counted) == [0, 1, 2, 3, 4], "usage counted once per stored request"
    store.close()
