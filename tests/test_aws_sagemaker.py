"""SageMaker runtime: InvokeEndpoint and InvokeEndpointAsync against moto in server mode; the response
stream (which moto does not implement) against the local server speaking SageMaker's event stream."""

from __future__ import annotations

import time

import pytest
import spanledger
from _aws_servers import REGION, assert_no_secrets, make_client, moto_url, runtime_server
from aws_runtime_server import AwsRuntimeServer
from botocore.exceptions import ClientError
from conftest import Capture
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from spanledger import semconv

__all__ = ["moto_url", "runtime_server"]

PAYLOAD = b'{"inputs": "Summarise the handbook in one line."}'


def test_invoke_endpoint_records_endpoint_arn_bytes_and_occupancy(capture: Capture, moto_url: str) -> None:
    client = make_client("sagemaker-runtime", moto_url)
    before = time.time()
    response = client.invoke_endpoint(EndpointName="Handbook-LLM", Body=PAYLOAD, ContentType="application/json")
    answer = response["Body"].read()
    after = time.time()
    (span,) = capture.spans()
    assert span.name == "SageMaker Runtime.InvokeEndpoint"
    attributes = span.attributes or {}
    # SageMaker lowercases endpoint names in ARNs; the account is unknown here (no STS call is made).
    assert attributes[semconv.CLOUD_RESOURCE_ID] == f"arn:aws:sagemaker:{REGION}::endpoint/handbook-llm"
    assert attributes[semconv.CLOUD_REGION] == REGION
    assert attributes[semconv.SPANLEDGER_USAGE_OWNER] is True
    assert attributes[semconv.SPANLEDGER_RESOURCE_TYPE] == "sagemaker_endpoint"
    assert attributes[semconv.SPANLEDGER_EGRESS_BYTES] == len(PAYLOAD)
    assert attributes[semconv.SPANLEDGER_INGRESS_BYTES] == len(answer)
    start, end = attributes[semconv.SPANLEDGER_OCCUPANCY_START], attributes[semconv.SPANLEDGER_OCCUPANCY_END]
    assert isinstance(start, float) and isinstance(end, float)
    assert before <= start <= end <= after
    assert_no_secrets(attributes)


def test_account_from_resource_completes_the_endpoint_arn(monkeypatch: pytest.MonkeyPatch, moto_url: str) -> None:
    monkeypatch.setenv("OTEL_RESOURCE_ATTRIBUTES", "cloud.account.id=123456789012")
    exporter = InMemorySpanExporter()
    handle = spanledger.configure(export="none", additional_span_processors=[SimpleSpanProcessor(exporter)])
    try:
        make_client("sagemaker-runtime", moto_url).invoke_endpoint(EndpointName="Handbook-LLM", Body=PAYLOAD)
        (span,) = exporter.get_finished_spans()
        attributes = span.attributes or {}
        assert attributes[semconv.CLOUD_RESOURCE_ID] == f"arn:aws:sagemaker:{REGION}:123456789012:endpoint/handbook-llm"
        assert attributes[semconv.CLOUD_ACCOUNT_ID] == "123456789012"
    finally:
        handle.shutdown()


def test_invoke_endpoint_async_records_zero_occupancy(capture: Capture, moto_url: str) -> None:
    client = make_client("sagemaker-runtime", moto_url)
    response = client.invoke_endpoint_async(EndpointName="batch-llm", InputLocation="s3://inputs/request.json")
    assert response["OutputLocation"].startswith("s3://")
    attributes = capture.spans()[0].attributes or {}
    assert attributes[semconv.CLOUD_RESOURCE_ID] == f"arn:aws:sagemaker:{REGION}::endpoint/batch-llm"
    # Enqueueing is not endpoint time: the inference runs later, when the caller cannot see it.
    assert attributes[semconv.SPANLEDGER_OCCUPANCY_START] == attributes[semconv.SPANLEDGER_OCCUPANCY_END]


def test_response_stream_reaches_caller_intact(capture: Capture, runtime_server: AwsRuntimeServer) -> None:
    client = make_client("sagemaker-runtime", runtime_server.url)
    response = client.invoke_endpoint_with_response_stream(EndpointName="Streamer", Body=PAYLOAD)
    assert not capture.spans(), "the endpoint is occupied until the last event arrives"
    events = list(response["Body"])
    assert b"".join(event["PayloadPart"]["Bytes"] for event in events) == PAYLOAD
    assert len(events) == (len(PAYLOAD) + 7) // 8
    attributes = capture.spans()[0].attributes or {}
    assert attributes[semconv.CLOUD_RESOURCE_ID] == f"arn:aws:sagemaker:{REGION}::endpoint/streamer"
    assert attributes[semconv.SPANLEDGER_EGRESS_BYTES] == len(PAYLOAD)
    assert attributes[semconv.SPANLEDGER_INGRESS_BYTES] > len(PAYLOAD)  # event-stream framing included
    assert attributes[semconv.SPANLEDGER_OCCUPANCY_END] >= attributes[semconv.SPANLEDGER_OCCUPANCY_START]


def test_endpoint_errors_propagate_unchanged(capture: Capture, runtime_server: AwsRuntimeServer) -> None:
    client = make_client("sagemaker-runtime", runtime_server.url)
    with pytest.raises(ClientError) as raised:
        client.invoke_endpoint_async(EndpointName="x", InputLocation="s3://in/x.json")
    assert raised.value.response["Error"]["Code"] == "UnknownOperationException"
    span = capture.spans()[0]
    assert (span.attributes or {})[semconv.ERROR_TYPE] == "UnknownOperationException"
    assert not span.status.is_ok
