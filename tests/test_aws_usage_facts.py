"""The AWS spans, OTLP-encoded as the exporter sends them, become the collector's usage facts and data reads."""

from __future__ import annotations

from decimal import Decimal

import aws_runtime_server as wire
from _aws_servers import REGION, make_client, moto_url, runtime_server
from aws_runtime_server import AwsRuntimeServer
from conftest import Capture
from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
from spanledger_collector._decode import decode_traces

__all__ = ["moto_url", "runtime_server"]


def _facts(capture: Capture) -> dict[tuple[str, str], tuple[Decimal, str | None, str | None]]:
    decoded = decode_traces(encode_spans(capture.spans()).SerializeToString())
    names = dict(zip(decoded.batch.spans.span_id, decoded.batch.spans.name, strict=True))
    return {
        (names[fact.span_id], fact.meter): (fact.quantity, fact.resource_type, fact.resource_id)
        for fact in decoded.batch.facts
    }


def test_aws_calls_become_usage_facts(capture: Capture, moto_url: str, runtime_server: AwsRuntimeServer) -> None:
    s3 = make_client("s3", moto_url)
    s3.create_bucket(Bucket="facts-bucket")
    s3.put_object(Bucket="facts-bucket", Key="doc.txt", Body=b"x" * 1000)
    s3.get_object(Bucket="facts-bucket", Key="doc.txt")["Body"].read()
    make_client("bedrock-runtime", runtime_server.url).converse(
        modelId="us.amazon.nova-lite-v1:0", messages=[{"role": "user", "content": [{"text": "hi"}]}]
    )
    make_client("sagemaker-runtime", moto_url).invoke_endpoint(EndpointName="Scorer", Body=b"{}")

    facts = _facts(capture)
    bucket = "arn:aws:s3:::facts-bucket"
    assert facts[("S3.PutObject", "egress.bytes")] == (Decimal(1000), "data_transfer", bucket)
    assert facts[("S3.GetObject", "ingress.bytes")] == (Decimal(1000), "data_transfer", bucket)
    profile = f"arn:aws:bedrock:{REGION}::inference-profile/us.amazon.nova-lite-v1:0"
    chat = "chat us.amazon.nova-lite-v1:0"
    assert facts[(chat, "llm.input_tokens")] == (Decimal(wire.INPUT_TOKENS), "llm_model", profile)
    assert facts[(chat, "llm.cache_read_tokens")] == (Decimal(wire.CACHE_READ_TOKENS), "llm_model", profile)
    assert facts[(chat, "llm.cache_write_tokens")] == (Decimal(wire.CACHE_WRITE_TOKENS), "llm_model", profile)
    assert facts[(chat, "llm.output_tokens")] == (Decimal(wire.OUTPUT_TOKENS), "llm_model", profile)
    seconds, resource_type, endpoint = facts[("SageMaker Runtime.InvokeEndpoint", "endpoint.seconds")]
    assert seconds > 0
    assert (resource_type, endpoint) == ("sagemaker_endpoint", f"arn:aws:sagemaker:{REGION}::endpoint/scorer")

    reads = decode_traces(encode_spans(capture.spans()).SerializeToString()).batch.data_reads
    (read,) = reads
    assert read.source == "s3://facts-bucket/doc.txt"
    assert read.bytes == 1000
    assert read.staleness_method == "object_mtime"
    assert read.age_seconds is not None and read.age_seconds >= 0
