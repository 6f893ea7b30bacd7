"""Billing in ClickHouse (issue 16), on chdb: the same workload through DuckDB and ClickHouse gives the same usage
facts and EXACTLY the same allocation rows; every answer (``billing import``, ``allocations``, ``trace``, ``top``,
``idle``) runs with ``--store chdb:DIR`` and says what it says on DuckDB."""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path
from typing import Any

import duckdb
import pytest
from fixtures.usage_store import (
    G5_ACCOUNT,
    G5_HOUR,
    G5_INSTANCE,
    TRACE,
    add_usage,
    fact,
    open_usage_store,
    worked_check,
)
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from spanledger import semconv
from spanledger_collector._cli import main
from spanledger_collector._engine._ddl import Names
from spanledger_collector._engine._install import init
from spanledger_collector._store import USAGE_FACTS, DataRead, UsageFact
from spanledger_collector._store._clickhouse_client import open_clickhouse
from spanledger_collector._store._clickhouse_schema import ClickHouseSchema
from spanledger_collector._store._location import DEFAULT_DATABASE, StoreAddress, StoreEngine
from spanledger_collector._store._otel_traces import OTEL_TRACES_COLUMNS, OtelTraceRows
from spanledger_collector.billing import allocate, import_billing
from test_clickhouse_views import OWN
from test_collector_producers import Node, _encoded, _spans

BILLING_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "billing"
SAMPLE = BILLING_DATA / "focus_sample_1000.csv"
needs_sample = pytest.mark.skipif(
    not SAMPLE.exists(), reason=f"FOCUS sample data not found at {BILLING_DATA} (clone shared/ beside the repo)"
)
HOUR = datetime(2025, 2, 3, 10, 0)
HEADER = (
    "BilledCost,EffectiveCost,ListCost,BillingCurrency,BillingAccountId,SubAccountId,ProviderName,"
    "BillingPeriodStart,BillingPeriodEnd,ChargePeriodStart,ChargePeriodEnd,ChargeCategory,ResourceId,PricingQuantity,"
    "PricingUnit,ConsumedQuantity,ConsumedUnit,CommitmentDiscountId,ServiceName,x_UsageType\n"
)
RULES = """version: 1
shared_policy: proportional
rules: []
"""


def _focus_export(directory: Path) -> Path:
    """A month with GPU hours (capacity), a NAT gateway (shared) and a support fee without an account."""
    lines = []
    for hour in range(3):
        start = HOUR + timedelta(hours=hour)
        lines.append(
            f"1.006,1.006,1.2,USD,payer,acct-1,AWS,2025-02-01,2025-03-01,{start:%Y-%m-%dT%H:%M:%SZ},"
            f"{start + timedelta(hours=1):%Y-%m-%dT%H:%M:%SZ},Usage,i-gpu{hour % 2},1,Hrs,1,Hrs,,"
            "Amazon Elastic Compute Cloud,USE1-BoxUsage:g5.xlarge"
        )
    lines.append(
        f"0.7,0.7,0.7,USD,payer,acct-1,AWS,2025-02-01,2025-03-01,{HOUR:%Y-%m-%dT%H:%M:%SZ},"
        f"{HOUR + timedelta(hours=1):%Y-%m-%dT%H:%M:%SZ},Usage,nat-0b,1,Hrs,1,Hrs,,"
        "Amazon Virtual Private Cloud,USE1-NatGateway-Hours"
    )
    lines.append(
        "10,10,10,USD,payer,,AWS,2025-02-01,2025-03-01,2025-02-01T00:00:00Z,2025-03-01T00:00:00Z,Usage,,1,Dollar,"
        "1,Dollar,,AWS Support (Business),Dollar"
    )
    path = directory / "export.csv"
    path.write_text(HEADER + "\n".join(lines) + "\n")
    return path


