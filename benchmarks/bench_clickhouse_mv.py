"""Usage extraction inside ClickHouse: spans inserted into ``otel_traces`` with ``spanledger clickhouse init``'s
materialized views active, against the same inserts into a bare ``otel_traces`` (no views), in one process.

chdb (the real ClickHouse engine, in-process) stands for the server. The spans are rows as the OTel Collector's
clickhouse exporter writes them (``OtelTraceRows``), built once before timing: traces of 10 spans, of which 3
are spanledger owner spans (tokens; every tenth with accelerator-seconds), 2 report tokens in another producer's
dialect (OpenInference, Vercel AI SDK), 1 has a data-read event and the rest are plain spans, 15-20 attributes
each. Inserts are blocks of ``--block`` rows (the exporter's batch processor sends 8,192 by default; ClickHouse's
own collector examples set ``send_batch_size: 100000``). Each block is inserted two ways:

* ``native``: as the exporter sends it, a Native-format block (encoded by the engine before timing), through
  ``raw_insert``: the timed CPU is the engine's alone (parse, views, parts), what a server spends;
* ``rows``: the Python values through clickhouse-connect's ``insert``, which encodes them in Python first (the
  client's CPU counts too: in production that encoding runs in the collector, not in ClickHouse).

Rounds alternate the two tables; the figures are the median spans/s over rounds of wall time and of process CPU
time (chdb's threads included), and the facts the views wrote are checked. ``--small N`` then inserts one trace N
times into each table (native): the median CPU of such an insert is the fixed cost per insert block (mostly
planning the views' queries). ``--setting NAME=VALUE`` adds a ClickHouse setting to every insert (as a settings
profile of the exporter's user would on a server).

    .venv/bin/python benchmarks/bench_clickhouse_mv.py --spans 200000 --rounds 3
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import sys
import tempfile
import time
from importlib import resources
from typing import Any

from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue
from opentelemetry.proto.resource.v1.resource_pb2 import Resource
from opentelemetry.proto.trace.v1.trace_pb2 import ResourceSpans, ScopeSpans, Span
from spanledger import semconv
from spanledger_collector._decode._usage_sources import USAGE_SOURCES
from spanledger_collector._engine._ddl import Names
from spanledger_collector._engine._install import init
from spanledger_collector._store._clickhouse_client import open_clickhouse
from spanledger_collector._store._location import parse_store_address
from spanledger_collector._store._otel_traces import OTEL_TRACES_COLUMNS, OtelTraceRows

OTEL_TRACES_DDL = (
    resources.files("spanledger_collector._store") / "sql" / "clickhouse" / "otel_traces.sql"
).read_text()


def _kv(key: str, value: Any) -> KeyValue:
    if isinstance(value, bool):
        return KeyValue(key=key, value=AnyValue(bool_value=value))
    if isinstance(value, int):
        return KeyValue(key=key, value=AnyValue(int_value=value))
    if isinstance(value, float):
        return KeyValue(key=key, value=AnyValue(double_value=value))
    return KeyValue(key=key, value=AnyValue(string_value=value))


def _source(field: str, dialect: str) -> str:
    return next(s.name for s in USAGE_SOURCES if s.field == field and s.dialect == dialect)


COMMON = {semconv.SERVER_ADDRESS: "api.openai.com", semconv.SERVER_PORT: 443, "http.method": "POST",
          "http.status_code": 200, "thread.id": 1, "code.function": "call", "code.namespace": "app.llm",
          "net.peer.name": "api.openai.com", "app.request_id": "r-123", "app.user_tier": "pro"}  # fmt: skip
OWNER = {**COMMON, semconv.SPANLEDGER_USAGE_OWNER: True, semconv.GEN_AI_OPERATION_NAME: "chat",
         semconv.GEN_AI_PROVIDER_NAME: "openai", semconv.GEN_AI_REQUEST_MODEL: "gpt-4o-mini",
         semconv.GEN_AI_RESPONSE_MODEL: "gpt-4o-mini-2024-07-18", semconv.GEN_AI_USAGE_INPUT_TOKENS: 1200,
         semconv.GEN_AI_USAGE_CACHE_READ_INPUT_TOKENS: 200, semconv.GEN_AI_USAGE_OUTPUT_TOKENS: 300,
         semconv.SPANLEDGER_WORKFLOW_NAME: "support", semconv.SPANLEDGER_TENANT_ID: "acme"}  # fmt: skip
OPENINFERENCE = {**COMMON, _source("provider", "openinference"): "openai",
                 _source("request_model", "openinference"): "gpt-4o", _source("input_tokens", "openinference"): 900,
                 _source("output_tokens", "openinference"): 120,
                 _source("total_tokens", "openinference"): 1020}  # fmt: skip
VERCEL = {**COMMON, _source("provider", "vercel-ai"): "openai.chat", _source("request_model", "vercel-ai"): "gpt-4o",
          _source("input_tokens", "vercel-ai"): 700, _source("output_tokens", "vercel-ai"): 90,
          _source("workflow", "vercel-ai"): "summarize"}  # fmt: skip


def build_request(traces: int, first_trace: int) -> ExportTraceServiceRequest:
    spans = []
    for trace in range(first_trace, first_trace + traces):
        trace_id = trace.to_bytes(16, "big")
        start = 1_790_000_000 * 10**9 + trace * 1000
        for index in range(10):
            attributes: dict[str, Any] = dict(COMMON)
            events = []
            if index in (1, 2, 3):
                attributes = dict(OWNER)
                if trace % 10 == 0 and index == 1:
                    attributes[semconv.SPANLEDGER_ACCELERATOR_TIME] = 0.75
            elif index == 4:
                attributes = dict(OPENINFERENCE)
            elif index == 5:
                attributes = dict(VERCEL)
            elif index == 6:
                events = [Span.Event(time_unix_nano=start, name=semconv.EVENT_SPANLEDGER_DATA_READ, attributes=[
                    _kv(semconv.SPANLEDGER_DATA_SOURCE, "s3://docs/kb.json"),
                    _kv(semconv.SPANLEDGER_DATA_AGE, 3600.5)])]  # fmt: skip
            spans.append(Span(trace_id=trace_id, span_id=(trace * 16 + index + 1).to_bytes(8, "big"),
                              parent_span_id=b"" if index == 0 else (trace * 16 + 1).to_bytes(8, "big"),
                              name=f"span-{index}", kind=3, start_time_unix_nano=start + index,
                              end_time_unix_nano=start + index + 250_000_000,
                              attributes=[_kv(k, v) for k, v in attributes.items()], events=events))  # fmt: skip
    resource = Resource(attributes=[_kv(semconv.SERVICE_NAME, "bench"), _kv(semconv.CLOUD_PROVIDER, "aws")])
    return ExportTraceServiceRequest(
        resource_spans=[ResourceSpans(resource=resource, scope_spans=[ScopeSpans(spans=spans)])]
    )


def blocks(spans: int, block: int, offset: int) -> list[list[list[Any]]]:
    out = []
    for first in range(0, spans // 10, block // 10):
        rows = OtelTraceRows()
        rows.add_request(build_request(min(block // 10, spans // 10 - first), offset + first))
        out.append(rows.columns)
    return out


def native_blocks(client: Any, column_blocks: list[list[list[Any]]]) -> list[bytes]:
    """Each block in the Native format, as ClickHouse itself writes it (the exporter's wire form)."""
    encoded = []
    for columns in column_blocks:
        client.insert("staging", columns, column_names=OTEL_TRACES_COLUMNS, column_oriented=True)
        encoded.append(client.raw_query(f"SELECT {', '.join(OTEL_TRACES_COLUMNS)} FROM staging", fmt="Native"))
        client.command("TRUNCATE TABLE staging")
    return encoded


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--spans", type=int, default=200_000)
    parser.add_argument("--block", type=int, default=8190, help="rows per insert (whole traces of 10 spans)")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--small", type=int, default=0, help="then insert one trace (10 spans) this many times")
    parser.add_argument(
        "--setting",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="a ClickHouse setting of every insert, e.g. query_plan_merge_expressions=0 (repeatable)",
    )
    args = parser.parse_args()
    settings = dict(setting.split("=", 1) for setting in args.setting)
    path = tempfile.mkdtemp(prefix="bench-chmv-")
    client = open_clickhouse(parse_store_address(f"chdb:{path}"))
    databases = ("with_views", "bare")
    try:
        for database in databases:
            client.command(f"CREATE DATABASE {database}")
            client.command(OTEL_TRACES_DDL.format(database=database, table="otel_traces", cluster="",
                                                  engine="MergeTree()", ttl=""))  # fmt: skip
        client.command("CREATE TABLE staging AS bare.otel_traces ENGINE = Memory")
        init(client, Names(database="with_views"), catalog_models=False)

        def insert(database: str, block: Any, mode: str) -> None:
            if mode == "native":
                client.raw_insert(f"{database}.otel_traces", OTEL_TRACES_COLUMNS, insert_block=block, fmt="Native",
                                  settings=settings)  # fmt: skip
            else:
                client.insert(f"{database}.otel_traces", block, column_names=OTEL_TRACES_COLUMNS,
                              column_oriented=True, settings=settings)  # fmt: skip

        results: dict[tuple[str, str], list[tuple[float, float]]] = {}
        for round_number in range(args.rounds):
            for mode in ("native", "rows"):
                offset = 1 + (2 * round_number + (mode == "rows")) * args.spans
                rows = blocks(args.spans, args.block, offset)
                data: list[Any] = native_blocks(client, rows) if mode == "native" else rows
                for database in databases[::-1] if round_number % 2 else databases:
                    wall, cpu = time.perf_counter(), time.process_time()
                    for block in data:
                        insert(database, block, mode)
                    results.setdefault((mode, database), []).append(
                        (time.perf_counter() - wall, time.process_time() - cpu)
                    )
        small: dict[str, list[float]] = {database: [] for database in databases}
        first_small = 1 + 2 * args.rounds * args.spans
        small_traces = range(first_small, first_small + args.small)
        for trace in small_traces:
            block = native_blocks(client, blocks(10, 10, offset=trace))[0]
            for database in databases:
                cpu = time.process_time()
                insert(database, block, "native")
                small[database].append(time.process_time() - cpu)
        spans = args.spans
        facts = client.query("SELECT count() FROM with_views.usage_reports FINAL").result_rows[0][0]
        # per trace: 3 owner spans x 3 token meters, 2 other producers x 2; accelerator-seconds on every tenth trace
        expected_facts = 2 * args.rounds * (spans // 10 * (3 * 3 + 2 + 2) + spans // 100) + sum(
            13 + (trace % 10 == 0) for trace in small_traces
        )
        summary: dict[str, Any] = {"spans_per_round": spans, "block": args.block, "rounds": args.rounds,
                                   "settings": settings, "cpus": os.cpu_count()}  # fmt: skip
        for (mode, database), runs in results.items():
            summary[f"{mode}_{database}_spans_per_s_wall"] = round(statistics.median(spans / w for w, _ in runs))
            summary[f"{mode}_{database}_spans_per_s_cpu"] = round(statistics.median(spans / c for _, c in runs))
        if args.small:
            for database, cpus in small.items():
                summary[f"{database}_ms_cpu_per_10_span_insert"] = round(1000 * statistics.median(cpus), 1)
        summary["usage_reports_rows"] = facts
        summary["usage_reports_expected"] = expected_facts
        print(json.dumps(summary, indent=2))
        return 0 if facts == expected_facts else 1
    finally:
        client.close()
        shutil.rmtree(path, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
