"""Google Gen AI instrumentation: the real google-genai client against a local server speaking Gemini's wire format."""

from __future__ import annotations

import gc
from collections.abc import Iterator
from typing import Any

import pytest
from _recording import Recorded
from genai_wire_server import (
    GEMINI_CACHED_TOKENS,
    GEMINI_PROMPT_TOKENS,
    GEMINI_THOUGHTS_TOKENS,
    GEMINI_TOOL_USE_PROMPT_TOKENS,
    REPLY_WORDS,
    GenAIWireServer,
)
from google import genai
from google.genai import errors
from google.oauth2.credentials import Credentials
from opentelemetry.trace import SpanKind, StatusCode
from spanledger import semconv

MODEL = "gemini-2.5-flash"
INPUT = GEMINI_PROMPT_TOKENS + GEMINI_TOOL_USE_PROMPT_TOKENS
OUTPUT = len(REPLY_WORDS) + GEMINI_THOUGHTS_TOKENS


@pytest.fixture(scope="module")
def server() -> Iterator[GenAIWireServer]:
    with GenAIWireServer() as running:
        yield running


@pytest.fixture
def recorded() -> Iterator[Recorded]:
    result = Recorded()
    yield result
    result.handle.shutdown()


def gemini(server: GenAIWireServer) -> genai.Client:
    return genai.Client(api_key="gemini-secret-key", http_options={"base_url": server.url})


def vertex(server: GenAIWireServer) -> genai.Client:
    return genai.Client(
        vertexai=True,
        project="proj-1",
        location="us-central1",
        credentials=Credentials(token="ya29.secret"),
        http_options={"base_url": server.url},
    )


def assert_usage(attributes: Any) -> None:
    assert attributes[semconv.GEN_AI_USAGE_INPUT_TOKENS] == INPUT
    assert attributes[semconv.GEN_AI_USAGE_CACHE_READ_INPUT_TOKENS] == GEMINI_CACHED_TOKENS
    assert attributes[semconv.GEN_AI_USAGE_OUTPUT_TOKENS] == OUTPUT
    assert attributes[semconv.GEN_AI_USAGE_REASONING_OUTPUT_TOKENS] == GEMINI_THOUGHTS_TOKENS
    assert attributes[semconv.SPANLEDGER_USAGE_TOOL_USE_PROMPT_INPUT_TOKENS] == GEMINI_TOOL_USE_PROMPT_TOKENS
    assert attributes[semconv.SPANLEDGER_USAGE_OWNER] is True


def test_generate_content_gemini_api(server: GenAIWireServer, recorded: Recorded) -> None:
    client = gemini(server)
    response = client.models.generate_content(
        model=MODEL, contents="Say hello", config={"temperature": 0.3, "max_output_tokens": 50}
    )
    assert response.text == "".join(REPLY_WORDS)
    span = recorded.llm_span()
    assert span.name == f"generate_content {MODEL}"
    assert span.kind is SpanKind.CLIENT
    attributes = span.attributes or {}
    assert attributes[semconv.GEN_AI_PROVIDER_NAME] == "gcp.gemini"
    assert attributes[semconv.GEN_AI_OPERATION_NAME] == "generate_content"
    assert attributes[semconv.GEN_AI_REQUEST_MODEL] == MODEL
    assert attributes[semconv.GEN_AI_RESPONSE_MODEL] == f"{MODEL}-001"
    assert attributes[semconv.GEN_AI_REQUEST_TEMPERATURE] == 0.3
    assert attributes[semconv.GEN_AI_REQUEST_MAX_TOKENS] == 50
    assert attributes[semconv.GEN_AI_RESPONSE_FINISH_REASONS] == ("STOP",)
    assert attributes[semconv.SERVER_ADDRESS] == "127.0.0.1"
    assert semconv.CLOUD_RESOURCE_ID not in attributes
    assert semconv.GEN_AI_INPUT_MESSAGES not in attributes
    assert semconv.GEN_AI_OUTPUT_MESSAGES not in attributes
    assert_usage(attributes)
    tokens = {
        point.attributes[semconv.GEN_AI_TOKEN_TYPE]: point.sum
        for point in recorded.metrics()["gen_ai.client.token.usage"]
    }
    assert tokens == {"input": INPUT, "output": OUTPUT}


def test_generate_content_vertex_resource(server: GenAIWireServer, recorded: Recorded) -> None:
    client = vertex(server)
    client.models.generate_content(model=MODEL, contents="Say hello")
    attributes = recorded.llm_span().attributes or {}
    assert attributes[semconv.GEN_AI_PROVIDER_NAME] == "gcp.vertex_ai"
    assert attributes[semconv.CLOUD_RESOURCE_ID] == (
        f"//aiplatform.googleapis.com/projects/proj-1/locations/us-central1/publishers/google/models/{MODEL}"
    )
    assert_usage(attributes)


