"""The collector's request log: what a crash leaves behind, replay, release, and a store outage behind it."""

from __future__ import annotations

import struct
import threading
import time
import zlib
from pathlib import Path
from typing import Any

import pytest
from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
from spanledger_collector._store import RequestLog, StoreUnavailableError
from spanledger_collector._store._request_log import _RECORD_HEADER_BYTES, FILE_MARKER
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


def _flip(segment: Path, offset: int) -> None:
    data = bytearray(segment.read_bytes())
    data[offset] ^= 0xFF
    segment.write_bytes(bytes(data))


def _quarantined(directory: Path) -> list[bytes]:
    return [path.read_bytes() for path in sorted((directory / "quarantine").glob("*.damaged"))]


@pytest.mark.parametrize("where", ["body", "length", "marker"])
def test_a_damaged_record_costs_only_itself_and_is_quarantined(
    tmp_path: Path, where: str, caplog: pytest.LogCaptureFixture
) -> None:
    """A flipped byte in a record's body (its header still gives its length), in its length field (the header's
    own checksum fails: replay scans for the next record marker), or in its marker: the records after it replay."""
    log = RequestLog(tmp_path)
    bodies = [f"request {n} ".encode() * 20 for n in range(1, 6)]
    for body in bodies:
        log.append("traces", body)
    log.close()
    (segment,) = tmp_path.glob("*.log")
    data = segment.read_bytes()
    third = data.index(bodies[2]) - len("traces") - _RECORD_HEADER_BYTES  # the third record's header
    _flip(segment, {"body": data.index(bodies[2]) + 7, "length": third + 14, "marker": third + 1}[where])

    reopened = RequestLog(tmp_path)
    assert reopened.last_seq == 5
    assert [request.body for request in reopened.replay(0)] == [bodies[0], bodies[1], bodies[3], bodies[4]]
    assert reopened.damaged_records == 1
    (quarantined,) = _quarantined(tmp_path)
    assert bodies[2][:7] in quarantined and len(quarantined) == _RECORD_HEADER_BYTES + len("traces") + len(bodies[2])
    assert "they held request 3 (possibly acknowledged, now lost)" in caplog.text
    assert f"{segment.name}.{third}.damaged" in caplog.text
    assert [request.body for request in reopened.replay(0)] == [bodies[0], bodies[1], bodies[3], bodies[4]]
    assert reopened.damaged_records == 1, "a region is quarantined and counted once"
    assert [request.body for request in reopened.replay(3)] == [bodies[3], bodies[4]]
    assert reopened.append("traces", b"six") == 6
    reopened.close()


def test_a_damaged_last_record_is_quarantined_not_cut_as_torn(tmp_path: Path) -> None:
    """A complete last record failing its checksum may have been acknowledged: it is copied aside, and numbering
    continues after it."""
    log = RequestLog(tmp_path)
    log.append("traces", b"kept")
    log.append("traces", b"damaged")
    log.close()
    (segment,) = tmp_path.glob("*.log")
    _flip(segment, segment.stat().st_size - 1)
    reopened = RequestLog(tmp_path)
    assert [request.body for request in reopened.replay(0)] == [b"kept"]
    assert reopened.damaged_records == 1
    assert _quarantined(tmp_path)[0].endswith(b"damage\x9b")
    assert reopened.append("traces", b"next") == 3
    reopened.close()


def test_damage_to_committed_requests_is_not_reported(tmp_path: Path) -> None:
    log = RequestLog(tmp_path)
    for body in (b"one", b"two", b"three"):
        log.append("traces", body)
    log.close()
    (segment,) = tmp_path.glob("*.log")
    _flip(segment, segment.read_bytes().index(b"one"))
    reopened = RequestLog(tmp_path, committed_seq=1)
    assert [request.body for request in reopened.replay(1)] == [b"two", b"three"]
    assert reopened.damaged_records == 0 and not _quarantined(tmp_path)
    reopened.close()


