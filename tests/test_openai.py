"""OpenAI instrumentation through the public API, against the real openai client and a local wire-format server."""

from __future__ import annotations

import asyncio
import gc
import json
import logging
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import openai
import pytest
import spanledger
from _recording import Recorded
from openai_compatible_server import CACHE_WRITE_TOKENS, CACHED_TOKENS, REASONING_TOKENS, OpenAICompatibleServer
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.trace import SpanKind, StatusCode
from spanledger import semconv

MESSAGES = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Say hello"}]


@pytest.fixture(scope="module")
def server() -> Iterator[OpenAICompatibleServer]:
    with OpenAICompatibleServer() as running:
        yield running


@pytest.fixture
def recorded() -> Iterator[Recorded]:
    result = Recorded()
    yield result
    result.handle.shutdown()


def client_for(server: OpenAICompatibleServer, base_url: str | None = None) -> openai.OpenAI:
    return openai.OpenAI(base_url=base_url or server.base_url, api_key="sk-secret-key", max_retries=0)


def async_client_for(server: OpenAICompatibleServer) -> openai.AsyncOpenAI:
    return openai.AsyncOpenAI(base_url=server.base_url, api_key="sk-secret-key", max_retries=0)


def uninstrumented_chunks(server: OpenAICompatibleServer, **kwargs: Any) -> list[Any]:
    spanledger.uninstrument()
    try:
        return list(client_for(server).chat.completions.create(**kwargs))
    finally:
        spanledger.instrument()


def assert_usage(span: ReadableSpan, input_tokens: int | None = None) -> None:
    attributes = span.attributes or {}
    if input_tokens is not None:
        assert attributes[semconv.GEN_AI_USAGE_INPUT_TOKENS] == input_tokens
    assert attributes[semconv.GEN_AI_USAGE_OUTPUT_TOKENS] == 9
    assert attributes[semconv.GEN_AI_USAGE_CACHE_READ_INPUT_TOKENS] == CACHED_TOKENS
    assert attributes[semconv.GEN_AI_USAGE_CACHE_CREATION_INPUT_TOKENS] == CACHE_WRITE_TOKENS
    assert attributes[semconv.GEN_AI_USAGE_REASONING_OUTPUT_TOKENS] == REASONING_TOKENS


def assert_no_secrets(spans: Any) -> None:
    for span in spans:
        text = json.dumps({key: str(value) for key, value in (span.attributes or {}).items()})
        assert "sk-secret-key" not in text
        assert "authorization" not in text.lower()


# --- chat completions ---------------------------------------------------------------------------


def test_chat_completion_span(server: OpenAICompatibleServer, recorded: Recorded) -> None:
    completion = client_for(server).chat.completions.create(
        model="gpt-4o-mini", messages=MESSAGES, temperature=0.2, max_tokens=50, seed=7, stop="END"
    )

    span = recorded.llm_span()
    attributes = span.attributes or {}
    assert span.name == "chat gpt-4o-mini"
    assert span.kind is SpanKind.CLIENT
    assert span.status.status_code is StatusCode.UNSET
    assert attributes[semconv.GEN_AI_OPERATION_NAME] == "chat"
    assert attributes[semconv.GEN_AI_PROVIDER_NAME] == "openai"
    assert attributes[semconv.GEN_AI_REQUEST_MODEL] == "gpt-4o-mini"
    assert attributes[semconv.GEN_AI_REQUEST_TEMPERATURE] == 0.2
    assert attributes[semconv.GEN_AI_REQUEST_MAX_TOKENS] == 50
    assert attributes[semconv.GEN_AI_REQUEST_SEED] == 7
    assert attributes[semconv.GEN_AI_REQUEST_STOP_SEQUENCES] == ("END",)
    assert attributes[semconv.SERVER_ADDRESS] == "127.0.0.1"
    assert attributes[semconv.SERVER_PORT] == server.port
    assert attributes[semconv.GEN_AI_RESPONSE_ID] == completion.id
    assert attributes[semconv.GEN_AI_RESPONSE_MODEL] == "gpt-4o-mini-2024-07-18"
    assert attributes[semconv.GEN_AI_RESPONSE_FINISH_REASONS] == ("stop",)
    assert attributes[semconv.SPANLEDGER_USAGE_OWNER] is True
    assert_usage(span, completion.usage.prompt_tokens if completion.usage else None)
    for name in (semconv.GEN_AI_INPUT_MESSAGES, semconv.GEN_AI_OUTPUT_MESSAGES, semconv.GEN_AI_SYSTEM_INSTRUCTIONS):
        assert name not in attributes
    assert_no_secrets(recorded.exporter.get_finished_spans())


