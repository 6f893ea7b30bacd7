"""Usage from other producers' spans (issue 15): each dialect read as spanledger's own, counted once.

Spans are made with the real OTel Python SDK, shaped as each producer's own source and test fixtures show
(attribute names and value types), encoded as OTLP and decoded as the collector decodes them.
"""

from __future__ import annotations

from collections.abc import Sequence
from decimal import Decimal
from typing import Any, NamedTuple

import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue
from opentelemetry.proto.trace.v1.trace_pb2 import ResourceSpans, ScopeSpans, Span
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind
from spanledger import semconv
from spanledger.semconv import SpanledgerMeterValues as Meter
from spanledger_collector._decode import SPEEDUPS, _dialects, decode_traces, decode_traces_python
from spanledger_collector._decode._attribution import DEFAULT_ATTRIBUTION, AttributionMemory, attribute
from spanledger_collector._decode._producers import RECENT, Candidate, Candidates, RecentSpans, Reported, Settled
from spanledger_collector._decode._usage_sources import USAGE_SOURCES
from spanledger_collector._store import CandidateSpan, UsageRetraction
from test_collector_fuzz import mutations_of
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
    kind: SpanKind = SpanKind.INTERNAL


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
        with tracer.start_as_current_span(node.name, attributes=node.attributes, kind=node.kind):
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


@pytest.mark.parametrize(
    ("value", "provider"),
    [("vertex_ai", "gcp.vertex_ai"), ("gemini", "gcp.gemini"), ("az.ai.inference", "azure.ai.inference"),
     ("az.ai.openai", "azure.ai.openai")],
)  # fmt: skip
def test_renamed_gen_ai_system_values_are_read_as_their_new_names(value: str, provider: str) -> None:
    """opentelemetry-instrumentation-vertexai and -google-genai still write the values the conventions renamed.
    (Failed before: the facts kept the old value, an unknown provider to the price catalog.)"""
    attributes = {"gen_ai.system": value, "gen_ai.request.model": "m", "gen_ai.usage.input_tokens": 5}
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


def test_a_derived_input_past_int64_is_no_count() -> None:
    """Vercel AI SDK 4's uncached input plus a cache count past int64: no input fact (and no error)."""
    vercel = {"ai.usage.promptTokens": 100, "ai.usage.cachedInputTokens": 2**63 - 1, "ai.usage.completionTokens": 5}
    assert _by_span(_request(Node("llm", vercel))) == {"llm": {OUTPUT: 5}}


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
    data = _request(Node("llm", {"llm.token_count.prompt": 5, **attributes}))
    decoded = decode_traces(data)
    attribute(decoded, data, DEFAULT_ATTRIBUTION, AttributionMemory())
    (fact,) = decoded.batch.facts
    assert (fact.workflow, fact.tenant) == (workflow, tenant)


# --- HTTP and AWS spans of other producers ---

HTTP_CLIENT = {semconv.HTTP_REQUEST_METHOD: "POST", semconv.SERVER_ADDRESS: "api.example.com",
               semconv.HTTP_REQUEST_BODY_SIZE: 1000, semconv.HTTP_RESPONSE_BODY_SIZE: 3000}  # fmt: skip
# As the upstream botocore instrumentation (0.66b2) sets them on a GetObject, Converse and InvokeEndpoint call.
AWS = {semconv.RPC_SYSTEM: "aws-api", semconv.CLOUD_REGION: "us-east-1", semconv.SERVER_ADDRESS: "127.0.0.1"}
S3_GET = {**AWS, semconv.RPC_SERVICE: "S3", semconv.RPC_METHOD: "GetObject", semconv.AWS_S3_BUCKET: "b",
          semconv.AWS_S3_KEY: "k.txt", semconv.HTTP_RESPONSE_BODY_SIZE: 42}  # fmt: skip
CONVERSE = {**AWS, semconv.RPC_SERVICE: "Bedrock Runtime", semconv.RPC_METHOD: "Converse",
            semconv.GEN_AI_OPERATION_NAME: "chat", "gen_ai.system": "aws.bedrock",
            semconv.GEN_AI_REQUEST_MODEL: "amazon.nova-lite-v1:0", semconv.GEN_AI_USAGE_INPUT_TOKENS: 11,
            semconv.GEN_AI_USAGE_OUTPUT_TOKENS: 4, semconv.GEN_AI_USAGE_CACHE_READ_INPUT_TOKENS: 5,
            semconv.GEN_AI_USAGE_CACHE_CREATION_INPUT_TOKENS: 3}  # fmt: skip
