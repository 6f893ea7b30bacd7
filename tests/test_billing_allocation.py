"""Billing join: allocation of real and built billing lines to usage facts (worked check, CUR 2.0, FOCUS examples)."""

from __future__ import annotations

import gzip
import json
from datetime import datetime, timedelta
from decimal import Decimal
from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.csv as pa_csv
import pyarrow.parquet as pq
import pytest
from fixtures.usage_store import add_usage, fact
from spanledger_collector._store import DuckDBStore
from spanledger_collector.billing import BillingError, CurrencyMixError, allocate, import_billing
from spanledger_collector.billing._rules import load_rules

BILLING_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "billing"
SAMPLE = BILLING_DATA / "focus_sample_1000.csv"
SPEC_EXAMPLES = BILLING_DATA / "focus-spec-examples"
needs_sample = pytest.mark.skipif(
    not SAMPLE.exists(), reason=f"FOCUS sample data not found at {BILLING_DATA} (clone shared/ beside the repo)"
)

G5_INSTANCE = "i-09ba12e1l5743720b"
G5_ACCOUNT = "11353890204"
G5_HOUR = datetime(2024, 9, 21, 1, 0)


def _rows_of_line(db: duckdb.DuckDBPyConnection, where: str, params: list[object]) -> list[tuple[object, ...]]:
    return db.execute(
        f"""SELECT a.trace_id, a.effective_cost, a.billed_cost, a.list_cost, a.usage_quantity, a.unallocated_reason
            FROM allocations a JOIN allocation_runs r USING (run_id) JOIN billing_lines l USING (snapshot_id, line_no)
            WHERE r.superseded_by IS NULL AND {where}
            ORDER BY a.trace_id NULLS LAST""",
        params,
    ).fetchall()


def _assert_every_line_sums(db: duckdb.DuckDBPyConnection) -> None:
    bad = db.execute(
        """SELECT l.snapshot_id, l.line_no, l.effective_cost, sum(a.effective_cost), l.billed_cost, sum(a.billed_cost),
                  l.list_cost, sum(a.list_cost)
           FROM billing_lines l JOIN allocations a USING (snapshot_id, line_no)
           JOIN allocation_runs r ON r.run_id = a.run_id AND r.superseded_by IS NULL
           GROUP BY ALL
           HAVING l.effective_cost <> sum(a.effective_cost) OR l.billed_cost <> sum(a.billed_cost)
               OR l.list_cost <> sum(a.list_cost)"""
    ).fetchall()
    assert bad == []


@needs_sample
def test_worked_check_g5_line_of_the_sample_comes_out_exactly(
    store: DuckDBStore, db: duckdb.DuckDBPyConnection
) -> None:
    # Three traces busy 300, 200 and 100 GPU-seconds on the g5.4xlarge billed 0.296111 h in 2024-09-21 01:00-02:00.
    start = G5_HOUR + timedelta(minutes=2)
    common = {"resource_id": G5_INSTANCE, "resource_type": "gpu_instance", "account_id": G5_ACCOUNT,
              "region": "us-east-1", "currency": "USD", "workflow": "summarise", "tenant": "acme"}  # fmt: skip
    add_usage(
        store,
        [
            fact(1, 1, "accelerator.seconds", start, 300, 300, estimated_cost=Decimal("0.135333333333"), **common),
            fact(2, 2, "accelerator.seconds", start + timedelta(seconds=400), 200, 200, **common),
            fact(3, 3, "accelerator.seconds", start + timedelta(seconds=700), 100, 100, **common),
        ],
    )
    import_billing(db, [str(SAMPLE)])
    runs = allocate(db)
    assert {run.billing_period for run in runs} == {"2024-09", "2024-10"}

    rows = _rows_of_line(db, "l.resource_id = ? AND l.charge_period_start = ?", [G5_INSTANCE, G5_HOUR])
    line = db.execute(
        "SELECT billed_cost, pricing_quantity FROM billing_lines WHERE resource_id = ? AND charge_period_start = ?",
        [G5_INSTANCE, G5_HOUR],
    ).fetchone()
    assert line == (Decimal("0.480884264000"), Decimal("0.296111000000"))
    micro = Decimal("0.000001")
    assert [(r[0], r[2].quantize(micro)) for r in rows] == [
        (f"{1:032x}", Decimal("0.135333")),
        (f"{2:032x}", Decimal("0.090222")),
        (f"{3:032x}", Decimal("0.045111")),
        (None, Decimal("0.210218")),
    ]
    assert rows[-1][5] == "idle"
    assert rows[-1][4].quantize(Decimal(1)) == 466  # idle GPU-seconds
    assert sum(r[2] for r in rows) == Decimal("0.480884264")  # exactly the line, not approximately
    _assert_every_line_sums(db)


