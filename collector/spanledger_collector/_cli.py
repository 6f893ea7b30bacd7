"""The ``spanledger`` command line: the collector service and the answers built on its store."""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

__all__ = ["main"]

COLLECTOR_REQUIREMENTS = ("duckdb", "grpc", "google.protobuf", "prometheus_client", "yaml")
INSTALL_HINT = "pip install 'spanledger[collector]'"
COMMAND_MODULES = ("spanledger_collector._service_cli", "spanledger_collector.billing._cli")


def _missing_requirements() -> list[str]:
    missing = []
    for module in COLLECTOR_REQUIREMENTS:
        try:
            importlib.import_module(module)
        except ImportError:
            missing.append(module)
    return missing


def main(argv: Sequence[str] | None = None) -> int:
    missing = _missing_requirements()
    if missing:
        print(
            f"spanledger: the collector needs {', '.join(missing)}, which is not installed. Install it with: "
            f"{INSTALL_HINT}",
            file=sys.stderr,
        )
        return 2
    parser = argparse.ArgumentParser(
        prog="spanledger", description="Where did this AI output come from, and what did it cost?"
    )
    subcommands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for module in COMMAND_MODULES:
        importlib.import_module(module).register(subcommands)
    args = parser.parse_args(argv)
    result: int = args.run(args)
    return result