def test_http_span_under_llm_span_carries_no_tokens(server: OpenAICompatibleServer, recorded: Recorded) -> None:
    client_for(server).chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)

    llm = recorded.llm_span()
    for span in recorded.exporter.get_finished_spans():
        if span is llm:
            continue
        assert span.parent is not None and span.parent.span_id == llm.context.span_id
        assert not any(name.startswith("gen_ai.usage.") for name in span.attributes or {})


def test_chat_stream_hides_the_usage_chunk_it_asked_for(server: OpenAICompatibleServer, recorded: Recorded) -> None:
    expected = uninstrumented_chunks(server, model="gpt-4o-mini", messages=MESSAGES, stream=True)

    chunks = list(client_for(server).chat.completions.create(model="gpt-4o-mini", messages=MESSAGES, stream=True))

    assert [chunk.model_dump(exclude={"id", "created"}) for chunk in chunks] == [
        chunk.model_dump(exclude={"id", "created"}) for chunk in expected
    ]
    assert chunks[-1].choices[0].finish_reason == "stop"
    assert server.requests[-1].body["stream_options"] == {"include_usage": True}
    span = recorded.llm_span()
    assert_usage(span)
    attributes = span.attributes or {}
    assert attributes[semconv.GEN_AI_REQUEST_STREAM] is True
    assert attributes[semconv.GEN_AI_RESPONSE_FINISH_REASONS] == ("stop",)
    assert attributes[semconv.GEN_AI_RESPONSE_TIME_TO_FIRST_CHUNK] > 0
    assert "gen_ai.client.operation.time_to_first_chunk" in recorded.metrics()


def test_chat_stream_shows_usage_the_caller_asked_for(server: OpenAICompatibleServer, recorded: Recorded) -> None:
    chunks = list(
        client_for(server).chat.completions.create(
            model="gpt-4o-mini", messages=MESSAGES, stream=True, stream_options={"include_usage": True}
        )
    )

    assert chunks[-1].choices == []
    assert chunks[-1].usage is not None
    assert_usage(recorded.llm_span())


def test_chat_stream_respects_include_usage_false(server: OpenAICompatibleServer, recorded: Recorded) -> None:
    chunks = list(
        client_for(server).chat.completions.create(
            model="gpt-4o-mini", messages=MESSAGES, stream=True, stream_options={"include_usage": False}
        )
    )

    assert all(chunk.choices for chunk in chunks)
    assert server.requests[-1].body["stream_options"] == {"include_usage": False}
    assert semconv.GEN_AI_USAGE_INPUT_TOKENS not in (recorded.llm_span().attributes or {})


def test_stream_context_manager_broken_off_ends_span(server: OpenAICompatibleServer, recorded: Recorded) -> None:
    with client_for(server).chat.completions.create(model="gpt-4o-mini", messages=MESSAGES, stream=True) as stream:
        assert isinstance(stream, openai.Stream)
        for _ in stream:
            break

    span = recorded.llm_span()
    assert span.end_time is not None
    assert span.status.status_code is StatusCode.UNSET


def test_stream_closed_ends_span(server: OpenAICompatibleServer, recorded: Recorded) -> None:
    stream = client_for(server).chat.completions.create(model="gpt-4o-mini", messages=MESSAGES, stream=True)
    next(stream)
    stream.close()

    assert recorded.llm_span().end_time is not None


def test_abandoned_stream_ends_span_when_collected(server: OpenAICompatibleServer, recorded: Recorded) -> None:
    stream = client_for(server).chat.completions.create(model="gpt-4o-mini", messages=MESSAGES, stream=True)
    next(iter(stream))
    assert recorded.llm_spans() == []

    del stream
    gc.collect()

    assert recorded.llm_span().end_time is not None


@pytest.mark.parametrize("model", ["error-stream", "error-disconnect"])
def test_stream_error_mid_stream(server: OpenAICompatibleServer, recorded: Recorded, model: str) -> None:
    stream = client_for(server).chat.completions.create(model=model, messages=MESSAGES, stream=True)
    with pytest.raises(openai.APIError) as raised:
        for _ in stream:
            pass

    span = recorded.llm_span()
    assert span.status.status_code is StatusCode.ERROR
    assert (span.attributes or {})[semconv.ERROR_TYPE] == f"openai.{type(raised.value).__qualname__}"


