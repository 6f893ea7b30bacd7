"""Throughput of an onward exporter: fsync'd enqueue (group commit) and delivery to a local OTLP server.

Caller threads play the collector's receiver threads: each calls ``consume_traces`` (which returns only
once the request is on disk) for its share of the requests. The exporter's sender delivers them over
OTLP/HTTP to a real local server in the same process. The queue lives in a temporary directory under
``--dir`` (default: the system temp dir; pass a directory on the disk you deploy on).

    .venv/bin/python benchmarks/bench_exporter_queue.py [--threads 8] [--requests 500] [--spans 100]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

from _otlp_downstream import http_downstream, make_traces, wait_until
from spanledger_collector._registry import EXPORTERS


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--threads", type=int, default=8)
    parser.add_argument("--requests", type=int, default=500)
    parser.add_argument("--spans", type=int, default=100, help="spans per request")
    parser.add_argument("--dir", default=None, help="where the queue file goes")
    args = parser.parse_args()
    total = args.requests * args.spans
    requests = [
        make_traces(1, 1, args.spans, start=index * args.spans, attr_bytes=300) for index in range(args.requests)
    ]
    with http_downstream() as downstream, tempfile.TemporaryDirectory(dir=args.dir) as data_dir:
        exporter = EXPORTERS["otlphttp"].from_mapping("otlphttp/bench", {"endpoint": downstream.url}, Path(data_dir))
        exporter.start()
        shares = [requests[index :: args.threads] for index in range(args.threads)]

        def consume(share: list) -> None:  # type: ignore[type-arg]
            for request in share:
                exporter.consume_traces(request)

        threads = [threading.Thread(target=consume, args=(share,)) for share in shares]
        started, cpu_started = time.perf_counter(), time.process_time()
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        enqueued = time.perf_counter() - started
        wait_until(lambda: exporter.stats().sent.get("spans") == total, timeout=600)
        delivered = time.perf_counter() - started
        cpu = time.process_time() - cpu_started
        exporter.shutdown()
    print(
        f"{args.threads} caller threads, {args.requests} requests x {args.spans} spans: "
        f"enqueued {total / enqueued:,.0f} spans/s, delivered {total / delivered:,.0f} spans/s, "
        f"{cpu:.2f} CPU-s in this process (exporter + test server)"
    )


if __name__ == "__main__":
    main()