@needs_sample
def test_sample_lines_without_usage_are_idle_untracked_or_without_a_usage_model(db: duckdb.DuckDBPyConnection) -> None:
    import_billing(db, [str(SAMPLE)])
    allocate(db)
    reasons = dict(
        db.execute(
            """SELECT al.kind, list(DISTINCT a.unallocated_reason) FROM allocations a
               JOIN allocation_lines al USING (run_id, snapshot_id, line_no) GROUP BY al.kind"""
        ).fetchall()
    )
    assert reasons == {"capacity": ["idle"], "consumption": ["untracked"], "none": ["no_usage_model"],
                       "shared": ["no_usage_model"]}  # fmt: skip
    # The sample's EffectiveCost is BilledCost rounded to whole dollars; without a commitment BilledCost is used.
    flagged = db.execute(
        "SELECT count(*) FROM billing_lines WHERE cost_flags LIKE 'effective_cost_not_amortised%'"
    ).fetchone()
    assert flagged is not None and flagged[0] > 500
    credit = db.execute(
        """SELECT a.unallocated_reason, a.billed_cost
           FROM allocations a JOIN billing_lines l USING (snapshot_id, line_no) WHERE l.charge_category = 'Credit'"""
    ).fetchall()
    assert credit and credit[0][0] == "no_usage_model" and credit[0][1] < 0
    _assert_every_line_sums(db)


@needs_sample
def test_concurrent_requests_are_not_double_counted_and_oversubscription_is_flagged(
    store: DuckDBStore, db: duckdb.DuckDBPyConnection
) -> None:
    # Two requests run at the same time for 600 s on the one GPU: busy is 600 s, not 1200 s.
    common = {"resource_id": G5_INSTANCE, "resource_type": "gpu_instance", "account_id": G5_ACCOUNT}
    add_usage(
        store,
        [
            fact(1, 1, "accelerator.seconds", G5_HOUR, 600, 600, **common),
            fact(2, 2, "accelerator.seconds", G5_HOUR, 600, 600, **common),
            # 3000 s busy on an instance billed 0.683889 h (2462 s) in that hour: more than the bill.
            fact(3, 3, "accelerator.seconds", datetime(2024, 9, 13, 20, 0), 3000, 3000,
                 resource_id="i-02619lael51119a85", region="us-east-1"),
        ],
    )  # fmt: skip
    import_billing(db, [str(SAMPLE)])
    allocate(db)
    busy = db.execute(
        """SELECT al.busy_seconds, al.capacity_seconds, al.flags FROM allocation_lines al
           JOIN billing_lines l USING (snapshot_id, line_no) WHERE l.resource_id = ? AND l.charge_period_start = ?""",
        [G5_INSTANCE, G5_HOUR],
    ).fetchone()
    assert busy == (Decimal("600"), Decimal("1065.9996"), None)
    rows = _rows_of_line(db, "l.resource_id = ? AND l.charge_period_start = ?", [G5_INSTANCE, G5_HOUR])
    assert abs(rows[0][1] - rows[1][1]) <= Decimal("1e-12")  # equal shares, up to the last unit
    over = db.execute(
        """SELECT al.flags, al.busy_seconds, al.capacity_seconds, al.allocated_billed_cost, al.billed_cost,
                  al.unallocated_reason
           FROM allocation_lines al JOIN billing_lines l USING (snapshot_id, line_no)
           WHERE l.resource_id = 'i-02619lael51119a85'"""
    ).fetchone()
    assert over == ("oversubscribed", Decimal("3000"), Decimal("2462.0004"), Decimal("1.110635736"),
                    Decimal("1.110635736"), None)  # fmt: skip
    _assert_every_line_sums(db)


