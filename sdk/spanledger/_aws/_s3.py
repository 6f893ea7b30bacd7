"""S3: bucket, key, bucket ARN, bytes, and the freshness of objects read.

Response bodies are never touched: GetObject's size is its ``ContentLength`` (what S3 sends for the
requested range), so the caller's ``StreamingBody`` reaches it as botocore made it.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from .. import semconv
from .._freshness import SourceKind, StalenessMethod, add_data_read, data_read_attributes
from ._call import AwsCall
from ._extension import ServiceExtension
from ._resource import account_from_arn, bucket_arn
from ._streams import observe_event_stream

__all__ = ["S3Extension"]


def record_object_read(call: AwsCall, source: str, *, last_modified: float | None, size: int | None) -> None:
    """The ``spanledger.data.read`` event (design.md "Data reads") and data-age point for one object read;
    the span reads exactly this object, so it carries the same attributes too."""
    attributes = data_read_attributes(
        source,
        last_modified=last_modified,
        bytes=size,
        kind=SourceKind.OBJECT_STORE,
        method=StalenessMethod.OBJECT_MTIME if last_modified is not None else None,
    )
    if call.span is not None:
        add_data_read(call.span, attributes, call.instruments.data_age)
        call.update(attributes)


def _timestamp(value: Any) -> float | None:
    return value.timestamp() if isinstance(value, datetime) else None


class S3Extension(ServiceExtension):
    def before_call(self, call: AwsCall) -> None:
        params = call.params
        attributes = call.attributes
        bucket = params.get("Bucket")
        if isinstance(bucket, str):
            attributes[semconv.AWS_S3_BUCKET] = bucket
            attributes[semconv.CLOUD_RESOURCE_ID] = bucket_arn(bucket)
            if bucket.startswith("arn:"):
                call.account = account_from_arn(bucket) or call.account
        key = params.get("Key")
        if isinstance(key, str):
            attributes[semconv.AWS_S3_KEY] = key
        upload_id = params.get("UploadId")
        if isinstance(upload_id, str):
            attributes[semconv.AWS_S3_UPLOAD_ID] = upload_id
        part_number = params.get("PartNumber")
        if isinstance(part_number, int):
            attributes[semconv.AWS_S3_PART_NUMBER] = part_number
        copy_source = params.get("CopySource")
        if isinstance(copy_source, str):
            attributes[semconv.AWS_S3_COPY_SOURCE] = copy_source
        elif isinstance(copy_source, dict) and "Bucket" in copy_source and "Key" in copy_source:
            attributes[semconv.AWS_S3_COPY_SOURCE] = f"{copy_source['Bucket']}/{copy_source['Key']}"

    def on_success(self, call: AwsCall, result: dict[str, Any]) -> bool:
        operation = call.operation
        if operation == "CreateMultipartUpload":
            call.set(semconv.AWS_S3_UPLOAD_ID, result.get("UploadId"))
        if operation == "GetObject":
            size = result.get("ContentLength")
            record_object_read(
                call,
                self._source(call),
                last_modified=_timestamp(result.get("LastModified")),
                size=size if isinstance(size, int) else None,
            )
        elif operation == "SelectObjectContent" and result.get("Payload") is not None:
            self._observe_select(call, result)
            return False
        return super().on_success(call, result)

    @staticmethod
    def _source(call: AwsCall) -> str:
        return f"s3://{call.params.get('Bucket')}/{call.params.get('Key')}"

    def _observe_select(self, call: AwsCall, result: dict[str, Any]) -> None:
        """SelectObjectContent streams its records: the read is recorded (bytes scanned, from the ``Stats``
        event) when the caller has consumed the stream; S3 Select reports no last-modified time."""
        stats: dict[str, Any] = {}

        def on_event(event: Any) -> None:
            if isinstance(event, dict) and "Stats" in event:
                stats.update(event["Stats"].get("Details", {}))

        def on_end(wire_bytes: int | None, error: BaseException | None) -> None:
            scanned = stats.get("BytesScanned")
            size = scanned if isinstance(scanned, int) else None
            record_object_read(call, self._source(call), last_modified=None, size=size)
            call.record_wire_bytes(wire_bytes)
            call.end(error)

        result["Payload"] = observe_event_stream(result["Payload"], on_event, on_end)
