"""OTLP trace decoding: CPU per span of the collector's decoders beside protobuf's own parser, in one run.

The request is bench_collector's: GenAI traces of 10 spans with 15-30 attributes each, half of them owning
usage. Contestants, each turning the same request bytes into what it produces:

* ``upb-parse``: ``ExportTraceServiceRequest.FromString`` (protobuf's upb backend), the issue's ceiling;
  it only parses (message objects, no rows).
* ``upb-walk``: that parse plus reading every span's ids, times and attributes into Python values, which is
  what an OTLP consumer written against the protobuf API does before any usage logic.
* ``python``: ``decode_traces_python``, the collector's reference decoder (span rows, usage facts, data reads,
  LLM calls).
* ``compiled``: ``decode_traces`` with the compiled decoder (``spanledger_collector._decode._speedups``), same output.

With ``--producer otel`` the request is bench_collector's other producers' load (standard attributes only,
usage counted once: the compiled decoder reads the dialects, ``_producers.Candidates.settle`` resolves in
Python for both decoders). The memory of recent traces is emptied before each contestant's loop, as the
collector sees fresh trace ids.

Rounds alternate the contestants in shuffled order; each figure is the median over rounds of a round's
CPU time (``time.thread_time``) per span.

    .venv/bin/python benchmarks/bench_decode.py --rounds 15
    .venv/bin/python benchmarks/bench_decode.py --rounds 15 --producer spanledger,otel   # both, alternating
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
import bench_collector  # the load generator's request template


def _walk(data: bytes) -> int:
    from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
    from spanledger_collector._decode import attribute_dict

    count = 0
    for resource_spans in ExportTraceServiceRequest.FromString(data).resource_spans:
        attribute_dict(resource_spans.resource.attributes)
        for scope_spans in resource_spans.scope_spans:
            for span in scope_spans.spans:
                (span.trace_id.hex(), span.span_id.hex(), span.start_time_unix_nano, span.end_time_unix_nano)
                attribute_dict(span.attributes)
                for event in span.events:
                    attribute_dict(event.attributes)
                count += 1
    return count


def contestants() -> dict[str, Callable[[bytes], Any]]:
    from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
    from spanledger_collector._decode import SPEEDUPS, decode_traces, decode_traces_python

    chosen: dict[str, Callable[[bytes], Any]] = {
        "upb-parse": ExportTraceServiceRequest.FromString,
        "upb-walk": _walk,
        "python": decode_traces_python,
    }
    if SPEEDUPS:
        chosen["compiled"] = decode_traces
    else:
        print("the compiled decoder is not built; reinstall with a C compiler to measure it", file=sys.stderr)
    return chosen


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--requests", type=int, default=40, help="requests decoded per contestant per round")
    parser.add_argument("--spans-per-request", type=int, default=100)
    parser.add_argument(
        "--producer", default="spanledger", help="bench_collector's loads, comma-separated: spanledger, otel, otel-late"
    )
    args = parser.parse_args()
    from spanledger_collector._decode._producers import RECENT

    producers = args.producer.split(",")
    loads: dict[str, list[bytes]] = {}
    for producer in producers:
        template = bench_collector.build_template(args.spans_per_request, producer)
        loads[producer] = [bench_collector.request_body(template, 0, i) for i in range(args.requests)]
    chosen = {
        f"{producer}:{name}" if len(producers) > 1 else name: (decode, loads[producer])
        for producer in producers
        for name, decode in contestants().items()
    }
    spans = args.requests * args.spans_per_request
    per_span: dict[str, list[float]] = {name: [] for name in chosen}
    for decode, requests in chosen.values():  # warm caches (value decodes, price-free) once
        decode(requests[0])
    order = list(chosen)
    for _ in range(args.rounds):
        random.shuffle(order)
        for name in order:
            decode, requests = chosen[name]
            RECENT.clear()
            started = time.thread_time()
            for data in requests:
                decode(data)
            per_span[name].append((time.thread_time() - started) / spans * 1e6)
    medians = {name: statistics.median(values) for name, values in per_span.items()}
    result: dict[str, Any] = {
        "producer": args.producer,
        "spans_per_request": args.spans_per_request,
        "rounds": args.rounds,
        "us_per_span_median": {name: round(value, 2) for name, value in medians.items()},
        "spans_per_s_per_core": {name: round(1e6 / value) for name, value in medians.items()},
    }
    if "compiled" in medians:
        result["compiled_vs"] = {
            name: round(medians["compiled"] / value, 2) for name, value in medians.items() if name != "compiled"
        }
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