def _workload() -> list[UsageFact]:
    """Facts with equal weights (remainder ties), straddling facts, overlapping requests and a sample G5 line."""
    rng = random.Random(16)
    gpu = {"resource_type": "gpu_instance", "account_id": "acct-1", "region": "us-east-1", "currency": "USD"}
    facts = []
    for span in range(1, 121):
        trace = rng.randrange(1, 40)
        start = HOUR + timedelta(seconds=rng.randrange(0, 3 * 3600 - 600))
        seconds = rng.choice([7, 7, 7, 60, 333, 1200])  # many equal weights: ties decide the last 10^-12
        facts.append(
            fact(trace, span, "accelerator.seconds", start, seconds, seconds, resource_id=f"i-gpu{span % 2}",
                 workflow=f"wf{trace % 3}", tenant=f"t{trace % 2}", service="svc",
                 estimated_cost=(Decimal(seconds) / 3600).quantize(Decimal("1e-12")), **gpu)
        )  # fmt: skip
    start = G5_HOUR + timedelta(minutes=2)
    g5 = {"resource_id": G5_INSTANCE, "resource_type": "gpu_instance", "account_id": G5_ACCOUNT,
          "region": "us-east-1", "currency": "USD", "workflow": "summarise", "tenant": "acme"}  # fmt: skip
    facts += [
        fact(1001, 1001, "accelerator.seconds", start, 300, 300, estimated_cost=Decimal("0.135333333333"), **g5),
        fact(1002, 1002, "accelerator.seconds", start + timedelta(seconds=400), 200, 200, **g5),
        fact(1003, 1003, "accelerator.seconds", start + timedelta(seconds=3000), 1200, 1200, **g5),  # straddles
    ]
    return facts


@pytest.fixture
def clickhouse(clickhouse_address: StoreAddress) -> Iterator[Any]:
    client = open_clickhouse(clickhouse_address, create_database=True)
    for statement in ClickHouseSchema(clickhouse_address.database).statements():
        client.command(statement)
    yield client
    client.close()


def _rows(run: Any, sql: str) -> list[tuple[Any, ...]]:
    def plain(value: Any) -> Any:
        if isinstance(value, datetime) and value.tzinfo is not None:
            return value.astimezone(timezone.utc).replace(tzinfo=None)
        return value

    return [tuple(plain(value) for value in row) for row in run(sql)]


def _trace_rows_in_both(clickhouse: Any, facts: list[UsageFact], export: Path, columns: str) -> list[tuple[Any, ...]]:
    """Allocate ``facts`` against ``export`` in DuckDB and in ClickHouse; ``columns`` of each trace's allocation
    row ``a`` and its billing line ``l``, sorted: asserted the same in both engines."""
    store = open_usage_store()
    add_usage(store, facts)
    duck = store.cursor()
    import_billing(duck, [str(export)])
    allocate(duck)
    clickhouse.insert(USAGE_FACTS.name, facts, column_names=list(USAGE_FACTS.column_names))
    import_billing(clickhouse, [str(export)])
    allocate(clickhouse)
    sql = f"""SELECT {columns}
              FROM allocations AS a{{final}} JOIN billing_lines AS l{{final}} ON l.snapshot_id = a.snapshot_id
                AND l.line_no = a.line_no
              WHERE a.trace_id IS NOT NULL ORDER BY ALL"""
    on_duck = _rows(lambda q: duck.execute(q).fetchall(), sql.format(final=""))
    on_house = _rows(lambda q: [tuple(row) for row in clickhouse.query(q).result_rows], sql.format(final=" FINAL"))
    store.close()
    assert on_house == on_duck
    return on_duck


