"""Billing join at scale: allocate N usage facts against M billing lines, end to end from files.

Generates, in a temporary directory, an AWS "FOCUS 1.2 with AWS columns" Parquet export of ``--lines``
billing lines for one month (70% hourly GPU instance-hours, 20% daily Bedrock-style token lines by model
and token class, 10% daily data-transfer lines by instance and boundary) and a Parquet file of
``--facts`` usage facts in the store's ``usage_facts`` shape (70% accelerator-seconds on those instances,
25% tokens, 5% egress bytes; a few percent on resources that are not on the bill). Then, in a fresh
process (so its peak RSS is the join's own):

1. load the facts file into a DuckDB store (what the collector would already hold),
2. ``billing import`` the export (detect, validate, normalise, snapshot),
3. allocate the billing period (classify, match, busy-time union, largest-remainder split, write rows),

and prints the wall time and the CPU time (all threads) of each phase and the process's peak RSS.
``--scaling`` repeats the run for
100k, 250k, 500k and 1M facts.

    .venv/bin/python benchmarks/bench_billing.py [--facts 1000000] [--lines 100000] [--scaling]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import duckdb

HOURS = 720  # September 2024


def generate(directory: Path, facts: int, lines: int, seed: int = 7) -> None:
    connection = duckdb.connect()
    connection.execute(f"SELECT setseed({seed / 100})")
    instances = max(1, round(0.7 * lines / HOURS))
    token_lines = max(120, round(0.2 * lines))
    models = max(1, token_lines // (4 * 30))
    transfer_instances = max(1, round(0.1 * lines / (30 * 3)))
    export = directory / "export.parquet"
    connection.execute(
        f"""COPY (
        WITH gpu AS (
          SELECT printf('i-%016x', i) AS ResourceId, TIMESTAMP '2024-09-01' + INTERVAL (h) HOUR AS ChargePeriodStart,
                 INTERVAL 1 HOUR AS length, 'USE1-BoxUsage:g5.xlarge' AS x_UsageType,
                 CASE WHEN h % 97 = 0 THEN 0.296111 ELSE 1 END AS PricingQuantity, 'Hours' AS PricingUnit,
                 NULL AS SkuPriceDetails, 1.006 AS price
          FROM range({instances}) a(i), range({HOURS}) b(h)),
        tokens AS (
          SELECT NULL, TIMESTAMP '2024-09-01' + INTERVAL (d) DAY, INTERVAL 1 DAY,
                 'USE1-model' || m || '-' || ['input-tokens', 'output-tokens', 'cache-read-input-token-count',
                                               'cache-write-input-token-count'][k + 1],
                 (1000000 + m * 1000 + d)::DECIMAL(18, 6), 'Tokens',
                 '{{"ModelId": "model-' || m || '"}}', 0.000003
          FROM range({models}) a(m), range(4) b(k), range(30) c(d)),
        transfer AS (
          SELECT printf('i-%016x', i), TIMESTAMP '2024-09-01' + INTERVAL (d) DAY, INTERVAL 1 DAY,
                 ['USE1-DataTransfer-Out-Bytes', 'USE1-USW2-AWS-Out-Bytes', 'USE1-DataTransfer-Regional-Bytes'][k + 1],
                 (5 + d)::DECIMAL(18, 6), 'GB', NULL, 0.09
          FROM range({transfer_instances}) a(i), range(3) b(k), range(30) c(d)),
        everything AS (SELECT * FROM gpu UNION ALL SELECT * FROM tokens UNION ALL SELECT * FROM transfer)
        SELECT CAST(round(PricingQuantity * price, 9) AS DECIMAL(38, 12)) AS BilledCost,
               CAST(round(PricingQuantity * price, 9) AS DECIMAL(38, 12)) AS EffectiveCost,
               CAST(round(PricingQuantity * price, 9) AS DECIMAL(38, 12)) AS ListCost,
               'USD' AS BillingCurrency, '999988887777' AS BillingAccountId, '123456789012' AS SubAccountId,
               'AWS' AS ProviderName, 'us-east-1' AS RegionId, TIMESTAMP '2024-09-01' AS BillingPeriodStart,
               TIMESTAMP '2024-10-01' AS BillingPeriodEnd, ChargePeriodStart,
               ChargePeriodStart + length AS ChargePeriodEnd, 'Usage' AS ChargeCategory, ResourceId,
               PricingQuantity, PricingUnit, PricingQuantity AS ConsumedQuantity, PricingUnit AS ConsumedUnit,
               SkuPriceDetails, x_UsageType, 'AmazonEC2' AS x_ServiceCode
        FROM everything) TO '{export}' (FORMAT parquet)"""
    )
    accelerator, tokens = int(facts * 0.70), int(facts * 0.25)
    egress = facts - accelerator - tokens
    connection.execute(
        f"""COPY (
        WITH f AS (
          SELECT i, CASE WHEN i < {accelerator} THEN 'accelerator.seconds'
                         WHEN i < {accelerator + tokens} THEN ['llm.input_tokens', 'llm.output_tokens',
                              'llm.cache_read_tokens', 'llm.cache_write_tokens'][(i % 4) + 1]
                         ELSE 'egress.bytes' END AS meter,
                 TIMESTAMP '2024-09-01'
                   + to_microseconds(CAST(random() * {HOURS - 1} * 3600e6 AS BIGINT)) AS start_time,
                 (1 + random() * 120)::DECIMAL(18, 3) AS seconds,
                 -- ~3% of the facts are on resources that are not on the bill
                 CAST(floor(random() * {instances} * 1.03) AS BIGINT) AS instance,
                 CAST(floor(random() * {models} * 1.03) AS BIGINT) AS model
          FROM range({facts}) t(i))
        SELECT printf('%032x', i // 4) AS trace_id, printf('%016x', i) AS span_id, meter, start_time,
               start_time + to_microseconds(CAST(seconds * 1e6 AS BIGINT)) AS end_time,
               CAST(CASE meter WHEN 'accelerator.seconds' THEN seconds WHEN 'egress.bytes' THEN 1e6 * seconds
                               ELSE 100 + i % 3000 END AS DECIMAL(38, 9)) AS quantity,
               CASE meter WHEN 'accelerator.seconds' THEN 's' WHEN 'egress.bytes' THEN 'By'
                    ELSE '{{token}}' END AS unit,
               CASE WHEN meter LIKE 'llm.%' THEN NULL
                    ELSE printf('i-%016x', CASE WHEN meter = 'egress.bytes' THEN instance % {transfer_instances}
                                                ELSE instance END) END AS resource_id,
               CASE WHEN meter LIKE 'llm.%' THEN 'llm_model' WHEN meter = 'egress.bytes' THEN 'data_transfer'
                    ELSE 'gpu_instance' END AS resource_type,
               'aws' AS provider, CASE WHEN i % 10 = 0 THEN NULL ELSE '123456789012' END AS account_id,
               'us-east-1' AS region, CASE WHEN meter LIKE 'llm.%' THEN 'model-' || model END AS model,
               CASE WHEN meter = 'egress.bytes' THEN 'internet' END AS boundary, NULL AS accelerator_type,
               'workflow-' || (i % 50) AS workflow, 'tenant-' || (i % 500) AS tenant, 'service-' || (i % 7) AS service,
               CAST(quantity * 0.0000004 AS DECIMAL(38, 12)) AS estimated_cost, 'USD' AS currency,
               'bench' AS catalog_version, NULL AS unpriced_reason
        FROM f) TO '{directory / "facts.parquet"}' (FORMAT parquet)"""
    )
    connection.close()
    assert egress >= 0


def measure(directory: Path, collector_store: bool) -> dict[str, float | int]:
    from spanledger_collector._store import DuckDBStore
    from spanledger_collector.billing import allocate, import_billing
    from spanledger_collector.billing._store_access import store_connection

    # The collector's store settings (one thread, 32 MiB), which billing work lifts while it runs.
    limits: dict[str, int] = {"threads": 1, "memory_limit_mib": 32} if collector_store else {}
    store = DuckDBStore(directory / "store.duckdb", **limits)
    with store_connection(store) as connection:
        started = time.perf_counter()
        connection.execute(f"INSERT INTO usage_facts SELECT * FROM read_parquet('{directory / 'facts.parquet'}')")
        loaded, cpu_loaded = time.perf_counter(), time.process_time()
        result = import_billing(connection, [str(directory / "export.parquet")])
        imported, cpu_imported = time.perf_counter(), time.process_time()
        runs = allocate(connection)
        allocated, cpu_allocated = time.perf_counter(), time.process_time()
        rows = connection.execute("SELECT count(*) FROM allocations").fetchone()
    store.close()
    return {
        "lines": sum(s.row_count for s in result.snapshots),
        "facts_matched": sum(r.matched_fact_count for r in runs),
        "allocation_rows": int(rows[0]) if rows else 0,
        "load_facts_s": round(loaded - started, 2),
        "import_s": round(imported - loaded, 2),
        "allocate_s": round(allocated - imported, 2),
        "import_and_allocate_s": round(allocated - loaded, 2),
        "total_s": round(allocated - started, 2),
        # CPU seconds of all threads: the machine is shared, so wall time depends on the neighbours.
        "import_cpu_s": round(cpu_imported - cpu_loaded, 2),
        "allocate_cpu_s": round(cpu_allocated - cpu_imported, 2),
        "peak_rss_mib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
    }


def run_once(facts: int, lines: int, collector_store: bool) -> dict[str, float | int]:
    with tempfile.TemporaryDirectory(prefix="bench-billing-") as directory:
        generate(Path(directory), facts, lines)
        command = [sys.executable, __file__, "--measure", directory]
        if collector_store:
            command.append("--collector-store")
        output = subprocess.run(command, check=True, capture_output=True, text=True).stdout
        return {"facts": facts, **json.loads(output)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--facts", type=int, default=1_000_000)
    parser.add_argument("--lines", type=int, default=100_000)
    parser.add_argument("--scaling", action="store_true", help="also 100k, 250k and 500k facts")
    parser.add_argument(
        "--collector-store",
        action="store_true",
        help="open the store with the running collector's settings (threads: 1, memory_limit_mib: 32)",
    )
    parser.add_argument("--measure", metavar="DIR", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.measure:
        print(json.dumps(measure(Path(args.measure), args.collector_store)))
        return
    print(f"cpus: {os.cpu_count()}, duckdb {duckdb.__version__}, python {sys.version.split()[0]}")
    sizes = [100_000, 250_000, 500_000, args.facts] if args.scaling else [args.facts]
    for facts in sizes:
        print(json.dumps(run_once(facts, args.lines, args.collector_store)), flush=True)


if __name__ == "__main__":
    main()
