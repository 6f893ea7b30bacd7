"""Counted once across requests (issue 15): a child arriving after its parent was counted, through a real collector.

An agent span of one producer carries the tokens of the chat calls beneath it (OpenLLMetry's names); the chat
spans carry the OTel GenAI names. The agent span is exported in an earlier request than its children, as
happens when they are exported by different processes or batches. The real OTel SDK's OTLP exporters send
them over sockets; the collector retracts the agent's facts when the children arrive (from its memory, or,
after a restart, from the store), and every answer, the allocation and the retracted counter agree.
"""

from __future__ import annotations

import json
import signal
import time
from collections.abc import Sequence
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from collector_fixtures import RunningCollector, collector_config, launch, start_collector
from opentelemetry import trace
from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter as GrpcSpanExporter
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter as HttpSpanExporter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor, SpanExportResult
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from prometheus_client.parser import text_string_to_metric_families
from spanledger import semconv
from spanledger.semconv import SpanledgerMeterValues as Meter
from spanledger_collector._cli import main
from spanledger_collector._store import (
    COUNTED_USAGE_FACTS,
    AncestryCheck,
    CandidateSpan,
    DuckDBStore,
    SpanColumns,
    StoreBatch,
    UsageFact,
    UsageRetraction,
)

INPUT, OUTPUT = Meter.LLM_INPUT_TOKENS.value, Meter.LLM_OUTPUT_TOKENS.value
MODEL = "gpt-4o-mini-2024-07-18"
DAY = datetime(2025, 1, 15, 9, 0, tzinfo=timezone.utc)
# Two sibling chat calls under one agent span: (input, output) tokens each; the agent reports their sum.
CALLS = [(1000, 50), (500, 25)]


def _nanos(moment: datetime) -> int:
    return int(moment.timestamp() * 1_000_000_000)


def _agent_trace() -> tuple[list[ReadableSpan], list[ReadableSpan]]:
    """(the agent span, its two chat spans), made by the real SDK at fixed times on ``DAY``."""
    memory = InMemorySpanExporter()
    provider = TracerProvider(resource=Resource.create({semconv.SERVICE_NAME: "late-agent"}))
    provider.add_span_processor(SimpleSpanProcessor(memory))
    tracer = provider.get_tracer("late-children")
    agent = tracer.start_span(
        "invoke_agent support",
        start_time=_nanos(DAY),
        attributes={
            "gen_ai.system": "openai",
            semconv.GEN_AI_REQUEST_MODEL: "gpt-4o-mini",
            semconv.GEN_AI_RESPONSE_MODEL: MODEL,
            "gen_ai.usage.prompt_tokens": sum(i for i, _ in CALLS),
            "gen_ai.usage.completion_tokens": sum(o for _, o in CALLS),
            "traceloop.workflow.name": "support",
        },
    )
    context = trace.set_span_in_context(agent)
    for n, (input_tokens, output_tokens) in enumerate(CALLS):
        chat = tracer.start_span(
            "chat gpt-4o-mini",
            context=context,
            start_time=_nanos(DAY + timedelta(seconds=n)),
            attributes={
                semconv.GEN_AI_OPERATION_NAME: "chat",
                semconv.GEN_AI_PROVIDER_NAME: "openai",
                semconv.GEN_AI_REQUEST_MODEL: "gpt-4o-mini",
                semconv.GEN_AI_RESPONSE_MODEL: MODEL,
                semconv.GEN_AI_USAGE_INPUT_TOKENS: input_tokens,
                semconv.GEN_AI_USAGE_OUTPUT_TOKENS: output_tokens,
                "gen_ai.agent.name": "support",
            },
        )
        chat.end(end_time=_nanos(DAY + timedelta(seconds=n + 1)))
    agent.end(end_time=_nanos(DAY + timedelta(seconds=5)))
    provider.shutdown()
    spans = list(memory.get_finished_spans())
    return [s for s in spans if s.name.startswith("invoke_agent")], [s for s in spans if s.name.startswith("chat")]


def _trace_id(spans: Sequence[ReadableSpan]) -> str:
    context = spans[0].context
    assert context is not None
    return f"{context.trace_id:032x}"


