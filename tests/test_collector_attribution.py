"""Workflow and tenant from standard attributes on a span or its ancestors (issue 15, ``attribution``).

Spans are made with the real OTel Python SDK (and its baggage span processor), encoded as the OTLP exporter
encodes them, decoded by the collector's decoder (compiled or reference) and attributed by the post-pass the
``spanledger_usage`` processor runs.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest
from collector_fixtures import collector_config
from opentelemetry import baggage, context
from opentelemetry.processor.baggage import ALLOW_ALL_BAGGAGE_KEYS, BaggageSpanProcessor
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from spanledger import semconv
from spanledger_collector._component import ConfigError, PermanentError
from spanledger_collector._decode import decode_traces, decode_traces_python
from spanledger_collector._decode._attribution import (
    DEFAULT_ATTRIBUTION,
    Attribution,
    AttributionMemory,
    attribute,
)
from spanledger_collector._graph import parse_settings
from spanledger_collector._pipeline import Pipeline
from spanledger_collector._processors._usage import UsageProcessor, UsageSettings
from test_collector_producers import DIALECT_SPANS, Node, _encoded, _spans

LLM = DIALECT_SPANS["otel-genai"]  # another producer's chat span with tokens
OWN_LLM = {**LLM, semconv.SPANLEDGER_USAGE_OWNER: True}  # spanledger's own


def _attributed(
    data: bytes, attribution: Attribution = DEFAULT_ATTRIBUTION, memory: AttributionMemory | None = None
) -> dict[str, tuple[str | None, str | None]]:
    """span name -> (workflow, tenant) of its facts, after the attribution pass."""
    decoded = decode_traces(data)
    attribute(decoded, data, attribution, AttributionMemory() if memory is None else memory)
    names = dict(zip(decoded.batch.spans.span_id, decoded.batch.spans.name, strict=True))
    found: dict[str, tuple[str | None, str | None]] = {}
    for fact in decoded.batch.facts:
        assert found.setdefault(names[fact.span_id], (fact.workflow, fact.tenant)) == (fact.workflow, fact.tenant)
    return found


def _split(spans: Sequence[ReadableSpan], *names: str) -> list[bytes]:
    """One request per group of names, in the order given (a span not named goes in the last request)."""
    groups = [[span for span in spans if span.name in name.split(",")] for name in names]
    rest = [span for span in spans if not any(span.name in name.split(",") for name in names)]
    return [_encoded(group) for group in groups if group] + ([_encoded(rest)] if rest else [])


# --- one request ---


def test_an_ancestor_in_the_same_request_attributes_its_descendants() -> None:
    tree = Node(
        "handle request",
        {"enduser.id": "u-1"},
        (Node("agent", {semconv.GEN_AI_AGENT_NAME: "support-bot"}, (Node("llm", LLM), Node("own", OWN_LLM))),),
    )
    assert _attributed(_encoded(_spans(tree))) == {"llm": ("support-bot", "u-1"), "own": ("support-bot", "u-1")}


def test_the_nearest_ancestor_wins_for_one_name() -> None:
    tree = Node("outer", {semconv.GEN_AI_AGENT_NAME: "planner"}, (Node("inner", {semconv.GEN_AI_AGENT_NAME: "coder"},
                (Node("llm", LLM),)),))  # fmt: skip
    assert _attributed(_encoded(_spans(tree))) == {"llm": ("coder", None)}


def test_the_list_order_decides_over_nearness() -> None:
    """Each name in order, on the span then its ancestors: ``tenant.id`` on the root beats ``user.id`` on the
    span in the default order, and the other way round when the configured list puts ``user.id`` first."""
    tree = Node("root", {"tenant.id": "acme"}, (Node("llm", {**LLM, "user.id": "u-7"}),))
    data = _encoded(_spans(tree))
    assert _attributed(data) == {"llm": (None, "acme")}
    assert _attributed(data, Attribution(workflow=(), tenant=("user.id", "tenant.id"))) == {"llm": (None, "u-7")}


def test_spanledger_names_win_over_the_lists() -> None:
    """On the span (as spanledger's SDK stamps it), and on the resource."""
    own = {**LLM, semconv.SPANLEDGER_WORKFLOW_NAME: "answer", semconv.SPANLEDGER_TENANT_ID: "t-1"}
    tree = Node("root", {semconv.GEN_AI_AGENT_NAME: "bot", "enduser.id": "u-1"}, (Node("llm", own),))
    assert _attributed(_encoded(_spans(tree))) == {"llm": ("answer", "t-1")}

    memory = InMemorySpanExporter()
    provider = TracerProvider(resource=Resource.create({semconv.SPANLEDGER_TENANT_ID: "from-resource"}))
    provider.add_span_processor(SimpleSpanProcessor(memory))
    tracer = provider.get_tracer("attribution-test")
    with (
        tracer.start_as_current_span("root", attributes={"enduser.id": "u-1"}),
        tracer.start_as_current_span("llm", attributes=LLM),
    ):
        pass
    provider.shutdown()
    assert _attributed(_encoded(memory.get_finished_spans())) == {"llm": (None, "from-resource")}


def test_empty_lists_turn_the_lookup_off() -> None:
    tree = Node("root", {semconv.GEN_AI_AGENT_NAME: "bot", "enduser.id": "u-1"}, (Node("llm", LLM),))
    assert _attributed(_encoded(_spans(tree)), Attribution((), ())) == {"llm": (None, None)}


def test_baggage_copied_by_the_baggage_span_processor() -> None:
    """Baggage reaches OTLP only as the span attributes a baggage span processor copies it into: OTel's
    ``BaggageSpanProcessor`` keeps the baggage key as the attribute name."""
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(BaggageSpanProcessor(ALLOW_ALL_BAGGAGE_KEYS))
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    tracer = provider.get_tracer("baggage-test")
    token = context.attach(baggage.set_baggage("tenant.id", "acme", baggage.set_baggage("team", "search")))
    try:
        with tracer.start_as_current_span("root"), tracer.start_as_current_span("llm", attributes=LLM):
            pass
    finally:
        context.detach(token)
    provider.shutdown()
    data = _encoded(exporter.get_finished_spans())
    assert _attributed(data) == {"llm": (None, "acme")}
    assert _attributed(data, Attribution(workflow=("team",), tenant=())) == {"llm": ("search", None)}


def test_the_reference_decoder_gives_the_same_rows_to_attribute() -> None:
    tree = Node("root", {"enduser.id": "u-1"}, (Node("llm", LLM), Node("own", OWN_LLM)))
    data = _encoded(_spans(tree))
    fast, reference = decode_traces(data), decode_traces_python(data)
    for decoded in (fast, reference):
        attribute(decoded, data, DEFAULT_ATTRIBUTION, AttributionMemory())
    assert sorted(fast.batch.facts) == sorted(reference.batch.facts)
    assert {fact.tenant for fact in fast.batch.facts} == {"u-1"}


# --- across requests ---


def test_an_ancestor_in_an_earlier_request_attributes_a_later_descendant() -> None:
    """Another service's exporter flushed its spans first: the root and a span between (request 1), the
    step below (request 2, no usage), the LLM span (request 3)."""
    tree = Node("frontend", {"enduser.id": "u-9", semconv.GEN_AI_AGENT_NAME: "concierge"},
                (Node("call backend", {}, (Node("step", {}, (Node("llm", LLM), Node("own", OWN_LLM))),)),))  # fmt: skip
    memory = AttributionMemory()
    first, second, third = _split(_spans(tree), "frontend,call backend", "step", "llm,own")
    assert _attributed(first, memory=memory) == {}
    assert _attributed(second, memory=memory) == {}
    assert _attributed(third, memory=memory) == {"llm": ("concierge", "u-9"), "own": ("concierge", "u-9")}
    # Without the memory (another collector process, or forgotten) the later span is not attributed.
    assert _attributed(third) == {"llm": (None, None), "own": (None, None)}


def test_the_memory_is_bounded() -> None:
    """By a number of spans, the oldest request's forgotten first, with its traces' values."""
    memory = AttributionMemory(max_spans=6)
    for _ in range(3):
        tree = Node("root", {"enduser.id": "u"}, (Node("a", {}, (Node("b", {}),)),))
        _attributed(_encoded(_spans(tree)), memory=memory)
    assert len(memory.links.kept) == 2
    assert len(memory.links) == 6


def test_spanledger_only_requests_are_not_remembered() -> None:
    """Every row attributed by spanledger's names: the pass ends after one look at the rows."""
    own = {**OWN_LLM, semconv.SPANLEDGER_WORKFLOW_NAME: "w", semconv.SPANLEDGER_TENANT_ID: "t"}
    memory = AttributionMemory()
    tree = Node("root", {"enduser.id": "u-1", semconv.SPANLEDGER_WORKFLOW_NAME: "w",
                         semconv.SPANLEDGER_TENANT_ID: "t"}, (Node("own", own),))  # fmt: skip
    assert _attributed(_encoded(_spans(tree)), memory=memory) == {"own": ("w", "t")}
    assert not memory


# --- configuration ---


def _usage_settings(tmp_path: Path, usage: dict[str, Any]) -> UsageSettings:
    config = collector_config(tmp_path)
    config["processors"]["spanledger_usage"] = usage
    settings = parse_settings(config)
    (found,) = [s for s in settings.processors.values() if isinstance(s, UsageSettings)]
    return found


def test_the_lists_are_read_from_the_processor_config(tmp_path: Path) -> None:
    assert _usage_settings(tmp_path, {}).attribution == DEFAULT_ATTRIBUTION
    read = _usage_settings(tmp_path, {"attribution": {"tenant": ["baggage.tenant_id", "enduser.id"]}}).attribution
    assert read == Attribution(workflow=DEFAULT_ATTRIBUTION.workflow, tenant=("baggage.tenant_id", "enduser.id"))
    assert _usage_settings(tmp_path, {"attribution": {"workflow": []}}).attribution.workflow == ()


@pytest.mark.parametrize(
    ("attribution", "message"),
    [
        ("user.id", "processors.spanledger_usage.attribution: expected a mapping"),
        ({"tenant": "user.id"}, "processors.spanledger_usage.attribution.tenant: expected a list of strings"),
        ({"tenant": ["user.id", 7]}, "processors.spanledger_usage.attribution.tenant: expected a list of strings"),
        ({"workflow": ["a", "a"]}, "processors.spanledger_usage.attribution.workflow: 'a' is listed twice"),
        ({"workflow": [" a"]}, "processors.spanledger_usage.attribution.workflow: attribute name ' a' (item 0)"),
        ({"tenant": [semconv.SPANLEDGER_TENANT_ID]},
         "processors.spanledger_usage.attribution.tenant: 'spanledger.tenant.id' is spanledger's own name"),
        ({"team": ["x"]}, "processors.spanledger_usage.attribution.team: unknown key"),
    ],
)  # fmt: skip
def test_an_invalid_list_is_refused_naming_the_key(tmp_path: Path, attribution: Any, message: str) -> None:
    with pytest.raises(ConfigError) as error:
        _usage_settings(tmp_path, {"attribution": attribution})
    assert message in str(error.value)


def test_a_running_collector_attributes_from_its_configured_list(tmp_path: Path) -> None:
    """OTLP/HTTP to a real collector configured with a baggage-style name: the ancestor comes in an earlier
    request than the LLM span, and the stored fact carries its value."""
    from collector_fixtures import start_collector
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

    tree = Node("frontend", {"baggage.tenant_id": "acme", "enduser.id": "u-1"}, (Node("llm", LLM),))
    spans = _spans(tree)
    config = collector_config(tmp_path)
    config["processors"]["spanledger_usage"] = {"attribution": {"tenant": ["baggage.tenant_id"]}}
    with start_collector(tmp_path, config) as collector:
        exporter = OTLPSpanExporter(endpoint=collector.http_endpoint + "/v1/traces")
        for name in ("frontend", "llm"):
            exporter.export([span for span in spans if span.name == name])
        exporter.shutdown()
    tenants = collector.query("SELECT DISTINCT tenant FROM usage_facts WHERE trace_id = ?",
                              format(spans[0].context.trace_id, "032x"))  # fmt: skip
    assert tenants == [("acme",)]


def _with_bad_string(tree: Node, placeholder: str) -> bytes:
    """The request of ``tree`` with the string ``placeholder`` replaced by bytes that are not UTF-8 (as a Go
    or C++ producer can send them; proto3 forbids it, and Python's protobuf refuses to parse it)."""
    data = _encoded(_spans(tree))
    assert data.count(placeholder.encode()) == 1
    return data.replace(placeholder.encode(), b"\xff" * len(placeholder))


def test_a_listed_value_that_does_not_parse_leaves_the_requests_usage_alone() -> None:
    """(Failed before: the attribution pass raised DecodeError after decoding; the collector answered 500 and the
    request's usage was lost.)"""
    data = _with_bad_string(Node("handle request", {"enduser.id": "not-utf-8-1"}, (Node("llm", LLM),)), "not-utf-8-1")
    assert _attributed(data) == {"llm": (None, None)}


def test_a_request_the_exporters_cannot_read_is_refused_as_the_other_signals_are() -> None:
    """The decoder reads only the fields it needs; onward exporters need every one: a 400, not a 500."""
    data = _with_bad_string(Node("handle request", {"http.route": "not-utf-8-2"}, (Node("llm", LLM),)), "not-utf-8-2")
    assert decode_traces(data).batch.facts  # the decoder alone takes it

    class Nowhere:
        def consume_traces(self, request: Any) -> None:
            raise AssertionError("not reached")

    usage = UsageProcessor("spanledger_usage", UsageSettings())
    pipeline = Pipeline("traces", "traces", processors=[usage], exporters=[("otlp", Nowhere())])  # type: ignore[list-item]
    with pytest.raises(PermanentError, match=r"not a valid ExportTraceServiceRequest .*UTF-8"):
        pipeline.consume_traces(data)
