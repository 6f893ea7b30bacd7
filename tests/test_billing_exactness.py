"""The split against an exact reference in Python integers, with amounts and weights up to the 128-bit range."""

from __future__ import annotations

import tempfile
from datetime import datetime, timedelta
from decimal import Decimal
from pathlib import Path

from fixtures.usage_store import add_usage, fact, open_usage_store
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from spanledger_collector.billing import allocate, import_billing

HOUR = datetime(2025, 2, 10, 5)
HEADER = (
    "BilledCost,EffectiveCost,ListCost,BillingCurrency,BillingAccountId,SubAccountId,ProviderName,"
    "BillingPeriodStart,BillingPeriodEnd,ChargePeriodStart,ChargePeriodEnd,ChargeCategory,ResourceId,PricingQuantity,"
    "PricingUnit,ConsumedQuantity,ConsumedUnit,SkuPriceDetails,x_UsageType\n"
)
MICRO, PICO = 10**6, 10**12

costs = st.decimals(min_value=-(10**9), max_value=10**9, places=12, allow_nan=False, allow_infinity=False)
billed_tokens = st.integers(1, 1_900_000_000)
usage = st.lists(
    st.tuples(st.integers(1, 6), st.decimals(min_value=Decimal("0.001"), max_value=10**8, places=3)),
    min_size=1,
    max_size=12,
)


def _round_half_away(numerator: int, denominator: int) -> int:
    sign = -1 if numerator < 0 else 1
    return sign * ((2 * abs(numerator) + denominator) // (2 * denominator))


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(cost=costs, tokens=billed_tokens, facts=usage)
def test_each_trace_gets_its_exact_largest_remainder_share(
    cost: Decimal, tokens: int, facts: list[tuple[int, Decimal]]
) -> None:
    store = open_usage_store()
    try:
        add_usage(
            store,
            [
                fact(trace, index + 1, "llm.input_tokens", HOUR, 60, quantity, model="model-a", account_id="acct-1")
                for index, (trace, quantity) in enumerate(facts)
            ],
        )
        db = store.cursor()
        details = '"{""ModelId"": ""model-a"", ""TokenDirection"": ""Input""}"'
        with tempfile.TemporaryDirectory() as directory:
            export = Path(directory) / "export.csv"
            export.write_text(
                HEADER + f"{cost},{cost},{cost},USD,payer,acct-1,Cloud,2025-02-01,2025-03-01,"
                f"{HOUR:%Y-%m-%dT%H:%M:%SZ},{HOUR + timedelta(hours=1):%Y-%m-%dT%H:%M:%SZ},Usage,,"
                f"{Decimal(tokens) / MICRO},1000000 Tokens,{tokens},Tokens,{details},\n"
            )
            import_billing(db, [str(export)])
        allocate(db)

        weights: dict[str, int] = {}
        for trace, quantity in facts:
            trace_id = f"{trace:032x}"
            weights[trace_id] = weights.get(trace_id, 0) + int(quantity * MICRO)
        used = sum(weights.values())
        cost_units = int(cost * PICO)
        allocated = _round_half_away(cost_units * used, max(tokens * MICRO, used))
        amount = abs(allocated)
        floors = {trace_id: amount * weight // used for trace_id, weight in weights.items()}
        # Ties of the remainder go to the smaller trace id (the same in every engine).
        ranked = sorted(weights, key=lambda trace_id: (-(amount * weights[trace_id] % used), trace_id))
        extra = set(ranked[: amount - sum(floors.values())])
        expected: dict[str | None, int] = {
            trace_id: (1 if allocated >= 0 else -1) * (floors[trace_id] + (trace_id in extra)) for trace_id in weights
        }
        expected[None] = cost_units - allocated  # the unallocated row

        rows = db.execute("SELECT trace_id, effective_cost, billed_cost, list_cost FROM allocations").fetchall()
        got: dict[str | None, int] = {trace_id: int(effective * PICO) for trace_id, effective, _, _ in rows}
        got.setdefault(None, 0)  # no unallocated row when everything is allocated
        assert got == expected
        assert all(effective == billed == listed for _, effective, billed, listed in rows)
        db.close()
    finally:
        store.close()
