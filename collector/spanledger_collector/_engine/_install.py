"""``spanledger clickhouse init``: checks the traces table, creates spanledger's tables and views over it and
loads the price table. Every statement is idempotent, so ``init`` is safe to run again (and is how the price
table learns the models seen since)."""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from .._pricing._catalog import load_catalog
from ..billing._schema import ensure_billing_tables
from ._ddl import PRICED_VIEWS, Names, backfill, statements
from ._prices import load_prices

__all__ = [
    "REQUIRED_COLUMNS",
    "TRACE_BOUNDS_COLUMNS",
    "InitError",
    "InitReport",
    "check_traces_table",
    "init",
    "one_server_only",
    "trace_bounds_table",
]

# The otel_traces columns the views read, with the types the OTel Collector's exporter creates them with.
REQUIRED_COLUMNS: dict[str, tuple[str, ...]] = {
    "Timestamp": ("DateTime64(9)",),
    "TraceId": ("String",),
    "SpanId": ("String",),
    "ParentSpanId": ("String",),
    "ResourceAttributes": ("Map(LowCardinality(String), String)", "Map(String, String)"),
    "SpanAttributes": ("Map(LowCardinality(String), String)", "Map(String, String)"),
    "Duration": ("UInt64", "Int64"),
    "Events.Timestamp": ("Array(DateTime64(9))",),
    "Events.Name": ("Array(LowCardinality(String))", "Array(String)"),
    "Events.Attributes": ("Array(Map(LowCardinality(String), String))", "Array(Map(String, String))"),
}


# The exporter's trace-bounds table (`<traces_table>_trace_id_ts`, filled by its `_trace_id_ts_mv`): these columns.
TRACE_BOUNDS_COLUMNS = {"TraceId": "String", "Start": "DateTime", "End": "DateTime"}


class InitError(Exception):
    """The traces table is missing or not the OTel Collector exporter's shape; the message says what."""


@dataclass(frozen=True)
class InitReport:
    statements: int
    price_rows: int


def check_traces_table(client: Any, names: Names) -> None:
    """Raises :class:`InitError` naming the missing database, table or column, or the column of another type."""
    where = f"{names.traces}.{names.traces_table}"
    databases = {row[0] for row in client.query("SELECT name FROM system.databases").result_rows}
    if names.traces not in databases:
        raise InitError(f"database {names.traces!r} does not exist (the traces table {where} is read from it)")
    if names.database not in databases:
        raise InitError(f"database {names.database!r} does not exist (create it, or pass --database)")
    columns = dict(
        client.query(
            "SELECT name, type FROM system.columns WHERE database = {db:String} AND table = {table:String}",
            parameters={"db": names.traces, "table": names.traces_table},
        ).result_rows
    )
    if not columns:
        raise InitError(
            f"table {where} does not exist: point --traces-table/--database at the table the OTel Collector's "
            "clickhouse exporter writes (traces_table_name)"
        )
    for column, types in REQUIRED_COLUMNS.items():
        if column not in columns:
            raise InitError(f"table {where} has no column {column} (it is not the OTel Collector exporter's schema)")
        if columns[column] not in types:
            # The exporter's json: true schema stores attributes as JSON (keys split at their dots into paths).
            hint = (
                " (the exporter's json: true schema: init reads its default Map schema)"
                if "JSON" in columns[column]
                else ""
            )
            raise InitError(f"table {where} column {column} is {columns[column]}, expected {' or '.join(types)}{hint}")
    _check_servers(client, names, where)
    facts = _table_engine(client, names.database, names.usage_facts)
    if facts not in (None, "View"):
        raise InitError(
            f"{names.database}.{names.usage_facts} is a table ({facts}): the database holds the collector's "
            "ClickHouse store, whose rows init's views would replace; run init with another --database"
        )
    reads = _table_engine(client, names.database, names.data_reads)
    if reads not in (None, "View"):
        raise InitError(
            f"{names.database}.{names.data_reads} is a table ({reads}; an earlier init's): init makes it a "
            f"view over {names.data_read_events}; drop or rename it, then run init --backfill (docs/clickhouse.md)"
        )
    _check_views_read(client, names, where)


def _table_engine(client: Any, database: str, name: str) -> str | None:
    """The engine of table (or view) ``database.name``; None when there is none."""
    found = client.query(
        "SELECT engine FROM system.tables WHERE database = {db:String} AND name = {name:String}",
        parameters={"db": database, "name": name},
    ).result_rows
    return str(found[0][0]) if found else None


def _check_servers(client: Any, names: Names, where: str) -> None:
    """Raises :class:`InitError` where the traces table is served by several servers (:func:`one_server_only`)."""
    traces_engine = _table_engine(client, names.traces, names.traces_table) or ""
    database_engine = client.query(
        "SELECT engine FROM system.databases WHERE name = {db:String}", parameters={"db": names.database}
    ).result_rows[0][0]
    replicas = client.query(
        "SELECT total_replicas FROM system.replicas WHERE database = {db:String} AND table = {name:String}",
        parameters={"db": names.traces, "name": names.traces_table},
    ).result_rows
    shards = client.query(  # a Replicated database's cluster has the database's name
        "SELECT max(shard_num) FROM system.clusters WHERE cluster = {db:String}", parameters={"db": names.database}
    ).result_rows
    reason = one_server_only(
        traces_engine, database_engine, replicas[0][0] if replicas else 1, (shards[0][0] or 1) if shards else 1
    )
    if reason:
        raise InitError(f"table {where} is {traces_engine}: {reason}")