def _export(collector: RunningCollector, spans: Sequence[ReadableSpan], *, grpc: bool = False) -> None:
    exporter: Any = (
        GrpcSpanExporter(endpoint=collector.grpc_endpoint, insecure=True)
        if grpc
        else HttpSpanExporter(endpoint=collector.http_endpoint + "/v1/traces")
    )
    assert exporter.export(spans) == SpanExportResult.SUCCESS
    exporter.shutdown()


def _retracted(exposition: str) -> dict[str, float]:
    """meter -> the retracted counter's value."""
    out: dict[str, float] = {}
    for family in text_string_to_metric_families(exposition):
        for sample in family.samples:
            if sample.name == "spanledger_usage_retracted_total":
                meter = sample.labels["spanledger_meter"]
                out[meter] = out.get(meter, 0.0) + sample.value
    return out


def _wait_for_retracted(collector: RunningCollector, expected: dict[str, float]) -> None:
    deadline = time.monotonic() + 30
    while _retracted(collector.scrape()) != expected:
        assert time.monotonic() < deadline, (_retracted(collector.scrape()), collector.log)
        time.sleep(0.1)


def _openai_costs(tmp_path: Path) -> Path:
    """The OpenAI Costs API's page for ``DAY``: gpt-4o-mini input and output lines."""
    day = int(DAY.replace(hour=0).timestamp())
    results = [
        {"object": "organization.costs.result", "amount": {"value": 0.0003, "currency": "usd"},
         "line_item": f"{MODEL}, input", "project_id": "proj_late"},
        {"object": "organization.costs.result", "amount": {"value": 0.00006, "currency": "usd"},
         "line_item": f"{MODEL}, output", "project_id": "proj_late"},
    ]  # fmt: skip
    page = {"object": "page", "data": [{"object": "bucket", "start_time": day, "end_time": day + 86_400,
                                        "results": results}], "has_more": False, "next_page": None}  # fmt: skip
    path = tmp_path / "costs.json"
    path.write_text(json.dumps([page]))
    return path


def _cli_json(capsys: pytest.CaptureFixture[str], *args: str) -> Any:
    assert main([*args, "--json"]) == 0
    return json.loads(capsys.readouterr().out)


def _assert_counted_once(
    store: Path, tmp_path: Path, trace_id: str, children: Sequence[ReadableSpan], capsys: pytest.CaptureFixture[str]
) -> None:
    """Every answer and the allocation count the chat calls once: the agent's facts are retracted."""
    local = ("--store", str(store), "--collector", "none")
    expected = {"input_tokens": str(sum(i for i, _ in CALLS)), "output_tokens": str(sum(o for _, o in CALLS))}
    child_ids = sorted(f"{span.context.span_id:016x}" for span in children if span.context is not None)

    lineage = _cli_json(capsys, "trace", trace_id, *local)
    assert {k: v for k, v in lineage["totals"]["tokens"].items() if v != "0"} == expected
    assert sorted(call["span_id"] for call in lineage["model_calls"]) == child_ids
    (agent,) = lineage["tree"]
    assert agent["usage"] == [] and len(agent["children"]) == len(CALLS)

    tokens = _cli_json(capsys, "top", "--by", "tokens", "--group", "model", *local)
    (row,) = tokens["rows"]
    assert (row["model"], row["input_tokens"], row["output_tokens"]) == (
        MODEL,
        expected["input_tokens"],
        expected["output_tokens"],
    )

    _cli_json(capsys, "billing", "import", str(_openai_costs(tmp_path)), *local)
    assert main(["allocations", "--period", "2025-01", "--format", "json", *local]) == 0
    allocations = json.loads(capsys.readouterr().out)["rows"]
    ours = [row for row in allocations if row["x_TraceId"] == trace_id]
    assert len(ours) == 2  # the input and the output line, each wholly to this trace
    for row in ours:
        assert sorted(set(row["x_SpanIds"].split(","))) == child_ids
        quantity = json.loads(row["AllocatedMethodDetails"])["Elements"][0]["UsageQuantity"]
        tokens_of_line = expected["input_tokens" if row["ChargeDescription"].endswith("input") else "output_tokens"]
        assert Decimal(str(quantity)) == Decimal(tokens_of_line)
    idle = _cli_json(capsys, "idle", "--period", "2025-01", *local)
    assert idle["rows"] == []  # token lines are not capacity: nothing idle, and the answer reads the same run