@needs_sample
def test_a_fact_of_another_account_or_outside_the_charge_period_gets_nothing(
    store: DuckDBStore, db: duckdb.DuckDBPyConnection
) -> None:
    add_usage(
        store,
        [
            fact(1, 1, "accelerator.seconds", G5_HOUR, 60, 60, resource_id=G5_INSTANCE, account_id="999999999999"),
            fact(2, 2, "accelerator.seconds", G5_HOUR - timedelta(hours=2), 60, 60, resource_id=G5_INSTANCE),
            # No account on the span: matched by region + type + name.
            fact(3, 3, "accelerator.seconds", G5_HOUR, 60, 60, resource_id=G5_INSTANCE, region="us-east-1",
                 resource_type="gpu_instance"),
            fact(4, 4, "accelerator.seconds", G5_HOUR, 60, 60, resource_id=G5_INSTANCE, region="eu-west-1"),
        ],
    )  # fmt: skip
    import_billing(db, [str(SAMPLE)])
    allocate(db)
    traces = db.execute("SELECT DISTINCT trace_id FROM allocations WHERE trace_id IS NOT NULL").fetchall()
    assert traces == [(f"{3:032x}",)]


@needs_sample
def test_a_fact_straddling_two_charge_periods_is_prorated(store: DuckDBStore, db: duckdb.DuckDBPyConnection) -> None:
    # i-02619lael51119a85 is billed 0.683889 h in 2024-09-13 20:00-21:00; a fact from 20:30 to 21:30 overlaps half.
    add_usage(
        store,
        [fact(1, 1, "accelerator.seconds", datetime(2024, 9, 13, 20, 30), 3600, 3600,
              resource_id="arn:aws:ec2:us-east-1:11353890204:instance/i-02619lael51119a85")],
    )  # fmt: skip
    import_billing(db, [str(SAMPLE)])
    allocate(db)
    rows = db.execute(
        """SELECT a.usage_quantity FROM allocations a JOIN billing_lines l USING (snapshot_id, line_no)
           WHERE l.resource_id = 'i-02619lael51119a85' AND a.trace_id IS NOT NULL"""
    ).fetchall()
    assert rows == [(Decimal("1800"),)]


