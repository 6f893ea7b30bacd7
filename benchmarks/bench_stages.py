"""Collector CPU per request, stage by stage, in one process: where bench_collector's request goes without gRPC.

The request is bench_collector's (``--spans-per-request`` spans, fresh trace ids per request). Each request
goes through the stages the collector runs on it, in its order, each timed on this thread's CPU clock
(``time.thread_time_ns``), so a shared machine distorts the figures less than wall-clock time:

* ``decode``: ``decode_traces`` with usage extraction (the ``spanledger_usage`` processor's work; for other
  producers' spans, ``--producer otel``, that includes the counted-once resolution);
* ``attribute``: the rest of that processor's work, workflow and tenant from the default attribution lists;
* ``price``: the ``spanledger_cost`` processor on the request's usage facts;
* ``metrics``: ``UsageMetrics.record`` (what the store writer runs once a request is stored);
* ``digest``: the request digest (the store's retry identity and the request log's checksum);
* ``spans_to_arrow``, ``facts_to_arrow``, ``reads_to_arrow``: the store's row conversion, alone;
* ``store_append``, ``store_commit``: ``DuckDBStore.append`` of 40 requests at once on an in-memory store (that
  conversion again, the digest check) and the commit after them (DuckDB's insert of the staged rows, then
  the commit), per request. The writer appends what arrived within its batch timeout together, like this,
  but inserts every 8,192 spans and commits every 10 s, so ``store_commit`` here is an upper bound.

Not here: grpcio's server (≈ 0.65 ms a request on a quiet box, whatever its size), the request log's
``writev`` and ``fdatasync``, thread hand-offs. Figures are medians over requests, per request and per span.

    .venv/bin/python benchmarks/bench_stages.py --requests 400
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from itertools import pairwise
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
import bench_collector  # the load generator's request template

STAGES = ("decode", "attribute", "price", "metrics", "digest", "spans_to_arrow", "facts_to_arrow", "reads_to_arrow")
GROUP = 40


def main() -> None:
    from spanledger_collector._decode import decode_traces
    from spanledger_collector._decode._attribution import DEFAULT_ATTRIBUTION, AttributionMemory, attribute
    from spanledger_collector._pricing import load_catalog
    from spanledger_collector._processors import PipelineItem
    from spanledger_collector._processors._cost import CostProcessor
    from spanledger_collector._store import DATA_READS, USAGE_FACTS, DuckDBStore, StoreBatch, digest
    from spanledger_collector._store._duckdb import _rows_chunk, _span_chunk
    from spanledger_collector._telemetry import UsageMetrics, UsageSeries

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=400, help="requests timed (after 40 to warm up)")
    parser.add_argument("--spans-per-request", type=int, default=100)
    parser.add_argument(
        "--producer", choices=bench_collector.PRODUCERS, default="spanledger", help="as bench_collector's"
    )
    args = parser.parse_args()

    template = bench_collector.build_template(args.spans_per_request, args.producer)
    attribution_memory = AttributionMemory()
    cost = CostProcessor("spanledger_cost", load_catalog())
    metrics = UsageMetrics(series=UsageSeries())  # not the registry's families
    store = DuckDBStore(":memory:", threads=1, memory_limit_mib=32)  # the store exporter's defaults
    clock = time.thread_time_ns
    times: dict[str, list[float]] = {stage: [] for stage in (*STAGES, "store_append", "store_commit")}
    group: list[StoreBatch] = []
    warm_up = GROUP
    for number in range(warm_up + args.requests):
        data = bench_collector.request_body(template, 0, number)
        marks = [clock()]
        decoded = decode_traces(data, extract_usage=True)
        marks.append(clock())
        attribute(decoded, data, DEFAULT_ATTRIBUTION, attribution_memory)
        marks.append(clock())
        batch = decoded.batch
        item = PipelineItem("traces", data, data, facts=batch.facts)
        cost.process(item)
        marks.append(clock())
        metrics.record(decoded.llm_calls, item.facts, batch.data_reads, decoded.refused_values)
        marks.append(clock())
        request_digest = digest(data)
        marks.append(clock())
        _span_chunk(batch.spans)
        marks.append(clock())
        _rows_chunk(item.facts, USAGE_FACTS)
        marks.append(clock())
        _rows_chunk(batch.data_reads, DATA_READS)
        marks.append(clock())
        if number >= warm_up:
            for stage, (start, end) in zip(STAGES, pairwise(marks), strict=True):
                times[stage].append((end - start) / 1e3)
        batch.facts, batch.digest = item.facts, request_digest
        group.append(batch)
        if len(group) == GROUP:
            appended = clock()
            store.append(group)
            committed = clock()
            store.commit(number)
            if number >= warm_up:
                times["store_append"].append((committed - appended) / 1e3 / GROUP)
                times["store_commit"].append((clock() - committed) / 1e3 / GROUP)
            group = []
    store.close()
    spans = args.spans_per_request
    medians = {stage: statistics.median(values) for stage, values in times.items()}
    result: dict[str, Any] = {
        "producer": args.producer,
        "spans_per_request": spans,
        "requests": args.requests,
        "facts_per_request": len(decoded.batch.facts),
        "data_reads_per_request": len(decoded.batch.data_reads),
        "us_per_request_median": {stage: round(value, 1) for stage, value in medians.items()},
        "us_per_span_median": {stage: round(value / spans, 2) for stage, value in medians.items()},
        "total_us_per_request": round(sum(v for stage, v in medians.items() if not stage.endswith("_to_arrow")), 1),
    }
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
