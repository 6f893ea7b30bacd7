"""A retried request is stored once, whether the digest filter proves it new or has to ask the table."""

from __future__ import annotations

from pathlib import Path

import pytest
from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
from spanledger_collector._decode import decode_traces
from spanledger_collector._store import DuckDBStore, StoreBatch, _digests
from test_collector_service import genai_trace


def _request() -> tuple[bytes, StoreBatch]:
    body = encode_spans(genai_trace()).SerializeToString()
    batch = decode_traces(body).batch
    batch.digest = body[:16]
    return body, batch


def _counts(store: DuckDBStore) -> tuple[int, int]:
    with store.cursor() as cursor:
        spans = cursor.execute("SELECT count(*) FROM spans").fetchone()
        facts = cursor.execute("SELECT count(*) FROM usage_facts").fetchone()
    assert spans is not None and facts is not None
    return spans[0], facts[0]


def test_a_retry_is_skipped_within_a_transaction_after_a_commit_and_after_reopening(tmp_path: Path) -> None:
    path = tmp_path / "store.duckdb"
    store = DuckDBStore(path)
    _, batch = _request()
    assert store.append([batch]) == [batch]
    assert store.append([batch]) == []  # still staged in the open transaction
    store.commit()
    stored = _counts(store)
    assert stored[0] > 0 and stored[1] > 0
    assert store.write([batch]) == []
    store.close()
    reopened = DuckDBStore(path)  # the filter is rebuilt from received_requests
    assert reopened.write([batch]) == []
    assert _counts(reopened) == stored
    reopened.close()


def test_a_digest_the_filter_cannot_rule_out_takes_the_exact_path(tmp_path: Path) -> None:
    store = DuckDBStore(tmp_path / "store.duckdb")
    _, batch = _request()
    assert batch.digest is not None
    store._recent_digests.add([batch.digest])  # a false positive: never stored
    assert store.write([batch]) == [batch]
    assert store.write([batch]) == []
    store.close()


def test_the_filter_remembers_a_digest_for_at_least_two_periods(monkeypatch: pytest.MonkeyPatch) -> None:
    now = [1000.0]
    monkeypatch.setattr(_digests.time, "monotonic", lambda: now[0])
    recent = _digests.RecentDigests(period_s=60.0)
    digest = bytes(range(16))
    now[0] += 59.0
    recent.add([digest])  # at the end of the first generation
    for _ in range(12):  # other digests keep arriving and generations rotate
        now[0] += 10.0
        recent.add([bytes([int(now[0]) % 256]) * 16])
        if now[0] - 1059.0 < 2 * 60.0:
            assert recent.may_contain(digest)
    now[0] += 3 * 60.0
    recent.add([b"\x01" * 16])
    now[0] += 60.0
    recent.add([b"\x02" * 16])
    assert not recent.may_contain(digest)