INVOKE_ENDPOINT = {**AWS, semconv.RPC_SERVICE: "SageMaker Runtime", semconv.RPC_METHOD: "InvokeEndpoint"}


def test_http_client_body_sizes_are_bytes_on_the_wire_of_the_server_called() -> None:
    decoded = decode_traces(_request(Node("POST", HTTP_CLIENT, kind=SpanKind.CLIENT)))
    facts = {fact.meter: fact for fact in decoded.batch.facts}
    assert {meter: fact.quantity for meter, fact in facts.items()} == {"egress.bytes": 1000, "ingress.bytes": 3000}
    assert {(f.resource_id, f.resource_type, f.boundary) for f in facts.values()} == {
        ("api.example.com", "data_transfer", "unknown")
    }
    old_names = {"http.method": "POST", semconv.HTTP_URL: "https://old.example.com:8443/v1?q=1",
                 semconv.HTTP_REQUEST_BODY_SIZE: 10}  # fmt: skip
    (fact,) = decode_traces(_request(Node("POST", old_names, kind=SpanKind.CLIENT))).batch.facts
    assert (fact.meter, fact.resource_id) == ("egress.bytes", "old.example.com")


def test_http_server_spans_bytes_are_not_usage() -> None:
    """A server span's request body is its caller's egress (the caller's client span counts it)."""
    assert decode_traces(_request(Node("POST /v1", HTTP_CLIENT, kind=SpanKind.SERVER))).batch.facts == []


def test_botocore_spans_give_resources_reads_and_endpoint_time() -> None:
    calls = {"S3.GetObject": S3_GET, "chat": CONVERSE, "SageMaker Runtime.InvokeEndpoint": INVOKE_ENDPOINT}
    tree = Node(
        "handler", {}, tuple(Node(name, attributes, kind=SpanKind.CLIENT) for name, attributes in calls.items())
    )
    data = _request(tree)
    decoded = decode_traces(data)
    names = dict(zip(decoded.batch.spans.span_id, decoded.batch.spans.name, strict=True))
    facts = {(names[f.span_id], f.meter): (f.quantity, f.resource_type, f.resource_id) for f in decoded.batch.facts}
    model = "arn:aws:bedrock:us-east-1::foundation-model/amazon.nova-lite-v1:0"
    assert facts[("S3.GetObject", "ingress.bytes")] == (42, "data_transfer", "arn:aws:s3:::b")
    # Bedrock's inputTokens leaves the cache tokens out: 11 uncached input tokens, as the SDK counts them.
    assert facts[("chat", INPUT)] == (11, "llm_model", model)
    assert facts[("chat", CACHE_READ)][0] == 5 and facts[("chat", CACHE_WRITE)][0] == 3
    seconds, resource_type, resource_id = facts[("SageMaker Runtime.InvokeEndpoint", "endpoint.seconds")]
    assert seconds > 0 and (resource_type, resource_id) == ("sagemaker_endpoint", None)
    (read,) = decoded.batch.data_reads
    assert (read.source, read.source_kind, read.bytes, names[read.span_id]) == ("s3://b/k.txt", "object_store", 42,
                                                                              "S3.GetObject")  # fmt: skip
    reference = decode_traces_python(data)
    assert (reference.batch.facts, reference.batch.data_reads) == (decoded.batch.facts, decoded.batch.data_reads)
    if SPEEDUPS:
        assert _speedups.decode_traces(data, True) is None  # declined: other producers' AWS spans


@pytest.mark.parametrize(
    ("model", "region", "account"),
    [("us.amazon.nova-lite-v1:0", "us-east-1", None), ("amazon.titan-text-lite-v1", "eu-west-1", "123456789012"),
     ("arn:aws:bedrock:us-west-2:123456789012:application-inference-profile/x", "us-west-2", None),
     ("global.anthropic.claude-sonnet-4", None, "1")],
)  # fmt: skip
def test_aws_resource_ids_are_the_sdks(model: str, region: str | None, account: str | None) -> None:
    """The collector builds the ARNs spanledger's SDK puts on its own spans, without importing the SDK's AWS code."""
    from spanledger._aws._resource import bucket_arn
    from spanledger._genai._resource import inference_target_arn
    from spanledger_collector._decode._dialects import _bedrock_arn, _bucket_arn

    assert _bedrock_arn(model, region, account) == inference_target_arn(model, region, account)
    for bucket in ("docs", "arn:aws:s3:us-east-1:123456789012:accesspoint/ap"):
        assert _bucket_arn(bucket) == bucket_arn(bucket)


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