@needs_sample
def test_duckdb_and_clickhouse_give_the_same_facts_and_exactly_the_same_allocation_rows(
    clickhouse: Any, tmp_path: Path
) -> None:
    facts = _workload()
    export = _focus_export(tmp_path)
    rules = tmp_path / "rules.yaml"
    rules.write_text((Path(allocate.__code__.co_filename).parent / "rules.yaml").read_text().replace(
        "shared_policy: none", "shared_policy: proportional"))  # fmt: skip
    assert "shared_policy: proportional" in rules.read_text()

    store = open_usage_store()
    add_usage(store, facts)
    duck = store.cursor()
    import_billing(duck, [str(SAMPLE), str(export)])
    duck_runs = allocate(duck, rules_path=rules)

    clickhouse.insert(USAGE_FACTS.name, facts, column_names=list(USAGE_FACTS.column_names))
    clickhouse.insert(USAGE_FACTS.name, facts[:50], column_names=list(USAGE_FACTS.column_names))  # a retried batch
    import_billing(clickhouse, [str(SAMPLE), str(export)])
    house_runs = allocate(clickhouse, rules_path=rules)
    assert house_runs == duck_runs

    def on_duck(sql: str) -> list[tuple[Any, ...]]:
        return duck.execute(sql).fetchall()

    def on_house(sql: str) -> list[tuple[Any, ...]]:
        return [tuple(row) for row in clickhouse.query(sql).result_rows]

    columns = ", ".join(USAGE_FACTS.column_names)
    order = "ORDER BY trace_id, span_id, meter"
    assert _rows(on_house, f"SELECT {columns} FROM usage_facts FINAL {order}") == _rows(
        on_duck, f"SELECT {columns} FROM usage_facts {order}"
    )
    order = "ORDER BY run_id, snapshot_id, line_no"
    lines = _rows(on_duck, f"SELECT * FROM allocation_lines {order}")
    assert _rows(on_house, f"SELECT * FROM allocation_lines FINAL {order}") == lines
    assert {row[4] for row in lines} >= {"capacity", "shared", "none"}
    rows = [
        (*row[:4], row[4] or [], *row[5:])  # span ids: NULL in DuckDB, [] in ClickHouse on unallocated rows
        for row in _rows(on_duck, f"SELECT * FROM allocations {order}, trace_id NULLS LAST")
    ]
    assert _rows(on_house, f"SELECT * FROM allocations FINAL {order}, trace_id NULLS LAST") == rows
    # Ties were decided: some line splits equal weights whose shares differ by 10^-12.
    assert any(
        count > 1
        for (count,) in on_duck(
            """SELECT count(DISTINCT effective_cost) FROM allocations WHERE trace_id IS NOT NULL
               GROUP BY run_id, snapshot_id, line_no, usage_quantity HAVING count(*) > 1"""
        )
    )
    # Inputs unchanged: no new run in either engine; a late fact makes a new run that supersedes the old one.
    assert {run.status for run in allocate(clickhouse, rules_path=rules)} == {"unchanged"}
    late = fact(7, 999, "accelerator.seconds", HOUR, 5, 5, resource_id="i-gpu0", resource_type="gpu_instance",
                account_id="acct-1")  # fmt: skip
    clickhouse.insert(USAGE_FACTS.name, [late], column_names=list(USAGE_FACTS.column_names))
    rerun = allocate(clickhouse, ["2025-02"], rules_path=rules)
    assert [run.status for run in rerun] == ["allocated"]
    current = on_house("SELECT run_id FROM allocation_runs FINAL WHERE superseded_by IS NULL ORDER BY run_id")
    assert (rerun[0].run_id,) in current and len(current) == 3
    store.close()


def test_lines_and_facts_of_every_length_match_by_their_overlap_in_both_engines(
    clickhouse: Any, tmp_path: Path
) -> None:
    # Lines within an hour are matched by the hour, longer ones by the UTC day: each pair must meet exactly once,
    # whatever hours and days the line and the fact straddle (zero-length facts at the charge period's bounds too).
    night = datetime(2025, 2, 3, 22, 0)
    spans = [  # (start, hours) of the capacity lines of one GPU instance
        (night + timedelta(minutes=30), 0.5),
        (night + timedelta(hours=1), 2),
        (night + timedelta(hours=3), 71),
        (night + timedelta(hours=74), 24),
        (night + timedelta(hours=98, minutes=15), 0.25),
    ]
    lines = [
        f"1.5,1.5,1.5,USD,payer,acct-1,AWS,2025-02-01,2025-03-01,{start:%Y-%m-%dT%H:%M:%SZ},"
        f"{start + timedelta(hours=hours):%Y-%m-%dT%H:%M:%SZ},Usage,i-long,{hours},Hrs,{hours},Hrs,,"
        "Amazon Elastic Compute Cloud,USE1-BoxUsage:g5.xlarge"
        for start, hours in spans
    ]
    export = tmp_path / "export.csv"
    export.write_text(HEADER + "\n".join(lines) + "\n")
    shapes = [  # (start, seconds) of the facts
        (night + timedelta(minutes=40), 60),
        (night + timedelta(minutes=55), 600),
        (night + timedelta(minutes=110), 1800),
        (night - timedelta(hours=2), 100 * 3600),
        (night + timedelta(hours=3), 0),
        (night + timedelta(hours=74), 0),
        (night + timedelta(hours=39), 7200),
        (night + timedelta(hours=97, minutes=59), 120),
        (night, 1800),
    ]
    gpu = {"resource_id": "i-long", "resource_type": "gpu_instance", "account_id": "acct-1"}
    facts = [
        fact(trace, trace, "accelerator.seconds", start, seconds, seconds or 5, **gpu)
        for trace, (start, seconds) in enumerate(shapes, start=1)
    ]
    expected = set()
    for trace, (start, seconds) in enumerate(shapes, start=1):
        end = start + timedelta(seconds=seconds)
        for line_start, hours in spans:
            line_end = line_start + timedelta(hours=hours)
            if seconds == 0 and line_start <= start < line_end:
                expected.add((line_start, f"{trace:032x}", Decimal(5)))
            elif seconds and start < line_end and end > line_start:
                overlap = min(end, line_end) - max(start, line_start)
                expected.add((line_start, f"{trace:032x}", Decimal(overlap.total_seconds())))
    assert len(expected) == 12

    rows = _trace_rows_in_both(clickhouse, facts, export, "l.charge_period_start, a.trace_id, a.usage_quantity")
    assert set(rows) == expected and len(rows) == len(expected)


