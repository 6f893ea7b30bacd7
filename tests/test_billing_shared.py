"""Shared billing lines (NAT, load balancers, support): ``shared_policy`` none (default) and proportional."""

from __future__ import annotations

import json
import tempfile
from datetime import datetime, timedelta
from decimal import Decimal
from importlib import resources
from pathlib import Path

import duckdb
import pytest
from fixtures.usage_store import add_usage, fact, open_usage_store
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from spanledger_collector._cli import main
from spanledger_collector._store import DuckDBStore, UsageFact
from spanledger_collector.billing import allocate, allocation_rows, import_billing, trace_lineage
from spanledger_collector.billing.api import handle_request

DAY = datetime(2025, 2, 10)
HEADER = (
    "BilledCost,EffectiveCost,ListCost,BillingCurrency,BillingAccountId,SubAccountId,ProviderName,"
    "BillingPeriodStart,BillingPeriodEnd,ChargePeriodStart,ChargePeriodEnd,ChargeCategory,ResourceId,PricingQuantity,"
    "PricingUnit,ConsumedQuantity,ConsumedUnit,CommitmentDiscountId,ServiceName,x_UsageType\n"
)
USAGE_TYPES = {"gpu": "USE1-BoxUsage:g5.xlarge", "nat": "USE1-NatGateway-Hours", "lb": "USE1-LoadBalancerUsage",
               "support": "Dollar", "tax": "Tax"}  # fmt: skip
SERVICES = {"gpu": "Amazon Elastic Compute Cloud", "support": "AWS Support (Business)"}
TRACE = [f"{n:032x}" for n in range(8)]
# Ties of the largest remainder go to the smaller trace id; the exact cents are checked by sums and bounds.
TICK = Decimal("0.000000000001")


def _line(
    kind: str,
    *,
    account: str,
    effective: str,
    billed: str | None = None,
    listed: str | None = None,
    resource: str = "",
    hour: int = 0,
    month: int = 2,
) -> str:
    start = DAY.replace(month=month) + timedelta(hours=hour)
    end = start + timedelta(hours=1)
    commitment = "cd-1" if billed is not None and billed != effective else ""
    category = "Tax" if kind == "tax" else "Usage"
    return (
        f"{billed or effective},{effective},{listed or effective},USD,{account},acct-1,Cloud,"
        f"2025-{month:02d}-01,2025-{month + 1:02d}-01,{start:%Y-%m-%dT%H:%M:%SZ},{end:%Y-%m-%dT%H:%M:%SZ},"
        f"{category},{resource},1,Hours,1,Hours,{commitment},{SERVICES.get(kind, '')},{USAGE_TYPES[kind]}\n"
    )


def _gpu_facts(trace: int, resource: str, seconds: int, hour: int = 0, month: int = 2) -> UsageFact:
    start = DAY.replace(month=month) + timedelta(hours=hour)
    return fact(trace, 100 + trace, "accelerator.seconds", start, seconds, seconds, resource_id=resource,
                account_id="acct-1", workflow=f"workflow-{trace}")  # fmt: skip


def _rules_file(directory: Path, policy: str) -> Path:
    packaged = resources.files("spanledger_collector.billing").joinpath("rules.yaml").read_text(encoding="utf-8")
    assert "\nshared_policy: none\n" in packaged
    path = directory / f"rules-{policy}.yaml"
    path.write_text(packaged.replace("\nshared_policy: none\n", f"\nshared_policy: {policy}\n"), encoding="utf-8")
    return path


def _import(db: duckdb.DuckDBPyConnection, directory: Path, lines: list[str]) -> None:
    export = directory / "export.csv"
    export.write_text(HEADER + "".join(lines), encoding="utf-8")
    import_billing(db, [str(export)])


def _rows(db: duckdb.DuckDBPyConnection, usage_type: str, account: str) -> list[tuple[object, ...]]:
    return db.execute(
        """SELECT a.trace_id, a.effective_cost, a.billed_cost, a.list_cost, a.unallocated_reason
           FROM allocations a JOIN allocation_runs r USING (run_id) JOIN billing_lines l USING (snapshot_id, line_no)
           WHERE r.superseded_by IS NULL AND l.usage_type = ? AND l.billing_account_id = ?
           ORDER BY a.trace_id NULLS LAST""",
        [usage_type, account],
    ).fetchall()