def one_server_only(traces_engine: str, database_engine: str, replicas: int, shards: int) -> str:
    """Why ``init`` cannot serve this traces table, or ''. ``init`` creates its tables and materialized views on
    the server it runs on (no ``ON CLUSTER``), and a view fires on the server an insert reaches: over a table of
    several self-managed replicas (``Replicated*``, ``replicas`` of it) the inserts the other servers receive would
    give no usage facts. A database of the ``Replicated`` engine runs each statement on every replica (ClickHouse
    Cloud's ``Shared*`` tables share one storage), but its ``shards`` each keep their own facts, as a
    ``Distributed`` traces table's shards would: one server's views would read one shard's."""
    if traces_engine == "Distributed" or (database_engine == "Replicated" and shards > 1):
        return (
            "init's tables would hold each shard's facts apart and its views read one shard's (no ON CLUSTER, no "
            "Distributed tables of its own); run it over a single shard's database (docs/clickhouse.md)"
        )
    if database_engine != "Replicated" and traces_engine.startswith("Replicated") and replicas > 1:
        return (
            "init creates its tables and materialized views on this server only (no ON CLUSTER), so the inserts "
            "other servers receive would give no usage facts; run it in a database of the Replicated engine, which "
            "runs it on every replica (docs/clickhouse.md)"
        )
    return ""


def trace_bounds_table(client: Any, names: Names) -> str:
    """The exporter's ``<traces_table>_trace_id_ts`` when it exists with its columns and is filled from the traces
    table by the exporter's ``<traces_table>_trace_id_ts_mv``; else ''. The windowed views then read only the
    partitions their traces lie in; without it, every day's (the same rows, at more cost)."""
    table = f"{names.traces_table}_trace_id_ts"
    columns = client.query(
        "SELECT name, type FROM system.columns WHERE database = {db:String} AND table = {table:String}",
        parameters={"db": names.traces, "table": table},
    ).result_rows
    if not set(TRACE_BOUNDS_COLUMNS.items()) <= set(columns):
        return ""
    filled = client.query(
        "SELECT has(arrayZip(dependencies_database, dependencies_table), ({db:String}, {view:String})) "
        "FROM system.tables WHERE database = {db:String} AND name = {table:String}",
        parameters={"db": names.traces, "table": names.traces_table, "view": f"{table}_mv"},
    ).result_rows
    return table if filled and filled[0][0] else ""


def _check_views_read(client: Any, names: Names, where: str) -> None:
    """An earlier init's materialized views read this traces table: ``IF NOT EXISTS`` would keep views reading
    another one (the exporter's ``traces_table_name`` changed), and new spans would give no facts."""
    views = (names.usage_reports_view, f"{names.data_reads}_events", f"{names.data_reads}_objects")
    sources = client.query(
        "SELECT view, database, name FROM system.tables ARRAY JOIN dependencies_database AS view_database, "
        "dependencies_table AS view WHERE view_database = {db:String} AND has({views:Array(String)}, view)",
        parameters={"db": names.database, "views": list(views)},
    ).result_rows
    elsewhere = sorted((view, f"{database}.{table}") for view, database, table in sources
                       if (database, table) != (names.traces, names.traces_table))  # fmt: skip
    if elsewhere:
        drops = "; ".join(f"DROP VIEW {names.database}.{view}" for view, _ in elsewhere)
        raise InitError(
            f"the materialized views {', '.join(view for view, _ in elsewhere)} of an earlier init read "
            f"{elsewhere[0][1]}, not {where}: drop them ({drops}), then run init --backfill over the new table"
        )


def init(
    client: Any,
    names: Names,
    *,
    catalog_models: bool = True,
    backfill_existing: bool = False,
    price_overrides: Path | None = None,
) -> InitReport:
    """Check the traces table, then create (or keep) every table and view and load the price table.

    The materialized views see the rows inserted after they exist; ``backfill_existing`` also runs their
    queries over the rows already in the traces table (once is enough; repeating it is harmless).
    """
    check_traces_table(client, names)
    catalog = load_catalog(price_overrides)  # before any statement: a bad overrides file leaves nothing half made
    names = replace(names, trace_bounds=trace_bounds_table(client, names))
    created = statements(names)
    for statement in created[:-PRICED_VIEWS]:
        client.command(statement)
    if backfill_existing:
        for statement in created[:-PRICED_VIEWS]:
            if statement.lstrip("-").find("CREATE MATERIALIZED VIEW") != -1:
                client.command(backfill(statement))
    price_rows = load_prices(client, names, catalog, catalog_models=catalog_models)
    for statement in created[-PRICED_VIEWS:]:
        client.command(statement)
    # The billing tables, empty until a billing import: the answers and the dashboard's lineage read them.
    session = client.database
    client.database = names.database
    try:
        ensure_billing_tables(client)
    finally:
        client.database = session
    return InitReport(len(created), price_rows)