def test_the_scope_conditions_pick_the_same_facts_in_both_engines(clickhouse: Any, tmp_path: Path) -> None:
    # A fact matches a line of its key only in the line's scope: the line's boundary (byte meters), then the same
    # account, a line without one, or a fact without one whose region and resource type do not contradict the
    # line's (docs/billing.md). Every combination, NULLs included, against lines that differ in each.
    header = HEADER.replace("ProviderName,", "ProviderName,RegionId,")
    transfer = {"internet": "USE1-DataTransfer-Out-Bytes", "inter_zone": "USE1-DataTransfer-Regional-Bytes"}
    line_scopes = [  # (sub account, region, boundary): boundary None is a GPU hour, otherwise a transfer line
        *[(account, region, None) for account in ("acct-1", "acct-2", None) for region in ("us-east-1", None)],
        *[(account, "us-east-1", boundary) for account in ("acct-1", None) for boundary in transfer],
    ]
    lines = []
    for account, region, boundary in line_scopes:
        meter = f"{transfer[boundary]},1,GB,1,GB" if boundary else "USE1-BoxUsage:g5.xlarge,1,Hrs,1,Hrs"
        usage_type = meter.split(",")[0]
        lines.append(
            f"1.5,1.5,1.5,USD,payer,{account or ''},AWS,{region or ''},2025-02-01,2025-03-01,"
            f"{HOUR:%Y-%m-%dT%H:%M:%SZ},{HOUR + timedelta(hours=1):%Y-%m-%dT%H:%M:%SZ},Usage,i-scope,"
            f"{','.join(meter.split(',')[1:])},,Amazon Elastic Compute Cloud,{usage_type}"
        )
    export = tmp_path / "export.csv"
    export.write_text(header + "\n".join(lines) + "\n")
    fact_scopes = [
        (meter, account, region, kind, boundary)
        for meter, boundaries in (("accelerator.seconds", [None]), ("egress.bytes", [None, "internet", "inter_zone"]))
        for account in ("acct-1", "acct-3", None)
        for region in ("us-east-1", "us-west-2", None)
        for kind in ("gpu_instance", "data_transfer", None)
        for boundary in boundaries
    ]
    facts = [
        fact(trace, trace, meter, HOUR + timedelta(minutes=5), 60, 60, resource_id="i-scope", account_id=account,
             region=region, resource_type=kind, boundary=boundary)
        for trace, (meter, account, region, kind, boundary) in enumerate(fact_scopes, start=1)
    ]  # fmt: skip

    def in_scope(line: tuple[str | None, ...], facts_scope: tuple[str | None, ...]) -> bool:
        account, region, boundary = line
        meter, fact_account, fact_region, kind, fact_boundary = facts_scope
        rule_kind = "data_transfer" if boundary else "gpu_instance"
        if (meter == "egress.bytes") != bool(boundary) or (boundary and fact_boundary != boundary):
            return False
        return (
            fact_account == account
            or account is None
            or (fact_account is None and (fact_region is None or region is None or fact_region == region)
                and (kind is None or kind == rule_kind))
        )  # fmt: skip

    expected = {
        (*line, f"{trace:032x}")
        for line in line_scopes
        for trace, scope in enumerate(fact_scopes, start=1)
        if in_scope(line, scope)
    }
    assert 40 < len(expected) < len(line_scopes) * len(fact_scopes) / 2

    boundary = """CASE WHEN l.usage_type LIKE '%Out-Bytes' THEN 'internet'
                       WHEN l.usage_type LIKE '%Regional%' THEN 'inter_zone' END"""
    rows = _trace_rows_in_both(clickhouse, facts, export, f"l.sub_account_id, l.region_id, {boundary}, a.trace_id")
    assert set(rows) == expected and len(rows) == len(expected)


