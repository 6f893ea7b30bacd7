"""The GenAI conventions, exactly, on every provider through the shared recorder: metrics (released ones in
every mode, the draft's behind their own switch, per-chunk timing, Bedrock's full metric attributes) and the
small ones (fully-qualified ``error.type``, no zero filler counts, Bedrock's operation for an unread body,
``openai.api.type``, the schema URL)."""

from __future__ import annotations

from collections.abc import Iterator

import openai
import pytest
from _aws_servers import make_client, runtime_server
from _recording import Recorded
from aws_runtime_server import AwsRuntimeServer
from openai_compatible_server import OpenAICompatibleServer
from spanledger import semconv
from spanledger._state import SCHEMA_URL

__all__ = ["runtime_server"]

MESSAGES = [{"role": "user", "content": "Say hello"}]
BEDROCK_MESSAGES = [{"role": "user", "content": [{"text": "hi"}]}]
DRAFT_COUNTERS = (
    "gen_ai.client.inference.usage.input_tokens",
    "gen_ai.client.inference.usage.output_tokens",
    "gen_ai.client.inference.usage.cache_read.input_tokens",
    "gen_ai.client.inference.usage.cache_write.input_tokens",
    "gen_ai.client.inference.usage.reasoning.output_tokens",
)
DRAFT_HISTOGRAMS = ("gen_ai.client.inference.operation.input_tokens", "gen_ai.client.inference.operation.output_tokens")


@pytest.fixture(scope="module")
def server() -> Iterator[OpenAICompatibleServer]:
    with OpenAICompatibleServer() as running:
        yield running


@pytest.fixture
def recorded() -> Iterator[Recorded]:
    result = Recorded()
    yield result
    result.handle.shutdown()


@pytest.fixture
def experimental() -> Iterator[Recorded]:
    result = Recorded(experimental_metrics=True)
    yield result
    result.handle.shutdown()


def client_for(server: OpenAICompatibleServer) -> openai.OpenAI:
    return openai.OpenAI(base_url=server.base_url, api_key="sk-test", max_retries=0)


# -- metrics -----------------------------------------------------------------------------------------


def test_draft_token_metrics_follow_the_newest_draft(server: OpenAICompatibleServer, experimental: Recorded) -> None:
    client = client_for(server)
    completion = client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)
    with pytest.raises(openai.InternalServerError):
        client.chat.completions.create(model="error-500", messages=MESSAGES)
    client.embeddings.create(model="text-embedding-3-small", input="hi")
    metrics = experimental.metrics()

    usage = completion.usage
    assert usage is not None
    # The released histogram is still there.
    assert {point.attributes[semconv.GEN_AI_TOKEN_TYPE] for point in metrics["gen_ai.client.token.usage"]} == {
        "input",
        "output",
    }
    # Counters: every inference operation, the failed one included (0), with the required modality; no
    # embeddings (not an inference operation).
    for name in DRAFT_COUNTERS:
        points = {point.attributes[semconv.GEN_AI_REQUEST_MODEL]: point for point in metrics[name]}
        assert set(points) == {"gpt-4o-mini", "error-500"}, name
        assert all(point.attributes[semconv.GEN_AI_TOKEN_MODALITY] == "unknown" for point in points.values())
        assert points["error-500"].value == 0
        assert semconv.ERROR_TYPE not in points["error-500"].attributes
    by_model = {
        name: {point.attributes[semconv.GEN_AI_REQUEST_MODEL]: point for point in metrics[name]}
        for name in (*DRAFT_COUNTERS, *DRAFT_HISTOGRAMS)
    }
    assert by_model["gen_ai.client.inference.usage.input_tokens"]["gpt-4o-mini"].value == usage.prompt_tokens
    assert by_model["gen_ai.client.inference.usage.output_tokens"]["gpt-4o-mini"].value == usage.completion_tokens
    # Histograms: successful operations only.
    for name in DRAFT_HISTOGRAMS:
        assert set(by_model[name]) == {"gpt-4o-mini"}, name
        assert semconv.GEN_AI_TOKEN_MODALITY not in by_model[name]["gpt-4o-mini"].attributes
    assert by_model["gen_ai.client.inference.operation.input_tokens"]["gpt-4o-mini"].sum == usage.prompt_tokens


def test_time_per_output_chunk_is_recorded_for_streams(server: OpenAICompatibleServer, recorded: Recorded) -> None:
    client = client_for(server)
    chunks = list(client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES, stream=True))
    client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)  # not a stream: no points
    (point,) = recorded.metrics()["gen_ai.client.operation.time_per_output_chunk"]
    assert point.count == len(chunks) - 1  # one per chunk after the first
    assert point.attributes[semconv.GEN_AI_RESPONSE_MODEL].startswith("gpt-4o-mini")
    assert point.sum >= 0


