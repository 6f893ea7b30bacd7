"""OpenAI-compatible servers: the provider named by the host, server.address, no stream_options where rejected.

The requests really go over a socket to the local OpenAI-format server: the openai client is given an HTTP
proxy (the local server), so the request line carries the provider's host while nothing leaves the machine.
"""

from __future__ import annotations

from collections.abc import Iterator

import httpx2
import openai
import pytest
import spanledger
from openai_compatible_server import OpenAICompatibleServer
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from spanledger import semconv

MESSAGES = [{"role": "user", "content": "Say hello"}]


@pytest.fixture(scope="module")
def server() -> Iterator[OpenAICompatibleServer]:
    with OpenAICompatibleServer() as running:
        yield running


@pytest.fixture
def exporter() -> Iterator[InMemorySpanExporter]:
    spans = InMemorySpanExporter()
    handle = spanledger.configure(export="none", additional_span_processors=[SimpleSpanProcessor(spans)])
    yield spans
    handle.shutdown()


@pytest.mark.parametrize(
    ("base_url", "provider", "address", "stream_options"),
    [
        ("http://api.mistral.ai/v1", "mistral_ai", "api.mistral.ai", False),
        ("http://api.groq.com/openai/v1", "groq", "api.groq.com", True),
        ("http://api.deepseek.com/v1", "deepseek", "api.deepseek.com", True),
        (
            "http://generativelanguage.googleapis.com/v1beta/openai",
            "gcp.gemini",
            "generativelanguage.googleapis.com",
            True,
        ),
        ("http://my-team.openai.azure.com/openai/v1", "azure.ai.openai", "my-team.openai.azure.com", False),
        ("http://api.together.xyz/v1", "together_ai", "api.together.xyz", True),
        ("http://vllm.internal:8000/v1", "openai", "vllm.internal", True),
    ],
)
def test_provider_and_stream_options_by_host(
    server: OpenAICompatibleServer,
    exporter: InMemorySpanExporter,
    base_url: str,
    provider: str,
    address: str,
    stream_options: bool,
) -> None:
    client = openai.OpenAI(base_url=base_url, api_key="k", max_retries=0, http_client=httpx2.Client(proxy=server.url))
    before = len(server.requests)
    chunks = list(client.chat.completions.create(model="m", messages=MESSAGES, stream=True))  # type: ignore[arg-type]
    assert all(chunk.choices for chunk in chunks)  # the caller never sees a chunk it did not ask for
    (request,) = server.requests[before:]
    assert ("stream_options" in request.body) is stream_options
    (span,) = [
        s for s in exporter.get_finished_spans() if s.attributes and semconv.GEN_AI_OPERATION_NAME in s.attributes
    ]
    attributes = span.attributes or {}
    assert attributes[semconv.GEN_AI_PROVIDER_NAME] == provider
    assert attributes[semconv.SERVER_ADDRESS] == address
    assert (semconv.GEN_AI_USAGE_INPUT_TOKENS in attributes) is stream_options
