"""Property tests of the allocation: exact sums per line, and no cost across resources or periods."""

from __future__ import annotations

import tempfile
from datetime import datetime, timedelta
from decimal import Decimal
from pathlib import Path

from fixtures.usage_store import add_usage, fact, open_usage_store
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from spanledger_collector.billing import allocate, import_billing

DAY = datetime(2025, 2, 10)
RESOURCES = ("i-0aaa", "i-0bbb", "i-0ccc")
MODELS = ("model-a", "model-b")
HEADER = (
    "BilledCost,EffectiveCost,ListCost,BillingCurrency,BillingAccountId,SubAccountId,ProviderName,"
    "BillingPeriodStart,BillingPeriodEnd,ChargePeriodStart,ChargePeriodEnd,ChargeCategory,ResourceId,PricingQuantity,"
    "PricingUnit,ConsumedQuantity,ConsumedUnit,SkuPriceDetails,x_UsageType\n"
)

money = st.decimals(min_value=-1000, max_value=1000, places=12, allow_nan=False, allow_infinity=False)
lines = st.lists(
    st.tuples(
        st.sampled_from(("gpu", "tokens")),
        st.integers(0, 2),  # resource / model
        st.integers(0, 3),  # hour of the charge period
        money,
        money,
        st.decimals(min_value=Decimal("0.000001"), max_value=4, places=6),  # billed hours or million tokens
    ),
    min_size=1,
    max_size=6,
)
facts = st.lists(
    st.tuples(
        st.sampled_from(("accelerator.seconds", "llm.input_tokens")),
        st.integers(0, 3),  # resource / model (3 = one never billed)
        st.integers(-3600, 5 * 3600),  # start, seconds after the first hour
        st.integers(0, 3 * 3600),  # duration
        st.decimals(min_value=Decimal("0.001"), max_value=10_000_000, places=3),
        st.integers(1, 5),  # trace
        st.sampled_from((None, "acct-1", "acct-2")),
    ),
    max_size=15,
)


def _export(rows: list[tuple[str, int, int, Decimal, Decimal, Decimal]]) -> str:
    text = HEADER
    for kind, key, hour, billed, effective, quantity in rows:
        start = DAY + timedelta(hours=hour)
        end = start + timedelta(hours=1)
        if kind == "gpu":
            resource, unit, consumed, details, usage = RESOURCES[key], "Hours", quantity, "", "BoxUsage:g5.xlarge"
        else:
            model = MODELS[key % 2]
            resource, unit, consumed = "", "1000000 Tokens", quantity * 1_000_000
            details, usage = f'"{{""ModelId"": ""{model}"", ""TokenDirection"": ""Input""}}"', ""
        text += (
            f"{billed},{effective},{billed},USD,payer,acct-1,Cloud,2025-02-01,2025-03-01,{start:%Y-%m-%dT%H:%M:%SZ},"
            f"{end:%Y-%m-%dT%H:%M:%SZ},Usage,{resource},{quantity},{unit},{consumed},Tokens,{details},{usage}\n"
        )
    return text


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(lines=lines, facts=facts)
def test_allocated_plus_unallocated_is_the_line_cost_and_cost_stays_on_its_resource_and_period(
    lines: list[tuple[str, int, int, Decimal, Decimal, Decimal]],
    facts: list[tuple[str, int, int, int, Decimal, int, str | None]],
) -> None:
    store = open_usage_store()
    try:
        usage = []
        for index, (meter, key, offset, seconds, quantity, trace, account) in enumerate(facts):
            where = {"resource_id": f"i-0{'abcd'[key] * 3}"} if meter == "accelerator.seconds" else {
                "model": ("model-a", "model-b", "model-a", "model-z")[key]}  # fmt: skip
            usage.append(
                fact(trace, index + 1, meter, DAY + timedelta(seconds=offset), seconds, quantity, account_id=account,
                     **where)
            )  # fmt: skip
        add_usage(store, usage)
        db = store.cursor()
        with tempfile.TemporaryDirectory() as directory:
            export = Path(directory) / "export.csv"
            export.write_text(_export(lines))
            import_billing(db, [str(export)])
        allocate(db)

        mismatched = db.execute(
            """SELECT l.line_no FROM billing_lines l LEFT JOIN allocations a USING (snapshot_id, line_no)
               GROUP BY l.snapshot_id, l.line_no, l.effective_cost, l.billed_cost, l.list_cost
               HAVING l.effective_cost IS DISTINCT FROM sum(a.effective_cost)
                   OR l.billed_cost IS DISTINCT FROM sum(a.billed_cost)
                   OR l.list_cost IS DISTINCT FROM sum(a.list_cost)"""
        ).fetchall()
        assert mismatched == []

        # Every allocated row's trace has a fact on the line's resource (or model) and meter, in its charge period,
        # from the line's account or with no account.
        strays = db.execute(
            """SELECT a.trace_id, l.line_no FROM allocations a JOIN billing_lines l USING (snapshot_id, line_no)
               WHERE a.trace_id IS NOT NULL AND NOT EXISTS (
                 SELECT 1 FROM usage_facts f
                 WHERE f.trace_id = a.trace_id
                   AND (f.resource_id = l.resource_id AND f.meter = 'accelerator.seconds'
                        OR f.model = json_extract_string(l.sku_price_details, '$.ModelId')
                           AND f.meter = 'llm.input_tokens')
                   AND coalesce(f.account_id, l.sub_account_id) = l.sub_account_id
                   AND (f.start_time < l.charge_period_end AND f.end_time > l.charge_period_start
                        OR f.start_time = f.end_time AND f.start_time >= l.charge_period_start
                           AND f.start_time < l.charge_period_end))"""
        ).fetchall()
        assert strays == []
        db.close()
    finally:
        store.close()