def test_a_child_arriving_after_its_counted_parent_retracts_the_parents_facts() -> None:
    """The child's facts count; the parent's, stored with the earlier request, are retracted by the child's."""
    tree = Node("agent", DIALECT_SPANS["openllmetry"], (Node("llm", DIALECT_SPANS["otel-genai"]),))
    spans = _spans(tree)
    parent_first, child_later = _split(spans, "agent")
    first = decode_traces(parent_first)
    assert _by_span(parent_first) == {"agent": CALL}
    assert first.batch.candidates == [CandidateSpan(first.batch.facts[0].trace_id, first.batch.facts[0].span_id)]
    later = decode_traces(child_later)
    agent, llm = first.batch.spans.span_id[0], later.batch.spans.span_id[0]
    assert {fact.meter: fact.quantity for fact in later.batch.facts} == CALL
    trace = later.batch.facts[0].trace_id
    assert sorted(later.batch.retractions) == sorted(UsageRetraction(trace, agent, meter, llm) for meter in CALL)
    assert {fact.meter: fact.quantity for fact in later.batch.retracted} == CALL
    assert all(fact.span_id == agent for fact in later.batch.retracted)
    # Once: the same child again (another exporter's copy) retracts nothing more.
    assert decode_traces(child_later).batch.retractions == []


def test_an_owner_arriving_after_a_counted_candidate_below_it_retracts_the_candidate() -> None:
    """spanledger's owner span over an upstream provider span that came in an earlier request: the owner has it."""
    own = {**DIALECT_SPANS["otel-genai"], semconv.SPANLEDGER_USAGE_OWNER: True}
    tree = Node("owner", own, (Node("upstream", DIALECT_SPANS["otel-genai"]),))
    child_first, owner_later = _split(_spans(tree), "upstream")
    assert _by_span(child_first) == {"upstream": CALL}
    later = decode_traces(owner_later)
    assert {fact.meter for fact in later.batch.facts} == set(CALL)
    assert {(r.meter, r.retracted_by_span_id) for r in later.batch.retractions} == {
        (meter, later.batch.spans.span_id[0]) for meter in CALL
    }


def test_a_child_of_an_owner_arriving_later_does_not_count() -> None:
    own = {**DIALECT_SPANS["otel-genai"], semconv.SPANLEDGER_USAGE_OWNER: True}
    tree = Node(
        "agent", DIALECT_SPANS["openllmetry"], (Node("owner", own, (Node("upstream", DIALECT_SPANS["otel-genai"]),)),)
    )
    spans = _spans(tree)
    owner_first, rest = _split(spans, "owner", "agent")
    assert _by_span(owner_first) == {"owner": CALL}
    assert _by_span(rest) == {}


def test_spans_that_may_have_ancestors_from_before_a_start_are_checked_in_the_store() -> None:
    """Spans that started before the latest span an earlier process stored ended (or within the clock-skew
    margin after) may have ancestors it stored: the store checks those; later ones are known to the memory."""
    tree = Node("agent", DIALECT_SPANS["openllmetry"], (Node("llm", DIALECT_SPANS["otel-genai"]),))
    spans = _spans(tree)
    started = min(span.start_time or 0 for span in spans)
    child = _encoded([span for span in spans if span.name == "llm"])
    decoded = decode_traces_python(child)
    assert _candidates_of(decoded, RecentSpans()).ancestry == []  # a fresh store: nothing stored before
    recent = RecentSpans()
    recent.stored_until(started - 30 * 10**9)  # within the clock-skew margin
    settled = _candidates_of(decoded, recent)
    assert {(check.meter, check.owner) for check in settled.ancestry} == {(meter, False) for meter in CALL}
    recent = RecentSpans()
    recent.stored_until(started - 120 * 10**9)
    assert _candidates_of(decode_traces_python(child), recent).ancestry == []


def _candidates_of(decoded: Any, recent: RecentSpans) -> Settled:
    """Settle the decoded request's candidate facts again against ``recent``."""
    candidates = Candidates()
    for fact in decoded.batch.facts:
        candidates.add(Candidate(fact.trace_id, fact.span_id, [fact], []))
    settled = candidates.settle([], decoded.batch.spans, recent)
    assert settled is not None
    return settled