def test_chat_content_is_captured_only_when_opted_in(server: OpenAICompatibleServer) -> None:
    recorded = Recorded(capture_message_content=True)
    try:
        client_for(server).chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)
        list(client_for(server).chat.completions.create(model="gpt-4o-mini", messages=MESSAGES, stream=True))
        spans = recorded.llm_spans()
    finally:
        recorded.handle.shutdown()

    assert len(spans) == 2
    for span in spans:
        attributes = span.attributes or {}
        # A system message in the chat history stays in the history; there is no instructions parameter.
        assert semconv.GEN_AI_SYSTEM_INSTRUCTIONS not in attributes
        assert json.loads(str(attributes[semconv.GEN_AI_INPUT_MESSAGES])) == [
            {"role": "system", "parts": [{"type": "text", "content": "Be brief."}]},
            {"role": "user", "parts": [{"type": "text", "content": "Say hello"}]},
        ]
        assert json.loads(str(attributes[semconv.GEN_AI_OUTPUT_MESSAGES])) == [
            {
                "role": "assistant",
                "parts": [{"type": "text", "content": "Hello from the local server."}],
                "finish_reason": "stop",
            }
        ]
    assert_no_secrets(spans)


# --- async ----------------------------------------------------------------------------------------


async def test_async_chat_and_streams(
    server: OpenAICompatibleServer, recorded: Recorded, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.ERROR)
    client = async_client_for(server)

    await client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)
    stream = await client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES, stream=True)
    chunks = [chunk async for chunk in stream]
    async with await client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES, stream=True) as stream:
        assert isinstance(stream, openai.AsyncStream)
        async for _ in stream:
            break
    abandoned = await client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES, stream=True)
    await abandoned.__anext__()
    del abandoned
    gc.collect()
    await asyncio.sleep(0)

    assert all(chunk.choices for chunk in chunks)
    spans = recorded.llm_spans()
    assert len(spans) == 4
    assert all(span.end_time is not None for span in spans)
    assert_usage(spans[0])
    assert_usage(spans[1])
    assert "Failed to detach context" not in caplog.text


# --- responses and embeddings -----------------------------------------------------------------------


def test_responses_create_and_stream(server: OpenAICompatibleServer, recorded: Recorded) -> None:
    client = client_for(server)
    response = client.responses.create(model="gpt-4o-mini", input="Say hello", instructions="Be brief.")
    events = list(client.responses.create(model="gpt-4o-mini", input="Say hello", stream=True))

    assert events[-1].type == "response.completed"
    plain, streamed = recorded.llm_spans()
    for span in (plain, streamed):
        attributes = span.attributes or {}
        assert span.name == "chat gpt-4o-mini"
        assert attributes[semconv.GEN_AI_RESPONSE_FINISH_REASONS] == ("stop",)
        assert attributes[semconv.GEN_AI_RESPONSE_MODEL] == "gpt-4o-mini-2024-07-18"
        assert_usage(span)
    assert (plain.attributes or {})[semconv.GEN_AI_RESPONSE_ID] == response.id
    assert (streamed.attributes or {})[semconv.GEN_AI_RESPONSE_TIME_TO_FIRST_CHUNK] > 0
    assert "stream_options" not in server.requests[-1].body


async def test_async_responses_stream_helper(server: OpenAICompatibleServer, recorded: Recorded) -> None:
    async with async_client_for(server).responses.stream(model="gpt-4o-mini", input="Say hello") as stream:
        final = await stream.get_final_response()

    assert final.output_text == "Hello from the local server."
    assert_usage(recorded.llm_span())


def test_responses_stream_error_event(server: OpenAICompatibleServer, recorded: Recorded) -> None:
    events = list(client_for(server).responses.create(model="error-stream", input="x", stream=True))

    assert events[-1].type == "error"
    span = recorded.llm_span()
    assert span.status.status_code is StatusCode.ERROR
    assert (span.attributes or {})[semconv.ERROR_TYPE] == "server_error"