def _direct_effective(db: duckdb.DuckDBPyConnection, account: str) -> dict[str, Decimal]:
    rows = db.execute(
        """SELECT a.trace_id, sum(a.effective_cost) FROM allocations a JOIN allocation_runs r USING (run_id)
           JOIN allocation_lines al USING (run_id, snapshot_id, line_no)
           JOIN billing_lines l USING (snapshot_id, line_no)
           WHERE r.superseded_by IS NULL AND al.kind IN ('capacity', 'consumption') AND a.trace_id IS NOT NULL
             AND l.billing_account_id = ?
           GROUP BY a.trace_id""",
        [account],
    ).fetchall()
    return {trace: Decimal(total) for trace, total in rows}


def _assert_every_line_sums(db: duckdb.DuckDBPyConnection) -> None:
    mismatched = db.execute(
        """SELECT l.line_no FROM billing_lines l
           LEFT JOIN (SELECT a.* FROM allocations a JOIN allocation_runs r USING (run_id)
                      WHERE r.superseded_by IS NULL) a USING (snapshot_id, line_no)
           GROUP BY l.snapshot_id, l.line_no, l.effective_cost, l.billed_cost, l.list_cost
           HAVING l.effective_cost IS DISTINCT FROM sum(a.effective_cost)
               OR l.billed_cost IS DISTINCT FROM sum(a.billed_cost)
               OR l.list_cost IS DISTINCT FROM sum(a.list_cost)"""
    ).fetchall()
    assert mismatched == []


def _two_accounts(store: DuckDBStore, db: duckdb.DuckDBPyConnection, directory: Path) -> None:
    """payer-1: a GPU hour used 1800, 900 and 300 s at once by traces 1-3, and a NAT line;
    payer-2: trace 4 on another GPU and a NAT line; payer-3: a load balancer line and nothing directly allocated."""
    add_usage(
        store,
        [_gpu_facts(1, "i-0aaa", 1800), _gpu_facts(2, "i-0aaa", 900), _gpu_facts(3, "i-0aaa", 300),
         _gpu_facts(4, "i-0bbb", 600)],
    )  # fmt: skip
    _import(
        db,
        directory,
        [
            _line("gpu", account="payer-1", resource="i-0aaa", effective="10.00"),
            _line("gpu", account="payer-2", resource="i-0bbb", effective="3.00"),
            _line("nat", account="payer-1", resource="nat-0a", effective="1.000000000001", billed="1.2",
                  listed="1.7777777777"),
            _line("nat", account="payer-2", resource="nat-0b", effective="0.045", billed="0.05", listed="0.06"),
            _line("lb", account="payer-3", resource="lb-0c", effective="0.5"),
        ],
    )  # fmt: skip


def test_shared_lines_stay_unallocated_by_default(store: DuckDBStore, db: duckdb.DuckDBPyConnection) -> None:
    with tempfile.TemporaryDirectory() as directory:
        _two_accounts(store, db, Path(directory))
    allocate(db)
    _assert_every_line_sums(db)
    assert _rows(db, USAGE_TYPES["nat"], "payer-1") == [
        (None, Decimal("1.000000000001"), Decimal("1.2"), Decimal("1.7777777777"), "no_usage_model")
    ]
    flags = db.execute("SELECT DISTINCT flags FROM allocation_lines WHERE kind = 'shared'").fetchall()
    assert flags == [("shared_policy_none",)]
    methods = {row["AllocatedMethodId"] for row in allocation_rows(db, period="2025-02")["rows"]}
    assert methods == {"spanledger.allocation.v2.capacity", "spanledger.allocation.v2.shared"}


