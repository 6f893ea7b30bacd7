"""The admin API and the billing gauges of a collector whose store is ClickHouse (issue 16), on chdb: the same
spans (sent by the OTel SDK's exporter over a real socket) and the same billing export through a DuckDB
collector and a ClickHouse one give the same answers under ``/api/`` and the same ``spanledger_billing_*``
samples on ``/metrics``; reads and scrapes run while the store writer inserts."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import httpx
from collector_fixtures import collector_config
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.trace import ReadableSpan
from spanledger_collector._graph import parse_settings
from spanledger_collector._service import CollectorService
from spanledger_collector._store import ClickHouseStore
from spanledger_collector._store._location import StoreAddress
from spanledger_collector._telemetry import OTHER
from spanledger_collector.billing.metrics import create_collector
from test_clickhouse_store import _chdb_config
from test_collector_service import NOW_NS, genai_trace, trace_id_of

HEADER = (
    "BilledCost,EffectiveCost,ListCost,BillingCurrency,BillingAccountId,SubAccountId,ProviderName,"
    "BillingPeriodStart,BillingPeriodEnd,ChargePeriodStart,ChargePeriodEnd,ChargeCategory,ResourceId,PricingQuantity,"
    "PricingUnit,ConsumedQuantity,ConsumedUnit,CommitmentDiscountId,ServiceName,x_UsageType\n"
)
ACCOUNT = "123456789012"  # the cloud.account.id of genai_trace's resource
GPU_INSTANCE = "i-0123456789abcdef0"  # its GPU span's cloud.resource.id


def _export(directory: Path) -> Path:
    """The month of the spans: the GPU instance's hours around them (capacity), a NAT gateway (shared)."""
    now = datetime.fromtimestamp(NOW_NS / 1e9, timezone.utc).replace(tzinfo=None)
    month = now.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    following = (
        month.replace(year=month.year + 1, month=1) if month.month == 12 else month.replace(month=month.month + 1)
    )
    hour = now.replace(minute=0, second=0, microsecond=0)
    lines = []
    for offset, cost in ((-1, "1.006"), (0, "1.006"), (1, "0.503")):
        start = hour + timedelta(hours=offset)
        lines.append(
            f"{cost},{cost},1.2,USD,payer,{ACCOUNT},AWS,{month:%Y-%m-%d},{following:%Y-%m-%d},"
            f"{start:%Y-%m-%dT%H:%M:%SZ},{start + timedelta(hours=1):%Y-%m-%dT%H:%M:%SZ},Usage,{GPU_INSTANCE},1,Hrs,"
            "1,Hrs,,Amazon Elastic Compute Cloud,USE1-BoxUsage:g5.xlarge"
        )
    lines.append(
        f"0.7,0.7,0.7,USD,payer,{ACCOUNT},AWS,{month:%Y-%m-%d},{following:%Y-%m-%d},{hour:%Y-%m-%dT%H:%M:%SZ},"
        f"{hour + timedelta(hours=1):%Y-%m-%dT%H:%M:%SZ},Usage,nat-0b,1,Hrs,1,Hrs,,Amazon Virtual Private Cloud,"
        "USE1-NatGateway-Hours"
    )
    path = directory / "export.csv"
    path.write_text(HEADER + "\n".join(lines) + "\n", encoding="utf-8")
    return path


def _duckdb_config(tmp_path: Path) -> dict[str, Any]:
    config = collector_config(tmp_path)
    config["processors"]["spanledger_cost"] = {}
    config["service"]["pipelines"]["traces"]["processors"].append("spanledger_cost")
    return config


@contextmanager
def _collector(config: dict[str, Any]) -> Iterator[tuple[CollectorService, str, httpx.Client]]:
    """An in-process collector: its OTLP/HTTP traces endpoint and a client of its admin API."""
    service = CollectorService(parse_settings(config))
    addresses = service.start()
    try:
        with httpx.Client(base_url=f"http://{addresses['admin']}", timeout=60) as admin:
            yield service, f"http://{addresses['otlp.http']}/v1/traces", admin
    finally:
        service.shutdown()


def _billing_samples(admin: httpx.Client) -> list[str]:
    response = admin.get("/metrics")
    assert response.status_code == 200
    return [line for line in response.text.splitlines() if line.startswith("spanledger_billing_")]


