"""Bedrock runtime through boto3 against a local server speaking its wire format (JSON and event streams)."""

from __future__ import annotations

import io
import json
from typing import Any

import aws_runtime_server as wire
import botocore.response
import pytest
import spanledger
from _aws_servers import REGION, assert_no_secrets, make_client, runtime_server
from aws_runtime_server import AwsRuntimeServer
from botocore.eventstream import EventStream
from botocore.exceptions import ClientError, EventStreamError
from conftest import Capture
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from spanledger import semconv
from spanledger._aws import _bedrock

__all__ = ["runtime_server"]

MESSAGES = [{"role": "user", "content": [{"text": "What is in the handbook?"}]}]
ALL_INPUT = wire.INPUT_TOKENS + wire.CACHE_READ_TOKENS + wire.CACHE_WRITE_TOKENS


@pytest.fixture
def bedrock(runtime_server: AwsRuntimeServer) -> Any:
    return make_client("bedrock-runtime", runtime_server.url)


def _only_span(capture: Capture) -> ReadableSpan:
    (span,) = capture.spans()
    return span


def _uninstrumented(call: Any) -> Any:
    spanledger.uninstrument("botocore")
    try:
        return call()
    finally:
        spanledger.instrument("botocore")


def test_converse_records_model_tokens_and_resource(capture: Capture, bedrock: Any) -> None:
    response = bedrock.converse(
        modelId="us.anthropic.claude-3-5-haiku-20241022-v1:0",
        messages=MESSAGES,
        inferenceConfig={"maxTokens": 100, "temperature": 0.2, "topP": 0.9, "stopSequences": ["END"]},
    )
    assert response["output"]["message"]["content"][0]["text"] == "".join(wire.REPLY_WORDS)
    span = _only_span(capture)
    assert span.name == "chat us.anthropic.claude-3-5-haiku-20241022-v1:0"
    attributes = span.attributes or {}
    assert attributes[semconv.GEN_AI_PROVIDER_NAME] == "aws.bedrock"
    assert attributes[semconv.GEN_AI_OPERATION_NAME] == "chat"
    assert attributes[semconv.GEN_AI_REQUEST_MODEL] == "us.anthropic.claude-3-5-haiku-20241022-v1:0"
    assert attributes[semconv.GEN_AI_REQUEST_MAX_TOKENS] == 100
    assert attributes[semconv.GEN_AI_REQUEST_TEMPERATURE] == 0.2
    assert attributes[semconv.GEN_AI_REQUEST_TOP_P] == 0.9
    assert attributes[semconv.GEN_AI_REQUEST_STOP_SEQUENCES] == ("END",)
    assert attributes[semconv.GEN_AI_USAGE_INPUT_TOKENS] == ALL_INPUT  # cache reads and writes included
    assert attributes[semconv.GEN_AI_USAGE_OUTPUT_TOKENS] == wire.OUTPUT_TOKENS
    assert attributes[semconv.GEN_AI_USAGE_CACHE_READ_INPUT_TOKENS] == wire.CACHE_READ_TOKENS
    assert attributes[semconv.GEN_AI_USAGE_CACHE_CREATION_INPUT_TOKENS] == wire.CACHE_WRITE_TOKENS
    assert semconv.GEN_AI_USAGE_CACHE_WRITE_INPUT_TOKENS not in attributes  # released names by default
    assert attributes[semconv.GEN_AI_RESPONSE_FINISH_REASONS] == ("end_turn",)
    assert attributes[semconv.CLOUD_RESOURCE_ID] == (
        f"arn:aws:bedrock:{REGION}::inference-profile/us.anthropic.claude-3-5-haiku-20241022-v1:0"
    )
    assert attributes[semconv.CLOUD_REGION] == REGION
    assert attributes[semconv.SPANLEDGER_USAGE_OWNER] is True
    assert attributes[semconv.SPANLEDGER_EGRESS_BYTES] > 0
    assert attributes[semconv.SPANLEDGER_INGRESS_BYTES] > 0
    assert semconv.GEN_AI_INPUT_MESSAGES not in attributes  # content is opt-in
    assert semconv.GEN_AI_OUTPUT_MESSAGES not in attributes
    assert_no_secrets(attributes)

    metrics = capture.metrics()
    tokens = {p.attributes[semconv.GEN_AI_TOKEN_TYPE]: p.sum for p in metrics["gen_ai.client.token.usage"]}
    assert tokens == {"input": ALL_INPUT, "output": wire.OUTPUT_TOKENS}
    (duration,) = metrics["gen_ai.client.operation.duration"]
    assert duration.attributes[semconv.GEN_AI_REQUEST_MODEL] == "us.anthropic.claude-3-5-haiku-20241022-v1:0"


