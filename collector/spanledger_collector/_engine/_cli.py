"""The ``spanledger clickhouse`` command."""

from __future__ import annotations

import argparse
import dataclasses
import sys
from pathlib import Path
from typing import Any

from .._component import ConfigError
from .._decode._attribution import DEFAULT_ATTRIBUTION, Attribution, listed_names_error
from .._store._clickhouse_client import ClickHouseUnavailableError, open_clickhouse
from .._store._location import DEFAULT_DATABASE, StoreAddressError, parse_store_address
from ._ddl import Names
from ._install import InitError, init

__all__ = ["register"]


def register(subcommands: argparse._SubParsersAction[Any]) -> None:
    parser = subcommands.add_parser(
        "clickhouse",
        help="usage facts inside ClickHouse, over the OTel Collector's otel_traces",
        description="Run spanledger's usage extraction inside ClickHouse (docs/clickhouse.md).",
    )
    actions = parser.add_subparsers(dest="action", required=True, metavar="ACTION")
    init_parser = actions.add_parser(
        "init",
        help="install the materialized views and price table over an existing otel_traces (idempotent)",
        description=(
            "Install, over the otel_traces table the OTel Collector's clickhouse exporter writes, the materialized "
            "views that turn spans into usage reports and data reads, the usage_facts view (counted once, priced) "
            "and the price table. Safe to run again; a re-run also prices the models seen since."
        ),
    )
    init_parser.add_argument(
        "--store",
        required=True,
        help="clickhouse+http(s)://user@host:port/database (password in $SPANLEDGER_CLICKHOUSE_PASSWORD), or chdb:PATH",
    )
    init_parser.add_argument("--traces-table", default="otel_traces", help="the exporter's traces table")
    init_parser.add_argument(
        "--database", help="the database of the traces table and of spanledger's tables (default: the store's)"
    )
    init_parser.add_argument(
        "--backfill",
        action="store_true",
        help="also extract usage from the spans already in the traces table (the views see new inserts only)",
    )
    init_parser.add_argument(
        "--price-overrides",
        metavar="FILE",
        type=Path,
        help="price overrides on top of the bundled catalog (negotiated rates, SageMaker endpoints' instance types): "
        "the file the spanledger_cost processor's price_overrides names",
    )
    for field, flag in (("workflow", "--workflow-attributes"), ("tenant", "--tenant-attributes")):
        init_parser.add_argument(
            flag,
            metavar="NAME,...",
            help=f"attribute names the {field} is looked up in, in order, on a span and its ancestors after "
            f"spanledger's own (as the spanledger_usage processor's attribution.{field}; '' turns it off; "
            f"default: {','.join(getattr(DEFAULT_ATTRIBUTION, field))})",
        )
    init_parser.set_defaults(run=run_init)


def _attribution(args: argparse.Namespace) -> Attribution:
    def names(flag: str, listed: str | None, default: tuple[str, ...]) -> tuple[str, ...]:
        if listed is None:
            return default
        names = tuple(listed.split(",")) if listed else ()
        if (error := listed_names_error(names)) is not None:
            raise ValueError(f"{flag}: {error}")
        return names

    return Attribution(
        workflow=names("--workflow-attributes", args.workflow_attributes, DEFAULT_ATTRIBUTION.workflow),
        tenant=names("--tenant-attributes", args.tenant_attributes, DEFAULT_ATTRIBUTION.tenant),
    )


def run_init(args: argparse.Namespace) -> int:
    try:
        attribution = _attribution(args)
    except ValueError as error:
        print(f"spanledger clickhouse init: {error}", file=sys.stderr)
        return 2
    if args.price_overrides is not None and not args.price_overrides.is_file():
        print(f"spanledger clickhouse init: --price-overrides: file {args.price_overrides} does not exist",
              file=sys.stderr)  # fmt: skip
        return 2
    try:
        address = parse_store_address(args.store, database=args.database)
        if not address.is_clickhouse:
            raise StoreAddressError(
                f"store {args.store!r} is a DuckDB file; init needs chdb:PATH or clickhouse+http(s)://"
            )
        # every name init uses is qualified: the session's database is "default", so that a missing database
        # is reported by init's check, naming it, rather than by the client
        client = open_clickhouse(dataclasses.replace(address, database=DEFAULT_DATABASE))
    except (StoreAddressError, ClickHouseUnavailableError) as error:
        print(f"spanledger clickhouse init: {error}", file=sys.stderr)
        return 2
    from clickhouse_connect.driver.exceptions import ClickHouseError  # installed: open_clickhouse found it

    names = Names(database=args.database or address.database, traces_table=args.traces_table, attribution=attribution)
    try:
        report = init(client, names, backfill_existing=args.backfill, price_overrides=args.price_overrides)
    except ConfigError as error:  # the overrides file: the message names it and the key
        print(f"spanledger clickhouse init: --price-overrides: {error}", file=sys.stderr)
        return 2
    except InitError as error:
        print(f"spanledger clickhouse init: {error}", file=sys.stderr)
        return 1
    except ClickHouseError as error:  # the engine refused a statement: its message says which and why
        print(f"spanledger clickhouse init: {address}: {error}", file=sys.stderr)
        return 1
    finally:
        client.close()
    print(
        f"spanledger clickhouse init: {report.statements} statements applied in {names.database} over "
        f"{names.traces}.{names.traces_table}; {report.price_rows} price rows loaded"
    )
    return 0
