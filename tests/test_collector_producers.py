"""Usage from other producers' spans (issue 15): each dialect read as spanledger's own, counted once.

Spans are made with the real OTel Python SDK, shaped as each producer's own source and test fixtures show
(attribute names and value types), encoded as OTLP and decoded as the collector decodes them.
"""

from __future__ import annotations

from collections.abc import Sequence
from decimal import Decimal
from typing import Any, NamedTuple

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue
from opentelemetry.proto.trace.v1.trace_pb2 import ResourceSpans, ScopeSpans, Span
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from spanledger import semconv
from spanledger.semconv import SpanledgerMeterValues as Meter
from spanledger_collector._decode import SPEEDUPS, decode_traces, decode_traces_python
from spanledger_collector._decode._dialects import REPORT_MARKS
from spanledger_collector._decode._producers import RecentSpans
from test_collector_speedups import _compared, spans

if SPEEDUPS:
    from spanledger_collector._decode import _speedups

INPUT, CACHE_READ, CACHE_WRITE, OUTPUT = (
    Meter.LLM_INPUT_TOKENS.value,
    Meter.LLM_CACHE_READ_TOKENS.value,
    Meter.LLM_CACHE_WRITE_TOKENS.value,
    Meter.LLM_OUTPUT_TOKENS.value,
)
# One chat call: 120 input tokens of which 20 were read from the cache, 30 output tokens.
CALL = {INPUT: Decimal(100), CACHE_READ: Decimal(20), OUTPUT: Decimal(30)}

# Each dialect's attributes for that call, as the producer writes them.
DIALECT_SPANS: dict[str, dict[str, Any]] = {
    # opentelemetry-python-genai instrumentations, OTel JS/Java/Go/.NET GenAI instrumentations
    "otel-genai": {
        semconv.GEN_AI_OPERATION_NAME: "chat",
        semconv.GEN_AI_PROVIDER_NAME: "openai",
        semconv.GEN_AI_REQUEST_MODEL: "gpt-4o-mini",
        semconv.GEN_AI_RESPONSE_MODEL: "gpt-4o-mini-2024-07-18",
        semconv.GEN_AI_USAGE_INPUT_TOKENS: 120,
        semconv.GEN_AI_USAGE_CACHE_READ_INPUT_TOKENS: 20,
        semconv.GEN_AI_USAGE_OUTPUT_TOKENS: 30,
    },
    # instrumentations before the rename (gen_ai.system, prompt/completion tokens)
    "otel-genai-deprecated": {
        semconv.GEN_AI_OPERATION_NAME: "chat",
        "gen_ai.system": "openai",
        semconv.GEN_AI_REQUEST_MODEL: "gpt-4o-mini",
        semconv.GEN_AI_RESPONSE_MODEL: "gpt-4o-mini-2024-07-18",
        "gen_ai.usage.prompt_tokens": 120,
        "gen_ai.usage.completion_tokens": 30,
        semconv.GEN_AI_USAGE_CACHE_READ_INPUT_TOKENS: 20,
    },
    # openinference-instrumentation-openai: prompt includes its prompt_details
    "openinference": {
        "openinference.span.kind": "LLM",
        "llm.system": "openai",
        "llm.provider": "openai",
        "llm.model_name": "gpt-4o-mini-2024-07-18",
        "llm.token_count.prompt": 120,
        "llm.token_count.prompt_details.cache_read": 20,
        "llm.token_count.completion": 30,
        "llm.token_count.total": 150,
    },
    # opentelemetry-instrumentation-openai (OpenLLMetry): the total, the cache read in its own name
    "openllmetry": {
        "llm.request.type": "chat",
        "gen_ai.system": "openai",
        semconv.GEN_AI_REQUEST_MODEL: "gpt-4o-mini",
        semconv.GEN_AI_RESPONSE_MODEL: "gpt-4o-mini-2024-07-18",
        "gen_ai.usage.prompt_tokens": 120,
        "gen_ai.usage.cache_read_input_tokens": 20,
        "llm.usage.total_tokens": 150,
    },
    # Vercel AI SDK 4 (ai.generateText.doGenerate): prompt tokens without the cached ones
    "vercel-ai-4": {
        "ai.operationId": "ai.generateText.doGenerate",
        "ai.model.provider": "openai.chat",
        "ai.model.id": "gpt-4o-mini",
        "ai.response.model": "gpt-4o-mini-2024-07-18",
        "ai.usage.promptTokens": 100,
        "ai.usage.cachedInputTokens": 20,
        "ai.usage.completionTokens": 30,
    },
    # Vercel AI SDK 6: input tokens with the cached ones, and their breakdown
    "vercel-ai-6": {
        "ai.operationId": "ai.generateText.doGenerate",
        "ai.model.provider": "openai.responses",
        "gen_ai.system": "openai.responses",
        "ai.model.id": "gpt-4o-mini",
        "ai.response.model": "gpt-4o-mini-2024-07-18",
        "ai.usage.inputTokens": 120,
        "ai.usage.inputTokenDetails.cacheReadTokens": 20,
        "ai.usage.outputTokens": 30,
        "ai.usage.totalTokens": 150,
    },
}