def test_latest_semconv_names(monkeypatch: pytest.MonkeyPatch, runtime_server: AwsRuntimeServer) -> None:
    from opentelemetry.sdk.metrics.export import InMemoryMetricReader

    monkeypatch.setenv("OTEL_SEMCONV_STABILITY_OPT_IN", "gen_ai_latest_experimental")
    exporter, reader = InMemorySpanExporter(), InMemoryMetricReader()
    handle = spanledger.configure(
        export="none", additional_span_processors=[SimpleSpanProcessor(exporter)], metric_readers=[reader]
    )
    capture = Capture(exporter=exporter, metric_reader=reader, handle=handle)
    try:
        make_client("bedrock-runtime", runtime_server.url).converse(modelId="amazon.nova-pro-v1:0", messages=MESSAGES)
        attributes = _only_span(capture).attributes or {}
        assert attributes[semconv.GEN_AI_USAGE_CACHE_WRITE_INPUT_TOKENS] == wire.CACHE_WRITE_TOKENS
        assert semconv.GEN_AI_USAGE_CACHE_CREATION_INPUT_TOKENS not in attributes
        metrics = capture.metrics()
        assert "gen_ai.client.token.usage" in metrics  # released metrics in every mode
        assert not any(name.startswith("gen_ai.client.inference.") for name in metrics)
    finally:
        handle.shutdown()


def test_content_capture_is_opt_in(monkeypatch: pytest.MonkeyPatch, runtime_server: AwsRuntimeServer) -> None:
    exporter = InMemorySpanExporter()
    handle = spanledger.configure(
        export="none", capture_message_content=True, additional_span_processors=[SimpleSpanProcessor(exporter)]
    )
    try:
        make_client("bedrock-runtime", runtime_server.url).converse(
            modelId="amazon.nova-pro-v1:0", messages=MESSAGES, system=[{"text": "Be brief."}]
        )
        (span,) = exporter.get_finished_spans()
        attributes = span.attributes or {}
        assert json.loads(str(attributes[semconv.GEN_AI_INPUT_MESSAGES])) == [
            {"role": "user", "parts": [{"type": "text", "content": "What is in the handbook?"}]}
        ]
        system = json.loads(str(attributes[semconv.GEN_AI_SYSTEM_INSTRUCTIONS]))
        assert system == [{"type": "text", "content": "Be brief."}]
        output = json.loads(str(attributes[semconv.GEN_AI_OUTPUT_MESSAGES]))
        assert output[0]["parts"][0]["content"] == "".join(wire.REPLY_WORDS)
    finally:
        handle.shutdown()


