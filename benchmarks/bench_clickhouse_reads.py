"""Reading ``spanledger clickhouse init``'s views as the history grows: the whole views filtered, against their
windowed twins (``usage_facts_window``, ``data_reads_window``), in one process.

chdb (the real ClickHouse engine, in-process) stands for the server, with ``otel_traces`` and its
``otel_traces_trace_id_ts`` bounds table as the OTel Collector's clickhouse exporter creates them, and ``init`` run
over them. Each step inserts ``--days`` days of ``--traces-per-day`` traces (as the exporter writes them, 8,190-span
blocks), each of 5 spans: a plain root, an OpenInference and a Vercel AI SDK span reporting tokens (other
producers: counted once and attributed by walking the trace), a spanledger owner span and a span with an
unattributed ``spanledger.data.read`` event. After each step it reads, ``--rounds`` times each (median wall time):

* the last day's facts (``end_time`` and ``start_time`` against the day), from ``usage_facts`` with a ``WHERE`` and
  from ``usage_facts_window``;
* one trace's facts and data reads (what ``spanledger trace`` reads), the same two ways;
* an empty window (no trace in it): the windowed view's fixed cost, mostly planning its query;
* the day, the trace and the empty window once more as the answers read them: the windowed view's own query
  (``system.tables.as_select``) inline, the window bound as literals;

and checks that every way gives the same rows. A filter on the whole view does not reach into its walk of the
traces, so its cost follows the stored history; the windowed view's should follow the window.

    .venv/bin/python benchmarks/bench_clickhouse_reads.py --steps 5 --rounds 3
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import sys
import tempfile
import time
from datetime import datetime, timedelta, timezone
from importlib import resources
from pathlib import Path
from typing import Any

from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.resource.v1.resource_pb2 import Resource
from opentelemetry.proto.trace.v1.trace_pb2 import ResourceSpans, ScopeSpans, Span
from spanledger import semconv
from spanledger_collector._engine._ddl import Names
from spanledger_collector._engine._install import init
from spanledger_collector._store._clickhouse_client import open_clickhouse
from spanledger_collector._store._clickhouse_schema import WINDOW
from spanledger_collector._store._location import parse_store_address
from spanledger_collector._store._otel_traces import OTEL_TRACES_COLUMNS, OtelTraceRows

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_clickhouse_mv import COMMON, OPENINFERENCE, OWNER, VERCEL, _kv

EXPORTER_TABLES = ("otel_traces.sql", "otel_traces_trace_id_ts.sql", "otel_traces_trace_id_ts_mv.sql")
FIRST_DAY = datetime(2026, 1, 1, tzinfo=timezone.utc)
SPANS_PER_TRACE = 5
BLOCK = 8190
EVER = ("1900-01-01 00:00:00", "2299-12-31 23:59:59")


def _trace_spans(trace: int, start_ns: int) -> list[Span]:
    read_attributes = [_kv(semconv.SPANLEDGER_DATA_SOURCE, "s3://kb/doc"), _kv(semconv.SPANLEDGER_DATA_AGE, 3600.5)]
    read = Span.Event(time_unix_nano=start_ns, name=semconv.EVENT_SPANLEDGER_DATA_READ, attributes=read_attributes)
    kinds: list[tuple[dict[str, Any], list[Span.Event]]] = [
        (COMMON, []), (OPENINFERENCE, []), (VERCEL, []), (OWNER, []), (COMMON, [read])]  # fmt: skip
    root = (trace * 8 + 1).to_bytes(8, "big")
    return [
        Span(trace_id=trace.to_bytes(16, "big"), span_id=(trace * 8 + index + 1).to_bytes(8, "big"),
             parent_span_id=b"" if index == 0 else root, name=f"span-{index}", kind=3,
             start_time_unix_nano=start_ns + index * 1000, end_time_unix_nano=start_ns + index * 1000 + 250_000_000,
             attributes=[_kv(k, v) for k, v in attributes.items()], events=events)
        for index, (attributes, events) in enumerate(kinds)
    ]  # fmt: skip


def day_blocks(day: int, traces: int) -> list[list[list[Any]]]:
    """One day's traces (spread over the day) as the exporter's column blocks of ``BLOCK`` spans."""
    day_ns = int((FIRST_DAY + timedelta(days=day)).timestamp()) * 10**9
    per_block = BLOCK // SPANS_PER_TRACE
    resource = Resource(attributes=[_kv(semconv.SERVICE_NAME, "bench")])
    out = []
    for first in range(0, traces, per_block):
        step_ns = 86_400 * 10**9 // traces
        spans = [span for index in range(first, min(first + per_block, traces))
                 for span in _trace_spans(1 + day * traces + index, day_ns + index * step_ns)]  # fmt: skip
        rows = OtelTraceRows()
        rows.add_request(ExportTraceServiceRequest(
            resource_spans=[ResourceSpans(resource=resource, scope_spans=[ScopeSpans(spans=spans)])]))  # fmt: skip
        out.append(rows.columns)
    return out


def timed(client: Any, query: str, rounds: int) -> tuple[float, list[tuple[Any, ...]]]:
    walls, rows = [], []
    for _ in range(rounds):
        wall = time.perf_counter()
        rows = sorted(tuple(row) for row in client.query(query).result_rows)
        walls.append(time.perf_counter() - wall)
    return statistics.median(walls), rows


def _text(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%d %H:%M:%S.%f")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--steps", type=int, default=5)
    parser.add_argument("--days", type=int, default=10, help="days of traces inserted per step")
    parser.add_argument("--traces-per-day", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    path = tempfile.mkdtemp(prefix="bench-chreads-")
    client = open_clickhouse(parse_store_address(f"chdb:{path}"))
    try:
        client.command("CREATE DATABASE otel")
        for template in EXPORTER_TABLES:
            ddl = (resources.files("spanledger_collector._store") / "sql" / "clickhouse" / template).read_text()
            client.command(ddl.format(database="otel", table="otel_traces", cluster="", engine="MergeTree()", ttl=""))
        names = Names(database="otel")
        init(client, names, catalog_models=False)
        # the windowed views' own queries, which the answers read inline with the window bound (billing/_engine.py)
        own = dict(client.query("SELECT name, as_select FROM system.tables WHERE database = 'otel'").result_rows)
        table = []
        for step in range(args.steps):
            for day in range(step * args.days, (step + 1) * args.days):
                for block in day_blocks(day, args.traces_per_day):
                    client.insert("otel.otel_traces", block, column_names=OTEL_TRACES_COLUMNS, column_oriented=True)
            last_day = FIRST_DAY + timedelta(days=(step + 1) * args.days - 1)
            since, until = _text(last_day), _text(last_day + timedelta(days=1) - timedelta(microseconds=1))
            trace = (1 + ((step + 1) * args.days - 1) * args.traces_per_day).to_bytes(16, "big").hex()
            window = f"(since='{since}', until='{until}', trace='')"
            one = f"(since='{EVER[0]}', until='{EVER[1]}', trace='{trace}')"
            day_filter = f"end_time >= '{since}' AND start_time <= '{until}'"
            reads = "SELECT trace_id, span_id, seq, read_time, source, workflow, tenant FROM otel"
            facts = own["usage_facts_window"]
            queries = {
                "day_whole": f"SELECT count(), sum(quantity) FROM otel.usage_facts WHERE {day_filter}",
                "day_window": f"SELECT count(), sum(quantity) FROM otel.usage_facts_window{window}",
                "day_inline": "SELECT count(), sum(quantity) FROM "
                f"({WINDOW.bound(facts, since=since, until=until, trace='')})",
                "trace_whole": f"SELECT * FROM otel.usage_facts WHERE trace_id = '{trace}'",
                "trace_window": f"SELECT * FROM otel.usage_facts_window{one}",
                "trace_inline": f"SELECT * FROM ({WINDOW.bound(facts, since=EVER[0], until=EVER[1], trace=trace)})",
                "trace_reads_whole": f"{reads}.data_reads WHERE trace_id = '{trace}'",
                "trace_reads_window": f"{reads}.data_reads_window{one}",
                # no trace in it: what the windowed view costs before it reads any (mostly planning its query)
                "empty_window": "SELECT count() FROM otel.usage_facts_window(since='1900-01-01', until='1900-01-01', "
                "trace='')",
                "empty_inline": f"SELECT count() FROM ({WINDOW.bound(facts, since=EVER[0], until=EVER[0], trace='')})",
            }
            spans = client.query("SELECT count() FROM otel.otel_traces").result_rows[0][0]
            row: dict[str, Any] = {"spans": spans}
            results = {}
            for name, query in queries.items():
                row[f"{name}_s"], results[name] = timed(client, query, args.rounds)
            for kind in ("day", "trace", "trace_reads"):
                if results[f"{kind}_whole"] != results[f"{kind}_window"] or not results[f"{kind}_whole"]:
                    raise SystemExit(f"{kind}: the windowed view's rows differ from the whole view's (or none)")
            for kind in ("day", "trace"):
                if results[f"{kind}_inline"] != results[f"{kind}_window"]:
                    raise SystemExit(f"{kind}: the view's query read inline differs from the view's rows")
            row["day_facts"] = results["day_whole"][0][0]
            print(json.dumps(row), flush=True)
            table.append(row)
        print("\n| spans stored | " + " | ".join(queries) + " |")
        print("|" + " --- |" * (len(queries) + 1))
        for row in table:
            print(f"| {row['spans']:,} | " + " | ".join(f"{row[f'{name}_s']:.2f}" for name in queries) + " |")
    finally:
        client.close()
        shutil.rmtree(path, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