def _cur_table() -> pa.Table:
    """A CUR 2.0 export (documented column names) with SageMaker hosting, Bedrock tokens and data transfer."""
    account, payer = "123456789012", "999988887777"
    endpoint = f"arn:aws:sagemaker:us-east-1:{account}:endpoint/chat-endpoint"
    haiku = "arn:aws:bedrock:us-east-1::foundation-model/anthropic.claude-3-haiku-20240307-v1:0"
    hour, day = datetime(2025, 3, 10, 14), datetime(2025, 3, 10)
    lines = [
        # type, start, end, product, usage type, operation, resource, amount, unit, unblended, public, description
        ("Usage", hour, hour + timedelta(hours=1), "AmazonSageMaker", "USE1-Host:ml.g5.xlarge", "RunInstance",
         endpoint, "1", "Hrs", "1.408", "1.408", "$1.408 per Hosting ml.g5.xlarge hour in US East (N. Virginia)"),
        ("Usage", day, day + timedelta(days=1), "AmazonBedrock", "USE1-Claude3Haiku-input-tokens", "InvokeModel",
         haiku, "10000", "tokens", "0.0025", "0.0025", "Claude 3 Haiku input tokens"),
        ("Usage", day, day + timedelta(days=1), "AmazonBedrock", "USE1-Claude3Haiku-output-tokens", "InvokeModel",
         haiku, "2000", "tokens", "0.0025", "0.0025", "Claude 3 Haiku output tokens"),
        ("Usage", day, day + timedelta(days=1), "AmazonBedrock", "USE1-Claude3Haiku-cache-read-input-token-count",
         "InvokeModel", haiku, "40000", "tokens", "0.001", "0.001", "Claude 3 Haiku cache read input tokens"),
        ("Usage", hour, hour + timedelta(hours=1), "AmazonEC2", "USE1-DataTransfer-Out-Bytes", "RunInstances",
         "i-0abc123def4567890", "2", "GB", "0.18", "0.18", "$0.09 per GB - first 10 TB / month data transfer out"),
        ("Usage", hour, hour + timedelta(hours=1), "AmazonEC2", "USE1-USW2-AWS-Out-Bytes", "RunInstances",
         "i-0abc123def4567890", "1", "GB", "0.02", "0.02", "$0.02 per GB - US East to US West data transfer"),
        ("Tax", datetime(2025, 3, 1), datetime(2025, 4, 1), "AmazonSageMaker", "", "", "", "1", "", "0.25", "0",
         "Tax for product code AmazonSageMaker"),
    ]  # fmt: skip
    columns: dict[str, list[object]] = {name: [] for name in (
        "identity_line_item_id", "identity_time_interval", "bill_bill_type", "bill_billing_period_start_date",
        "bill_billing_period_end_date", "bill_payer_account_id", "line_item_usage_account_id",
        "line_item_line_item_type", "line_item_usage_start_date", "line_item_usage_end_date", "line_item_product_code",
        "line_item_usage_type", "line_item_operation", "line_item_resource_id", "line_item_usage_amount",
        "pricing_unit", "line_item_unblended_cost", "line_item_currency_code", "line_item_line_item_description",
        "pricing_public_on_demand_cost", "product_region_code", "product_instance_type")}  # fmt: skip
    for index, (
        kind,
        start,
        end,
        product,
        usage_type,
        operation,
        resource,
        amount,
        unit,
        cost,
        public,
        text,
    ) in enumerate(lines):
        values = (f"line-{index}", f"{start:%Y-%m-%dT%H:%M:%SZ}/{end:%Y-%m-%dT%H:%M:%SZ}", "Anniversary",
                  datetime(2025, 3, 1), datetime(2025, 4, 1), payer, account, kind, start, end, product, usage_type,
                  operation, resource, Decimal(amount), unit, Decimal(cost), "USD", text, Decimal(public),
                  "us-east-1", "ml.g5.xlarge" if "Host" in usage_type else None)  # fmt: skip
        for name, value in zip(columns, values, strict=True):
            columns[name].append(value)
    table = pa.table(
        {
            name: pa.array(values, pa.decimal128(38, 12)) if isinstance(values[0], Decimal) else pa.array(values)
            for name, values in columns.items()
        }
    )
    product = pa.array(
        [[("region", "us-east-1"), ("product_name", str(p))] for p in columns["line_item_product_code"]],
        pa.map_(pa.string(), pa.string()),
    )
    tags = pa.array([[("user:team", "ml")] for _ in lines], pa.map_(pa.string(), pa.string()))
    return table.append_column("product", product).append_column("resource_tags", tags)


