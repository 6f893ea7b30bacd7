"""The answers (``trace``, ``top``, ``idle``, ``allocations``), the JSON API and the Prometheus series,
in process and end to end through a running collector fed with real OTLP spans."""

from __future__ import annotations

import csv
import io
import json
import time
from datetime import timedelta
from decimal import Decimal
from pathlib import Path

import pytest
from collector_fixtures import start_collector
from fixtures.usage_store import G5_HOUR, G5_INSTANCE, TRACE, add_usage, nanos, open_usage_store, worked_check
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from prometheus_client import CollectorRegistry, generate_latest
from spanledger import semconv
from spanledger_collector._cli import main
from spanledger_collector.billing import import_and_allocate
from spanledger_collector.billing.api import handle_request
from spanledger_collector.billing.metrics import create_collector

BILLING_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "billing"
SAMPLE = BILLING_DATA / "focus_sample_1000.csv"
pytestmark = pytest.mark.skipif(
    not SAMPLE.exists(), reason=f"FOCUS sample data not found at {BILLING_DATA} (clone shared/ beside the repo)"
)


@pytest.fixture
def store_path(tmp_path: Path) -> Path:
    """A store with the worked check's three traces (one also calls a model and reads data), billing imported."""
    path = tmp_path / "spanledger.duckdb"
    store = open_usage_store(path)
    add_usage(store, *worked_check())
    connection = store.cursor()
    import_and_allocate(connection, [str(SAMPLE)])
    connection.close()
    store.close()
    return path


def _cli_json(capsys: pytest.CaptureFixture[str], *args: str) -> dict[str, object]:
    assert main([*args, "--json"]) == 0
    answer: dict[str, object] = json.loads(capsys.readouterr().out)
    return answer


