"""Data freshness through the public API: record_data_read and retrieval spans."""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone

import pytest
import spanledger
from conftest import Capture
from opentelemetry import trace
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from spanledger import semconv

READ = semconv.EVENT_SPANLEDGER_DATA_READ


def events(capture: Capture, span_name: str) -> list[dict[str, object]]:
    span = capture.span(span_name)
    return [dict(event.attributes or {}) for event in span.events if event.name == READ]


def age_points(capture: Capture) -> dict[str, tuple[int, float]]:
    points = capture.metrics().get(semconv.METRIC_SPANLEDGER_DATA_AGE.name, [])
    return {point.attributes[semconv.SPANLEDGER_DATA_SOURCE_KIND]: (point.count, point.sum) for point in points}


def test_record_data_read_adds_an_event_with_age_to_the_current_span(capture: Capture) -> None:
    tracer = capture.handle.telemetry.tracer
    an_hour_ago = datetime.now(timezone.utc) - timedelta(hours=1)
    with tracer.start_as_current_span("answer"):
        spanledger.record_data_read(
            "postgresql://db/orders", last_modified=an_hour_ago, bytes=2048, method="max_timestamp"
        )
        spanledger.record_data_read("kafka://events/3", last_modified=time.time() - 30)
        spanledger.record_data_read("/data/prices.csv")

    orders, message, prices = events(capture, "answer")
    assert orders[semconv.SPANLEDGER_DATA_SOURCE] == "postgresql://db/orders"
    assert orders[semconv.SPANLEDGER_DATA_SOURCE_KIND] == "database"
    assert orders[semconv.SPANLEDGER_DATA_BYTES] == 2048
    assert orders[semconv.SPANLEDGER_DATA_STALENESS_METHOD] == "max_timestamp"
    assert orders[semconv.SPANLEDGER_DATA_LAST_MODIFIED] == pytest.approx(an_hour_ago.timestamp())
    assert 3600 <= orders[semconv.SPANLEDGER_DATA_AGE] < 3660  # type: ignore[operator]
    assert message[semconv.SPANLEDGER_DATA_SOURCE_KIND] == "stream"
    assert message[semconv.SPANLEDGER_DATA_STALENESS_METHOD] == "caller"
    assert 30 <= message[semconv.SPANLEDGER_DATA_AGE] < 90  # type: ignore[operator]
    assert prices == {semconv.SPANLEDGER_DATA_SOURCE: "/data/prices.csv", semconv.SPANLEDGER_DATA_SOURCE_KIND: "file"}

    points = age_points(capture)
    assert points["database"][0] == 1 and points["stream"][0] == 1
    assert "file" not in points  # no last_modified, no age
    assert all(point.attributes.keys() == {semconv.SPANLEDGER_DATA_SOURCE_KIND}
               for point in capture.metrics()[semconv.METRIC_SPANLEDGER_DATA_AGE.name])


def test_naive_datetimes_are_utc_and_future_times_give_age_zero(capture: Capture) -> None:
    tracer = capture.handle.telemetry.tracer
    naive_utc = datetime.now(timezone.utc).replace(tzinfo=None) - timedelta(minutes=10)
    with tracer.start_as_current_span("read"):
        spanledger.record_data_read("s3://b/k", last_modified=naive_utc, kind="object_store", method="object_mtime")
        spanledger.record_data_read("s3://b/clock-skew", last_modified=time.time() + 120)
    first, skewed = events(capture, "read")
    assert 600 <= first[semconv.SPANLEDGER_DATA_AGE] < 660  # type: ignore[operator]
    assert skewed[semconv.SPANLEDGER_DATA_AGE] == 0.0


@pytest.mark.parametrize(
    "call",
    [
        lambda: spanledger.record_data_read(""),
        lambda: spanledger.record_data_read(42),  # type: ignore[arg-type]
        lambda: spanledger.record_data_read("s3://b/k", last_modified="yesterday"),  # type: ignore[arg-type]
        lambda: spanledger.record_data_read("s3://b/k", bytes=-1),
        lambda: spanledger.record_data_read("s3://b/k", kind="lake"),
        lambda: spanledger.record_data_read("s3://b/k", last_modified=float("nan")),
    ],
)
def test_bad_input_is_logged_never_raised(capture: Capture, call: object, caplog: pytest.LogCaptureFixture) -> None:
    with capture.handle.telemetry.tracer.start_as_current_span("read"):
        call()  # type: ignore[operator]
    assert events(capture, "read") == []
    assert "spanledger.record_data_read" in caplog.text and "nothing recorded" in caplog.text