def test_proportional_policy_splits_a_shared_line_by_directly_allocated_cost_within_its_account(
    store: DuckDBStore, db: duckdb.DuckDBPyConnection, tmp_path: Path
) -> None:
    _two_accounts(store, db, tmp_path)
    allocate(db, rules_path=_rules_file(tmp_path, "proportional"))
    _assert_every_line_sums(db)

    direct = _direct_effective(db, "payer-1")
    # Concurrent on one GPU: 1800 busy seconds of 3600 allocated, split 1800 : 900 : 300.
    assert direct == {TRACE[1]: Decimal(3), TRACE[2]: Decimal("1.5"), TRACE[3]: Decimal("0.5")}
    rows = _rows(db, USAGE_TYPES["nat"], "payer-1")
    assert [row[0] for row in rows] == [TRACE[1], TRACE[2], TRACE[3]]  # payer-2's trace 4 gets nothing of it
    total = sum(direct.values())
    for column, cost in ((1, Decimal("1.000000000001")), (2, Decimal("1.2")), (3, Decimal("1.7777777777"))):
        assert sum(Decimal(row[column]) for row in rows) == cost
        for row in rows:
            assert abs(Decimal(row[column]) - cost * direct[row[0]] / total) < TICK
    assert all(row[4] is None for row in rows)

    # payer-2's NAT line goes whole to its only trace; payer-3's load balancer has no directly allocated cost.
    assert _rows(db, USAGE_TYPES["nat"], "payer-2") == [
        (TRACE[4], Decimal("0.045"), Decimal("0.05"), Decimal("0.06"), None)
    ]
    assert _rows(db, USAGE_TYPES["lb"], "payer-3") == [
        (None, Decimal("0.5"), Decimal("0.5"), Decimal("0.5"), "no_usage_model")
    ]

    answer = allocation_rows(db, period="2025-02")
    shared = [row for row in answer["rows"] if row["x_TraceId"] == TRACE[4] and row["ResourceId"] == "nat-0b"]
    assert [row["AllocatedMethodId"] for row in shared] == ["spanledger.allocation.v2.proportional_to_allocated_cost"]
    details = json.loads(shared[0]["AllocatedMethodDetails"])
    assert details["x_SharedPolicy"] == "proportional"
    assert details["Elements"][0]["UsageUnit"] == "USD"
    assert Decimal(str(details["Elements"][0]["UsageQuantity"])) == Decimal("0.5")  # trace 4's GPU share
    assert details["Elements"][0]["AllocatedRatio"] == 1
    flags = db.execute("SELECT DISTINCT flags FROM allocation_lines WHERE kind = 'shared'").fetchall()
    assert flags == [("shared_policy_proportional",)]


def test_a_shared_line_without_a_billing_account_is_split_over_the_whole_period_only(
    store: DuckDBStore, db: duckdb.DuckDBPyConnection, tmp_path: Path
) -> None:
    add_usage(store, [_gpu_facts(1, "i-0aaa", 3600), _gpu_facts(2, "i-0bbb", 3600),
                      _gpu_facts(3, "i-0aaa", 3600, month=3)])  # fmt: skip
    _import(
        db,
        tmp_path,
        [
            _line("gpu", account="payer-1", resource="i-0aaa", effective="3"),
            _line("gpu", account="payer-2", resource="i-0bbb", effective="1"),
            _line("lb", account="", resource="lb-0c", effective="2"),
            _line("gpu", account="payer-1", resource="i-0aaa", effective="7", month=3),
        ],
    )
    allocate(db, rules_path=_rules_file(tmp_path, "proportional"))
    _assert_every_line_sums(db)
    rows = db.execute(
        """SELECT a.trace_id, a.effective_cost FROM allocations a JOIN allocation_runs r USING (run_id)
           JOIN billing_lines l USING (snapshot_id, line_no)
           WHERE r.superseded_by IS NULL AND l.usage_type = ? ORDER BY a.trace_id""",
        [USAGE_TYPES["lb"]],
    ).fetchall()
    assert rows == [(TRACE[1], Decimal("1.5")), (TRACE[2], Decimal("0.5"))]  # March's trace 3 gets nothing