def test_converse_stream_reaches_caller_event_for_event(capture: Capture, bedrock: Any) -> None:
    def run() -> list[Any]:
        return list(bedrock.converse_stream(modelId="amazon.nova-lite-v1:0", messages=MESSAGES)["stream"])

    expected = _uninstrumented(run)
    capture.clear()
    response = bedrock.converse_stream(modelId="amazon.nova-lite-v1:0", messages=MESSAGES)
    assert isinstance(response["stream"], EventStream)
    assert not capture.spans(), "the span stays open until the caller has read the stream"
    assert list(response["stream"]) == expected
    span = _only_span(capture)
    attributes = span.attributes or {}
    assert attributes[semconv.GEN_AI_REQUEST_STREAM] is True
    assert attributes[semconv.GEN_AI_USAGE_INPUT_TOKENS] == ALL_INPUT
    assert attributes[semconv.GEN_AI_USAGE_OUTPUT_TOKENS] == wire.OUTPUT_TOKENS
    assert attributes[semconv.GEN_AI_USAGE_CACHE_READ_INPUT_TOKENS] == wire.CACHE_READ_TOKENS
    assert attributes[semconv.GEN_AI_RESPONSE_FINISH_REASONS] == ("end_turn",)
    assert attributes[semconv.GEN_AI_RESPONSE_TIME_TO_FIRST_CHUNK] >= 0
    assert attributes[semconv.SPANLEDGER_INGRESS_BYTES] > 0
    assert attributes[semconv.CLOUD_RESOURCE_ID] == f"arn:aws:bedrock:{REGION}::foundation-model/amazon.nova-lite-v1:0"


def test_stream_error_propagates_and_ends_the_span(capture: Capture, bedrock: Any) -> None:
    def run() -> list[Any]:
        received: list[Any] = []
        with pytest.raises(EventStreamError) as raised:
            for event in bedrock.converse_stream(modelId="error-stream", messages=MESSAGES)["stream"]:
                received.append(event)
        return [received, raised.value.response]

    expected = _uninstrumented(run)
    capture.clear()
    assert run() == expected
    span = _only_span(capture)
    assert (span.attributes or {})[semconv.ERROR_TYPE] == "modelStreamErrorException"
    assert not span.status.is_ok


def test_throttling_error_propagates_unchanged(capture: Capture, bedrock: Any) -> None:
    with pytest.raises(ClientError) as raised:
        bedrock.converse(modelId="error-throttle", messages=MESSAGES)
    assert raised.value.response["Error"]["Code"] == "ThrottlingException"
    span = _only_span(capture)
    assert (span.attributes or {})[semconv.ERROR_TYPE] == "ThrottlingException"
    assert (span.attributes or {})[semconv.HTTP_RESPONSE_STATUS_CODE] == 429
    (duration,) = capture.metrics()["gen_ai.client.operation.duration"]
    assert duration.attributes[semconv.ERROR_TYPE] == "ThrottlingException"


@pytest.mark.parametrize(
    ("model", "operation", "input_tokens", "cache_read", "finish"),
    [
        ("anthropic.claude-3-haiku-20240307-v1:0", "chat", ALL_INPUT, wire.CACHE_READ_TOKENS, ("end_turn",)),
        ("anthropic.claude-no-headers", "chat", ALL_INPUT, wire.CACHE_READ_TOKENS, ("end_turn",)),
        ("amazon.titan-text-express-v1", "text_completion", wire.INPUT_TOKENS, None, ("FINISH",)),
        ("amazon.titan-embed-text-v2:0", "embeddings", wire.INPUT_TOKENS, None, None),
        ("amazon.nova-micro-v1:0", "chat", ALL_INPUT, wire.CACHE_READ_TOKENS, ("end_turn",)),
        ("meta.llama3-8b-instruct-v1:0", "text_completion", wire.INPUT_TOKENS, None, ("stop",)),
        ("mistral.mistral-7b-instruct-v0:2", "text_completion", wire.INPUT_TOKENS, None, ("stop",)),
    ],
)
def test_invoke_model_body_shapes(
    capture: Capture,
    bedrock: Any,
    model: str,
    operation: str,
    input_tokens: int,
    cache_read: int | None,
    finish: tuple[str, ...] | None,
) -> None:
    request = (
        {"messages": [{"role": "user", "content": "hi"}], "max_tokens": 64} if operation == "chat" else {"prompt": "hi"}
    )
    expected = _uninstrumented(lambda: bedrock.invoke_model(modelId=model, body=json.dumps(request))["body"].read())
    capture.clear()
    response = bedrock.invoke_model(modelId=model, body=json.dumps(request))
    body = response["body"]
    assert type(body) is botocore.response.StreamingBody
    assert not capture.spans(), "the span ends once the caller has read the body"
    assert body.read(10) + body.read() == expected
    span = _only_span(capture)
    attributes = span.attributes or {}
    assert span.name == f"{operation} {model}"
    assert attributes[semconv.GEN_AI_USAGE_INPUT_TOKENS] == input_tokens
    if operation != "embeddings":
        assert attributes[semconv.GEN_AI_USAGE_OUTPUT_TOKENS] == wire.OUTPUT_TOKENS
    assert attributes.get(semconv.GEN_AI_USAGE_CACHE_READ_INPUT_TOKENS) == cache_read
    assert attributes.get(semconv.GEN_AI_RESPONSE_FINISH_REASONS) == finish
    assert attributes[semconv.SPANLEDGER_INGRESS_BYTES] == len(expected)
    if operation == "chat":
        assert attributes[semconv.GEN_AI_REQUEST_MAX_TOKENS] == 64