def test_cur2_export_with_sagemaker_bedrock_and_data_transfer(
    store: DuckDBStore, db: duckdb.DuckDBPyConnection, tmp_path: Path
) -> None:
    export = tmp_path / "cur2" / "data" / "BILLING_PERIOD=2025-03"
    export.mkdir(parents=True)
    pq.write_table(_cur_table(), export / "report-00001.snappy.parquet")
    hour, day = datetime(2025, 3, 10, 14), datetime(2025, 3, 10, 9)
    endpoint = "arn:aws:sagemaker:us-east-1:123456789012:endpoint/chat-endpoint"
    haiku = "anthropic.claude-3-haiku-20240307-v1:0"
    add_usage(
        store,
        [
            # Endpoint occupancy: two overlapping requests then one alone -> union 1500 s of the billed 3600 s.
            fact(1, 1, "endpoint.seconds", hour, 600, 600, resource_id=endpoint, workflow="chat", tenant="a"),
            fact(2, 2, "endpoint.seconds", hour + timedelta(seconds=300), 600, 600, resource_id=endpoint,
                 workflow="chat", tenant="b"),
            fact(3, 3, "endpoint.seconds", hour + timedelta(seconds=1800), 600, 600, resource_id=endpoint,
                 workflow="chat", tenant="a"),
            fact(4, 4, "llm.input_tokens", day, 2, 3000, model=haiku, workflow="rag"),
            fact(5, 5, "llm.input_tokens", day, 2, 5000, model=haiku, workflow="rag"),
            fact(4, 4, "llm.output_tokens", day, 2, 1000, model=haiku, workflow="rag"),
            fact(5, 5, "llm.output_tokens", day, 2, 1500, model=haiku, workflow="rag"),
            fact(6, 6, "egress.bytes", hour, 1, 1_000_000_000, resource_id="i-0abc123def4567890", boundary="internet"),
            fact(6, 7, "egress.bytes", hour, 1, 500_000_000, resource_id="i-0abc123def4567890",
                 boundary="inter_region"),
        ],
    )  # fmt: skip
    result = import_billing(db, [str(tmp_path / "cur2")])
    assert [s.row_count for s in result.snapshots] == [7]
    allocate(db)

    def shares(usage_type: str) -> list[tuple[object, ...]]:
        return [(r[0], r[2], r[5]) for r in _rows_of_line(db, "l.usage_type = ?", [usage_type])]

    t = [f"{n:032x}" for n in range(7)]
    # 1.408 x 1500/3600 busy (the union of the three occupancies), split 600:600:600; the last unit of
    # 10^-12 goes by largest remainder.
    assert shares("USE1-Host:ml.g5.xlarge") == [
        (t[1], Decimal("0.195555555556"), None),
        (t[2], Decimal("0.195555555556"), None),
        (t[3], Decimal("0.195555555555"), None),
        (None, Decimal("0.821333333333"), "idle"),
    ]
    assert shares("USE1-Claude3Haiku-input-tokens") == [
        (t[4], Decimal("0.00075"), None),
        (t[5], Decimal("0.00125"), None),
        (None, Decimal("0.0005"), "untracked"),
    ]
    assert shares("USE1-Claude3Haiku-output-tokens") == [
        (t[4], Decimal("0.001"), None),
        (t[5], Decimal("0.0015"), None),
    ]
    flags = db.execute(
        "SELECT al.flags FROM allocation_lines al JOIN billing_lines l USING (snapshot_id, line_no) "
        "WHERE l.usage_type = ?",
        ["USE1-Claude3Haiku-output-tokens"],
    ).fetchone()
    assert flags == ("overcount",)
    assert shares("USE1-Claude3Haiku-cache-read-input-token-count") == [(None, Decimal("0.001"), "untracked")]
    assert shares("USE1-DataTransfer-Out-Bytes") == [
        (t[6], Decimal("0.09"), None),
        (None, Decimal("0.09"), "untracked"),
    ]
    assert shares("USE1-USW2-AWS-Out-Bytes") == [(t[6], Decimal("0.01"), None), (None, Decimal("0.01"), "untracked")]
    assert db.execute(
        "SELECT a.unallocated_reason FROM allocations a JOIN billing_lines l USING (snapshot_id, line_no) "
        "WHERE l.charge_category = 'Tax'"
    ).fetchall() == [("no_usage_model",)]
    _assert_every_line_sums(db)


def test_cur2_gzip_csv_export_is_read_like_parquet(db: duckdb.DuckDBPyConnection, tmp_path: Path) -> None:
    table = _cur_table()
    as_text = {
        name: [
            json.dumps(dict(value)) if isinstance(value, list) else value for value in table.column(name).to_pylist()
        ]
        for name in table.column_names
    }
    export = tmp_path / "cur2-00001.csv.gz"
    with gzip.open(export, "wb") as target:
        pa_csv.write_csv(pa.table({name: pa.array([None if v is None else str(v) for v in values], pa.string())
                                   for name, values in as_text.items()}), target)  # fmt: skip
    result = import_billing(db, [str(export)])
    assert [(s.scope, s.row_count) for s in result.snapshots] == [("AWS|999988887777|2025-03-01T00:00:00Z", 7)]
    lines = db.execute(
        "SELECT usage_type, model, billed_cost, json_extract_string(tags, '$.\"user:team\"') FROM billing_lines "
        "WHERE usage_type LIKE '%input-tokens'"
    ).fetchall()
    assert lines == [
        ("USE1-Claude3Haiku-input-tokens", "anthropic.claude-3-haiku-20240307-v1:0", Decimal("0.0025"), "ml")
    ]