def test_stream_usage_from_the_last_chunk(server: GenAIWireServer, recorded: Recorded) -> None:
    client = gemini(server)
    chunks = list(client.models.generate_content_stream(model=MODEL, contents="Say hello"))
    assert "".join(chunk.text or "" for chunk in chunks) == "".join(REPLY_WORDS)
    attributes = recorded.llm_span().attributes or {}
    assert_usage(attributes)
    assert attributes[semconv.GEN_AI_REQUEST_STREAM] is True
    assert attributes[semconv.GEN_AI_RESPONSE_TIME_TO_FIRST_CHUNK] > 0


def test_a_sync_stream_sends_its_request_inside_its_span(server: GenAIWireServer, recorded: Recorded) -> None:
    """The library's generator sends the request on the first next(): the HTTP span (the bytes' owner) is still
    the child of the call's span, as for every other call. (Failed before: a root span of another trace.)"""
    client = gemini(server)
    list(client.models.generate_content_stream(model=MODEL, contents="Say hello"))
    llm = recorded.llm_span()
    (http,) = [span for span in recorded.exporter.get_finished_spans() if span.name == "POST"]
    assert http.parent is not None and http.parent.span_id == llm.context.span_id


def test_stream_converts_only_the_last_usage_report(
    server: GenAIWireServer, recorded: Recorded, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Every chunk repeats the running usage_metadata; converting each one is wasted work on the hot path.
    from spanledger._google_genai import _responses

    converted: list[Any] = []
    usage_of = _responses.usage_of

    def counting(metadata: Any) -> Any:
        converted.append(metadata)
        return usage_of(metadata)

    monkeypatch.setattr(_responses, "usage_of", counting)
    client = gemini(server)
    chunks = list(client.models.generate_content_stream(model=MODEL, contents="Say hello"))
    assert len(chunks) == len(REPLY_WORDS)
    assert converted == [chunks[-1].usage_metadata]
    assert_usage(recorded.llm_span().attributes)


def test_stream_broken_off_keeps_the_running_usage(server: GenAIWireServer, recorded: Recorded) -> None:
    client = vertex(server)
    stream = client.models.generate_content_stream(model=MODEL, contents="Say hello")
    next(iter(stream))
    del stream
    gc.collect()
    attributes = recorded.llm_span().attributes or {}
    assert attributes[semconv.GEN_AI_USAGE_INPUT_TOKENS] == INPUT
    assert attributes[semconv.GEN_AI_USAGE_OUTPUT_TOKENS] == 1 + GEMINI_THOUGHTS_TOKENS


async def test_async_generate_stream_and_embed(server: GenAIWireServer, recorded: Recorded) -> None:
    client = vertex(server)
    await client.aio.models.generate_content(model=MODEL, contents="Say hello")
    async for _ in await client.aio.models.generate_content_stream(model=MODEL, contents="Say hello"):
        pass
    await client.aio.models.embed_content(model="text-embedding-005", contents=["a", "b"])
    generate, stream, embed = recorded.llm_spans()
    assert_usage(generate.attributes)
    assert_usage(stream.attributes)
    attributes = embed.attributes or {}
    assert attributes[semconv.GEN_AI_OPERATION_NAME] == "embeddings"
    assert attributes[semconv.GEN_AI_USAGE_INPUT_TOKENS] == 8


def test_embed_gemini_api(server: GenAIWireServer, recorded: Recorded) -> None:
    client = gemini(server)
    result = client.models.embed_content(model="gemini-embedding-001", contents=["a", "b"])
    assert result.embeddings is not None and len(result.embeddings) == 2
    attributes = recorded.llm_span().attributes or {}
    assert attributes[semconv.GEN_AI_OPERATION_NAME] == "embeddings"
    assert attributes[semconv.GEN_AI_PROVIDER_NAME] == "gcp.gemini"


def test_errors_propagate_unchanged(server: GenAIWireServer, recorded: Recorded) -> None:
    client = gemini(server)
    with pytest.raises(errors.ServerError) as raised:
        client.models.generate_content(model="error-503", contents="x")
    assert raised.value.code == 503
    span = recorded.llm_span()
    assert span.status.status_code is StatusCode.ERROR
    assert (span.attributes or {})[semconv.ERROR_TYPE] == "google.genai.errors.ServerError"
    assert "gemini-secret-key" not in str(span.status.description)


def test_content_only_when_opted_in(server: GenAIWireServer) -> None:
    recorded = Recorded(capture_message_content=True)
    try:
        client = gemini(server)
        client.models.generate_content(model=MODEL, contents="Say hello", config={"system_instruction": "Be brief."})
        for _ in client.models.generate_content_stream(model=MODEL, contents="Say hello"):
            pass
        for span in recorded.llm_spans():
            attributes = span.attributes or {}
            assert "Say hello" in str(attributes[semconv.GEN_AI_INPUT_MESSAGES])
            assert "".join(REPLY_WORDS) in str(attributes[semconv.GEN_AI_OUTPUT_MESSAGES])
    finally:
        recorded.handle.shutdown()