def test_recent_spans_are_bounded() -> None:
    """By a number of spans, the oldest request's forgotten first: its traces' reporting spans go too, and a later
    span of such a trace may have ancestors the memory no longer holds."""
    recent = RecentSpans(max_spans=6)
    for trace in "abc":
        columns = decode_traces(_request(Node("x", {}, (Node("y", {}, (Node("z", {}),)),)))).batch.spans
        columns.trace_id = [trace] * len(columns)
        recent.add_links(columns)
        recent.remember({(trace, columns.span_id[0]): Reported(frozenset({OUTPUT}), False)})
    assert recent.spans("a") == {}
    assert [len(recent.spans(trace)) for trace in "bc"] == [1, 1]
    assert len(recent.links) == 6
    assert [recent.may_miss(trace, 0) for trace in "abc"] == [True, False, False]
    recent.clear()
    assert not recent and len(recent.links) == 0 and not recent.may_miss("a", 0)


# --- the compiled decoder (differential: whatever it answers equals the reference) ---

needs_speedups = pytest.mark.skipif(not SPEEDUPS, reason="the compiled decoder is not built")


@needs_speedups
@pytest.mark.parametrize("dialect", sorted(DIALECT_SPANS))
def test_the_compiled_decoder_reads_each_dialect(dialect: str) -> None:
    own = {**DIALECT_SPANS["otel-genai"], semconv.SPANLEDGER_USAGE_OWNER: True}
    nested = Node("framework", DIALECT_SPANS[dialect], (Node("provider", DIALECT_SPANS["otel-genai"]),))
    for data in (_request(Node("llm", DIALECT_SPANS[dialect])), _request(nested, Node("own", own))):
        assert _speedups.decode_traces(data, True) is not None, "the compiled decoder declined"
        assert _compared(data)
        assert decode_traces(data).batch.facts != []


# The usage fields only the reference reads (HTTP and botocore facts): a foreign span carrying one of their
# attributes goes to the reference, whatever the reference makes of it.
PYTHON_ONLY = sorted(source.name for source in USAGE_SOURCES if source.field in _dialects._PYTHON_ONLY_FIELDS)
# Where the call went (server, region): read by the compiled decoder too.
COMPILED_PLACES = sorted(source.name for source in USAGE_SOURCES if source.field in {"server_address", "region"})
# The attribution fields: read after either decoder (``_attribution``), so the compiled decoder keeps the span.
ATTRIBUTION = sorted(source.name for source in USAGE_SOURCES if source.field in {"workflow", "tenant"})


@needs_speedups
@pytest.mark.parametrize("name", ATTRIBUTION)
def test_the_compiled_decoder_reads_foreign_spans_with_attribution_names(name: str) -> None:
    nested = Node("agent", {**DIALECT_SPANS["openllmetry"], name: "w"}, (Node("llm", DIALECT_SPANS["otel-genai"]),))
    data = _request(nested)
    assert _speedups.decode_traces(data, True) is not None, "the compiled decoder declined"
    assert _compared(data)


@needs_speedups
@pytest.mark.parametrize("name", PYTHON_ONLY)
def test_the_compiled_decoder_declines_foreign_spans_with_python_only_attributes(name: str) -> None:
    assert {"url", "request_bytes", "response_bytes", "rpc_method", "bucket"} <= {
        source.field for source in USAGE_SOURCES if source.name in PYTHON_ONLY
    }
    data = _request(Node("llm", {**DIALECT_SPANS["otel-genai"], name: "x"}))
    assert _speedups.decode_traces(data, True) is None
    assert _compared(_request(Node("llm", DIALECT_SPANS["otel-genai"])))  # without it, the compiled path
    # The same attribute on an owner span or a span reporting nothing is the compiled decoder's, as before (an
    # HTTP body size name is itself a report mark: a span carrying one may report usage).
    own = {**DIALECT_SPANS["otel-genai"], semconv.SPANLEDGER_USAGE_OWNER: True, name: "x"}
    plain = [] if any(mark in name.encode() for mark in _dialects.REPORT_MARKS) else [Node("plain", {name: "x"})]
    assert _speedups.decode_traces(_request(Node("own", own), *plain), True) is not None


@needs_speedups
@pytest.mark.parametrize("name", COMPILED_PLACES)
def test_the_compiled_decoder_reads_where_a_foreign_call_went(name: str) -> None:
    """The server (most upstream client spans carry ``server.address``) and the region keep the compiled path."""
    data = _request(Node("llm", {**DIALECT_SPANS["otel-genai"], name: "eu-west-1"}))
    assert _speedups.decode_traces(data, True) is not None, "the compiled decoder declined"
    assert _compared(data)
    decoded = decode_traces(data)
    assert "eu-west-1" in {fact.region for fact in decoded.batch.facts} | {
        call.server_address for call in decoded.llm_calls
    }


