"""S3 through boto3 against moto in server mode: bucket identity, bytes, data freshness, failure rules."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator
from typing import Any

import botocore.response
import pytest
import spanledger
from _aws_servers import REGION, assert_no_secrets, make_client, moto_url
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError
from conftest import Capture
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from spanledger import semconv
from spanledger._aws import _s3
from spanledger._aws._extension import content_length

__all__ = ["moto_url"]

BUCKET = "spanledger-docs"
BODY = b"The handbook, version 7.\n" * 400


@pytest.fixture
def s3(moto_url: str) -> Any:
    client = make_client("s3", moto_url)
    with contextlib.suppress(ClientError):  # made by an earlier test of this module
        client.create_bucket(Bucket=BUCKET)
    return client


def _configure_capture() -> Capture:
    exporter = InMemorySpanExporter()
    reader = InMemoryMetricReader()
    handle = spanledger.configure(
        export="none", additional_span_processors=[SimpleSpanProcessor(exporter)], metric_readers=[reader]
    )
    return Capture(exporter=exporter, metric_reader=reader, handle=handle)


@pytest.fixture
def in_another_region(monkeypatch: pytest.MonkeyPatch) -> Iterator[Capture]:
    """The process says it runs in us-west-2 in account 111122223333; the moto host is in us-east-1."""
    monkeypatch.setenv("OTEL_RESOURCE_ATTRIBUTES", "cloud.account.id=111122223333")
    monkeypatch.setenv("SPANLEDGER_REGION", "us-west-2")
    monkeypatch.setenv("SPANLEDGER_EGRESS_RULES", f"127.0.0.1=region:{REGION}")
    capture = _configure_capture()
    yield capture
    capture.handle.shutdown()


def test_get_object_records_identity_bytes_and_freshness(capture: Capture, s3: Any) -> None:
    s3.put_object(Bucket=BUCKET, Key="handbook.txt", Body=BODY)
    written_at = time.time()
    capture.clear()

    response = s3.get_object(Bucket=BUCKET, Key="handbook.txt")
    body = response["Body"]
    assert type(body).__module__.startswith("botocore.")  # botocore's own body, not a wrapper
    assert isinstance(body, botocore.response.StreamingBody)
    assert capture.spans(), "the span ends when the call returns, before the body is read"
    assert b"".join(body.iter_chunks(1000)) == BODY

    span = capture.span("S3.GetObject")
    attributes = span.attributes or {}
    assert attributes[semconv.AWS_S3_BUCKET] == BUCKET
    assert attributes[semconv.AWS_S3_KEY] == "handbook.txt"
    assert attributes[semconv.CLOUD_RESOURCE_ID] == f"arn:aws:s3:::{BUCKET}"
    assert attributes[semconv.CLOUD_REGION] == REGION
    assert attributes[semconv.CLOUD_PROVIDER] == "aws"
    assert attributes[semconv.RPC_METHOD] == "GetObject"
    assert attributes[semconv.SPANLEDGER_USAGE_OWNER] is True
    assert attributes[semconv.SPANLEDGER_INGRESS_BYTES] == len(BODY)
    assert attributes[semconv.SPANLEDGER_DATA_BYTES] == len(BODY)
    assert attributes[semconv.SPANLEDGER_EGRESS_BOUNDARY] == "unknown"  # localhost, no rule says where it is
    assert_no_secrets(attributes)

    (event,) = [e for e in span.events if e.name == semconv.EVENT_SPANLEDGER_DATA_READ]
    read = event.attributes or {}
    assert read[semconv.SPANLEDGER_DATA_SOURCE] == f"s3://{BUCKET}/handbook.txt"
    assert read[semconv.SPANLEDGER_DATA_SOURCE_KIND] == "object_store"
    assert read[semconv.SPANLEDGER_DATA_STALENESS_METHOD] == "object_mtime"
    assert read[semconv.SPANLEDGER_DATA_BYTES] == len(BODY)
    last_modified = read[semconv.SPANLEDGER_DATA_LAST_MODIFIED]
    assert isinstance(last_modified, float) and abs(last_modified - written_at) < 5
    age = read[semconv.SPANLEDGER_DATA_AGE]
    assert isinstance(age, float) and 0 <= age < 5
    assert attributes[semconv.SPANLEDGER_DATA_AGE] == age  # the span that read one object carries it too

    ages = capture.metrics()[semconv.METRIC_SPANLEDGER_DATA_AGE.name]
    assert [dict(point.attributes) for point in ages] == [{semconv.SPANLEDGER_DATA_SOURCE_KIND: "object_store"}]


def test_ranged_get_counts_the_range(capture: Capture, s3: Any) -> None:
    s3.put_object(Bucket=BUCKET, Key="ranged.txt", Body=BODY)
    capture.clear()
    response = s3.get_object(Bucket=BUCKET, Key="ranged.txt", Range="bytes=0-99")
    assert response["Body"].read() == BODY[:100]
    attributes = capture.span("S3.GetObject").attributes or {}
    assert attributes[semconv.SPANLEDGER_DATA_BYTES] == 100
    assert attributes[semconv.SPANLEDGER_INGRESS_BYTES] == 100


def test_put_object_counts_request_bytes(capture: Capture, s3: Any) -> None:
    s3.put_object(Bucket=BUCKET, Key="upload.txt", Body=BODY)
    span = capture.span("S3.PutObject")
    attributes = span.attributes or {}
    assert attributes[semconv.SPANLEDGER_EGRESS_BYTES] == len(BODY)
    assert attributes[semconv.CLOUD_RESOURCE_ID] == f"arn:aws:s3:::{BUCKET}"
    assert semconv.SPANLEDGER_DATA_BYTES not in attributes  # a write is not a data read
    assert not span.events
    assert_no_secrets(attributes)
    points = capture.metrics()[semconv.METRIC_SPANLEDGER_EGRESS_BYTES.name]
    sent = [p for p in points if p.attributes[semconv.NETWORK_IO_DIRECTION] == "transmit"]
    assert sum(p.value for p in sent) == len(BODY)


def test_metadata_listing_and_copy(capture: Capture, s3: Any) -> None:
    s3.put_object(Bucket=BUCKET, Key="meta.txt", Body=b"x")
    capture.clear()
    s3.head_object(Bucket=BUCKET, Key="meta.txt")
    s3.get_object_attributes(Bucket=BUCKET, Key="meta.txt", ObjectAttributes=["ObjectSize", "ETag"])
    s3.list_objects_v2(Bucket=BUCKET)
    s3.copy_object(Bucket=BUCKET, Key="meta-copy.txt", CopySource={"Bucket": BUCKET, "Key": "meta.txt"})
    for name in ("S3.HeadObject", "S3.GetObjectAttributes", "S3.ListObjectsV2", "S3.CopyObject"):
        attributes = capture.span(name).attributes or {}
        assert attributes[semconv.AWS_S3_BUCKET] == BUCKET
        assert attributes[semconv.CLOUD_RESOURCE_ID] == f"arn:aws:s3:::{BUCKET}"
        assert attributes[semconv.SPANLEDGER_USAGE_OWNER] is True
    assert (capture.span("S3.CopyObject").attributes or {})[semconv.AWS_S3_COPY_SOURCE] == f"{BUCKET}/meta.txt"
    listing = capture.span("S3.ListObjectsV2").attributes or {}
    assert isinstance(listing[semconv.SPANLEDGER_INGRESS_BYTES], int) and listing[semconv.SPANLEDGER_INGRESS_BYTES] > 0
    assert not any(span.events for span in capture.spans())  # no data was read


def test_multipart_upload(capture: Capture, s3: Any) -> None:
    part = b"p" * (5 * 1024 * 1024)
    upload_id = s3.create_multipart_upload(Bucket=BUCKET, Key="big.bin")["UploadId"]
    etag = s3.upload_part(Bucket=BUCKET, Key="big.bin", UploadId=upload_id, PartNumber=1, Body=part)["ETag"]
    s3.complete_multipart_upload(
        Bucket=BUCKET, Key="big.bin", UploadId=upload_id, MultipartUpload={"Parts": [{"ETag": etag, "PartNumber": 1}]}
    )
    assert (capture.span("S3.CreateMultipartUpload").attributes or {})[semconv.AWS_S3_UPLOAD_ID] == upload_id
    uploaded = capture.span("S3.UploadPart").attributes or {}
    assert uploaded[semconv.AWS_S3_UPLOAD_ID] == upload_id
    assert uploaded[semconv.AWS_S3_PART_NUMBER] == 1
    assert uploaded[semconv.SPANLEDGER_EGRESS_BYTES] == len(part)
    completed = capture.span("S3.CompleteMultipartUpload").attributes or {}
    assert completed[semconv.AWS_S3_KEY] == "big.bin"


def test_select_object_content_stream_reaches_caller_intact(capture: Capture, s3: Any) -> None:
    s3.put_object(Bucket=BUCKET, Key="rows.csv", Body=b"a,b\n1,2\n3,4\n")
    capture.clear()
    response = s3.select_object_content(
        Bucket=BUCKET,
        Key="rows.csv",
        Expression="select * from s3object",
        ExpressionType="SQL",
        InputSerialization={"CSV": {}},
        OutputSerialization={"CSV": {}},
    )
    assert not capture.spans(), "the span stays open while the caller reads the stream"
    events = list(response["Payload"])
    assert [next(iter(event)) for event in events] == ["Records", "Stats", "End"]
    assert events[0]["Records"]["Payload"].startswith(b"a,b\n1,2")
    span = capture.span("S3.SelectObjectContent")
    attributes = span.attributes or {}
    scanned = events[1]["Stats"]["Details"]["BytesScanned"]
    (event,) = span.events
    assert (event.attributes or {})[semconv.SPANLEDGER_DATA_BYTES] == scanned
    assert (event.attributes or {})[semconv.SPANLEDGER_DATA_SOURCE] == f"s3://{BUCKET}/rows.csv"
    assert attributes[semconv.SPANLEDGER_INGRESS_BYTES] > 0  # the event-stream bytes, framing included


def test_aws_errors_propagate_unchanged(capture: Capture, s3: Any) -> None:
    with pytest.raises(ClientError) as raised:
        s3.get_object(Bucket=BUCKET, Key="missing.txt")
    assert raised.value.response["Error"]["Code"] == "NoSuchKey"
    span = capture.span("S3.GetObject")
    assert span.status.is_ok is False
    assert (span.attributes or {})[semconv.ERROR_TYPE] == "NoSuchKey"
    assert (span.attributes or {})[semconv.HTTP_RESPONSE_STATUS_CODE] == 404
    assert not span.events


@pytest.mark.parametrize("hook", ["before_call", "on_success"])
def test_broken_extractor_never_reaches_the_caller(
    capture: Capture, s3: Any, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture, hook: str
) -> None:
    s3.put_object(Bucket=BUCKET, Key="fine.txt", Body=b"fine")

    def broken(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("extractor bug")

    monkeypatch.setattr(_s3.S3Extension, hook, broken)
    capture.clear()
    assert s3.get_object(Bucket=BUCKET, Key="fine.txt")["Body"].read() == b"fine"
    with pytest.raises(ClientError):
        s3.get_object(Bucket=BUCKET, Key="missing.txt")
    assert "spanledger internal error" in caplog.text
    if hook == "on_success":  # the span started, so it still ends
        assert len([span for span in capture.spans() if span.name == "S3.GetObject"]) == 2


@pytest.mark.parametrize("upstream_first", [True, False])
def test_no_duplicate_span_with_upstream_botocore_instrumentation(
    capture: Capture, s3: Any, upstream_first: bool
) -> None:
    from opentelemetry.instrumentation.botocore import BotocoreInstrumentor

    s3.put_object(Bucket=BUCKET, Key="both.txt", Body=b"both")
    upstream = BotocoreInstrumentor()
    if upstream_first:
        spanledger.uninstrument("botocore")
        upstream.instrument()
        spanledger.instrument("botocore")
    else:
        upstream.instrument()
    try:
        capture.clear()
        assert s3.get_object(Bucket=BUCKET, Key="both.txt")["Body"].read() == b"both"
    finally:
        spanledger.uninstrument("botocore")  # outermost first: each unwraps the top of the chain
        upstream.uninstrument()
    (span,) = capture.spans()
    attributes = span.attributes or {}
    assert attributes[semconv.CLOUD_RESOURCE_ID] == f"arn:aws:s3:::{BUCKET}"
    assert attributes[semconv.SPANLEDGER_DATA_BYTES] == 4
    assert [event.name for event in span.events] == [semconv.EVENT_SPANLEDGER_DATA_READ]


def test_account_region_and_boundary(in_another_region: Capture, s3: Any) -> None:
    s3.put_object(Bucket=BUCKET, Key="far.txt", Body=b"far away")
    s3.get_object(Bucket=BUCKET, Key="far.txt")["Body"].read()
    for name in ("S3.PutObject", "S3.GetObject"):
        attributes = in_another_region.span(name).attributes or {}
        assert attributes[semconv.CLOUD_ACCOUNT_ID] == "111122223333"
        assert attributes[semconv.CLOUD_REGION] == REGION
        assert attributes[semconv.SPANLEDGER_EGRESS_BOUNDARY] == "inter_region"


def test_access_point_arn_is_the_resource(capture: Capture, moto_url: str) -> None:
    arn = "arn:aws:s3:us-east-1:444455556666:accesspoint/reports"
    client = make_client("s3", moto_url, config=Config(retries={"max_attempts": 1}, connect_timeout=1))
    # The access point's host is not served here (the request fails); the span is what matters.
    with contextlib.suppress(ClientError, BotoCoreError):
        client.get_object(Bucket=arn, Key="x")
    attributes = next(iter(capture.spans())).attributes or {}
    assert attributes[semconv.CLOUD_RESOURCE_ID] == arn
    assert attributes[semconv.CLOUD_ACCOUNT_ID] == "444455556666"


@pytest.mark.parametrize(
    ("header", "size"),
    [("1024", 1024), (" 7 ", 7), ("0", 0), ("-5", None), ("1_000", None), ("١٢", None), ("²", None), ("", None),
     (None, None)],
)  # fmt: skip
def test_a_content_length_is_ascii_digits_or_no_size(header: str | None, size: int | None) -> None:
    assert content_length(header) == size