def test_a_newer_delivery_supersedes_the_snapshot_in_clickhouse(clickhouse: Any, tmp_path: Path) -> None:
    export = _focus_export(tmp_path)
    first = import_billing(clickhouse, [str(export)])
    assert [s.status for s in first.snapshots] == ["imported"]
    assert [s.status for s in import_billing(clickhouse, [str(export)]).snapshots] == ["unchanged"]
    export.write_text(export.read_text().replace("0.7,0.7,0.7", "0.8,0.8,0.8"))
    second = import_billing(clickhouse, [str(export)])
    assert [(s.status, s.replaced_snapshot_id) for s in second.snapshots] == [
        ("replaced", first.snapshots[0].snapshot_id)
    ]
    rows = clickhouse.query("SELECT snapshot_id, superseded_by FROM billing_snapshots FINAL ORDER BY seq").result_rows
    assert [tuple(row) for row in rows] == [
        (first.snapshots[0].snapshot_id, second.snapshots[0].snapshot_id),
        (second.snapshots[0].snapshot_id, None),
    ]


_CLI = "import sys; from spanledger_collector._cli import main; sys.exit(main(sys.argv[1:]))"


@pytest.mark.parametrize("zone", ["Europe/Berlin", "Asia/Kolkata", "America/Los_Angeles"])
def test_times_are_stored_in_utc_whatever_the_local_time_zone(tmp_path: Path, zone: str) -> None:
    """clickhouse-connect reads a naive time as local: a run's period stored shifted would not be found by its
    period, and every allocation would make a new current run. The CLI in a process of that zone (chdb opens
    one directory per process, so not this one)."""
    store = f"chdb:{tmp_path / 'ch'}"
    environment = {**os.environ, "TZ": zone}

    def cli(*args: str) -> str:
        done = subprocess.run([sys.executable, "-c", _CLI, *args], env=environment, capture_output=True, text=True,
                              timeout=300, check=False)  # fmt: skip
        assert done.returncode == 0, done.stderr
        return done.stdout

    export = _focus_export(tmp_path)  # periods as bare dates ("2025-02-01"): UTC days, not local ones
    cli("billing", "import", str(export), "--store", store, "--quiet")
    assert "billing period 2025-02" in cli("idle", "--store", store)  # the default period: the latest run's
    assert "2025-02: run 1 unchanged" in cli("billing", "allocate", "--store", store)
    export.write_text(export.read_text().replace("0.7,0.7,0.7", "0.8,0.8,0.8"))  # a newer delivery supersedes
    assert "2025-02 AWS|payer: 5 lines, replaced" in cli("billing", "import", str(export), "--store", store)
    assert "billing period 2025-02" in cli("top", "--period", "2025-02", "--store", store)


# --- every answer through the CLI, on both engines ---


@pytest.fixture
def chdb_default(chdb_dir: Path) -> Iterator[Any]:
    """``chdb:DIR`` names the default database: the CLI's store, emptied before and after."""
    client = open_clickhouse(StoreAddress(StoreEngine.CHDB, path=str(chdb_dir)))

    def empty() -> None:
        for (table,) in client.query("SHOW TABLES").result_rows:
            client.command(f"DROP TABLE IF EXISTS `{table}`")

    empty()
    yield client
    empty()
    client.close()


