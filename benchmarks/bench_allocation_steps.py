"""Where an allocation's time goes: wall and CPU seconds of each SQL step of ``allocate(force=True)``, per engine.

Generates the facts and bill of ``bench_billing.generate``, loads them into a store (DuckDB file, or chdb through
clickhouse-connect; the same loading as ``bench_allocation.py``), imports the bill and allocates once, then reruns
the allocation ``--rounds`` times with each ``Engine.execute`` timed under the name of its SQL file (ClickHouse: each
round once the background merges of the last one's rows are done; merges its own inserts start still count). CPU
seconds are the process's (all threads), so they hold up on a shared box where wall times do not. Prints each step's
median over the rounds, largest first.

``--floor`` (DuckDB): in the last round, just before the trace rows are written, also times what no plan of the
allocation can skip, in the allocation's own connection: the matches' join with its rows counted rather than
stored, one window over the pairs' lines, remainders and traces, the trace rows' SELECT counted, and the stored
insert of those rows (from a temporary copy into a new table). Their sum with the steps that work on the lines alone
is a floor for the allocation on this box.

    .venv/bin/python benchmarks/bench_allocation_steps.py --facts 1000000 --lines 100000 --engine duckdb
    .venv/bin/python benchmarks/bench_allocation_steps.py --facts 10000000 --lines 1000000 --rounds 1 --floor
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

# The steps whose work scales with the billing lines alone, not with the facts or pairs.
_LINE_STEPS = ("lines", "split", "write_lines", "write_unallocated_rows")


def _timed_engine(
    store: Any, timings: dict[str, list[tuple[float, float]]], floor: dict[str, tuple[float, float]] | None = None
) -> Any:
    """The store's engine, its ``sql`` remembering the step's name and its ``execute`` timing the statement;
    ``floor``: filled with :func:`_floor`'s timings just before the trace rows are written."""
    from spanledger_collector.billing._engine import engine_of

    engine = engine_of(store)
    sql, execute = engine.sql, engine.execute
    step = ["ensure_billing_tables"]
    texts: dict[str, str] = {}

    def named_sql(name: str, **params: object) -> str:
        step[0] = name.removeprefix("allocation/")
        texts[step[0]] = str(sql(name, **params))
        return texts[step[0]]

    def timed_execute(text: str) -> None:
        if floor is not None and not floor and step[0] == "write_trace_rows":
            wall, cpu = time.perf_counter(), time.process_time()
            floor.update(_floor(store, texts["matches"], text))
            floor["(all of it)"] = (time.perf_counter() - wall, time.process_time() - cpu)
        wall, cpu = time.perf_counter(), time.process_time()
        execute(text)
        timings[step[0]].append((time.perf_counter() - wall, time.process_time() - cpu))

    engine.sql, engine.execute = named_sql, timed_execute
    return engine


def _floor(connection: Any, matches: str, write_trace_rows: str) -> dict[str, tuple[float, float]]:
    """Wall and CPU seconds of the work no plan can skip, in the allocation's connection (its temporary tables)."""

    def timed(sql: str) -> tuple[float, float]:
        wall, cpu = time.perf_counter(), time.process_time()
        connection.execute(sql).fetchall()
        return time.perf_counter() - wall, time.process_time() - cpu

    select = matches[matches.index(" AS\nWITH") + len(" AS") :]
    rows = write_trace_rows[write_trace_rows.index("SELECT") :]
    found = {
        "join, rows counted": timed(f"SELECT count(*), sum(weight) FROM ({select})"),
        "window over the pairs": timed(
            "SELECT count(*), sum(r) FROM (SELECT row_number() OVER (PARTITION BY line_id ORDER BY weight % 1000 "
            "DESC, trace_id) AS r FROM al_matches)"
        ),
        "trace rows' SELECT, counted": timed(f"SELECT count(*) FROM ({rows})"),
    }
    connection.execute(f"CREATE TEMP TABLE floor_rows AS {rows}")
    connection.execute("CREATE TABLE floor_insert AS SELECT * FROM allocations LIMIT 0")
    found["stored insert of the trace rows"] = timed("INSERT INTO floor_insert SELECT * FROM floor_rows")
    connection.execute("DROP TABLE floor_insert")
    connection.execute("DROP TABLE floor_rows")
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--facts", type=int, default=1_000_000)
    parser.add_argument("--lines", type=int, default=100_000)
    parser.add_argument("--engine", choices=ENGINES, default="duckdb")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--floor", action="store_true", help="DuckDB: also time what no plan can skip (above)")
    args = parser.parse_args()
    if args.floor and args.engine != "duckdb":
        parser.error("--floor: DuckDB only")
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
        floor: dict[str, tuple[float, float]] = {}
        for round_no in range(args.rounds):
            settled.append(settle(args.engine, target))
            timings: dict[str, list[tuple[float, float]]] = defaultdict(list)
            last = round_no == args.rounds - 1
            engine = _timed_engine(target, timings, floor if args.floor and last else None)
            wall, cpu = time.perf_counter(), time.process_time()
            allocate(engine, force=True)
            wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
            spent = floor.pop("(all of it)", (0.0, 0.0))  # the floor's own queries ran inside this allocation
            totals.append((wall - spent[0], cpu - spent[1]))
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
    if floor:
        # the timed allocation's own run (the last round), not the medians: the floor was measured inside it
        lines = {step: steps[step][-1] for step in _LINE_STEPS if step in steps}
        print(f"\nfloor, in the last round (its allocate: {totals[-1][0]:.2f} s / {totals[-1][1]:.2f} CPU-s)")
        for label, (wall, cpu) in [*floor.items(), *lines.items()]:
            print(f"{label:32} {wall:8.2f} {cpu:8.2f}")
        print(f"{'floor (sum)':32} {sum(w for w, _ in [*floor.values(), *lines.values()]):8.2f} "
              f"{sum(c for _, c in [*floor.values(), *lines.values()]):8.2f}")  # fmt: skip


if __name__ == "__main__":
    main()