def test_embeddings(server: OpenAICompatibleServer, recorded: Recorded) -> None:
    result = client_for(server).embeddings.create(model="text-embedding-3-small", input=["one two", "three"])

    span = recorded.llm_span()
    attributes = span.attributes or {}
    assert span.name == "embeddings text-embedding-3-small"
    assert attributes[semconv.GEN_AI_OPERATION_NAME] == "embeddings"
    assert attributes[semconv.GEN_AI_USAGE_INPUT_TOKENS] == result.usage.prompt_tokens
    assert attributes[semconv.GEN_AI_EMBEDDINGS_DIMENSION_COUNT] == len(result.data[0].embedding)
    assert attributes[semconv.SPANLEDGER_USAGE_OWNER] is True


# --- raw responses ----------------------------------------------------------------------------------


def test_with_raw_response(server: OpenAICompatibleServer, recorded: Recorded) -> None:
    client = client_for(server)
    raw = client.chat.completions.with_raw_response.create(model="gpt-4o-mini", messages=MESSAGES)
    completion = raw.parse()
    raw_stream = client.chat.completions.with_raw_response.create(model="gpt-4o-mini", messages=MESSAGES, stream=True)
    chunks = list(raw_stream.parse())

    assert raw.headers["content-type"] == "application/json"
    assert all(chunk.choices for chunk in chunks)
    plain, streamed = recorded.llm_spans()
    assert (plain.attributes or {})[semconv.GEN_AI_RESPONSE_ID] == completion.id
    assert_usage(plain)
    assert_usage(streamed)  # read through parse(): the usage chunk asked for and hidden as for a plain stream


def test_with_streaming_response(server: OpenAICompatibleServer, recorded: Recorded) -> None:
    client = client_for(server)
    with client.chat.completions.with_streaming_response.create(model="gpt-4o-mini", messages=MESSAGES) as response:
        completion = response.parse()

    span = recorded.llm_span()
    assert (span.attributes or {})[semconv.GEN_AI_RESPONSE_ID] == completion.id
    assert_usage(span)


# --- stream usage opt-outs --------------------------------------------------------------------------


def test_server_rejecting_stream_options_is_retried_once_without_and_remembered(
    server: OpenAICompatibleServer, recorded: Recorded
) -> None:
    client = client_for(server, server.azure_like_base_url)
    sent = len(server.requests)
    chunks = list(client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES, stream=True))

    assert chunks[-1].choices[0].finish_reason == "stop"
    first, retry = server.requests[sent:]
    assert first.body["stream_options"] == {"include_usage": True} and "stream_options" not in retry.body
    span = recorded.llm_span()
    assert span.status.status_code is not StatusCode.ERROR
    assert semconv.GEN_AI_USAGE_INPUT_TOKENS not in (span.attributes or {})  # the server reports none

    # Remembered: the next stream to that server goes out once, unchanged (a fresh client too).
    again = client_for(server, server.azure_like_base_url)
    list(again.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES, stream=True))
    assert len(server.requests) == sent + 3 and "stream_options" not in server.requests[-1].body
    # Other servers still get it.
    list(client_for(server).chat.completions.create(model="gpt-4o-mini", messages=MESSAGES, stream=True))
    assert server.requests[-1].body["stream_options"] == {"include_usage": True}


def test_stream_options_the_caller_sent_are_never_retried(server: OpenAICompatibleServer, recorded: Recorded) -> None:
    client = client_for(server, server.azure_like_base_url)
    sent = len(server.requests)
    with pytest.raises(openai.BadRequestError):
        client.chat.completions.create(
            model="gpt-4o-mini", messages=MESSAGES, stream=True, stream_options={"include_usage": True}
        )
    assert len(server.requests) == sent + 1
    assert (recorded.llm_span().attributes or {})[semconv.ERROR_TYPE].endswith("BadRequestError")


def test_disable_openai_stream_usage_per_client(server: OpenAICompatibleServer, recorded: Recorded) -> None:
    client = client_for(server)
    spanledger.disable_openai_stream_usage(client)
    chunks = list(client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES, stream=True))

    assert chunks[-1].choices[0].finish_reason == "stop"
    assert "stream_options" not in server.requests[-1].body