class Node(NamedTuple):
    """A span to make: its name, attributes and children (made inside it, so they end first)."""

    name: str
    attributes: dict[str, Any]
    children: tuple[Node, ...] = ()


def _request(*roots: Node) -> bytes:
    """The OTLP request the real SDK's exporter encoding gives for these span trees (one trace per root)."""
    return _encoded(_spans(*roots))


def _encoded(spans: Sequence[ReadableSpan]) -> bytes:
    return encode_spans(spans).SerializeToString()


def _spans(*roots: Node) -> list[ReadableSpan]:
    """The spans the real SDK makes for these trees, in the order they end (children first)."""
    memory = InMemorySpanExporter()
    provider = TracerProvider(resource=Resource.create({semconv.SERVICE_NAME: "polyglot"}))
    provider.add_span_processor(SimpleSpanProcessor(memory))
    tracer = provider.get_tracer("producer-test")

    def make(node: Node) -> None:
        with tracer.start_as_current_span(node.name, attributes=node.attributes):
            for child in node.children:
                make(child)

    for root in roots:
        make(root)
    provider.shutdown()
    return list(memory.get_finished_spans())


def _by_span(data: bytes) -> dict[str, dict[str, Decimal]]:
    """span name -> meter -> quantity, from the collector's decoding of the request."""
    decoded = decode_traces(data)
    names = dict(zip(decoded.batch.spans.span_id, decoded.batch.spans.name, strict=True))
    out: dict[str, dict[str, Decimal]] = {}
    for fact in decoded.batch.facts:
        out.setdefault(names[fact.span_id], {})[fact.meter] = fact.quantity
    return out


@pytest.mark.parametrize("dialect", sorted(DIALECT_SPANS))
def test_each_dialect_gives_the_facts_spanledger_spans_give(dialect: str) -> None:
    own = {**DIALECT_SPANS["otel-genai"], semconv.SPANLEDGER_USAGE_OWNER: True}
    decoded = decode_traces(_request(Node("llm", DIALECT_SPANS[dialect]), Node("spanledger", own)))
    facts = {(fact.span_id, fact.meter): fact for fact in decoded.batch.facts}
    spans = dict(zip(decoded.batch.spans.name, decoded.batch.spans.span_id, strict=True))
    for meter, quantity in CALL.items():
        foreign, own_fact = facts[spans["llm"], meter], facts[spans["spanledger"], meter]
        assert foreign.quantity == quantity
        assert (foreign.model, foreign.provider, foreign.resource_type, foreign.service) == (
            own_fact.model,
            own_fact.provider,
            own_fact.resource_type,
            own_fact.service,
        )
    assert {meter for span, meter in facts if span == spans["llm"]} == set(CALL)
    assert len(decoded.llm_calls) == (2 if semconv.GEN_AI_OPERATION_NAME in DIALECT_SPANS[dialect] else 1)


@pytest.mark.parametrize(
    ("value", "provider"),
    [
        ("openai.chat", "openai"),
        ("amazon-bedrock", "aws.bedrock"),
        ("google.vertex.chat", "gcp.vertex_ai"),
        ("google.generative-ai", "gcp.gemini"),
        ("mistralai", "mistral_ai"),
        ("azure.ai.inference", "azure.ai.inference"),
        ("some-gateway", "some-gateway"),
    ],
)
def test_provider_values_of_other_dialects_are_read_as_otel_values(value: str, provider: str) -> None:
    attributes = {"llm.provider": value, "llm.model_name": "m", "llm.token_count.prompt": 5}
    (fact,) = decode_traces(_request(Node("llm", attributes))).batch.facts
    assert fact.provider == provider


