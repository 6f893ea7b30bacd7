"""spanledger next to another OpenAI instrumentation, both really instrumenting the same process."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import openai
import pytest
from openai_compatible_server import OpenAICompatibleServer
from spanledger import semconv
from test_openai import MESSAGES, Recorded, client_for


@pytest.fixture(scope="module")
def server() -> Iterator[OpenAICompatibleServer]:
    with OpenAICompatibleServer() as running:
        yield running


@pytest.fixture(autouse=True)
def restore_openai_methods() -> Iterator[None]:
    """Put back every openai resource method the other instrumentations wrapped.

    OpenLLMetry 0.62's ``uninstrument()`` leaves its wrapper on ``Completions.create`` (and others), which
    keeps making spans with the provider of a finished test; later tests must not see it.
    """
    import openai.resources.chat.completions as chat
    import openai.resources.embeddings as embeddings
    import openai.resources.responses as responses

    classes = [
        chat.Completions,
        chat.AsyncCompletions,
        embeddings.Embeddings,
        embeddings.AsyncEmbeddings,
        responses.Responses,
        responses.AsyncResponses,
    ]
    saved = [(cls, dict(vars(cls))) for cls in classes]
    yield
    for cls, attributes in saved:
        for name, value in attributes.items():
            if vars(cls).get(name) is not value:
                setattr(cls, name, value)


def _upstream() -> Any:
    from opentelemetry.instrumentation.genai.openai import OpenAIInstrumentor

    return OpenAIInstrumentor()


def _openllmetry() -> Any:
    from opentelemetry.instrumentation.openai import OpenAIInstrumentor

    return OpenAIInstrumentor()


@pytest.mark.parametrize("stream", [False, True], ids=["plain", "stream"])
@pytest.mark.parametrize(
    "make_instrumentor, scope_prefix",
    [
        (_upstream, "opentelemetry.instrumentation.genai.openai"),
        (_openllmetry, "opentelemetry.instrumentation.openai"),
    ],
    ids=["genai-openai", "openllmetry"],
)
def test_one_llm_span_when_another_instrumentation_is_active(
    server: OpenAICompatibleServer, make_instrumentor: Any, scope_prefix: str, stream: bool
) -> None:
    recorded = Recorded()
    other = make_instrumentor()
    other.instrument(tracer_provider=recorded.handle.tracer_provider, meter_provider=recorded.handle.meter_provider)
    try:
        result = client_for(server).chat.completions.create(model="gpt-4o-mini", messages=MESSAGES, stream=stream)
        chunks = list(result) if stream else []
        spans = recorded.exporter.get_finished_spans()
    finally:
        other.uninstrument()
        recorded.handle.shutdown()

    llm_spans = [span for span in spans if any(name.startswith("gen_ai.") for name in span.attributes or {})]
    assert len(llm_spans) == 1, [(span.name, span.instrumentation_scope) for span in spans]
    (llm,) = llm_spans
    assert llm.instrumentation_scope is not None
    assert llm.instrumentation_scope.name.startswith(scope_prefix)
    # Theirs is the one LLM span, so it owns the tokens; the HTTP span under it carries none.
    assert (llm.attributes or {})[semconv.SPANLEDGER_USAGE_OWNER] is True
    for span in spans:
        if span is not llm:
            assert not any(name.startswith("gen_ai.usage.") for name in span.attributes or {})
    if stream:
        # spanledger did not add stream_options under another instrumentation.
        assert "stream_options" not in server.requests[-1].body
        assert all(chunk.choices for chunk in chunks)


def test_spanledger_records_again_after_upstream_is_removed(server: OpenAICompatibleServer) -> None:
    recorded = Recorded()
    other = _upstream()
    other.instrument(tracer_provider=recorded.handle.tracer_provider, meter_provider=recorded.handle.meter_provider)
    other.uninstrument()
    try:
        client_for(server).chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)
        span = recorded.llm_span()
    finally:
        recorded.handle.shutdown()

    assert span.instrumentation_scope is not None
    assert span.instrumentation_scope.name == "spanledger"
    assert isinstance(openai.OpenAI, type)