FOREIGN_KEYS = sorted(
    {name for attributes in DIALECT_SPANS.values() for name in attributes}
    | {semconv.HTTP_REQUEST_BODY_SIZE, semconv.HTTP_RESPONSE_BODY_SIZE}
)
TOKEN_SOURCES = sorted(
    source.name for source in USAGE_SOURCES if source.field.endswith("tokens") and source.field != "reasoning_tokens"
)
PROVIDERS = ["openai", "openai.chat", "amazon-bedrock", "google.vertex.chat", "mistralai", "aws", "é", "", "x.y"]


def _value(value: Any) -> AnyValue:
    if isinstance(value, bool):
        return AnyValue(bool_value=value)
    if isinstance(value, int):
        return AnyValue(int_value=value)
    if isinstance(value, float):
        return AnyValue(double_value=value)
    return AnyValue(string_value=value)


counts = st.one_of(
    st.integers(0, 2000),
    st.sampled_from([0, 10**9, 10**9 + 1, 2**63 - 1, -1]),
    st.builds(float, st.integers(0, 50)),
    st.sampled_from(["12", True]),
)


@st.composite
def dialect_attributes(draw: st.DrawFn) -> list[KeyValue]:
    """A dialect's span (some of its attributes, counts redrawn), maybe with other dialects' names mixed in."""
    attributes = dict(DIALECT_SPANS[draw(st.sampled_from(sorted(DIALECT_SPANS)))])
    kept = draw(st.lists(st.sampled_from(sorted(attributes)), unique=True, min_size=1))
    pairs = []
    for key in kept:
        value = attributes[key]
        if isinstance(value, int) and draw(st.booleans()):
            value = draw(counts)
        elif key in {"ai.model.provider", "gen_ai.system", "llm.provider", semconv.GEN_AI_PROVIDER_NAME}:
            value = draw(st.sampled_from(PROVIDERS))
        pairs.append(KeyValue(key=key, value=_value(value)))
    for key in draw(st.lists(st.sampled_from(TOKEN_SOURCES), max_size=2)):
        pairs.append(KeyValue(key=key, value=_value(draw(counts))))
    if draw(st.integers(0, 39)) == 0:
        pairs.append(KeyValue(key=draw(st.sampled_from(PYTHON_ONLY)), value=_value("x")))
    for key in draw(st.lists(st.sampled_from(COMPILED_PLACES), unique=True, max_size=2)):  # most client spans'
        pairs.append(KeyValue(key=key, value=_value(draw(st.sampled_from(["api.openai.com", "eu-west-1", "", 7])))))
    if draw(st.integers(0, 9)) == 0:
        pairs.append(KeyValue(key=draw(st.sampled_from(ATTRIBUTION)), value=_value(draw(st.sampled_from(["w", 1])))))
    if draw(st.integers(0, 9)) == 0:
        pairs.append(KeyValue(key=semconv.SPANLEDGER_USAGE_OWNER, value=_value(draw(st.booleans()))))
    return draw(st.permutations(pairs))


@st.composite
def polyglot_requests(draw: st.DrawFn) -> bytes:
    """Traces of nested spans from every dialect (roll-ups over provider spans), spanledger's owner spans and
    spans reporting nothing, in one or more resources."""
    request = ExportTraceServiceRequest()
    for _ in range(draw(st.integers(1, 2))):
        scope = ScopeSpans()
        for trace in range(draw(st.integers(1, 3))):
            trace_id = bytes([trace + 1]) * 16
            count = draw(st.integers(1, 6))
            for index in range(count):
                parent = draw(st.one_of(st.none(), st.integers(0, count - 1)))
                kind = draw(st.sampled_from(["dialect", "dialect", "plain", "owner"]))
                if kind == "dialect":
                    attributes = draw(dialect_attributes())
                elif kind == "owner":
                    own = {**DIALECT_SPANS["otel-genai"], semconv.SPANLEDGER_USAGE_OWNER: True}
                    attributes = [KeyValue(key=key, value=_value(value)) for key, value in own.items()]
                else:
                    attributes = [KeyValue(key=semconv.HTTP_REQUEST_METHOD, value=_value("POST"))]
                scope.spans.append(
                    Span(
                        trace_id=trace_id,
                        span_id=bytes([index + 1]) * 8,
                        parent_span_id=b"" if parent is None or parent == index else bytes([parent + 1]) * 8,
                        name=kind,
                        start_time_unix_nano=1_700_000_000 * 10**9 + index,
                        end_time_unix_nano=1_700_000_001 * 10**9,
                        attributes=attributes,
                    )
                )
        request.resource_spans.append(ResourceSpans(scope_spans=[scope]))
    return request.SerializeToString()