def test_bedrock_metrics_carry_port_response_model_and_stream_timing(
    recorded: Recorded, runtime_server: AwsRuntimeServer
) -> None:
    bedrock = make_client("bedrock-runtime", runtime_server.url)
    events = list(bedrock.converse_stream(modelId="amazon.nova-lite-v1:0", messages=BEDROCK_MESSAGES)["stream"])
    bedrock.converse(modelId="amazon.nova-lite-v1:0", messages=BEDROCK_MESSAGES)
    metrics = recorded.metrics()

    port = int(runtime_server.url.rsplit(":", 1)[1].rstrip("/"))
    for name in ("gen_ai.client.operation.duration", "gen_ai.client.token.usage"):
        for point in metrics[name]:
            assert point.attributes[semconv.SERVER_PORT] == port, name
            assert point.attributes[semconv.GEN_AI_RESPONSE_MODEL] == "amazon.nova-lite-v1:0", name
    (first_chunk,) = metrics["gen_ai.client.operation.time_to_first_chunk"]
    assert first_chunk.count == 1
    (per_chunk,) = metrics["gen_ai.client.operation.time_per_output_chunk"]
    deltas = sum("contentBlockDelta" in event for event in events)
    assert per_chunk.count == deltas - 1
    (stream_span,) = [
        s
        for s in recorded.exporter.get_finished_spans()
        if s.attributes and s.attributes.get(semconv.GEN_AI_REQUEST_STREAM)
    ]
    assert (stream_span.attributes or {})[semconv.GEN_AI_RESPONSE_TIME_TO_FIRST_CHUNK] > 0


# -- the small ones ---------------------------------------------------------------------------------


def test_error_type_is_fully_qualified(server: OpenAICompatibleServer, recorded: Recorded) -> None:
    with pytest.raises(openai.NotFoundError):
        client_for(server).chat.completions.create(model="error-404", messages=MESSAGES)
    assert (recorded.llm_span().attributes or {})[semconv.ERROR_TYPE] == "openai.NotFoundError"
    (duration,) = recorded.metrics()["gen_ai.client.operation.duration"]
    assert duration.attributes[semconv.ERROR_TYPE] == "openai.NotFoundError"


@pytest.mark.parametrize("stream", [False, True])
def test_no_zero_reasoning_or_cache_write_attributes(
    server: OpenAICompatibleServer, recorded: Recorded, stream: bool
) -> None:
    result = client_for(server).chat.completions.create(model="plain-gpt-4o", messages=MESSAGES, stream=stream)
    if stream:
        list(result)  # type: ignore[call-overload]
    attributes = recorded.llm_span().attributes or {}
    assert attributes[semconv.GEN_AI_USAGE_OUTPUT_TOKENS] > 0
    assert attributes[semconv.GEN_AI_USAGE_CACHE_READ_INPUT_TOKENS] == 0  # a cache miss is information
    assert semconv.GEN_AI_USAGE_REASONING_OUTPUT_TOKENS not in attributes
    assert semconv.GEN_AI_USAGE_CACHE_CREATION_INPUT_TOKENS not in attributes


@pytest.mark.parametrize("body", [b"", b"not json", b'{"anthropic_version": "bedrock-2023-05-31"}'])
def test_bedrock_body_that_says_nothing_is_not_a_text_completion(
    recorded: Recorded, runtime_server: AwsRuntimeServer, body: bytes
) -> None:
    bedrock = make_client("bedrock-runtime", runtime_server.url)
    bedrock.invoke_model(modelId="anthropic.claude-3-haiku-20240307-v1:0", body=body)["body"].read()
    assert (recorded.llm_span().attributes or {})[semconv.GEN_AI_OPERATION_NAME] == "chat"


def test_bedrock_prompt_body_is_a_text_completion(recorded: Recorded, runtime_server: AwsRuntimeServer) -> None:
    bedrock = make_client("bedrock-runtime", runtime_server.url)
    bedrock.invoke_model(modelId="meta.llama3-8b-instruct-v1:0", body=b'{"prompt": "hi"}')["body"].read()
    assert (recorded.llm_span().attributes or {})[semconv.GEN_AI_OPERATION_NAME] == "text_completion"


def test_openai_api_type_and_schema_url(server: OpenAICompatibleServer, recorded: Recorded) -> None:
    client = client_for(server)
    client.responses.create(model="gpt-4o-mini", input="hi")
    client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)
    spans = recorded.llm_spans()
    assert [(s.attributes or {})[semconv.OPENAI_API_TYPE] for s in spans] == ["responses", "chat_completions"]
    for span in spans:
        assert span.instrumentation_scope is not None
        assert span.instrumentation_scope.schema_url == SCHEMA_URL