def test_a_parent_in_an_earlier_request_than_its_children_is_counted_once(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    agent, children = _agent_trace()
    with start_collector(tmp_path) as collector:
        _export(collector, agent)
        _export(collector, children[:1], grpc=True)  # the first call retracts the agent's facts, once
        _export(collector, children[1:])  # the second, a sibling, counts too
        _wait_for_retracted(collector, {INPUT: 1500.0, OUTPUT: 75.0})
    assert collector.store_path is not None
    trace_id = _trace_id(agent)
    # Insert-only: the agent's facts are still stored, named by one retraction per meter.
    assert collector.query("SELECT count(*) FROM usage_facts WHERE trace_id = ?", trace_id) == [(6,)]
    retractions = collector.query("SELECT span_id, meter, retracted_by_span_id FROM usage_retractions ORDER BY meter")
    agent_id = f"{agent[0].context.span_id:016x}"  # type: ignore[union-attr]
    assert [(span, meter) for span, meter, _ in retractions] == [(agent_id, INPUT), (agent_id, OUTPUT)]
    _assert_counted_once(collector.store_path, tmp_path, trace_id, children, capsys)


def test_sibling_calls_under_one_agent_both_count(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """In one request: the agent span is a roll-up of both calls (decided at ingest, nothing to retract)."""
    agent, children = _agent_trace()
    with start_collector(tmp_path) as collector:
        _export(collector, [*children, *agent])
    assert collector.store_path is not None
    assert collector.query("SELECT count(*) FROM usage_retractions") == [(0,)]
    _assert_counted_once(collector.store_path, tmp_path, _trace_id(agent), children, capsys)


@pytest.mark.slow
def test_after_a_restart_between_the_requests_the_store_check_retracts(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The collector that stored the agent span is gone; the new one's memory is empty, the store knows."""
    agent, children = _agent_trace()
    config = collector_config(tmp_path)
    with start_collector(tmp_path, config) as first:
        _export(first, agent)
    with start_collector(tmp_path, config) as second:
        _export(second, children)
        _wait_for_retracted(second, {INPUT: 1500.0, OUTPUT: 75.0})
    assert second.store_path is not None
    _assert_counted_once(second.store_path, tmp_path, _trace_id(agent), children, capsys)


@pytest.mark.slow
def test_request_log_replay_after_kill_9_retracts_once(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """The children's request is acknowledged, then the collector is killed before its commit: the next start
    replays it from the request log (memory empty: the store check retracts), and a later start changes nothing."""
    agent, children = _agent_trace()
    config = collector_config(tmp_path)
    with start_collector(tmp_path, config) as first:
        _export(first, agent)
    config["exporters"]["spanledger_store"]["commit_interval"] = "1h"
    killed = launch(tmp_path, config)
    _export(killed, children)  # acknowledged once in the request log; no scrape (it would commit)
    killed.stop(signal.SIGKILL)
    assert killed.query("SELECT count(*) FROM spans") == [(len(agent),)]  # the children's rows were not committed
    for _ in range(2):  # the replay (the children were never committed), then a start with nothing to replay
        with start_collector(tmp_path, config) as restarted:
            pass
        assert restarted.query("SELECT meter, count(*) FROM usage_retractions GROUP BY ALL ORDER BY ALL") == [
            (INPUT, 1),
            (OUTPUT, 1),
        ]
        assert restarted.query("SELECT count(*) FROM spans") == [(len(agent) + len(children),)]
    assert restarted.store_path is not None
    _assert_counted_once(restarted.store_path, tmp_path, _trace_id(agent), children, capsys)


# --- the store's check, in process ---


def _columns(trace_id: str, links: Sequence[tuple[str, str | None]]) -> SpanColumns:
    columns = SpanColumns()
    now = time.time_ns()
    for span, parent in links:
        for name, value in (("trace_id", trace_id), ("span_id", span), ("parent_span_id", parent), ("name", span),
                            ("kind", 0), ("service", None), ("start_time_unix_nano", now), ("end_time_unix_nano", now),
                            ("status_code", 0), ("unmeasured", None)):  # fmt: skip
            getattr(columns, name).append(value)
    return columns


def _fact(trace_id: str, span: str, quantity: int) -> UsageFact:
    now = datetime.now(timezone.utc).replace(tzinfo=None)
    return UsageFact(trace_id, span, INPUT, now, now, Decimal(quantity), "{token}")


def test_the_store_retracts_stored_ancestors_once_and_never_an_owners_facts(tmp_path: Path) -> None:
    """agent (candidate) > owner (spanledger) > chat (candidate), each stored by a different request whose
    decoder knew nothing of the others (as after a restart): the store check decides as the memory would."""
    trace_id = "ab" * 16
    store = DuckDBStore(tmp_path / "store.duckdb", retention=timedelta(days=1))

    def request(span: str, parent: str | None, digest: bytes, *, owner: bool) -> StoreBatch:
        batch = StoreBatch(_columns(trace_id, [(span, parent)]), [_fact(trace_id, span, 100)], digest=digest)
        batch.ancestry = [AncestryCheck(trace_id, span, INPUT, owner)]
        if not owner:
            batch.candidates = [CandidateSpan(trace_id, span)]
        return batch

    store.write([request("agent", None, b"1", owner=False)])
    owner = request("owner", "agent", b"2", owner=True)
    store.write([owner])
    assert owner.retractions == [UsageRetraction(trace_id, "agent", INPUT, "owner")]
    assert [fact.span_id for fact in owner.retracted] == ["agent"]
    chat = request("chat", "owner", b"3", owner=False)
    store.write([chat])  # under an owner: the candidate's own fact is retracted, never the owner's
    assert chat.retractions == [UsageRetraction(trace_id, "chat", INPUT, "owner")]
    again = request("chat", "owner", b"3", owner=False)
    assert store.write([again]) == [] and again.retractions == []  # a retried request: stored once
    with store.cursor() as cursor:
        assert cursor.execute(f"SELECT span_id FROM {COUNTED_USAGE_FACTS}").fetchall() == [("owner",)]
        assert cursor.execute("SELECT input_tokens FROM trace_rollups").fetchall() == [(Decimal(100),)]
        assert cursor.execute("SELECT count(*) FROM usage_retractions").fetchall() == [(2,)]
        # Retention: the retractions and candidates of expired facts go with them.
        cursor.execute("UPDATE usage_facts SET end_time = end_time - INTERVAL 3650 DAY")
    store._prune(store._require_open(), datetime.now())
    with store.cursor() as cursor:
        assert cursor.execute("SELECT count(*) FROM usage_retractions").fetchall() == [(0,)]
        assert cursor.execute("SELECT count(*) FROM usage_candidates").fetchall() == [(0,)]
    store.close()


def test_the_store_finds_stored_descendants_of_a_late_parent(tmp_path: Path) -> None:
    """Children stored by an earlier process, their parents arriving after a restart: a candidate parent is a
    roll-up (its own fact retracted); an owner parent has its candidate child's usage (the child's retracted)."""
    trace_id = "cd" * 16
    store = DuckDBStore(tmp_path / "store.duckdb")

    def request(span: str, parent: str | None, digest: bytes, *, owner: bool) -> StoreBatch:
        batch = StoreBatch(_columns(trace_id, [(span, parent)]), [_fact(trace_id, span, 100)], digest=digest)
        batch.ancestry = [AncestryCheck(trace_id, span, INPUT, owner)]
        if not owner:
            batch.candidates = [CandidateSpan(trace_id, span)]
        return batch

    store.write([request("chat", "owner", b"1", owner=False)])
    owner = request("owner", "agent", b"2", owner=True)
    store.write([owner])
    assert owner.retractions == [UsageRetraction(trace_id, "chat", INPUT, "owner")]
    agent = request("agent", None, b"3", owner=False)
    store.write([agent])
    assert agent.retractions == [UsageRetraction(trace_id, "agent", INPUT, "owner")]
    with store.cursor() as cursor:
        assert cursor.execute(f"SELECT span_id FROM {COUNTED_USAGE_FACTS}").fetchall() == [("owner",)]
    store.close()
