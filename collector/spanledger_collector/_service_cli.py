"""``spanledger collector``: run the collector service."""

from __future__ import annotations

import argparse
import gc
import logging
import signal
import sys
import threading
from pathlib import Path
from typing import Any

import duckdb

from ._component import ConfigError
from ._config import DEFAULT_CONFIG
from ._graph import load_settings
from ._service import CollectorService
from ._store import StoreUnavailableError
from ._store._clickhouse_client import ClickHouseUnavailableError

__all__ = ["register"]

logger = logging.getLogger("spanledger.collector")

GC_THRESHOLD = 20_000


def register(subcommands: argparse._SubParsersAction[Any]) -> None:
    """Add the ``collector`` subcommand."""
    parser = subcommands.add_parser(
        "collector",
        help="run the collector: OTLP in, usage priced and stored, OTLP and Prometheus out",
        description=(
            "Run the spanledger collector. Without --config it listens for OTLP on localhost:4317 (gRPC) and "
            "localhost:4318 (HTTP), serves /metrics, /health and /api/ on localhost:9464 and stores usage in "
            "./spanledger.duckdb."
        ),
    )
    parser.add_argument("--config", type=Path, help="OTel Collector-shaped YAML file (receivers, processors, ...)")
    parser.add_argument(
        "--store",
        metavar="STORE",
        help="without --config: the store, a DuckDB path (default ./spanledger.duckdb), chdb:PATH or "
        "clickhouse+http(s)://user@host:port/db (password in $SPANLEDGER_CLICKHOUSE_PASSWORD)",
    )
    parser.add_argument(
        "--print-default-config", action="store_true", help="print the embedded default configuration and exit"
    )
    parser.add_argument("--log-level", default="info", choices=["debug", "info", "warning", "error"])
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    if args.print_default_config:
        print(DEFAULT_CONFIG.strip())
        return 0
    logging.basicConfig(
        level=args.log_level.upper(), stream=sys.stderr, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    try:
        settings = load_settings(args.config, store=args.store)
    except ConfigError as error:
        print(f"spanledger collector: invalid configuration: {error}", file=sys.stderr)
        return 2
    service = CollectorService(settings)
    stop = threading.Event()

    def request_stop(signum: int, frame: Any) -> None:
        logger.info("received %s; shutting down", signal.Signals(signum).name)
        stop.set()

    signal.signal(signal.SIGTERM, request_stop)
    signal.signal(signal.SIGINT, request_stop)
    try:
        addresses = service.start()
    except ConfigError as error:
        service.shutdown()
        print(f"spanledger collector: invalid configuration: {error}", file=sys.stderr)
        return 2
    except (OSError, duckdb.Error, StoreUnavailableError, ClickHouseUnavailableError) as error:
        service.shutdown()
        print(f"spanledger collector: cannot start: {error}", file=sys.stderr)
        return 1
    # What exists now (modules, the price catalog) lives as long as the process: keep the cyclic GC off it.
    # The request path allocates ~50 acyclic objects per span (tuples, strings); at the default gen-0
    # threshold (700) the GC ran every ~15 spans and took ~7 % of the collector's CPU (perf, 10k spans/s).
    gc.freeze()
    gc.set_threshold(GC_THRESHOLD, 20, 100)
    logger.info("spanledger collector ready: %s", " ".join(f"{name}={address}" for name, address in addresses.items()))
    while not stop.wait(0.5):
        pass
    service.shutdown()
    logger.info("spanledger collector stopped")
    return 0
