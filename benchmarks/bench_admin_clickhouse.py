"""What a collector's admin API pays per request and per scrape for reading its store through a connection of its
own: opening and closing one (a ``ClickHouseStore`` reader client on chdb, a ``DuckDBStore`` cursor), and one
billing scrape (``spanledger_billing_*``) over a store with one imported billing month and its allocation run
(the two engines' samples are checked equal first).

Rounds alternate the two engines; the figures are medians of process CPU time (chdb's threads included) and of
wall time, in milliseconds.

    .venv/bin/python benchmarks/bench_admin_clickhouse.py --rounds 30
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from spanledger_collector._store import ClickHouseStore, DuckDBStore
from spanledger_collector._store._clickhouse_schema import ClickHouseSchema
from spanledger_collector._store._location import StoreAddress, StoreEngine
from spanledger_collector.billing import allocate, import_billing
from spanledger_collector.billing._store_access import store_connection
from spanledger_collector.billing.metrics import create_collector

HEADER = (
    "BilledCost,EffectiveCost,ListCost,BillingCurrency,BillingAccountId,SubAccountId,ProviderName,"
    "BillingPeriodStart,BillingPeriodEnd,ChargePeriodStart,ChargePeriodEnd,ChargeCategory,ResourceId,PricingQuantity,"
    "PricingUnit,ConsumedQuantity,ConsumedUnit,CommitmentDiscountId,ServiceName,x_UsageType\n"
)


def _export(directory: Path) -> Path:
    """A month of hourly GPU lines on two instances (capacity, idle without facts)."""
    lines = [
        "1.006,1.006,1.2,USD,payer,acct-1,AWS,2025-02-01,2025-03-01,"
        f"2025-02-{1 + hour // 24:02d}T{hour % 24:02d}:00:00Z,"
        f"2025-02-{1 + (hour + 1) // 24:02d}T{(hour + 1) % 24:02d}:00:00Z,Usage,i-gpu{hour % 2},1,Hrs,1,Hrs,,"
        "Amazon Elastic Compute Cloud,USE1-BoxUsage:g5.xlarge"
        for hour in range(24 * 27)
    ]
    path = directory / "export.csv"
    path.write_text(HEADER + "\n".join(lines) + "\n", encoding="utf-8")
    return path


def _median_ms(fn: Callable[[], object], rounds: int) -> tuple[float, float]:
    cpu, wall = [], []
    for _ in range(rounds):
        cpu0, wall0 = time.process_time(), time.perf_counter()
        fn()
        cpu.append(time.process_time() - cpu0)
        wall.append(time.perf_counter() - wall0)
    return statistics.median(cpu) * 1e3, statistics.median(wall) * 1e3


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=30)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as directory:
        root = Path(directory)
        export = _export(root)
        house = ClickHouseStore(
            StoreAddress(StoreEngine.CHDB, path=str(root / "chdb"), database="bench"),
            replica_id="bench",
            schema=ClickHouseSchema("bench"),
        )
        duck = DuckDBStore(str(root / "store.duckdb"))
        stores = {"chdb": house, "duckdb": duck}
        for store in stores.values():
            with store_connection(store) as connection:
                import_billing(connection, [str(export)])
                allocate(connection)
        samples = {name: sorted(map(str, (s for m in create_collector(store).collect() for s in m.samples)))
                   for name, store in stores.items()}  # fmt: skip
        assert samples["chdb"] == samples["duckdb"] and samples["chdb"], samples
        figures: dict[str, dict[str, list[tuple[float, float]]]] = {name: {} for name in stores}
        for _ in range(3):  # alternate the engines, a third of the rounds at a time
            for name, store in stores.items():
                scrape = create_collector(store)
                figures[name].setdefault("connection", []).append(
                    _median_ms(lambda store=store: store.cursor().close(), args.rounds // 3 or 1)
                )
                figures[name].setdefault("scrape", []).append(
                    _median_ms(lambda scrape=scrape: list(scrape.collect()), args.rounds // 3 or 1)
                )
        for name in stores:
            for what, values in figures[name].items():
                cpu = statistics.median(value[0] for value in values)
                wall = statistics.median(value[1] for value in values)
                print(f"{name:7s} {what:10s} cpu {cpu:7.2f} ms  wall {wall:7.2f} ms")
        house.close()
        duck.close()


if __name__ == "__main__":
    main()