@pytest.mark.parametrize(
    "env, options",
    [
        ({"OTEL_SDK_DISABLED": "true"}, {}),
        ({"OTEL_TRACES_SAMPLER": "always_off"}, {"metrics": False}),
    ],
    ids=["sdk-disabled", "not-sampled-no-metrics"],
)
def test_request_unchanged_when_telemetry_is_off(
    server: OpenAICompatibleServer, monkeypatch: pytest.MonkeyPatch, env: dict[str, str], options: dict[str, Any]
) -> None:
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    handle = spanledger.configure(export="none", **options)
    try:
        expected = uninstrumented_chunks(server, model="gpt-4o-mini", messages=MESSAGES, stream=True)
        chunks = list(client_for(server).chat.completions.create(model="gpt-4o-mini", messages=MESSAGES, stream=True))
    finally:
        handle.shutdown()

    assert "stream_options" not in server.requests[-1].body
    assert [chunk.model_dump(exclude={"id", "created"}) for chunk in chunks] == [
        chunk.model_dump(exclude={"id", "created"}) for chunk in expected
    ]


def test_excluded_hosts_add_to_the_azure_default() -> None:
    from spanledger._openai._clients import client_info
    from spanledger._openai._recorder import Recorder

    handle = spanledger.configure(export="none", openai_stream_usage_excluded_hosts=["llm.internal"])
    recorder = Recorder(handle.telemetry)
    try:
        for base_url, allowed in [
            ("https://mine.openai.azure.com/openai/v1", False),
            ("http://gpu1.llm.internal/v1", False),
            ("https://api.openai.com/v1", True),
        ]:
            client = openai.OpenAI(base_url=base_url, api_key="sk-secret-key")
            assert client_info(client, recorder).stream_usage is allowed, base_url
    finally:
        handle.shutdown()


def test_server_follows_a_changed_base_url(server: OpenAICompatibleServer, recorded: Recorded) -> None:
    # The per-client facts are cached against the client's stored base URL (its property is not read per call).
    with OpenAICompatibleServer() as other:
        client = client_for(server)
        client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)
        client.base_url = other.base_url
        client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)
    ports = [(span.attributes or {})[semconv.SERVER_PORT] for span in recorded.llm_spans()]
    assert ports == [server.port, other.port]


def test_module_client_follows_openai_base_url(
    server: OpenAICompatibleServer, recorded: Recorded, monkeypatch: pytest.MonkeyPatch
) -> None:
    # openai's module-level client takes its base URL from ``openai.base_url`` (a module global), not the
    # attribute the cache is checked against for the client classes.
    monkeypatch.setattr(openai, "api_key", "sk-secret-key")
    monkeypatch.setattr(openai, "max_retries", 0)
    monkeypatch.setattr(openai, "_client", None)  # restored after the test, so no other test sees this one
    with OpenAICompatibleServer() as other:
        monkeypatch.setattr(openai, "base_url", server.base_url + "/")  # the module client adds no slash
        openai.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)
        monkeypatch.setattr(openai, "base_url", other.base_url + "/")
        openai.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)
    ports = [(span.attributes or {})[semconv.SERVER_PORT] for span in recorded.llm_spans()]
    assert ports == [server.port, other.port]


@pytest.mark.parametrize(
    "options", [{"openai_stream_usage": False}, {"openai_stream_usage_excluded_hosts": ["127.0.0.1"]}]
)
def test_stream_usage_switched_off_by_configuration(server: OpenAICompatibleServer, options: dict[str, Any]) -> None:
    recorded = Recorded(**options)
    try:
        client = client_for(server, server.azure_like_base_url)
        chunks = list(client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES, stream=True))
        span = recorded.llm_span()
    finally:
        recorded.handle.shutdown()

    assert chunks[-1].choices[0].finish_reason == "stop"
    assert "stream_options" not in server.requests[-1].body
    assert span.end_time is not None


# --- failure isolation ------------------------------------------------------------------------------


@pytest.mark.parametrize("status, error", [(429, openai.RateLimitError), (500, openai.InternalServerError)])
def test_api_error_propagates_unchanged(
    server: OpenAICompatibleServer, recorded: Recorded, monkeypatch: pytest.MonkeyPatch, status: int, error: type
) -> None:
    client = client_for(server)
    made: list[Exception] = []
    make_error = client._make_status_error_from_response

    def remember(response: Any) -> Any:
        made.append(make_error(response))
        return made[-1]

    monkeypatch.setattr(client, "_make_status_error_from_response", remember)

    with pytest.raises(error) as raised:
        client.chat.completions.create(model=f"error-{status}", messages=MESSAGES)

    assert type(raised.value) is error
    assert raised.value is made[0]
    span = recorded.llm_span()
    assert span.status.status_code is StatusCode.ERROR
    assert (span.attributes or {})[semconv.ERROR_TYPE] == f"openai.{error.__qualname__}"  # fully qualified
    duration = recorded.metrics()["gen_ai.client.operation.duration"]
    assert any(point.attributes.get(semconv.ERROR_TYPE) == f"openai.{error.__qualname__}" for point in duration)