def _answers(config: dict[str, Any], spans: list[ReadableSpan], export: Path) -> dict[str, Any]:
    """Every answer of the admin API and the billing samples, after the spans and the export went in."""
    with _collector(config) as (_, endpoint, admin):
        assert OTLPSpanExporter(endpoint=endpoint).export(spans).name == "SUCCESS"
        assert _billing_samples(admin) == []  # nothing imported yet
        assert admin.get("/api/top").status_code == 400
        upload = {"file": ("export.csv", export.read_bytes(), "text/csv")}
        imported = admin.post("/api/billing/import", files=upload)
        assert imported.status_code == 200, imported.text
        answers: dict[str, Any] = {"import": imported.json()}
        for path in (
            *(f"/api/trace/{trace_id_of(spans[i:])}" for i in (0, len(spans) // 2)),
            *(f"/api/top?by={by}&group={group}" for by in ("cost", "tokens", "age") for group in
              ("workflow", "tenant", "model", "service")),
            "/api/idle",
            "/api/allocations",
            "/api/billing/allocate",
        ):  # fmt: skip
            response = admin.post(path, json={}) if path.endswith("allocate") else admin.get(path)
            assert response.status_code == 200, (path, response.text)
            answers[path] = response.json()
        answers["missing trace"] = admin.get(f"/api/trace/{'f' * 32}").json()
        answers["metrics"] = _billing_samples(admin)
    return answers


def test_a_clickhouse_collector_answers_and_exports_what_a_duckdb_one_does(
    tmp_path: Path, clickhouse_address: StoreAddress
) -> None:
    spans = genai_trace() + genai_trace(workflow="summarize", tenant="globex")
    export = _export(tmp_path)
    on_duck = _answers(_duckdb_config(tmp_path), spans, export)
    on_house = _answers(_chdb_config(tmp_path, clickhouse_address), spans, export)
    for key, answer in on_duck.items():
        assert on_house[key] == answer, key
    # The answers say something: cost reached the traces, and every gauge family has samples.
    assert on_duck["/api/top?by=cost&group=workflow"]["rows"]
    assert on_duck["/api/top?by=tokens&group=model"]["rows"][0]["model"] == "gpt-4o-mini-2024-07-18"
    assert on_duck["/api/idle"]["rows"] and on_duck["/api/allocations"]["rows"]
    families = {line.partition("{")[0] for line in on_duck["metrics"]}
    assert families == {
        "spanledger_billing_cost",
        "spanledger_billing_idle_cost",
        "spanledger_billing_idle_accelerator_time_hours",
        "spanledger_billing_estimate_variance",
    }


def test_answers_and_scrapes_read_while_the_store_writer_inserts(
    tmp_path: Path, clickhouse_address: StoreAddress
) -> None:
    """Reads take a client of their own: none waits on, or breaks, the writer's (nor the writer theirs)."""
    export = _export(tmp_path)
    with _collector(_chdb_config(tmp_path, clickhouse_address)) as (service, endpoint, admin):
        upload = {"file": ("export.csv", export.read_bytes(), "text/csv")}
        assert admin.post("/api/billing/import", files=upload).status_code == 200
        failures: list[str] = []
        sent = 0

        def send() -> None:
            nonlocal sent
            exporter = OTLPSpanExporter(endpoint=endpoint)
            for n in range(12):
                if exporter.export(genai_trace(workflow=f"wf-{n % 3}")).name != "SUCCESS":
                    failures.append(f"export {n}")
                sent += 1

        sender = threading.Thread(target=send)
        sender.start()
        statuses = []
        while sender.is_alive() or not statuses:
            for path in ("/metrics", "/api/top?by=tokens&group=workflow", "/api/idle"):
                statuses.append(admin.get(path).status_code)
        sender.join()
        assert not failures and set(statuses) == {200}, (failures, statuses)
        assert service.health() == (True, "ok")
        rows = admin.get("/api/top?by=tokens&group=workflow").json()["rows"]
        assert sorted(row["workflow"] for row in rows) == ["wf-0", "wf-1", "wf-2"]
        assert sent == 12


def test_the_gauges_cap_labels_the_same_way_on_clickhouse(tmp_path: Path, clickhouse_address: StoreAddress) -> None:
    """Label values over ``value_length`` characters (characters, not bytes, in both engines) add up under
    ``other``: ``ünï`` (3 characters, 5 bytes) is kept, ``summarize`` is not."""
    spans = genai_trace(workflow="ünï") + genai_trace(workflow="summarize", tenant="globex")
    export = _export(tmp_path)
    samples = []
    for config in (_duckdb_config(tmp_path), _chdb_config(tmp_path, clickhouse_address)):
        with _collector(config) as (service, endpoint, admin):
            assert OTLPSpanExporter(endpoint=endpoint).export(spans).name == "SUCCESS"
            upload = {"file": ("export.csv", export.read_bytes(), "text/csv")}
            assert admin.post("/api/billing/import", files=upload).status_code == 200
            assert service.store is not None
            capped = create_collector(service.store.store, value_length=4)
            samples.append(
                sorted((metric.name, tuple(sorted(s.labels.items())), s.value) for metric in capped.collect()
                       for s in metric.samples)
            )  # fmt: skip
            assert isinstance(service.store.store, ClickHouseStore) == (len(samples) == 2)
    assert samples[0] == samples[1]
    costs = [dict(labels) for name, labels, _ in samples[0] if name == "spanledger_billing_cost"]
    assert {labels["spanledger_workflow_name"] for labels in costs} == {"ünï", OTHER}


def test_the_trace_answer_reads_the_exporters_traces_table(tmp_path: Path, clickhouse_address: StoreAddress) -> None:
    spans = genai_trace()
    config = _chdb_config(tmp_path, clickhouse_address, traces_table="ledger_spans")
    with _collector(config) as (_, endpoint, admin):
        assert OTLPSpanExporter(endpoint=endpoint).export(spans).name == "SUCCESS"
        response = admin.get(f"/api/trace/{trace_id_of(spans)}")
        assert response.status_code == 200, response.text
        tree = response.json()["tree"]
        assert [node["name"] for node in tree] == ["workflow"] and len(tree[0]["children"]) == 4