@pytest.mark.skipif(not SPEC_EXAMPLES.exists(), reason=f"FOCUS spec examples not found at {SPEC_EXAMPLES}")
def test_focus_prompt_caching_example_splits_each_token_sku_by_its_own_meter(
    store: DuckDBStore, db: duckdb.DuckDBPyConnection
) -> None:
    month = datetime(2025, 1, 15)
    model = "solora-reasoning-pro"
    add_usage(
        store,
        [
            fact(1, 1, "llm.input_tokens", month, 3, 400_000, model=model),
            fact(1, 1, "llm.cache_write_tokens", month, 3, 2_000_000, model=model),
            fact(1, 1, "llm.cache_read_tokens", month, 3, 6_000_000, model=model),
            fact(1, 1, "llm.output_tokens", month, 3, 1_500_000, model=model),
        ],
    )
    import_billing(db, [str(SPEC_EXAMPLES / "draft_ai_prompt_caching_a.csv")])
    allocate(db)
    rows = db.execute(
        """SELECT l.sku_meter, a.trace_id IS NOT NULL, a.billed_cost FROM allocations a
           JOIN billing_lines l USING (snapshot_id, line_no) ORDER BY l.line_no, a.trace_id NULLS LAST"""
    ).fetchall()
    assert rows == [
        ("Input Tokens", True, Decimal("1.2")),  # 400k of the 500k billed uncached input tokens
        ("Input Tokens", False, Decimal("0.3")),
        ("Cache Write Input Tokens", True, Decimal("7.5")),
        ("Cache Read Input Tokens", True, Decimal("1.8")),  # 6M of 8M
        ("Cache Read Input Tokens", False, Decimal("0.6")),
        ("Output Tokens", True, Decimal("22.5")),
    ]


@pytest.mark.skipif(not SPEC_EXAMPLES.exists(), reason=f"FOCUS spec examples not found at {SPEC_EXAMPLES}")
def test_focus_third_party_model_served_by_a_cloud(store: DuckDBStore, db: duckdb.DuckDBPyConnection) -> None:
    model = "aura-web.solora-jupiter-5"
    add_usage(
        store,
        [
            fact(1, 1, "llm.input_tokens", datetime(2025, 5, 3), 1, 1_000_000, model=model),
            fact(1, 1, "llm.output_tokens", datetime(2025, 5, 3), 1, 500_000, model=model),
        ],
    )
    import_billing(db, [str(SPEC_EXAMPLES / "draft_csp_served_third_party_model.csv")])
    allocate(db)
    rows = db.execute(
        """SELECT l.sku_meter, a.unallocated_reason, a.effective_cost FROM allocations a
           JOIN billing_lines l USING (snapshot_id, line_no) ORDER BY l.line_no, a.trace_id NULLS LAST"""
    ).fetchall()
    assert rows == [
        ("Input Tokens", None, Decimal("0.75")),
        ("Input Tokens", "untracked", Decimal("1.5")),
        ("Output Tokens", None, Decimal("2.25")),
    ]
    provider = db.execute("SELECT DISTINCT provider_name FROM billing_lines").fetchall()
    assert provider == [("Aura Web",)]


@pytest.mark.skipif(not SPEC_EXAMPLES.exists(), reason=f"FOCUS spec examples not found at {SPEC_EXAMPLES}")
def test_a_rule_on_a_column_of_its_own_classifies_by_it(
    store: DuckDBStore, db: duckdb.DuckDBPyConnection, tmp_path: Path
) -> None:
    # Lines are classified once per distinct combination of the columns the rules read: model and SkuMeter here.
    model = "aura-web.solora-jupiter-5"
    add_usage(store, [fact(1, 1, "llm.input_tokens", datetime(2025, 5, 3), 1, 1_000_000, model=model)])
    rules_path = tmp_path / "rules.yaml"
    rules_path.write_text(
        "rules:\n  - id: jupiter.input\n    kind: consumption\n    fact_meters: [llm.input_tokens]\n"
        "    match_on: model\n    when: [{model: 'jupiter', sku_meter: '(?i)^input'}]\n"
    )
    assert load_rules(rules_path).line_columns() == ("model", "sku_meter")
    import_billing(db, [str(SPEC_EXAMPLES / "draft_csp_served_third_party_model.csv")])
    allocate(db, rules_path=rules_path)
    rows = db.execute(
        """SELECT l.sku_meter, al.rule_id, al.kind, a.unallocated_reason, a.effective_cost FROM allocations a
           JOIN allocation_lines al USING (run_id, snapshot_id, line_no)
           JOIN billing_lines l USING (snapshot_id, line_no) ORDER BY l.line_no, a.trace_id NULLS LAST"""
    ).fetchall()
    assert rows == [
        ("Input Tokens", "jupiter.input", "consumption", None, Decimal("0.75")),
        ("Input Tokens", "jupiter.input", "consumption", "untracked", Decimal("1.5")),
        ("Output Tokens", None, "none", "no_usage_model", Decimal("2.25")),
    ]