@pytest.mark.parametrize("policy", ["none", "proportional"])
def test_support_and_tax_lines_are_shared_lines(
    store: DuckDBStore, db: duckdb.DuckDBPyConnection, tmp_path: Path, policy: str
) -> None:
    add_usage(store, [_gpu_facts(1, "i-0aaa", 1800), _gpu_facts(2, "i-0aaa", 600)])
    _import(
        db,
        tmp_path,
        [
            _line("gpu", account="payer-1", resource="i-0aaa", effective="8"),
            _line("support", account="payer-1", effective="0.8"),
            _line("tax", account="payer-1", effective="-0.08"),
        ],
    )
    allocate(db, rules_path=_rules_file(tmp_path, policy))
    _assert_every_line_sums(db)
    kinds = db.execute("SELECT rule_id, kind FROM allocation_lines ORDER BY line_no").fetchall()
    assert kinds == [("aws.ec2.accelerator_instance", "capacity"), ("shared.support", "shared"),
                     ("shared.tax", "shared")]  # fmt: skip
    for kind, cost in (("support", Decimal("0.8")), ("tax", Decimal("-0.08"))):
        rows = [(trace, effective) for trace, effective, *_ in _rows(db, USAGE_TYPES[kind], "payer-1")]
        if policy == "none":
            assert rows == [(None, cost)]
        else:  # the GPU hour gave traces 1 and 2 $3 and $1 (1800 s busy of 3600, split 1800 : 600)
            assert rows == [(TRACE[1], cost * 3 / 4), (TRACE[2], cost / 4)]
    if policy == "proportional":  # the trace answer lists them with the resources it paid for
        lineage = trace_lineage(db, TRACE[1])
        resources = {row["resource"]: Decimal(row["effective_cost"]) for row in lineage["resources"]}
        assert resources == {"i-0aaa": Decimal(3), "shared.support": Decimal("0.6"), "shared.tax": Decimal("-0.06")}


def test_billing_import_takes_a_rules_file_and_a_bad_policy_is_an_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "store.duckdb"
    file_store = open_usage_store(path)
    add_usage(file_store, [_gpu_facts(1, "i-0aaa", 1800), _gpu_facts(2, "i-0aaa", 600)])
    file_store.close()
    export = tmp_path / "export.csv"
    export.write_text(
        HEADER
        + _line("gpu", account="payer-1", resource="i-0aaa", effective="4")
        + _line("nat", account="payer-1", resource="nat-0a", effective="0.4"),
        encoding="utf-8",
    )
    local = ("--store", str(path), "--collector", "none")

    bad = _rules_file(tmp_path, "by_headcount")
    assert main(["billing", "import", str(export), "--rules", str(bad), "--quiet", *local]) == 1
    assert "shared_policy must be one of ['none', 'proportional'], not 'by_headcount'" in capsys.readouterr().err

    rules = _rules_file(tmp_path, "proportional")
    assert main(["billing", "import", str(export), "--rules", str(rules), "--quiet", *local]) == 0
    connection = duckdb.connect(str(path))
    try:
        _assert_every_line_sums(connection)
        assert _rows(connection, USAGE_TYPES["nat"], "payer-1") == [
            (TRACE[1], Decimal("0.3"), Decimal("0.3"), Decimal("0.3"), None),
            (TRACE[2], Decimal("0.1"), Decimal("0.1"), Decimal("0.1"), None),
        ]
    finally:
        connection.close()


