"""The ``spanledger`` command line: the collector service and the answers built on its store."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

__all__ = ["main"]

INSTALL_HINT = "pip install 'spanledger[collector]'"

# The collector's dependencies (duckdb, grpcio, protobuf, prometheus-client, pyyaml, genai-prices, ...) are the
# `collector` extra; this is the one place their absence is reported, with the install command.
try:
    from . import _service_cli
    from ._engine import _cli as _engine_cli
    from .billing import _cli as _billing_cli
except ImportError as error:
    if error.name is None or error.name.partition(".")[0] in ("spanledger", "spanledger_collector"):
        raise
    _MISSING: str | None = error.name.partition(".")[0]
else:
    _MISSING = None


def main(argv: Sequence[str] | None = None) -> int:
    if _MISSING is not None:
        print(
            f"spanledger: the collector needs {_MISSING}, which is not installed. Install it with: {INSTALL_HINT}",
            file=sys.stderr,
        )
        return 2
    parser = argparse.ArgumentParser(
        prog="spanledger", description="Where did this AI output come from, and what did it cost?"
    )
    subcommands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    _service_cli.register(subcommands)
    _billing_cli.register(subcommands)
    _engine_cli.register(subcommands)
    args = parser.parse_args(argv)
    result: int = args.run(args)
    return result
