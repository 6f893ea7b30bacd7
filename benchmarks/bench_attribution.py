"""The attribution pass (issue 15) beside the compiled decode of bench_collector's spanledger-shaped request.

Decodes ``bench_collector.build_template(100)`` (fresh trace ids per request) and runs the
``spanledger_usage`` processor's attribution pass on the result, for the default lists, empty lists and
lists of names the request does not carry; prints both as process CPU time per request (means).

    .venv/bin/python benchmarks/bench_attribution.py --requests 600
"""

from __future__ import annotations

import argparse
import statistics
import struct
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import bench_collector
from spanledger_collector._decode import SPEEDUPS, decode_traces
from spanledger_collector._decode._attribution import DEFAULT_ATTRIBUTION, Attribution, AttributionMemory, attribute

CASES = {
    "defaults": DEFAULT_ATTRIBUTION,
    "empty lists": Attribution(workflow=(), tenant=()),
    "names absent": Attribution(workflow=("x.workflow",), tenant=("x.tenant",)),
}
PASSES = 10  # the pass is short: timed over several runs on the same decoded request


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=600)
    args = parser.parse_args()
    template = bench_collector.build_template(100)
    print(f"request: {len(template)} bytes, 100 spans; compiled decoder: {SPEEDUPS}")
    clock = time.process_time
    decode_s: dict[str, list[float]] = {name: [] for name in CASES}
    pass_s: dict[str, list[float]] = {name: [] for name in CASES}
    memories = {name: AttributionMemory() for name in CASES}
    for index in range(args.requests):
        data = template.replace(bench_collector.TRACE_PREFIX, struct.pack(">Q", index))
        for name, attribution in CASES.items():
            started = clock()
            decoded = decode_traces(data)
            decoded_at = clock()
            for _ in range(PASSES):
                attribute(decoded, data, attribution, memories[name])
            decode_s[name].append(decoded_at - started)
            pass_s[name].append((clock() - decoded_at) / PASSES)
    for name in CASES:
        decode_us, pass_us = statistics.mean(decode_s[name]) * 1e6, statistics.mean(pass_s[name]) * 1e6
        print(f"{name}: decode {decode_us:.0f} us, attribution pass {pass_us:.1f} us ({pass_us / decode_us:.1%})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