def test_without_a_span_or_configure_it_does_nothing_harmful(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.DEBUG):
        assert spanledger.record_data_read("s3://b/k", last_modified=0) is None
    assert [record.getMessage() for record in caplog.records if record.levelno >= logging.WARNING] == []
    assert isinstance(trace.get_tracer_provider(), trace.ProxyTracerProvider)  # the call configured nothing
    assert not trace.get_current_span().is_recording()


def test_configured_but_outside_a_span_no_span_is_made_and_the_age_is_still_measured(capture: Capture) -> None:
    spanledger.record_data_read("s3://b/k", last_modified=time.time() - 60)
    assert capture.spans() == []
    count, total = age_points(capture)["object_store"]
    assert count == 1 and 59 <= total < 120


def test_retrieval_span_records_documents_ids_and_freshness(capture: Capture) -> None:
    now = time.time()
    with spanledger.retrieval("kb-handbook", query="how do refunds work?", top_k=3) as search:
        search.record_documents(
            [
                {"id": "doc-1", "score": 0.91, "source": "s3://kb/refunds.md", "last_modified": now - 86400},
                {"id": 7, "score": 0.5, "last_modified": datetime.fromtimestamp(now - 60, timezone.utc)},
                {"id": "doc-3", "content": "never recorded"},
            ]
        )
    span = capture.span("retrieval kb-handbook")
    attributes = span.attributes or {}
    assert attributes[semconv.GEN_AI_OPERATION_NAME] == "retrieval"
    assert attributes[semconv.GEN_AI_DATA_SOURCE_ID] == "kb-handbook"
    assert attributes[semconv.GEN_AI_REQUEST_TOP_K] == 3
    assert semconv.GEN_AI_RETRIEVAL_QUERY_TEXT not in attributes  # content capture is off
    documents = json.loads(str(attributes[semconv.GEN_AI_RETRIEVAL_DOCUMENTS]))
    assert [doc["id"] for doc in documents] == ["doc-1", "7", "doc-3"]
    assert documents[0]["source"] == "s3://kb/refunds.md" and documents[0]["score"] == 0.91
    assert 86400 <= documents[0]["age"] < 86460
    assert documents[1]["source"] == "kb-handbook"
    assert "never recorded" not in attributes[semconv.GEN_AI_RETRIEVAL_DOCUMENTS]
    reads = events(capture, "retrieval kb-handbook")
    assert [read[semconv.SPANLEDGER_DATA_SOURCE] for read in reads] == ["s3://kb/refunds.md", "kb-handbook"]
    assert {read[semconv.SPANLEDGER_DATA_SOURCE_KIND] for read in reads} == {"vector_store"}
    assert age_points(capture)["vector_store"][0] == 2


@pytest.fixture
def content_capture() -> Iterator[Capture]:
    exporter, reader = InMemorySpanExporter(), InMemoryMetricReader()
    handle = spanledger.configure(
        export="none", capture_message_content=True,
        additional_span_processors=[SimpleSpanProcessor(exporter)], metric_readers=[reader],
    )
    yield Capture(exporter=exporter, metric_reader=reader, handle=handle)
    handle.shutdown()


def test_retrieval_query_is_recorded_only_with_content_capture(content_capture: Capture) -> None:
    with spanledger.retrieval("kb", query="refund policy"):
        pass
    attributes = content_capture.span("retrieval kb").attributes or {}
    assert attributes[semconv.GEN_AI_RETRIEVAL_QUERY_TEXT] == "refund policy"


def test_errors_in_the_retrieval_block_are_recorded_and_reraised_unchanged(capture: Capture) -> None:
    class LookupFailed(Exception):
        pass

    with pytest.raises(LookupFailed), spanledger.retrieval("kb") as search:
        search.record_documents(["not a document"])  # type: ignore[list-item]  # logged, never raised
        raise LookupFailed("index offline")
    span = capture.span("retrieval kb")
    assert span.status.status_code.name == "ERROR"
    assert (span.attributes or {})[semconv.ERROR_TYPE] == f"{__name__}.{LookupFailed.__qualname__}"