def test_connection_error_propagates(recorded: Recorded) -> None:
    with OpenAICompatibleServer() as closed:
        base_url = closed.base_url
    client = openai.OpenAI(base_url=base_url, api_key="sk-secret-key", max_retries=0)

    with pytest.raises(openai.APIConnectionError) as raised:
        client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)

    assert type(raised.value) is openai.APIConnectionError
    assert (recorded.llm_span().attributes or {})[semconv.ERROR_TYPE] == "openai.APIConnectionError"


def test_broken_extractors_do_not_change_the_call(
    server: OpenAICompatibleServer, recorded: Recorded, monkeypatch: pytest.MonkeyPatch
) -> None:
    from spanledger._openai import _streams
    from spanledger._openai._endpoints import ENDPOINTS

    chat = ENDPOINTS["/chat/completions"]
    expected_chunks = uninstrumented_chunks(server, model="gpt-4o-mini", messages=MESSAGES, stream=True)

    def broken(*args: Any) -> Any:
        raise RuntimeError("broken extractor")

    monkeypatch.setattr(chat, "result", broken)
    monkeypatch.setattr(chat, "chunk", broken)
    # Let the usage chunk reach the broken chunk extractor too (normally it is taken off the wire earlier).
    monkeypatch.setattr(_streams, "_filter_usage_chunk", lambda stream, call: None)
    client = client_for(server)
    completion = client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)
    chunks = list(client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES, stream=True))

    assert completion.choices[0].message.content == "Hello from the local server."
    assert completion.usage is not None and completion.usage.total_tokens > 0
    assert len(chunks) == len(expected_chunks)
    assert all(chunk.choices for chunk in chunks)
    assert all(span.end_time is not None for span in recorded.llm_spans())

    monkeypatch.setattr(chat, "request_attributes", broken)
    again = client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)
    assert again.choices[0].message.content == "Hello from the local server."


# --- metrics and naming -----------------------------------------------------------------------------


def test_metrics_have_low_cardinality_attributes(server: OpenAICompatibleServer, recorded: Recorded) -> None:
    client = client_for(server)
    for _ in range(3):
        client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)

    metrics = recorded.metrics()
    (duration,) = metrics["gen_ai.client.operation.duration"]
    assert duration.count == 3
    tokens = {point.attributes[semconv.GEN_AI_TOKEN_TYPE]: point for point in metrics["gen_ai.client.token.usage"]}
    assert set(tokens) == {"input", "output"}
    assert tokens["output"].sum == 27
    allowed = {
        semconv.GEN_AI_OPERATION_NAME,
        semconv.GEN_AI_PROVIDER_NAME,
        semconv.GEN_AI_REQUEST_MODEL,
        semconv.GEN_AI_RESPONSE_MODEL,
        semconv.SERVER_ADDRESS,
        semconv.SERVER_PORT,
        semconv.GEN_AI_TOKEN_TYPE,
        semconv.ERROR_TYPE,
    }
    for name, points in metrics.items():
        for point in points:
            assert not name.startswith("gen_ai.") or set(point.attributes) <= allowed