POLYGLOT = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@needs_speedups
@POLYGLOT
@given(polyglot_requests())
def test_the_compiled_decoder_counts_other_producers_once_as_the_reference_does(data: bytes) -> None:
    """The same facts and calls, and the same spans remembered for later requests."""
    if not _compared(data):
        return
    remembered = []
    for decode in (decode_traces_python, decode_traces):
        RECENT.clear()
        decode(data)
        remembered.append(
            (dict(RECENT.links.parents), {trace: dict(spans) for trace, spans in RECENT.links.kept.items()})
        )
    assert remembered[0] == remembered[1]


@needs_speedups
@settings(
    max_examples=10,
    deadline=None,
    phases=(Phase.generate,),
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(st.lists(polyglot_requests(), min_size=8, max_size=8))
def test_most_polyglot_requests_take_the_compiled_path(batch: list[bytes]) -> None:
    """So that the property above is checked on the compiled decoder, not on declines."""
    taken = sum(_compared(data) for data in batch)
    assert taken >= len(batch) // 3, f"only {taken} of {len(batch)} polyglot requests were compiled"


NESTED = _request(
    Node("framework", DIALECT_SPANS["vercel-ai-6"], (Node("provider", DIALECT_SPANS["otel-genai"]),)),
    Node("agent", DIALECT_SPANS["openllmetry"], (Node("llm", DIALECT_SPANS["openinference"]),)),
)


@needs_speedups
@POLYGLOT
@given(mutations_of(st.just(NESTED), max_operations=4))
def test_mutated_polyglot_requests_decode_the_same_or_fall_back(data: bytes) -> None:
    _compared(data)


@needs_speedups
def test_a_late_parent_is_a_roll_up_in_the_compiled_decoder_too() -> None:
    """Requests after the first use the remembered spans whichever decoder decoded the earlier ones."""
    tree = Node("agent", DIALECT_SPANS["openllmetry"], (Node("step", {}, (Node("llm", DIALECT_SPANS["otel-genai"]),)),))
    first, later = _split(_spans(tree), "llm", "step")
    assert _speedups.decode_traces(first, True) is not None and _speedups.decode_traces(later, True) is not None
    assert _by_span(first) == {"llm": CALL}
    assert _by_span(later) == {}


@st.composite
def foreign_requests(draw: st.DrawFn) -> bytes:
    """Generated requests (test_collector_speedups' spans) with other producers' usage attributes mixed in."""
    scope = ScopeSpans()
    for span in draw(st.lists(spans(), min_size=1, max_size=4)):
        for key in draw(st.lists(st.sampled_from(FOREIGN_KEYS), max_size=4)):
            span.attributes.append(KeyValue(key=key, value=AnyValue(int_value=draw(st.integers(-5, 500)))))
        scope.spans.append(span)
    return ExportTraceServiceRequest(resource_spans=[ResourceSpans(scope_spans=[scope])]).SerializeToString()


@needs_speedups
@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(foreign_requests())
def test_generated_requests_with_foreign_usage_decode_the_same(data: bytes) -> None:
    _compared(data)


def test_a_resource_id_on_an_aws_span_is_kept() -> None:
    """A hook that knows the endpoint (upstream records no endpoint name) names the resource itself."""
    arn = "arn:aws:sagemaker:us-east-1:123456789012:endpoint/scorer"
    invoke = {**INVOKE_ENDPOINT, semconv.CLOUD_RESOURCE_ID: arn}
    (fact,) = decode_traces(_request(Node("invoke", invoke, kind=SpanKind.CLIENT))).batch.facts
    assert (fact.meter, fact.resource_type, fact.resource_id, fact.provider) == (
        "endpoint.seconds",
        "sagemaker_endpoint",
        arn,
        "aws",
    )
    other = {**AWS, semconv.RPC_SERVICE: "SageMaker Runtime", semconv.RPC_METHOD: "ListEndpoints"}
    assert decode_traces(_request(Node("list", other, kind=SpanKind.CLIENT))).batch.facts == []
