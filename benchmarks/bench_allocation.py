"""Allocation on DuckDB and on ClickHouse (chdb, in-process): the same facts and bill, timed, rows compared.

For each size, generates (with ``bench_billing.generate``) a Parquet file of ``--facts`` usage facts and a FOCUS
Parquet export of ``--lines`` billing lines, then in a fresh process per engine (so each peak RSS is its own):

1. load the facts into the store (DuckDB file, or chdb through clickhouse-connect, Arrow inserts),
2. ``billing import`` the export (ClickHouse: parsed by DuckDB in memory, inserted as Arrow), then wait for
   ClickHouse's background merges (``settle_s``),
3. allocate the billing period, ``--rounds`` times (each round after the first is a forced reallocation of the same
   period, as ``billing allocate --force`` runs it; ClickHouse's merges of the round before are waited for first),

prints wall and CPU seconds per phase (for the allocation also its kernel CPU and page faults; with several rounds
the median round, and every round's wall and CPU seconds) and the peak RSS, and checks that the allocation rows of
the last run (allocation_lines and allocations, every column but the run id) of the two engines are identical.

    .venv/bin/python benchmarks/bench_allocation.py --facts 1000000 --lines 100000
    .venv/bin/python benchmarks/bench_allocation.py --facts 10000000 --lines 1000000 --rounds 3
    .venv/bin/python benchmarks/bench_allocation.py --scaling --lines 1000000   # 1M, 2.5M, 5M, 10M facts
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, NamedTuple

import duckdb

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_billing import generate

ENGINES = ("duckdb", "chdb")
_LAST_RUN = "(SELECT max(run_id) FROM allocation_runs)"
_LINES = f"SELECT * EXCLUDE (run_id) FROM allocation_lines WHERE run_id = {_LAST_RUN}"
_ROWS = (
    "SELECT * EXCLUDE (run_id, span_ids), list_sort(coalesce(span_ids, [])) AS span_ids FROM allocations "
    f"WHERE run_id = {_LAST_RUN}"
)
_CH_LAST_RUN = "(SELECT max(run_id) FROM allocation_runs FINAL)"


def _open(engine: str, directory: Path) -> Any:
    if engine == "duckdb":
        from spanledger_collector._store import DuckDBStore

        return DuckDBStore(directory / "store.duckdb")
    from spanledger_collector._store._clickhouse_client import open_clickhouse
    from spanledger_collector._store._clickhouse_schema import ClickHouseSchema
    from spanledger_collector._store._location import StoreAddress, StoreEngine

    client = open_clickhouse(StoreAddress(StoreEngine.CHDB, path=str(directory / "chdb"), database="bench"),
                             create_database=True)  # fmt: skip
    for statement in ClickHouseSchema("bench").statements():
        client.command(statement)
    return client


def load_facts(engine: str, store: Any, directory: Path) -> Any:
    """``store`` (from ``_open``) with the generated facts loaded: what the billing functions take (a DuckDB
    cursor, or the clickhouse-connect client)."""
    import pyarrow.parquet as pq
    from spanledger_collector.billing._store_access import store_connection

    facts = pq.read_table(directory / "facts.parquet")
    if engine == "duckdb":
        with store_connection(store) as connection:
            connection.execute("INSERT INTO usage_facts SELECT * FROM facts")
        return store.cursor()
    store.insert_arrow("usage_facts", facts)
    return store


def measure(engine: str, directory: Path, rounds: int) -> dict[str, Any]:
    from spanledger_collector.billing import import_billing

    store = _open(engine, directory)
    started, cpu_started = time.perf_counter(), time.process_time()
    target = load_facts(engine, store, directory)
    loaded, cpu_loaded = time.perf_counter(), time.process_time()
    result = import_billing(target, [str(directory / "export.parquet")])
    imported, cpu_imported = time.perf_counter(), time.process_time()
    settled = settle(engine, target)
    timed: list[Round] = []
    for number in range(rounds):
        if number:
            settled += settle(engine, target)
        timed.append(allocate_round(target, force=bool(number)))
    runs = timed[-1].runs
    median = sorted(timed, key=lambda r: r.wall_s)[len(timed) // 2]
    _export(engine, target, directory / engine)
    figures: dict[str, Any] = {
        "lines": sum(s.row_count for s in result.snapshots),
        "facts_matched": sum(r.matched_fact_count for r in runs),
        "load_facts_s": round(loaded - started, 2),
        "load_facts_cpu_s": round(cpu_loaded - cpu_started, 2),
        "import_s": round(imported - loaded, 2),
        "settle_s": round(settled, 2),
        "allocate_s": median.wall_s,
        # CPU seconds of all threads: the machine is shared, so wall time depends on the neighbours.
        "import_cpu_s": round(cpu_imported - cpu_loaded, 2),
        "allocate_cpu_s": median.cpu_s,
        # Of which in the kernel (page faults among it), and the minor page faults.
        "allocate_sys_cpu_s": median.sys_cpu_s,
        "allocate_page_faults": median.page_faults,
        "peak_rss_mib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
    }
    if rounds > 1:
        figures["allocate_rounds"] = [f"{r.wall_s} / {r.cpu_s}" for r in timed]
    target.close()
    if engine == "duckdb":
        store.close()
    return figures


class Round(NamedTuple):
    """One timed allocation: its runs, wall and CPU seconds, kernel CPU seconds and minor page faults."""

    runs: list[Any]
    wall_s: float
    cpu_s: float
    sys_cpu_s: float
    page_faults: int


def allocate_round(target: Any, *, force: bool) -> Round:
    from spanledger_collector.billing import allocate

    wall, cpu, usage = time.perf_counter(), time.process_time(), resource.getrusage(resource.RUSAGE_SELF)
    runs = allocate(target, force=force)
    after = resource.getrusage(resource.RUSAGE_SELF)
    return Round(
        runs,
        round(time.perf_counter() - wall, 2),
        round(time.process_time() - cpu, 2),
        round(after.ru_stime - usage.ru_stime, 2),
        after.ru_minflt - usage.ru_minflt,
    )


def settle(engine: str, target: Any) -> float:
    """Wait until ClickHouse's background merges are done (seconds waited), so that an allocation timed next does
    not share the two cores with them: the merges of the facts just loaded, or of the 10M rows the last allocation
    inserted (a copied 10M store still merging an earlier run's rows allocated in 57.7-58.7 s, the same store
    merged first in 49.9). DuckDB has no background work."""
    if engine == "duckdb":
        return 0.0
    started = time.perf_counter()
    while target.query("SELECT count() FROM system.merges").result_rows[0][0]:
        time.sleep(0.5)
    return time.perf_counter() - started


def _export(engine: str, target: Any, prefix: Path) -> None:
    """The run's rows as Parquet, for the comparison (ClickHouse: read with FINAL, strings as strings)."""
    if engine == "duckdb":
        target.execute(f"COPY ({_LINES}) TO '{prefix}-lines.parquet' (FORMAT parquet)")
        target.execute(f"COPY ({_ROWS}) TO '{prefix}-rows.parquet' (FORMAT parquet)")
        return
    import pyarrow.parquet as pq

    settings = {"output_format_arrow_string_as_string": 1, "output_format_arrow_low_cardinality_as_dictionary": 0}
    lines = target.query_arrow(
        f"SELECT * EXCEPT (run_id) FROM allocation_lines FINAL WHERE run_id = {_CH_LAST_RUN}", settings=settings
    )
    pq.write_table(lines, f"{prefix}-lines.parquet")
    rows = target.query_arrow(
        "SELECT * EXCEPT (run_id, span_ids), arraySort(span_ids) AS span_ids FROM allocations FINAL "
        f"WHERE run_id = {_CH_LAST_RUN}",
        settings=settings,
    )
    pq.write_table(rows, f"{prefix}-rows.parquet")