@pytest.mark.parametrize(
    "opt_in, cache_write_names",
    [
        ("", {semconv.GEN_AI_USAGE_CACHE_CREATION_INPUT_TOKENS}),
        ("gen_ai_latest_experimental", {semconv.GEN_AI_USAGE_CACHE_WRITE_INPUT_TOKENS}),
        (
            "gen_ai_latest_experimental/dup",
            {semconv.GEN_AI_USAGE_CACHE_CREATION_INPUT_TOKENS, semconv.GEN_AI_USAGE_CACHE_WRITE_INPUT_TOKENS},
        ),
    ],
)
def test_semconv_opt_in_names_attributes_and_keeps_the_released_metrics(
    server: OpenAICompatibleServer, opt_in: str, cache_write_names: set[str]
) -> None:
    recorded = Recorded(semconv_opt_in=opt_in)
    try:
        client_for(server).chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)
        span = recorded.llm_span()
        metrics = recorded.metrics()
    finally:
        recorded.handle.shutdown()

    attributes = span.attributes or {}
    both = {semconv.GEN_AI_USAGE_CACHE_CREATION_INPUT_TOKENS, semconv.GEN_AI_USAGE_CACHE_WRITE_INPUT_TOKENS}
    assert {name for name in both if name in attributes} == cache_write_names
    # The released histogram in every mode; the draft's metrics only behind their own switch.
    assert {point.attributes[semconv.GEN_AI_TOKEN_TYPE] for point in metrics["gen_ai.client.token.usage"]} == {
        "input",
        "output",
    }
    assert not any(name.startswith("gen_ai.client.inference.") for name in metrics)


def test_uninstrument_stops_recording(server: OpenAICompatibleServer, recorded: Recorded) -> None:
    spanledger.uninstrument()
    client_for(server).chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)
    assert recorded.llm_spans() == []

    spanledger.instrument()
    client_for(server).chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)
    assert len(recorded.llm_spans()) == 1


def test_with_streaming_response_stream(server: OpenAICompatibleServer, recorded: Recorded) -> None:
    """with_streaming_response's bytes are the caller's to read (a gateway forwarding the SSE lines, say), where an
    added usage chunk could not be hidden: the request goes as sent, and usage is recorded when the caller asked
    for it. (Failed before: the raw lines had one usage chunk more than without spanledger.)"""
    client = client_for(server)
    with client.chat.completions.with_streaming_response.create(
        model="gpt-4o-mini", messages=MESSAGES, stream=True
    ) as response:
        lines = [line for line in response.iter_lines() if line]
    assert "stream_options" not in server.requests[-1].body
    assert not any('"choices": []' in line or '"choices":[]' in line for line in lines)
    assert semconv.GEN_AI_USAGE_OUTPUT_TOKENS not in (recorded.llm_span().attributes or {})

    with client.chat.completions.with_streaming_response.create(
        model="gpt-4o-mini", messages=MESSAGES, stream=True, stream_options={"include_usage": True}
    ) as response:
        chunks = list(response.parse())
    assert not chunks[-1].choices  # asked for: the caller sees it
    assert_usage(recorded.llm_spans()[-1])


@pytest.mark.parametrize("helper", ["chat", "responses"])
def test_stream_helpers_end_the_span_when_closed_early(
    server: OpenAICompatibleServer, recorded: Recorded, helper: str
) -> None:
    """openai's helpers close the HTTP response, not the stream they wrap: the span ends with their ``with``
    block, not when the stream is garbage-collected. (Failed before: no span until then.)"""
    client = client_for(server)
    if helper == "chat":
        manager: Any = client.chat.completions.stream(model="gpt-4o-mini", messages=MESSAGES)
    else:
        manager = client.responses.stream(model="gpt-4o-mini", input="Say hello")
    with manager as stream:
        for _ in stream:
            break
    assert len(recorded.llm_spans()) == 1
    del stream, manager


def test_chat_stream_helper(server: OpenAICompatibleServer, recorded: Recorded) -> None:
    with client_for(server).chat.completions.stream(model="gpt-4o-mini", messages=MESSAGES) as stream:
        final = stream.get_final_completion()

    assert final.choices[0].message.content == "Hello from the local server."
    assert_usage(recorded.llm_span())


def test_server_runs_from_the_command_line() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    script = Path(__file__).resolve().parent.parent / "examples" / "openai_compatible_server.py"
    process = subprocess.Popen(
        [sys.executable, str(script), "--port", str(port)], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL
    )
    try:
        assert process.stdout is not None
        assert f"127.0.0.1:{port}" in process.stdout.readline().decode()
        client = openai.OpenAI(base_url=f"http://127.0.0.1:{port}/v1", api_key="sk-secret-key", max_retries=2)
        deadline = time.monotonic() + 10
        while True:
            try:
                embeddings = client.embeddings.create(model="text-embedding-3-small", input="hello")
                break
            except openai.APIConnectionError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.1)
        assert len(embeddings.data[0].embedding) == 8
    finally:
        process.terminate()
        process.wait(timeout=10)