def test_cache_writes_are_part_of_the_input_in_the_otel_names() -> None:
    anthropic = {
        semconv.GEN_AI_PROVIDER_NAME: "anthropic",
        semconv.GEN_AI_REQUEST_MODEL: "claude-sonnet-4-5",
        semconv.GEN_AI_USAGE_INPUT_TOKENS: 1500,
        semconv.GEN_AI_USAGE_CACHE_READ_INPUT_TOKENS: 1000,
        "gen_ai.usage.cache_creation_input_tokens": 400,
        semconv.GEN_AI_USAGE_OUTPUT_TOKENS: 10,
    }
    assert _by_span(_request(Node("anthropic.chat", anthropic))) == {
        "anthropic.chat": {INPUT: 100, CACHE_READ: 1000, CACHE_WRITE: 400, OUTPUT: 10}
    }


def test_a_framework_span_over_a_provider_span_is_a_roll_up() -> None:
    """LangChain (OpenLLMetry) over the upstream openai span, both carrying the same tokens."""
    framework = Node(
        "ChatOpenAI.chat", DIALECT_SPANS["openllmetry"], (Node("chat gpt-4o-mini", DIALECT_SPANS["otel-genai"]),)
    )
    assert _by_span(_request(framework)) == {"chat gpt-4o-mini": CALL}


def test_two_sibling_calls_under_an_agent_span_both_count() -> None:
    agent = {
        semconv.GEN_AI_OPERATION_NAME: "invoke_agent",
        semconv.GEN_AI_USAGE_INPUT_TOKENS: 240,
        semconv.GEN_AI_USAGE_OUTPUT_TOKENS: 60,
    }
    first = Node("tool", {}, (Node("first", DIALECT_SPANS["otel-genai"]),))
    data = _request(Node("invoke_agent", agent, (first, Node("second", DIALECT_SPANS["openinference"]))))
    decoded = decode_traces(data)
    assert _by_span(data) == {"first": CALL, "second": CALL}
    assert len(decoded.llm_calls) == 1  # the agent span's call is a roll-up too; "second" has no operation


def test_spanledger_owner_decides_outright() -> None:
    """An owner span's usage is its own whether a foreign span sits above or below it; owner=false is none."""
    own = {**DIALECT_SPANS["otel-genai"], semconv.SPANLEDGER_USAGE_OWNER: True}
    not_own = {**DIALECT_SPANS["otel-genai"], semconv.SPANLEDGER_USAGE_OWNER: False}
    data = _request(
        Node("owner above", own, (Node("upstream below", DIALECT_SPANS["otel-genai"]),)),
        Node("upstream above", DIALECT_SPANS["openinference"], (Node("owner below", own),)),
        Node("not an owner", not_own),
    )
    assert _by_span(data) == {"owner above": CALL, "owner below": CALL}


def test_only_the_meters_a_descendant_reports_are_rolled_up() -> None:
    """A gateway span reporting output tokens over a provider span reporting only input keeps its output."""
    gateway = {semconv.GEN_AI_PROVIDER_NAME: "openai", semconv.GEN_AI_REQUEST_MODEL: "gpt-4o-mini",
               semconv.GEN_AI_USAGE_INPUT_TOKENS: 120, semconv.GEN_AI_USAGE_OUTPUT_TOKENS: 30}  # fmt: skip
    provider = {semconv.GEN_AI_PROVIDER_NAME: "openai", semconv.GEN_AI_REQUEST_MODEL: "gpt-4o-mini",
                semconv.GEN_AI_USAGE_INPUT_TOKENS: 120}  # fmt: skip
    assert _by_span(_request(Node("gateway", gateway, (Node("provider", provider),)))) == {
        "gateway": {OUTPUT: 30},
        "provider": {INPUT: 120},
    }


def test_spans_without_usage_in_any_dialect_give_no_facts() -> None:
    described = {"llm.model_name": "gpt-4o-mini", "gen_ai.system": "openai", "llm.usage.total_tokens": 10}
    http = {semconv.HTTP_REQUEST_BODY_SIZE: 10}
    assert _by_span(_request(Node("no counts", described), Node("HTTP POST", http))) == {}


@pytest.mark.parametrize(
    ("attributes", "workflow", "tenant"),
    [
        ({"gen_ai.agent.name": "support-bot", "enduser.id": "u-1"}, "support-bot", "u-1"),
        ({"traceloop.workflow.name": "rag", "user.id": "u-2", "tenant.id": "acme"}, "rag", "acme"),
        ({"ai.telemetry.functionId": "summarize"}, "summarize", None),
        (
            {semconv.SPANLEDGER_WORKFLOW_NAME: "own", "gen_ai.agent.name": "bot", semconv.SPANLEDGER_TENANT_ID: "t"},
            "own",
            "t",
        ),
    ],
)
def test_workflow_and_tenant_come_from_standard_attributes(
    attributes: dict[str, str], workflow: str, tenant: str | None
) -> None:
    (fact,) = decode_traces(_request(Node("llm", {"llm.token_count.prompt": 5, **attributes}))).batch.facts
    assert (fact.workflow, fact.tenant) == (workflow, tenant)