_CLAUDE = "anthropic.claude-3-haiku-20240307-v1:0"
_CLAUDE_REQUEST = json.dumps({"messages": [{"role": "user", "content": "hi"}], "max_tokens": 64})


@pytest.mark.parametrize("how", ["with body as f: for line in f", "readlines()", "read(0) then read()"])
def test_invoke_model_body_read_every_way_is_counted(capture: Capture, bedrock: Any, how: str) -> None:
    """botocore's ``with body as f`` hands the caller the raw stream, which must iterate as the response does;
    line reads are counted; ``read(0)`` is not the end. (Failed before: TypeError into the caller; 0 bytes and
    the headers' tokens only; the span ended at read(0).)"""
    expected = _uninstrumented(lambda: bedrock.invoke_model(modelId=_CLAUDE, body=_CLAUDE_REQUEST)["body"].read())
    capture.clear()
    body = bedrock.invoke_model(modelId=_CLAUDE, body=_CLAUDE_REQUEST)["body"]
    if how.startswith("with"):
        with body as raw:
            got = b"".join(raw)
    elif how == "readlines()":
        got = b"".join(body.readlines())
    else:
        assert body.read(0) == b""
        assert not capture.spans()
        got = body.read()
    assert got == expected
    attributes = _only_span(capture).attributes or {}
    assert attributes[semconv.SPANLEDGER_INGRESS_BYTES] == len(expected)
    assert attributes[semconv.GEN_AI_USAGE_INPUT_TOKENS] == ALL_INPUT  # from the body, not the headers
    assert attributes[semconv.GEN_AI_RESPONSE_FINISH_REASONS] == ("end_turn",)


def test_a_stream_read_in_several_loops_ends_when_it_does(capture: Capture, bedrock: Any) -> None:
    """botocore's stream goes on where a loop left it: leaving a loop is not the end. (Failed before: the span
    ended at the first break, without tokens.)"""
    stream = bedrock.converse_stream(modelId="amazon.nova-lite-v1:0", messages=MESSAGES)["stream"]
    for _ in stream:
        break
    assert not capture.spans()
    rest = list(stream)
    assert "metadata" in rest[-1]
    attributes = _only_span(capture).attributes or {}
    assert attributes[semconv.GEN_AI_USAGE_OUTPUT_TOKENS] == wire.OUTPUT_TOKENS
    assert attributes[semconv.GEN_AI_RESPONSE_FINISH_REASONS] == ("end_turn",)


def test_invoke_model_span_ends_when_the_body_is_closed_unread(capture: Capture, bedrock: Any) -> None:
    response = bedrock.invoke_model(modelId="anthropic.claude-3-haiku-20240307-v1:0", body=b"{}")
    assert not capture.spans()
    response["body"].close()
    attributes = _only_span(capture).attributes or {}
    assert attributes[semconv.GEN_AI_USAGE_INPUT_TOKENS] == wire.INPUT_TOKENS  # from the headers