def test_responses_content_is_captured_when_opted_in(server: OpenAICompatibleServer) -> None:
    recorded = Recorded(capture_message_content=True)
    try:
        client_for(server).responses.create(model="gpt-4o-mini", input="Say hello", instructions="Be brief.")
        span = recorded.llm_span()
    finally:
        recorded.handle.shutdown()

    attributes = span.attributes or {}
    assert json.loads(str(attributes[semconv.GEN_AI_SYSTEM_INSTRUCTIONS])) == [{"type": "text", "content": "Be brief."}]
    assert json.loads(str(attributes[semconv.GEN_AI_INPUT_MESSAGES])) == [
        {"role": "user", "parts": [{"type": "text", "content": "Say hello"}]}
    ]
    assert json.loads(str(attributes[semconv.GEN_AI_OUTPUT_MESSAGES])) == [
        {
            "role": "assistant",
            "parts": [{"type": "text", "content": "Hello from the local server."}],
            "finish_reason": "stop",
        }
    ]


def test_azure_client_is_reported_as_azure(server: OpenAICompatibleServer, recorded: Recorded) -> None:
    client = openai.AzureOpenAI(
        azure_endpoint=server.url, api_version="2024-10-21", api_key="sk-secret-key", max_retries=0
    )
    client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)

    assert server.requests[-1].path.startswith("/openai/deployments/gpt-4o-mini/")
    span = recorded.llm_span()
    assert (span.attributes or {})[semconv.GEN_AI_PROVIDER_NAME] == "azure.ai.openai"
    assert_no_secrets([span])


def test_usage_chunk_is_taken_off_before_the_client_parses_it(
    server: OpenAICompatibleServer, recorded: Recorded, monkeypatch: pytest.MonkeyPatch
) -> None:
    from spanledger._openai._endpoints import ENDPOINTS

    chat = ENDPOINTS["/chat/completions"]
    seen: list[Any] = []
    original = chat.chunk

    def remember(call: Any, chunk: Any) -> bool:
        seen.append(chunk)
        return original(call, chunk)  # type: ignore[misc]

    monkeypatch.setattr(chat, "chunk", remember)
    list(client_for(server).chat.completions.create(model="gpt-4o-mini", messages=MESSAGES, stream=True))

    assert seen and all(chunk.choices for chunk in seen)
    assert_usage(recorded.llm_span())


def test_usage_chunk_is_hidden_when_the_decoder_is_unknown(
    server: OpenAICompatibleServer, recorded: Recorded, monkeypatch: pytest.MonkeyPatch
) -> None:
    from spanledger._openai import _streams

    monkeypatch.setattr(_streams, "_filter_usage_chunk", lambda stream, call: None)
    chunks = list(client_for(server).chat.completions.create(model="gpt-4o-mini", messages=MESSAGES, stream=True))

    assert all(chunk.choices for chunk in chunks)
    assert_usage(recorded.llm_span())


async def test_async_responses_embeddings_and_raw(server: OpenAICompatibleServer, recorded: Recorded) -> None:
    client = async_client_for(server)
    response = await client.responses.create(model="gpt-4o-mini", input="Say hello")
    await client.embeddings.create(model="text-embedding-3-small", input="one two")
    raw = await client.chat.completions.with_raw_response.create(model="gpt-4o-mini", messages=MESSAGES)
    completion = raw.parse()
    raw_stream = await client.chat.completions.with_raw_response.create(
        model="gpt-4o-mini", messages=MESSAGES, stream=True
    )
    chunks = [chunk async for chunk in raw_stream.parse()]
    async with client.chat.completions.with_streaming_response.create(
        model="gpt-4o-mini", messages=MESSAGES
    ) as streaming:
        streamed = await streaming.parse()

    assert all(chunk.choices for chunk in chunks)
    spans = recorded.llm_spans()
    assert [span.name for span in spans] == [
        "chat gpt-4o-mini",
        "embeddings text-embedding-3-small",
        "chat gpt-4o-mini",
        "chat gpt-4o-mini",
        "chat gpt-4o-mini",
    ]
    ids = [(span.attributes or {}).get(semconv.GEN_AI_RESPONSE_ID) for span in spans]
    assert ids[0] == response.id
    assert ids[2] == completion.id
    assert ids[4] == streamed.id
    for span in (spans[0], spans[2], spans[3], spans[4]):
        assert_usage(span)
