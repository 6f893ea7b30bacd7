"""Where an allocation's time goes: wall and CPU seconds of each SQL step of ``allocate(force=True)``, per engine.

Generates the facts and bill of ``bench_billing.generate``, loads them into a store (DuckDB file, or chdb through
clickhouse-connect; the same loading as ``bench_allocation.py``), imports the bill and allocates once, then reruns
the allocation ``--rounds`` times with each ``Engine.execute`` timed under the name of its SQL file (ClickHouse: each
round once the background merges of the last one's rows are done; merges its own inserts start still count). CPU
seconds are the process's (all threads), so they hold up on a shared box where wall times do not. Prints each step's
median over the rounds, largest first.

    .venv/bin/python benchmarks/bench_allocation_steps.py --facts 1000000 --lines 100000 --engine duckdb
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_allocation import ENGINES, _open, load_facts, settle
from bench_billing import generate


def _timed_engine(store: Any, timings: dict[str, list[tuple[float, float]]]) -> Any:
    """The store's engine, its ``sql`` remembering the step's name and its ``execute`` timing the statement."""
    from spanledger_collector.billing._engine import engine_of

    engine = engine_of(store)
    sql, execute = engine.sql, engine.execute
    step = ["ensure_billing_tables"]

    def named_sql(name: str, **params: object) -> str:
        step[0] = name.removeprefix("allocation/")
        return str(sql(name, **params))

    def timed_execute(text: str) -> None:
        wall, cpu = time.perf_counter(), time.process_time()
        execute(text)
        timings[step[0]].append((time.perf_counter() - wall, time.process_time() - cpu))

    engine.sql, engine.execute = named_sql, timed_execute
    return engine


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--facts", type=int, default=1_000_000)
    parser.add_argument("--lines", type=int, default=100_000)
    parser.add_argument("--engine", choices=ENGINES, default="duckdb")
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    from spanledger_collector.billing import allocate, import_billing

    with tempfile.TemporaryDirectory(prefix="bench-allocation-steps-") as name:
        directory = Path(name)
        generate(directory, args.facts, args.lines)
        target = load_facts(args.engine, _open(args.engine, directory), directory)
        import_billing(target, [str(directory / "export.parquet")])
        allocate(target)
        totals: list[tuple[float, float]] = []
        steps: dict[str, list[tuple[float, float]]] = defaultdict(list)
        settled: list[float] = []
        for _ in range(args.rounds):
            settled.append(settle(args.engine, target))
            timings: dict[str, list[tuple[float, float]]] = defaultdict(list)
            wall, cpu = time.perf_counter(), time.process_time()
            allocate(_timed_engine(target, timings), force=True)
            totals.append((time.perf_counter() - wall, time.process_time() - cpu))
            for step, runs in timings.items():
                steps[step].append((sum(run[0] for run in runs), sum(run[1] for run in runs)))
        target.close()
    print(f"{args.engine}, {args.facts:,} facts x {args.lines:,} lines, median of {args.rounds} rounds"
          f" (each after the engine's merges: {', '.join(f'{s:.1f}' for s in settled)} s waited)")  # fmt: skip
    print(f"{'step':24} {'wall s':>8} {'CPU s':>8}")
    for step, runs in sorted(steps.items(), key=lambda item: -statistics.median(run[1] for run in item[1])):
        print(f"{step:24} {statistics.median(r[0] for r in runs):8.2f} {statistics.median(r[1] for r in runs):8.2f}")
    print(f"{'allocate (all)':24} {statistics.median(t[0] for t in totals):8.2f} "
          f"{statistics.median(t[1] for t in totals):8.2f}")  # fmt: skip


if __name__ == "__main__":
    main()