# --- across requests ---


def _split(spans: list[ReadableSpan], *names: str) -> tuple[bytes, bytes]:
    """Two requests: the named spans, then the others."""
    first = [span for span in spans if span.name in names]
    return _encoded(first), _encoded([span for span in spans if span.name not in names])


def test_a_parent_arriving_after_its_child_is_a_roll_up() -> None:
    """The child and the span between them come in one request, the framework span rolling them up in a
    later one."""
    tree = Node("agent", DIALECT_SPANS["openllmetry"], (Node("step", {}, (Node("llm", DIALECT_SPANS["otel-genai"]),)),))
    first, later = _split(_spans(tree), "llm", "step")
    assert _by_span(first) == {"llm": CALL}
    assert _by_span(later) == {}


def test_a_child_arriving_after_its_counted_parent_still_counts() -> None:
    """Not corrected yet: the parent's facts stay stored (docs/producers.md); the child's own count."""
    tree = Node("agent", DIALECT_SPANS["openllmetry"], (Node("llm", DIALECT_SPANS["otel-genai"]),))
    parent_first, child_later = _split(_spans(tree), "agent")
    assert _by_span(parent_first) == {"agent": CALL}
    assert _by_span(child_later) == {"llm": CALL}


def test_recent_spans_are_bounded() -> None:
    recent = RecentSpans(max_traces=2, max_spans_per_trace=2)
    for trace in "abc":
        columns = decode_traces(_request(Node("x", {}, (Node("y", {}, (Node("z", {}),)),)))).batch.spans
        columns.trace_id = [trace] * len(columns)
        recent.remember({(trace, columns.span_id[0]): (frozenset({OUTPUT}), False)}, columns)
    assert recent.spans("a") == {}
    assert [len(recent.spans(trace)) for trace in "bc"] == [2, 2]


# --- the compiled decoder ---

needs_speedups = pytest.mark.skipif(not SPEEDUPS, reason="the compiled decoder is not built")


@needs_speedups
@pytest.mark.parametrize("dialect", sorted(DIALECT_SPANS))
def test_the_compiled_decoder_declines_other_producers_usage(dialect: str) -> None:
    data = _request(Node("llm", DIALECT_SPANS[dialect]))
    assert _speedups.decode_traces(data, True) is None
    assert decode_traces(data).batch.facts == decode_traces_python(data).batch.facts != []
    assert _speedups.decode_traces(data, False) is not None  # nothing to extract: the compiled path keeps it


FOREIGN_KEYS = sorted({name for attributes in DIALECT_SPANS.values() for name in attributes})


@st.composite
def foreign_requests(draw: st.DrawFn) -> bytes:
    """Generated requests (test_collector_speedups' spans) with other producers' usage attributes mixed in."""
    scope = ScopeSpans()
    for span in draw(st.lists(spans(), min_size=1, max_size=4)):
        for key in draw(st.lists(st.sampled_from(FOREIGN_KEYS), max_size=4)):
            span.attributes.append(KeyValue(key=key, value=AnyValue(int_value=draw(st.integers(-5, 500)))))
        scope.spans.append(span)
    return ExportTraceServiceRequest(resource_spans=[ResourceSpans(scope_spans=[scope])]).SerializeToString()


def _accepted(span: Span) -> bool:
    """Whether the collector keeps the span (rejected ones are not read for usage)."""
    ids_ok = len(span.trace_id) == 16 and any(span.trace_id) and len(span.span_id) == 8 and any(span.span_id)
    return ids_ok and max(span.start_time_unix_nano, span.end_time_unix_nano) < 2**63


@needs_speedups
@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(foreign_requests())
def test_the_compiled_decoder_never_misses_foreign_usage(data: bytes) -> None:
    """Whatever the compiled decoder answers equals the reference; it declines every unowned span that may
    report usage in another dialect."""
    request = ExportTraceServiceRequest.FromString(data)
    unowned_reporting = any(
        any(mark in span.SerializeToString() for mark in REPORT_MARKS)
        and semconv.SPANLEDGER_USAGE_OWNER.encode() not in span.SerializeToString()
        and _accepted(span)
        for resource in request.resource_spans
        for scope in resource.scope_spans
        for span in scope.spans
    )
    answered = _compared(data)
    assert not (answered and unowned_reporting)