def test_file_like_request_body_is_sent_unread(
    capture: Capture, bedrock: Any, runtime_server: AwsRuntimeServer
) -> None:
    payload = json.dumps({"prompt": "from a file", "max_gen_len": 9}).encode()
    response = bedrock.invoke_model(modelId="meta.llama3-8b-instruct-v1:0", body=io.BytesIO(payload))
    response["body"].read()
    assert runtime_server.requests[-1].body == payload
    attributes = _only_span(capture).attributes or {}
    assert semconv.GEN_AI_REQUEST_MAX_TOKENS not in attributes  # a file-like body is never parsed
    assert attributes[semconv.SPANLEDGER_EGRESS_BYTES] == len(payload)


@pytest.mark.parametrize(
    "model", ["anthropic.claude-3-haiku-20240307-v1:0", "amazon.titan-text-lite-v1", "meta.llama3"]
)
def test_invoke_model_with_response_stream(capture: Capture, bedrock: Any, model: str) -> None:
    body = json.dumps({"messages": [{"role": "user", "content": "hi"}], "max_tokens": 5})

    def run() -> list[Any]:
        return list(bedrock.invoke_model_with_response_stream(modelId=model, body=body)["body"])

    expected = _uninstrumented(run)
    capture.clear()
    assert run() == expected
    attributes = _only_span(capture).attributes or {}
    # Bedrock's own invocation metrics win over what the model family says in its chunks.
    assert attributes[semconv.GEN_AI_USAGE_INPUT_TOKENS] == wire.INPUT_TOKENS
    assert attributes[semconv.GEN_AI_USAGE_OUTPUT_TOKENS] == wire.OUTPUT_TOKENS
    assert attributes[semconv.GEN_AI_REQUEST_STREAM] is True
    assert attributes[semconv.GEN_AI_RESPONSE_FINISH_REASONS]


def test_model_arn_is_the_resource_and_names_the_account(capture: Capture, bedrock: Any) -> None:
    arn = "arn:aws:bedrock:us-east-1:777788889999:application-inference-profile/a1b2c3"
    bedrock.converse(modelId=arn, messages=MESSAGES)
    attributes = _only_span(capture).attributes or {}
    assert attributes[semconv.CLOUD_RESOURCE_ID] == arn
    assert attributes[semconv.CLOUD_ACCOUNT_ID] == "777788889999"


def test_broken_extractor_keeps_the_stream_whole(
    capture: Capture, bedrock: Any, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    def broken(*args: Any, **kwargs: Any) -> None:
        raise RuntimeError("extractor bug")

    monkeypatch.setattr(_bedrock.BedrockRuntimeExtension, "_complete", staticmethod(broken))
    monkeypatch.setattr(_bedrock, "converse_usage", broken)
    events = list(bedrock.converse_stream(modelId="amazon.nova-lite-v1:0", messages=MESSAGES)["stream"])
    assert len(events) == len(wire.REPLY_WORDS) + 4
    assert bedrock.converse(modelId="amazon.nova-lite-v1:0", messages=MESSAGES)["stopReason"] == "end_turn"
    assert "spanledger internal error" in caplog.text


def test_stream_under_the_upstream_instrumentation_is_one_span(capture: Capture, bedrock: Any) -> None:
    from opentelemetry.instrumentation.botocore import BotocoreInstrumentor

    def run() -> list[Any]:
        return list(bedrock.converse_stream(modelId="amazon.nova-lite-v1:0", messages=MESSAGES)["stream"])

    expected = _uninstrumented(run)
    upstream = BotocoreInstrumentor()
    upstream.instrument()  # wraps on top of ours: its span is current when ours runs
    try:
        capture.clear()
        assert run() == expected
    finally:
        spanledger.uninstrument("botocore")
        upstream.uninstrument()
    span = _only_span(capture)
    attributes = span.attributes or {}
    assert attributes[semconv.GEN_AI_USAGE_CACHE_READ_INPUT_TOKENS] == wire.CACHE_READ_TOKENS
    assert attributes[semconv.CLOUD_RESOURCE_ID] == f"arn:aws:bedrock:{REGION}::foundation-model/amazon.nova-lite-v1:0"
    assert attributes[semconv.SPANLEDGER_USAGE_OWNER] is True