def test_the_json_api_takes_a_rules_file_on_import_and_allocate(
    store: DuckDBStore, db: duckdb.DuckDBPyConnection, tmp_path: Path
) -> None:
    add_usage(store, [_gpu_facts(1, "i-0aaa", 1800)])
    export = tmp_path / "export.csv"
    export.write_text(
        HEADER
        + _line("gpu", account="payer-1", resource="i-0aaa", effective="4")
        + _line("nat", account="payer-1", resource="nat-0a", effective="0.4"),
        encoding="utf-8",
    )
    proportional = json.dumps({"paths": [str(export)], "rules": str(_rules_file(tmp_path, "proportional"))})
    within = {"import_directories": (str(tmp_path),)}
    assert handle_request("POST", "/api/billing/import", {}, proportional.encode(), store, **within)[0] == 200
    assert _rows(db, USAGE_TYPES["nat"], "payer-1") == [(TRACE[1], *[Decimal("0.4")] * 3, None)]

    none = json.dumps({"force": True, "rules": str(_rules_file(tmp_path, "none"))})
    assert handle_request("POST", "/api/billing/allocate", {}, none.encode(), store, **within)[0] == 200
    assert _rows(db, USAGE_TYPES["nat"], "payer-1") == [(None, *[Decimal("0.4")] * 3, "no_usage_model")]
    bad = json.dumps({"rules": str(_rules_file(tmp_path, "evenly"))})
    status, answer = handle_request("POST", "/api/billing/allocate", {}, bad.encode(), store, **within)
    assert status == 400 and "shared_policy must be one of" in answer["error"]


def test_the_policy_is_named_in_rules_help(capsys: pytest.CaptureFixture[str]) -> None:
    for command in ("import", "allocate"):
        with pytest.raises(SystemExit):
            main(["billing", command, "--help"])
        assert "shared_policy" in capsys.readouterr().out


money = st.decimals(min_value=-1000, max_value=1000, places=12, allow_nan=False, allow_infinity=False)
mostly_positive = st.one_of(st.decimals(min_value=0, max_value=1000, places=12), money)
lines = st.lists(
    st.tuples(
        st.sampled_from(("gpu", "gpu", "nat", "lb")),
        st.sampled_from(("payer-1", "payer-2", "")),
        st.integers(0, 2),  # resource
        st.integers(0, 2),  # hour of the charge period
        mostly_positive,  # EffectiveCost
        money,
        money,
    ),
    min_size=1,
    max_size=8,
)
facts = st.lists(
    st.tuples(
        st.integers(0, 3),  # resource (3 = one never billed)
        st.integers(-1800, 3 * 3600),  # start, seconds after the first hour
        st.integers(1, 2 * 3600),  # duration
        st.integers(1, 7),  # trace
    ),
    min_size=1,
    max_size=12,
)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(lines=lines, facts=facts)
def test_proportional_policy_allocated_plus_unallocated_is_every_line_cost(
    lines: list[tuple[str, str, int, int, Decimal, Decimal, Decimal]], facts: list[tuple[int, int, int, int]]
) -> None:
    store = open_usage_store()
    try:
        add_usage(
            store,
            [fact(trace, index + 1, "accelerator.seconds", DAY + timedelta(seconds=offset), seconds, seconds,
                  resource_id=f"i-0{'abcd'[key] * 3}", account_id="acct-1")
             for index, (key, offset, seconds, trace) in enumerate(facts)],
        )  # fmt: skip
        db = store.cursor()
        with tempfile.TemporaryDirectory() as directory:
            _import(
                db,
                Path(directory),
                [_line(kind, account=account, resource=f"i-0{'abc'[key] * 3}", hour=hour, effective=str(effective),
                       billed=str(billed), listed=str(listed))
                 for kind, account, key, hour, effective, billed, listed in lines],
            )  # fmt: skip
            allocate(db, rules_path=_rules_file(Path(directory), "proportional"))
        _assert_every_line_sums(db)
        # A shared line's traces got cost directly from a line of its account (any account when it has none).
        strays = db.execute(
            """SELECT a.trace_id FROM allocations a JOIN allocation_lines al USING (run_id, snapshot_id, line_no)
               JOIN billing_lines l USING (snapshot_id, line_no)
               WHERE al.kind = 'shared' AND a.trace_id IS NOT NULL AND NOT EXISTS (
                 SELECT 1 FROM allocations d JOIN allocation_lines dl USING (run_id, snapshot_id, line_no)
                 JOIN billing_lines dll USING (snapshot_id, line_no)
                 WHERE d.trace_id = a.trace_id AND dl.kind = 'capacity'
                   AND (l.billing_account_id IS NULL OR dll.billing_account_id = l.billing_account_id))"""
        ).fetchall()
        assert strays == []
        db.close()
    finally:
        store.close()