@pytest.mark.skipif(not SPEC_EXAMPLES.exists(), reason=f"FOCUS spec examples not found at {SPEC_EXAMPLES}")
def test_late_correction_is_booked_in_june_and_allocated_to_may_usage(
    store: DuckDBStore, db: duckdb.DuckDBPyConnection, tmp_path: Path
) -> None:
    # The correction (ChargeClass Correction) for usage of 2025-05-01 00:00-01:00 arrives in the June period.
    correction = SPEC_EXAMPLES / "draft_correction_closed_period_late_arriving_usage_delta.csv"
    with_resource = tmp_path / "correction.csv"
    with_resource.write_text(correction.read_text().replace(",2025-05-01T01:00:00Z,,", ",2025-05-01T01:00:00Z,vm-1,"))
    add_usage(store, [fact(1, 1, "endpoint.seconds", datetime(2025, 5, 1, 0, 30), 60, 60, resource_id="vm-1")])
    rules = tmp_path / "rules.yaml"
    rules.write_text(
        "rules:\n  - id: vm.hours\n    kind: capacity\n    fact_meters: [endpoint.seconds]\n"
        "    capacity_per: instance\n    when: [{pricing_unit: '^Hours$'}]\n"
    )
    import_billing(db, [str(with_resource)], currency="USD")
    runs = allocate(db, rules_path=rules)
    assert [(run.billing_period, run.matched_fact_count) for run in runs] == [("2025-06", 1)]
    rows = db.execute(
        """SELECT l.charge_class, a.trace_id, a.billed_cost, a.list_cost FROM allocations a
           JOIN billing_lines l USING (snapshot_id, line_no) ORDER BY a.trace_id NULLS LAST"""
    ).fetchall()
    # 1000 hours billed, 60 s used: 1500 x 60 / 3.6M.
    assert rows == [
        ("Correction", f"{1:032x}", Decimal("0.025"), Decimal("0.033333333333")),
        ("Correction", None, Decimal("1499.975"), Decimal("1999.966666666667")),
    ]


@needs_sample
def test_late_spans_trigger_a_new_run_and_the_old_run_is_kept(
    store: DuckDBStore, db: duckdb.DuckDBPyConnection
) -> None:
    import_billing(db, [str(SAMPLE)])
    first = allocate(db, ["2024-09"])
    assert [run.status for run in first] == ["allocated"]
    assert [run.status for run in allocate(db, ["2024-09"])] == ["unchanged"]
    add_usage(store, [fact(1, 1, "accelerator.seconds", G5_HOUR, 60, 60, resource_id=G5_INSTANCE)])
    second = allocate(db, ["2024-09"])
    assert second[0].status == "allocated" and second[0].run_id != first[0].run_id
    runs = db.execute("SELECT run_id, superseded_by FROM allocation_runs ORDER BY run_id").fetchall()
    assert runs == [(first[0].run_id, second[0].run_id), (second[0].run_id, None)]
    kept = db.execute("SELECT count(*) FROM allocations WHERE run_id = ?", [first[0].run_id]).fetchone()
    assert kept is not None and kept[0] > 900


def test_a_period_with_two_currencies_is_an_error_that_says_so(db: duckdb.DuckDBPyConnection, tmp_path: Path) -> None:
    header = "BilledCost,BillingCurrency,BillingAccountId,BillingPeriodStart,BillingPeriodEnd,ChargePeriodStart,"
    header += "ChargePeriodEnd,ChargeCategory\n"
    for name, currency in (("usd.csv", "USD"), ("eur.csv", "EUR")):
        (tmp_path / name).write_text(
            header + f"1.5,{currency},{name},2025-01-01,2025-02-01,2025-01-01,2025-01-02,Usage\n"
        )
    import_billing(db, [str(tmp_path / "usd.csv"), str(tmp_path / "eur.csv")])
    with pytest.raises(CurrencyMixError, match="2025-01 mixes currencies EUR and USD"):
        allocate(db)


def test_an_unknown_period_is_an_error(db: duckdb.DuckDBPyConnection) -> None:
    with pytest.raises(BillingError, match="2031-01: no billing lines"):
        allocate(db, ["2031-01"])