@needs_sample
def test_every_answer_on_chdb_is_the_answer_on_duckdb(
    chdb_default: Any, chdb_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    facts, reads, spans = worked_check(chat_not_measured="accelerator: no_permission")
    duck_path = tmp_path / "spanledger.duckdb"
    store = open_usage_store(duck_path)
    add_usage(store, facts, reads, spans)
    store.close()

    house = ("--store", f"chdb:{chdb_dir}")
    assert main(["billing", "import", str(SAMPLE), "--quiet", *house]) == 0  # creates the schema
    chdb_default.insert(USAGE_FACTS.name, facts, column_names=list(USAGE_FACTS.column_names))
    chdb_default.insert("data_reads", [tuple(read) for read in reads], column_names=list(DataRead._fields))
    # Spans as the OTel Collector's clickhouseexporter writes them (every attribute value is text).
    chdb_default.insert(
        "otel_traces",
        [
            (facts[0].start_time, trace_id, span_id, parent or "", name, "Internal", service,
             {semconv.SPANLEDGER_ACCELERATOR_NOT_MEASURED_REASON: "no_permission"} if unmeasured else {}, end - start)
            for trace_id, span_id, parent, name, service, start, end, unmeasured in zip(
                spans.trace_id, spans.span_id, spans.parent_span_id, spans.name, spans.service,
                spans.start_time_unix_nano, spans.end_time_unix_nano, spans.unmeasured, strict=True)
        ],
        column_names=["Timestamp", "TraceId", "SpanId", "ParentSpanId", "SpanName", "SpanKind", "ServiceName",
                      "SpanAttributes", "Duration"],
    )  # fmt: skip
    assert main(["billing", "allocate", "--force", *house, "--json"]) == 0
    capsys.readouterr()
    duck = ("--store", str(duck_path), "--collector", "none")
    assert main(["billing", "import", str(SAMPLE), "--quiet", *duck]) == 0

    def without_run_ids(value: Any) -> Any:  # ClickHouse ran more runs (allocated at import, then again)
        if isinstance(value, dict):
            return {k: without_run_ids(v) for k, v in value.items() if k not in ("run_id", "x_AllocationRunId")}
        return [without_run_ids(item) for item in value] if isinstance(value, list) else value

    def answer(*args: str) -> tuple[Any, Any]:
        answers = []
        for store_args in (duck, house):
            assert main([*args, *store_args, "--json"]) == 0, capsys.readouterr().err
            answers.append(without_run_ids(json.loads(capsys.readouterr().out)))
        return answers[0], answers[1]

    on_duck, on_house = answer("trace", TRACE[1])
    assert on_house == on_duck
    assert on_house["totals"]["not_measured"] == [{"span": "chat", "reason": "accelerator: no_permission"}]
    assert Decimal(on_house["totals"]["allocated_cost"]).quantize(Decimal("0.000001")) == Decimal("0.135333")
    for by, group in (("cost", "workflow"), ("cost", "tenant"), ("tokens", "model"), ("age", "service"),
                      ("age", "model")):  # fmt: skip
        on_duck, on_house = answer("top", "--by", by, "--group", group, "--period", "2024-09")
        assert on_house == on_duck and on_house["rows"], (by, group)
    on_duck, on_house = answer("idle", "--period", "2024-09")
    assert on_house == on_duck and Decimal(on_house["idle_cost"]) > 0

    rows: list[Any] = []
    for store_args in (duck, house):
        output = tmp_path / f"allocations-{len(rows)}.json"
        assert (
            main(["allocations", "--format", "json", "--output", str(output), "--period", "2024-09", *store_args]) == 0
        )
        rows.append(without_run_ids(json.loads(output.read_text())))
    for document in rows:
        for row in document["rows"]:
            for key in ("AllocatedMethodDetails", "AllocatedTags"):  # the same JSON, written by each engine
                row[key] = row[key] and json.loads(row[key], parse_float=Decimal)
    assert rows[1] == rows[0]
    assert main(["trace", "f" * 32, *house]) == 1
    assert "not found" in capsys.readouterr().err


def test_an_unreachable_or_unnamed_clickhouse_store_is_a_clear_error(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["top", "--store", "clickhouse+http://user:secret@host/db"]) == 1
    error = capsys.readouterr().err
    assert "secret" not in error and "SPANLEDGER_CLICKHOUSE_PASSWORD" in error
    assert main(["idle", "--store", "chdb:"]) == 1
    assert "chdb: needs a directory" in capsys.readouterr().err


def test_a_store_that_is_not_there_or_not_a_store_is_a_clear_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A typo never answers from (or allocates into) a new empty store, and no error is a traceback."""
    missing_chdb, missing_file = tmp_path / "typo", tmp_path / "typo.duckdb"
    assert main(["top", "--store", f"chdb:{missing_chdb}"]) == 1
    assert f"no store at chdb:{missing_chdb}" in capsys.readouterr().err and not missing_chdb.exists()
    assert main(["billing", "allocate", "--store", str(missing_file), "--collector", "none"]) == 1
    assert f"no store at {missing_file}" in capsys.readouterr().err and not missing_file.exists()
    export = _focus_export(tmp_path)
    assert main(["top", "--store", str(export), "--collector", "none"]) == 1
    assert "is not a spanledger store" in capsys.readouterr().err
    assert main(["billing", "import", str(export), "--store", str(export), "--collector", "none"]) == 1
    assert "is not a spanledger store" in capsys.readouterr().err
    assert main(["billing", "import", str(export), "--store", str(tmp_path / "s.duckdb"), "--collector", "none",
                 "--quiet"]) == 0  # fmt: skip
    capsys.readouterr()
    unwritable = tmp_path / "nowhere" / "rows.csv"
    assert main(["allocations", "--store", str(tmp_path / "s.duckdb"), "--collector", "none", "--output",
                 str(unwritable)]) == 1  # fmt: skip
    assert f"--output {unwritable}: No such file or directory" in capsys.readouterr().err
    assert main(["top", "--store", "clickhouse+http://reader@127.0.0.1:1/ledger"]) == 1  # nothing listens there
    assert "cannot open the store clickhouse+http://reader@127.0.0.1:1/ledger" in capsys.readouterr().err
    assert main(["top", "--collector", "http://admin:hunter2@127.0.0.1:1"]) == 1
    error = capsys.readouterr().err
    assert "no collector answers at http://admin:***@127.0.0.1:1" in error and "hunter2" not in error


def test_duckdb_is_unchanged_by_the_engine_layer(db: duckdb.DuckDBPyConnection, tmp_path: Path) -> None:
    # The DuckDB store still takes a plain connection and needs no ClickHouse package.
    import_billing(db, [str(_focus_export(tmp_path))])
    assert {run.billing_period for run in allocate(db)} == {"2025-02"}


def _ledger_spans(client: Any, request: bytes) -> None:
    """The exporter's spans in a table named ``ledger_spans`` (its ``traces_table``) of the default database."""
    rows = OtelTraceRows()
    rows.add_request(ExportTraceServiceRequest.FromString(request))
    client.insert("ledger_spans", rows.columns, column_names=OTEL_TRACES_COLUMNS, column_oriented=True)


@pytest.mark.parametrize("made_by", ["init", "exporter"])
def test_the_cli_reads_the_spans_table_the_store_was_made_with(
    made_by: str, chdb_default: Any, chdb_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """``init --traces-table ledger_spans`` over an OTel Collector's table, or a collector whose clickhouse exporter
    has ``traces_table: ledger_spans``: the CLI, which has neither's settings, finds that table."""
    statements = ClickHouseSchema(DEFAULT_DATABASE, traces_table="ledger_spans").statements()
    if made_by == "init":  # only the OTel Collector's tables, then init over them
        statements = [statement for statement in statements if "ledger_spans" in statement]
    for statement in statements:
        chdb_default.command(statement)
    if made_by == "init":
        init(chdb_default, Names(database=DEFAULT_DATABASE, traces_table="ledger_spans"), catalog_models=False)
    spans = _spans(Node("agent", {}, (Node("chat", OWN),)))
    _ledger_spans(chdb_default, _encoded(spans))
    house = ("--store", f"chdb:{chdb_dir}")
    assert main(["billing", "import", str(_focus_export(tmp_path)), "--quiet", *house]) == 0
    assert main(["trace", f"{spans[0].context.trace_id:032x}", *house, "--json"]) == 0, capsys.readouterr().err
    lineage = json.loads(capsys.readouterr().out)
    assert [node["name"] for node in lineage["tree"]] == ["agent"]
    assert [child["name"] for child in lineage["tree"][0]["children"]] == ["chat"]
    if made_by == "init":  # init's views made the usage facts (the collector's store has none here)
        tokens = {"input_tokens": "100", "cache_read_tokens": "20", "cache_write_tokens": "0", "output_tokens": "30"}
        assert lineage["totals"]["tokens"] == tokens  # input: the uncached part (the meters are disjoint)
    tables = {table for (table,) in chdb_default.query("SHOW TABLES").result_rows}
    assert "otel_traces" not in tables  # billing import made the store's tables beside ledger_spans, not another
    if made_by == "init":  # init's views stay (the store's would read every trace's facts for any window)
        window = chdb_default.query("SHOW CREATE TABLE usage_facts_window").result_rows[0][0]
        assert "usage_reports" in window and "counted_usage_facts" not in window, window
        assert "request_log_position" not in tables  # none of the collector store's own tables