def test_trace_answer_shows_lineage_usage_and_bill(store_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    local = ("--store", str(store_path), "--collector", "none")
    answer = _cli_json(capsys, "trace", TRACE[1], *local)
    totals = answer["totals"]
    assert isinstance(totals, dict)
    assert Decimal(totals["allocated_cost"]).quantize(Decimal("0.000001")) == Decimal("0.135333")
    assert totals["accelerator_seconds"] == "300" and totals["tokens"]["output_tokens"] == "300"
    assert totals["oldest_data_age_seconds"] == 7200.0 and totals["data_read_bytes"] == "52000"
    assert Decimal(totals["variance"]) == Decimal(totals["allocated_cost"]) - Decimal("0.13")
    tree = answer["tree"]
    assert isinstance(tree, list) and [node["name"] for node in tree] == ["summarise"]
    assert sorted(child["name"] for child in tree[0]["children"]) == ["chat", "gpu inference"]
    assert tree[0]["data_reads"][0]["source"] == "s3://docs/report.pdf"
    assert answer["model_calls"] == [
        {"span_id": f"{11:016x}", "model": "gpt-4o-mini", "tokens": {"input_tokens": "1200", "output_tokens": "300"},
         "estimated_cost": "0.00036", "currency": "USD"}
    ]  # fmt: skip

    assert main(["trace", TRACE[1], *local]) == 0
    text = capsys.readouterr().out
    assert "└─ summarise" in text and "read s3://docs/report.pdf" in text
    assert "allocated 0.135333 USD" in text and "i-09ba12e1l5743720b" in text
    assert main(["trace", "f" * 32, *local]) == 1
    assert "not found" in capsys.readouterr().err


def test_top_idle_and_allocations(store_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    local = ("--store", str(store_path), "--collector", "none")
    by_workflow = _cli_json(capsys, "top", "--by", "cost", "--group", "workflow", "--period", "2024-09", *local)
    assert [(row["workflow"], row["cost"]) for row in by_workflow["rows"]] == [  # type: ignore[index]
        ("summarise", "0.225555555556"),
        ("translate", "0.045111111111"),
    ]
    by_tenant = _cli_json(capsys, "top", "--group", "tenant", "--period", "2024-09", *local)
    assert [row["tenant"] for row in by_tenant["rows"]] == ["acme", "globex"]  # type: ignore[index]
    tokens = _cli_json(capsys, "top", "--by", "tokens", "--group", "model", "--period", "2024-09", *local)
    assert tokens["rows"] == [  # type: ignore[comparison-overlap]
        {"model": "gpt-4o-mini", "tokens": "1500", "input_tokens": "1200", "cache_read_tokens": None,
         "cache_write_tokens": None, "output_tokens": "300", "traces": 1}
    ]  # fmt: skip
    age = _cli_json(capsys, "top", "--by", "age", "--group", "service", *local)
    assert age["rows"][0]["oldest_age_seconds"] == 7200.0  # type: ignore[index]
    assert main(["top", "--group", "service", "--period", "2024-09", *local]) == 0
    assert "summariser" in capsys.readouterr().out

    idle = _cli_json(capsys, "idle", "--period", "2024-09", *local)
    g5 = next(row for row in idle["rows"] if row["charge_period_start"] == "2024-09-21T01:00:00Z")  # type: ignore[attr-defined]
    assert (g5["idle_cost"], g5["reason"], g5["busy_hours"]) == ("0.210217597333", "partial", "0.166667")
    assert Decimal(str(idle["idle_cost"])) == Decimal("11.855816657333")
    assert main(["idle", "--period", "2024-09", *local]) == 0
    assert "empty capacity, billing period 2024-09" in capsys.readouterr().out

    assert main(["allocations", "--period", "2024-09", "--format", "focus", *local]) == 0
    rows = list(csv.DictReader(io.StringIO(capsys.readouterr().out)))
    g5_rows = [r for r in rows if r["ResourceId"] == G5_INSTANCE and r["ChargePeriodStart"] == "2024-09-21T01:00:00Z"]
    assert [(r["AllocatedResourceId"], r["x_UnallocatedReason"]) for r in g5_rows] == [
        (TRACE[1], ""), (TRACE[2], ""), (TRACE[3], ""), ("", "idle")]  # fmt: skip
    details = json.loads(g5_rows[0]["AllocatedMethodDetails"])
    assert details["Elements"][0]["UsageQuantity"] == 300 and details["x_Rule"] == "aws.ec2.accelerator_instance"
    assert g5_rows[0]["AllocatedMethodId"] == "spanledger.allocation.v2.capacity"
    assert sum(Decimal(r["BilledCost"]) for r in g5_rows) == Decimal("0.480884264")
    assert len({r["x_SpanIds"] for r in g5_rows}) == 4
    output = store_path.parent / "allocations.json"
    assert main(["allocations", "--format", "json", "--output", str(output), "--period", "2024-09", *local]) == 0
    assert json.loads(output.read_text())["columns"][-1] == "x_Flags"
    assert main(["allocations", "--format", "csv", "--period", "2024-09", *local]) == 0
    assert capsys.readouterr().out.startswith("charge_period_start,resource_id,service_name,trace_id,span_ids")


def test_json_api_and_prometheus_series(store_path: Path) -> None:
    store = open_usage_store(store_path)
    try:
        status, answer = handle_request("GET", f"/api/trace/{TRACE[2]}", {}, b"", store)
        assert status == 200 and answer["totals"]["allocated_cost"] == "0.090222222222"
        status, answer = handle_request(
            "GET", "/api/top", {"by": ["cost"], "group": ["model"], "period": ["2024-09"]}, b"", store
        )
        assert status == 200 and answer["rows"][0]["model"] == "(none)"
        assert handle_request("GET", "/api/top", {"group": ["colour"]}, b"", store)[0] == 400
        assert handle_request("GET", "/api/idle", {"period": ["2024-09"]}, b"", store)[1]["period"] == "2024-09"
        assert len(handle_request("GET", "/api/allocations", {"period": ["2024-09"]}, b"", store)[1]["rows"]) > 1000
        assert handle_request("GET", "/api/trace/" + "e" * 32, {}, b"", store)[0] == 404
        assert handle_request("POST", "/api/billing/import", {}, b'{"paths": []}', store)[0] == 400
        assert handle_request("GET", "/api/nothing", {}, b"", store)[0] == 404
        status, answer = handle_request("POST", "/api/billing/allocate", {}, b'{"periods": ["2024-09"]}', store)
        assert status == 200 and answer["runs"][0]["status"] == "unchanged"

        registry = CollectorRegistry()
        registry.register(create_collector(store, tenant_limit=1))
        exposition = generate_latest(registry).decode()
    finally:
        store.close()
    assert (
        'spanledger_billing_cost{gen_ai_request_model="",spanledger_billing_period="2024-09",'
        'spanledger_tenant_id="other",spanledger_workflow_name="summarise"} 0.0902222' in exposition
    )
    assert (
        'spanledger_billing_idle_cost{spanledger_billing_period="2024-09",spanledger_resource_type="gpu_instance"} '
        "11.8558" in exposition
    )
    assert "spanledger_billing_idle_accelerator_time_hours{" in exposition
    assert 'spanledger_billing_estimate_variance{spanledger_billing_period="2024-09"} 0.0053333' in exposition


@pytest.mark.slow
def test_end_to_end_spans_through_the_collector_then_billing_through_its_api(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with start_collector(tmp_path) as collector:
        provider = TracerProvider(resource=Resource.create({semconv.SERVICE_NAME: "summariser"}))
        provider.add_span_processor(
            SimpleSpanProcessor(OTLPSpanExporter(endpoint=f"{collector.http_endpoint}/v1/traces"))
        )
        tracer = provider.get_tracer("billing-test")
        trace_ids = []
        start = G5_HOUR + timedelta(minutes=2)
        for offset, busy in ((0, 300), (400, 200), (700, 100)):
            span = tracer.start_span("gpu inference", start_time=nanos(start + timedelta(seconds=offset)))
            span.set_attributes(
                {
                    semconv.SPANLEDGER_USAGE_OWNER: True,
                    semconv.SPANLEDGER_ACCELERATOR_TIME: float(busy),
                    semconv.CLOUD_RESOURCE_ID: G5_INSTANCE,
                    semconv.CLOUD_REGION: "us-east-1",
                    semconv.SPANLEDGER_WORKFLOW_NAME: "summarise",
                }
            )
            span.end(end_time=nanos(start + timedelta(seconds=offset + busy)))
            trace_ids.append(f"{span.get_span_context().trace_id:032x}")
        provider.shutdown()
        deadline = time.monotonic() + 30
        while collector.get(f"/api/trace/{trace_ids[2]}")[0] != 200:
            assert time.monotonic() < deadline, collector.log
            time.sleep(0.1)

        remote = ("--collector", collector.admin_url)
        imported = _cli_json(capsys, "billing", "import", str(SAMPLE), *remote)
        assert [run["matched_fact_count"] for run in imported["runs"]] == [3, 0]  # type: ignore[index]
        costs = [
            _cli_json(capsys, "trace", trace_id, *remote)["totals"]["allocated_cost"]  # type: ignore[index]
            for trace_id in trace_ids
        ]
        assert [Decimal(c).quantize(Decimal("0.000001")) for c in costs] == [
            Decimal("0.135333"), Decimal("0.090222"), Decimal("0.045111")]  # fmt: skip
        idle = _cli_json(capsys, "idle", "--period", "2024-09", *remote)
        assert Decimal(str(idle["idle_cost"])) == Decimal("11.855816657333")
        assert "spanledger_billing_idle_cost{" in collector.scrape()
