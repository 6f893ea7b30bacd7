"""``spanledger billing import|allocate``, ``trace``, ``top``, ``idle`` and ``allocations``.

Each command goes through a running collector's admin API when one answers (DuckDB allows one writer),
else opens the store file directly (read-only for answers).
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path
from typing import Any

from ._allocation import allocate
from ._answers import GROUPS, RANKINGS, allocation_rows, idle_capacity, top, trace_lineage
from ._client import (
    COLLECTOR_URL_ENV,
    DEFAULT_COLLECTOR_URL,
    DEFAULT_STORE_PATH,
    STORE_PATH_ENV,
    collector_client,
    open_store,
)
from ._errors import BillingError
from ._importer import import_and_allocate
from ._render import render_allocations, render_idle, render_import, render_runs, render_top, render_trace

__all__ = ["register"]


def _store_options(parser: argparse.ArgumentParser, *, with_json: bool = True) -> None:
    parser.add_argument(
        "--store", metavar="PATH", help=f"the DuckDB store (env {STORE_PATH_ENV}; default {DEFAULT_STORE_PATH})"
    )
    parser.add_argument(
        "--collector",
        metavar="URL",
        help=f"a running collector's admin URL, or 'none' (env {COLLECTOR_URL_ENV}; default {DEFAULT_COLLECTOR_URL})",
    )
    if with_json:
        parser.add_argument("--json", action="store_true", help="print the answer as JSON")


def _answer(
    args: argparse.Namespace,
    *,
    remote: Callable[[Any], Any],
    local: Callable[[Any], Any],
    read_only: bool,
) -> Any:
    client = collector_client(args.collector)
    if client is not None:
        return remote(client)
    connection = open_store(args.store, read_only=read_only)
    try:
        return local(connection)
    finally:
        connection.close()


def _print(args: argparse.Namespace, answer: Any, render: Callable[[Any], str]) -> None:
    print(json.dumps(answer, indent=2) if getattr(args, "json", False) else render(answer))


def _run(command: Callable[[argparse.Namespace], int]) -> Callable[[argparse.Namespace], int]:
    def run(args: argparse.Namespace) -> int:
        try:
            return command(args)
        except BillingError as error:
            print(f"spanledger: {error}", file=sys.stderr)
            return 1

    return run


def _import(args: argparse.Namespace) -> int:
    def local(connection: Any) -> Any:
        return import_and_allocate(
            connection,
            args.paths,
            currency=args.currency,
            run_allocation=not args.no_allocate,
            show_progress=not args.quiet and not args.json,
            rules_path=Path(args.rules) if args.rules else None,
        )

    answer = _answer(
        args,
        remote=lambda client: client.request(
            "POST",
            "/api/billing/import",
            body={
                "paths": args.paths,
                "currency": args.currency,
                "allocate": not args.no_allocate,
                "rules": args.rules,
            },
        ),
        local=local,
        read_only=False,
    )
    if not args.quiet or args.json:
        _print(args, answer, render_import)
    return 0


def _allocate(args: argparse.Namespace) -> int:
    answer = _answer(
        args,
        remote=lambda client: client.request(
            "POST", "/api/billing/allocate", body={"periods": args.period, "force": args.force, "rules": args.rules}
        ),
        local=lambda connection: {
            "runs": [
                asdict(r)
                for r in allocate(
                    connection, args.period, force=args.force, rules_path=Path(args.rules) if args.rules else None
                )
            ]
        },
        read_only=False,
    )
    _print(args, answer, lambda a: render_runs(a["runs"]) or "nothing to allocate")
    return 0


def _trace(args: argparse.Namespace) -> int:
    answer = _answer(
        args,
        remote=lambda client: client.request("GET", f"/api/trace/{args.trace_id}"),
        local=lambda connection: trace_lineage(connection, args.trace_id),
        read_only=True,
    )
    _print(args, answer, render_trace)
    return 0


def _top(args: argparse.Namespace) -> int:
    answer = _answer(
        args,
        remote=lambda client: client.request(
            "GET", "/api/top", {"by": args.by, "group": args.group, "period": args.period, "limit": str(args.limit)}
        ),
        local=lambda connection: top(connection, by=args.by, group=args.group, period=args.period, limit=args.limit),
        read_only=True,
    )
    _print(args, answer, render_top)
    return 0


def _idle(args: argparse.Namespace) -> int:
    answer = _answer(
        args,
        remote=lambda client: client.request("GET", "/api/idle", {"period": args.period}),
        local=lambda connection: idle_capacity(connection, period=args.period),
        read_only=True,
    )
    _print(args, answer, render_idle)
    return 0


def _allocations(args: argparse.Namespace) -> int:
    answer = _answer(
        args,
        remote=lambda client: client.request("GET", "/api/allocations", {"period": args.period}),
        local=lambda connection: allocation_rows(connection, period=args.period),
        read_only=True,
    )
    text = json.dumps(answer, indent=2) + "\n" if args.format == "json" else render_allocations(answer, args.format)
    if args.output:
        with open(args.output, "w", encoding="utf-8", newline="") as output:
            output.write(text)
    else:
        sys.stdout.write(text)
    return 0


def _rules_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--rules",
        metavar="FILE",
        help="classification rules (YAML or JSON) instead of the packaged ones; its shared_policy "
        "(none | proportional) says whether shared lines (NAT, load balancers, support) are split over traces",
    )


def register(subcommands: argparse._SubParsersAction[Any]) -> None:
    """Add the billing and answer subcommands."""
    billing = subcommands.add_parser("billing", help="import billing exports and allocate them to traces")
    billing_commands = billing.add_subparsers(dest="billing_command", required=True, metavar="COMMAND")

    importer = billing_commands.add_parser(
        "import",
        help="import FOCUS 1.0-1.2, AWS CUR 2.0 or OpenAI Costs API exports, then allocate their periods",
        description="Import billing exports (files, directories, s3://bucket/prefix). Each delivery is a snapshot "
        "per billing period: the same delivery twice changes nothing; a newer one replaces the older (kept for "
        "audit). All or nothing: a bad row fails the import with its file, row and column.",
    )
    importer.add_argument("paths", nargs="+", metavar="PATH", help="file, directory or s3://bucket/prefix")
    importer.add_argument("--currency", help="currency of FOCUS files that have no BillingCurrency column")
    importer.add_argument("--no-allocate", action="store_true", help="import only; run `billing allocate` later")
    importer.add_argument("--quiet", action="store_true", help="no progress bar and no summary")
    _rules_option(importer)
    _store_options(importer)
    importer.set_defaults(run=_run(_import))

    allocator = billing_commands.add_parser(
        "allocate", help="re-run the allocation (after late spans), for every period or --period P"
    )
    allocator.add_argument("--period", action="append", metavar="YYYY-MM", help="billing period (repeatable)")
    allocator.add_argument("--force", action="store_true", help="run even when nothing changed")
    _rules_option(allocator)
    _store_options(allocator)
    allocator.set_defaults(run=_run(_allocate))

    trace = subcommands.add_parser("trace", help="the lineage and cost of one AI output")
    trace.add_argument("trace_id", metavar="TRACE_ID")
    _store_options(trace)
    trace.set_defaults(run=_run(_trace))

    ranking = subcommands.add_parser("top", help="rank workflows, tenants, models or services by cost, tokens or age")
    ranking.add_argument("--by", choices=RANKINGS, default="cost")
    ranking.add_argument("--group", choices=GROUPS, default="workflow")
    ranking.add_argument("--period", metavar="YYYY-MM", help="billing period (default: the latest allocated)")
    ranking.add_argument("--limit", type=int, default=20)
    _store_options(ranking)
    ranking.set_defaults(run=_run(_top))

    idle = subcommands.add_parser("idle", help="empty capacity: billed accelerator hours no request used")
    idle.add_argument("--period", metavar="YYYY-MM", help="billing period (default: the latest allocated)")
    _store_options(idle)
    idle.set_defaults(run=_run(_idle))

    rows = subcommands.add_parser("allocations", help="the allocation rows (FOCUS 1.3 split cost allocation)")
    rows.add_argument("--period", metavar="YYYY-MM", help="billing period (default: the latest allocated)")
    rows.add_argument("--format", choices=("focus", "csv", "json"), default="focus")
    rows.add_argument("--output", metavar="FILE", help="write to FILE instead of stdout")
    _store_options(rows, with_json=False)
    rows.set_defaults(run=_run(_allocations))
