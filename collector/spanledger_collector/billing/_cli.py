"""``spanledger billing import|allocate``, ``trace``, ``top``, ``idle`` and ``allocations``.

Each command builds its typed request (``_requests.py``; invalid values fail here with the same message
the API gives) and has it answered by a store location: a running collector's admin API when one
answers (DuckDB allows one writer), else the store file itself (read-only for answers).
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from typing import Any, TypeVar

from .._store._location import PASSWORD_ENV
from ._answers import GROUPS, RANKINGS
from ._client import (
    COLLECTOR_TOKEN_ENV,
    COLLECTOR_URL_ENV,
    DEFAULT_COLLECTOR_URL,
    DEFAULT_STORE_PATH,
    STORE_PATH_ENV,
    store_location,
)
from ._errors import BillingError
from ._render import render_allocations, render_idle, render_import, render_runs, render_top, render_trace
from ._requests import AllocateRequest, ImportRequest, PeriodRequest, TopRequest, TraceRequest
from ._table import ALLOCATE, ALLOCATIONS, IDLE, IMPORT, TOP, TRACE, Answer

__all__ = ["register"]

R = TypeVar("R")


def _store_options(parser: argparse.ArgumentParser, *, with_json: bool = True) -> None:
    parser.add_argument(
        "--store",
        metavar="STORE",
        help="the store: a DuckDB file, chdb:DIR (ClickHouse in this process) or "
        "clickhouse+http(s)://user@host:port/db "
        f"(password from ${PASSWORD_ENV}) (env {STORE_PATH_ENV}; default {DEFAULT_STORE_PATH})",
    )
    parser.add_argument(
        "--collector",
        metavar="URL",
        help=f"a running collector's admin URL, or 'none' (env {COLLECTOR_URL_ENV}; default {DEFAULT_COLLECTOR_URL}; "
        f"its bearer token from env {COLLECTOR_TOKEN_ENV})",
    )
    if with_json:
        parser.add_argument("--json", action="store_true", help="print the answer as JSON")


def _answer(args: argparse.Namespace, answer: Answer[R], request: R, *, show_progress: bool = False) -> Any:
    return store_location(args.store, args.collector).answer(answer, request, show_progress=show_progress)


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
    request = ImportRequest(tuple(args.paths), args.currency, not args.no_allocate, args.rules)
    answer = _answer(args, IMPORT, request, show_progress=not args.quiet and not args.json)
    if not args.quiet or args.json:
        _print(args, answer, render_import)
    return 0


def _allocate(args: argparse.Namespace) -> int:
    request = AllocateRequest(None if args.period is None else tuple(args.period), args.force, args.rules)
    answer = _answer(args, ALLOCATE, request)
    _print(args, answer, lambda a: render_runs(a["runs"]) or "nothing to allocate")
    return 0


def _trace(args: argparse.Namespace) -> int:
    _print(args, _answer(args, TRACE, TraceRequest.of(args.trace_id)), render_trace)
    return 0


def _top(args: argparse.Namespace) -> int:
    request = TopRequest(by=args.by, group=args.group, period=args.period, limit=args.limit)
    _print(args, _answer(args, TOP, request), render_top)
    return 0


def _idle(args: argparse.Namespace) -> int:
    _print(args, _answer(args, IDLE, PeriodRequest(args.period)), render_idle)
    return 0


def _allocations(args: argparse.Namespace) -> int:
    answer = _answer(args, ALLOCATIONS, PeriodRequest(args.period))
    text = json.dumps(answer, indent=2) + "\n" if args.format == "json" else render_allocations(answer, args.format)
    if args.output:
        try:
            with open(args.output, "w", encoding="utf-8", newline="") as output:
                output.write(text)
        except OSError as error:
            raise BillingError(f"--output {args.output}: {error.strerror or error}") from None
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