def test_segments_written_before_the_record_markers_still_replay(tmp_path: Path) -> None:
    """The earlier format (no markers): its records replay, its torn tail is cut, and new records go to a new
    segment in the current format."""
    old = b""
    for seq, body in ((7, b"seven"), (8, b"eight")):
        old += struct.pack("<QHII", seq, len(b"traces"), len(body), zlib.crc32(body, zlib.crc32(b"traces")))
        old += b"traces" + body
    (tmp_path / f"{7:020d}.log").write_bytes(old + b"\x09\x00\x00")
    log = RequestLog(tmp_path, committed_seq=6)
    assert log.last_seq == 8
    assert [request.body for request in log.replay(6)] == [b"seven", b"eight"]
    assert log.append("traces", b"nine") == 9
    log.close()
    assert [request.body for request in RequestLog(tmp_path).replay(6)] == [b"seven", b"eight", b"nine"]
    assert (tmp_path / f"{9:020d}.log").read_bytes().startswith(FILE_MARKER)


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


def test_one_damaged_byte_in_a_real_collectors_log_costs_only_its_request(tmp_path: Path) -> None:
    """Fifteen requests from the OTel SDK's gRPC exporter are acknowledged and wait in the log (the store commits
    hourly); the collector is killed, one byte of the eighth request is flipped, and the restart stores the other
    fourteen, quarantining the damaged record."""
    import signal

    from collector_fixtures import collector_config, launch, start_collector
    from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter
    from opentelemetry.sdk.trace.export import SpanExportResult

    config = collector_config(tmp_path)
    config["exporters"]["spanledger_store"]["commit_interval"] = "1h"
    collector = launch(tmp_path, config)
    exporter = OTLPSpanExporter(endpoint=collector.grpc_endpoint, insecure=True)
    traces = [genai_trace(tenant=f"tenant-{n}") for n in range(15)]
    for spans in traces:
        assert exporter.export(spans) == SpanExportResult.SUCCESS
    exporter.shutdown()
    collector.stop(signal.SIGKILL)
    (segment,) = (tmp_path / "spanledger.duckdb.requests").glob("*.log")
    eighth = encode_spans(traces[7]).SerializeToString()
    _flip(segment, segment.read_bytes().index(eighth) + len(eighth) // 2)

    with start_collector(tmp_path, config) as restarted:
        status, metrics = restarted.get("/metrics")
    assert status == 200
    assert b"\nspanledger_request_log_damaged_records_total 1.0\n" in metrics  # reported on /metrics too
    assert "held request 8 (possibly acknowledged, now lost)" in restarted.log
    stored = {tenant for (tenant,) in restarted.query("SELECT DISTINCT tenant FROM usage_facts")}
    assert stored == {f"tenant-{n}" for n in range(15) if n != 7}
    assert restarted.query("SELECT count(*) FROM spans") == [(14 * len(traces[0]),)]
    (quarantined,) = _quarantined(tmp_path / "spanledger.duckdb.requests")
    assert eighth[:100] in quarantined


def test_shutdown_warns_when_acknowledged_requests_are_still_waiting_in_the_log(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    from spanledger_collector._config import BatchSettings
    from spanledger_collector._pipeline import Pipeline
    from spanledger_collector._processors import UsageProcessor, UsageSettings
    from spanledger_collector._store import DuckDBStore, StoreWriter

    store = DuckDBStore(tmp_path / "store.duckdb")
    flaky = _StoreWithAnOutage(store)
    writer = StoreWriter(flaky, RequestLog(tmp_path / "requests"), BatchSettings(send_batch_size=100, timeout_s=0))
    pipeline = Pipeline("traces", "traces", processors=[UsageProcessor("spanledger_usage", UsageSettings())])
    writer.start(lambda request: pipeline.stored_batch(request.body))
    body = encode_spans(genai_trace()).SerializeToString()
    writer.submit("traces", body, pipeline.stored_batch(body))
    assert writer.flush()
    assert "not committed to the store" not in caplog.text
    flaky.down.set()
    for tenant in ("acme", "globex"):
        body = encode_spans(genai_trace(tenant=tenant)).SerializeToString()
        writer.submit("traces", body, pipeline.stored_batch(body))  # acknowledged: in the log
    writer.shutdown()
    assert "shutting down with 2 acknowledged requests (2-3) not committed to the store" in caplog.text
    assert str(tmp_path / "requests") in caplog.text
    store.close()