def differing_rows(directory: Path) -> dict[str, int]:
    """Rows of either engine the other lacks (EXCEPT ALL both ways; 0 and 0 = identical)."""
    connection = duckdb.connect()
    counts = {}
    for table in ("lines", "rows"):
        duck, house = (f"read_parquet('{directory / f'{engine}-{table}.parquet'}')" for engine in ENGINES)
        (total,) = connection.execute(f"SELECT count(*) FROM {duck}").fetchone() or (0,)
        (missing,) = connection.execute(
            f"SELECT count(*) FROM (SELECT * FROM {duck} EXCEPT ALL SELECT * FROM {house})"
        ).fetchone() or (0,)
        (extra,) = connection.execute(
            f"SELECT count(*) FROM (SELECT * FROM {house} EXCEPT ALL SELECT * FROM {duck})"
        ).fetchone() or (0,)
        counts[f"allocation_{table}"] = int(total)
        counts[f"allocation_{table}_differing"] = int(missing) + int(extra)
    return counts


def run_once(facts: int, lines: int, engines: tuple[str, ...], rounds: int) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="bench-allocation-") as name:
        directory = Path(name)
        started = time.perf_counter()
        generate(directory, facts, lines)
        result: dict[str, Any] = {"facts": facts, "lines": lines, "generate_s": round(time.perf_counter() - started, 1)}
        for engine in engines:
            command = [sys.executable, __file__, "--measure", engine, str(directory), "--rounds", str(rounds)]
            output = subprocess.run(command, check=True, capture_output=True, text=True).stdout
            result[engine] = json.loads(output)
            shutil.rmtree(directory / "chdb", ignore_errors=True)
            (directory / "store.duckdb").unlink(missing_ok=True)
        if len(engines) == 2:
            result.update(differing_rows(directory))
        return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--facts", type=int, default=1_000_000)
    parser.add_argument("--lines", type=int, default=100_000)
    parser.add_argument("--scaling", action="store_true", help="1M, 2.5M, 5M and 10M facts (needs ~10 GiB)")
    parser.add_argument("--engine", choices=ENGINES, action="append", help="only this engine (repeatable)")
    parser.add_argument("--rounds", type=int, default=1, help="allocations per engine (the median is reported)")
    parser.add_argument("--measure", nargs=2, metavar=("ENGINE", "DIR"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.rounds < 1:
        parser.error("--rounds: at least 1")
    if args.measure:
        print(json.dumps(measure(args.measure[0], Path(args.measure[1]), args.rounds)))
        return
    import chdb

    print(
        f"cpus: {os.cpu_count()}, duckdb {duckdb.__version__}, chdb {chdb.__version__}, python {sys.version.split()[0]}"
    )
    sizes = [1_000_000, 2_500_000, 5_000_000, 10_000_000] if args.scaling else [args.facts]
    for facts in sizes:
        print(json.dumps(run_once(facts, args.lines, tuple(args.engine or ENGINES), args.rounds)), flush=True)


if __name__ == "__main__":
    main()
