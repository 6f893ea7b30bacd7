"""The ClickHouse schema: ``otel_traces`` exactly as the OTel Collector's ``clickhouseexporter`` makes it, and
spanledger's own tables derived from the records' field tables (``_schema.py``), as the DuckDB ones are.

Spans live only in ``otel_traces`` (there is no ``spans`` table in ClickHouse): Grafana's trace view and every
tool built on that table read what spanledger stores. ``usage_facts`` and ``data_reads`` have the DuckDB
tables' names and columns, typed by :attr:`Kind.clickhouse_type`.

Every row table is a ``ReplacingMergeTree`` ordered by the row's identity (:data:`ROW_KEYS`): a client retry or
a request-log replay inserts the same rows again, and they collapse into one; readers that must not count a
duplicate not merged yet read with ``FINAL`` (docs/store.md, "ClickHouse"). With a ``cluster`` every statement
runs ``ON CLUSTER``; each table is a ``Replicated*`` table named ``<table>_local`` on every node and a
``Distributed`` table of the plain name over them, sharded by trace id so a row's duplicates meet on one shard.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import timedelta
from importlib import resources
from typing import Any

from ._clickhouse_client import quote_identifier, quote_string
from ._duckdb import REQUEST_RETENTION
from ._facts import USAGE_FACTS
from ._retractions import COUNTED_USAGE_FACTS, USAGE_CANDIDATES, USAGE_RETRACTIONS
from ._rows import DATA_READS
from ._schema import Table

__all__ = [
    "INIT_USAGE_REPORTS",
    "LOG_POSITIONS",
    "OTEL_TRACES",
    "RECEIVED_REQUESTS",
    "ROW_KEYS",
    "ROW_TABLES",
    "WINDOW",
    "WINDOW_VIEWS",
    "ClickHouseSchema",
    "RowLayout",
    "WindowParameters",
    "holds_init_views",
    "ttl_clause",
]

OTEL_TRACES = "otel_traces"
"""The exporter's default traces table name."""
LOG_POSITIONS = "request_log_position"
"""Per collector replica, the position of its request log up to which its batches are stored."""
RECEIVED_REQUESTS = "received_requests"
"""The digests of the requests stored (by any replica) within the last hour: a retried request is skipped."""
INIT_USAGE_REPORTS = "usage_reports"
"""``spanledger clickhouse init``'s table of the facts its materialized views write (the store has none)."""


@dataclass(frozen=True)
class WindowParameters:
    """The windowed views' parameters, as SQL: rows overlapping ``[since, until]`` (both included), of trace
    ``trace`` ('': every trace). ``since`` and ``until`` are strings read by ``parseDateTime64BestEffort`` (UTC
    unless they name a zone: ``2026-01-01 00:00:00``, ISO 8601, or Unix seconds of 9 digits or more, as the
    dashboard passes Grafana's range), so one call serves the CLI, Grafana and a user's query:
    ``SELECT … FROM usage_facts_window(since='2026-01-01', until='2026-01-31 23:59:59', trace='')``."""

    since: str = "parseDateTime64BestEffort({since:String}, 6, 'UTC')"
    until: str = "parseDateTime64BestEffort({until:String}, 6, 'UTC')"
    trace: str = "{trace:String}"

    def condition(self, start: str, end: str, trace_id: str = "trace_id") -> str:
        """A row whose ``[start, end]`` columns overlap the window, of the trace asked for. Either order: a span
        may end before it starts (its facts keep both times), and a filter on ``start_time`` alone, as the
        answers' and the dashboard's are, must not lose it."""
        first, last = (start, end) if start == end else (f"least({start}, {end})", f"greatest({start}, {end})")
        return (
            f"{last} >= {self.since} AND {first} <= {self.until} AND ({self.trace} = '' OR {trace_id} = {self.trace})"
        )

    @staticmethod
    def bound(query: str, *, since: str, until: str, trace: str) -> str:
        """``query`` (a windowed view's own, ``system.tables.as_select``) with the parameters given as string
        literals: the rows the view gives for them, as a query to read inline."""
        values = {"since": since, "until": until, "trace": trace}
        return _WINDOW_PARAMETER.sub(lambda match: quote_string(values[match[1]]), query)


_WINDOW_PARAMETER = re.compile(r"\{(since|until|trace):String\}")
WINDOW = WindowParameters()
WINDOW_VIEWS = ("usage_facts_window", "data_reads_window")
"""The windowed views: the facts that count, and the data reads (``spanledger clickhouse init`` makes its own of
these names, over ``otel_traces``)."""


@dataclass(frozen=True)
class RowLayout:
    """How one row table is laid out: its identity (the sort key duplicates collapse on) and time column."""

    table: Table
    key: tuple[str, ...]
    """The row's identity: ``ORDER BY``; a retried or replayed row has the same one."""
    time_column: str | None
    """Partitions (by month, the billing period) and the ``ttl`` are on it; None: the rows have no time (the
    retractions and candidates, a few rows per late child: kept, unpartitioned)."""


ROW_KEYS = {
    # One meter of one owner span (docs/schema.md); trace id first: the trace answer reads one trace.
    USAGE_FACTS.name: RowLayout(USAGE_FACTS, ("trace_id", "span_id", "meter"), "end_time"),
    # One spanledger.data.read event: its index on its span.
    DATA_READS.name: RowLayout(DATA_READS, ("trace_id", "span_id", "seq"), "read_time"),
    # The fact a retraction names: a replayed or re-found retraction collapses into one (_retractions.py).
    USAGE_RETRACTIONS.name: RowLayout(USAGE_RETRACTIONS, ("trace_id", "span_id", "meter"), None),
    USAGE_CANDIDATES.name: RowLayout(USAGE_CANDIDATES, ("trace_id", "span_id"), None),
}
ROW_TABLES = tuple(layout.table for layout in ROW_KEYS.values())

_SQL = resources.files(__package__) / "sql" / "clickhouse"
_OTEL_TEMPLATES = ("otel_traces.sql", "otel_traces_trace_id_ts.sql", "otel_traces_trace_id_ts_mv.sql")


def ttl_clause(ttl: timedelta | None, time_expression: str) -> str:
    """``TTL <time> + toInterval<Unit>(n)`` in the largest whole unit, as the exporter writes it; '' without."""
    if not ttl:
        return ""
    seconds = int(ttl.total_seconds())
    if seconds <= 0 or ttl != timedelta(seconds=seconds):
        raise ValueError(f"ttl must be a positive whole number of seconds, not {ttl}")
    for unit, size in (("Day", 86400), ("Hour", 3600), ("Minute", 60)):
        if seconds % size == 0:
            return f"TTL {time_expression} + toInterval{unit}({seconds // size})"
    return f"TTL {time_expression} + toIntervalSecond({seconds})"


def holds_init_views(client: Any, database: str) -> bool:
    """Whether ``database`` is one ``spanledger clickhouse init`` set up over an OTel Collector's spans: its
    ``usage_facts`` is a view there, where the store's is a table, and init's ``usage_reports`` (made first) is
    there even if an init stopped half way. The store's schema must not be made there: its ``CREATE OR REPLACE
    VIEW`` statements would replace init's windowed views, and its rows have no tables."""
    found = client.query(
        "SELECT count() FROM system.tables WHERE database = {db:String} "
        "AND ((name = {facts:String} AND engine = 'View') OR name = {reports:String})",
        parameters={"db": database, "facts": USAGE_FACTS.name, "reports": INIT_USAGE_REPORTS},
    ).result_rows
    return bool(found[0][0])


@dataclass(frozen=True)
class ClickHouseSchema:
    """The statements creating the store's tables in ``database`` (``CREATE ... IF NOT EXISTS``: rerunnable)."""

    database: str
    cluster: str | None = None
    ttl: timedelta | None = None
    """Rows older than this (by their time column) are dropped by ClickHouse."""
    traces_table: str = OTEL_TRACES

    def statements(self) -> list[str]:
        return [
            f"CREATE DATABASE IF NOT EXISTS {quote_identifier(self.database)}{self._on_cluster()}",
            *self._otel_traces(),
            *(statement for layout in ROW_KEYS.values() for statement in self._row_table(layout)),
            *self._log_positions(),
            *self._received_requests(),
            self._counted_usage_facts(),
            *self._window_views(),
        ]

    def _on_cluster(self) -> str:
        return f" ON CLUSTER {quote_identifier(self.cluster)}" if self.cluster else ""

    def _qualified(self, table: str) -> str:
        return f"{quote_identifier(self.database)}.{quote_identifier(table)}"

    def _local(self, table: str) -> str:
        """The table holding the rows: ``<table>_local`` on a cluster (the plain name is then Distributed)."""
        return f"{table}_local" if self.cluster else table

    def _distributed(self, table: str, sharding_key: str, local: str | None = None) -> list[str]:
        """The ``Distributed`` table ``table`` over ``local`` (default: ``<table>_local``) on a cluster.

        The names are plain identifiers (checked at load), so they go into the engine's arguments as they are."""
        if not self.cluster:
            return []
        local = local or self._local(table)
        return [
            f"CREATE TABLE IF NOT EXISTS {self._qualified(table)}{self._on_cluster()} "
            f"AS {self._qualified(local)} "
            f"ENGINE = Distributed('{self.cluster}', '{self.database}', '{local}', {sharding_key})"
        ]

    def _engine(self, engine: str) -> str:
        # Without arguments a Replicated engine takes the server's default_replica_path/default_replica_name.
        return f"Replicated{engine}" if self.cluster else engine

    def _otel_traces(self) -> list[str]:
        """The exporter's templates (``sql/clickhouse``); on a cluster the MV feeds the local lookup table."""
        values = {
            "database": self.database,
            "cluster": self._on_cluster().strip(),
            "engine": self._engine("MergeTree()"),
        }
        statements = []
        for name, table, ttl_time in (
            (_OTEL_TEMPLATES[0], self._local(self.traces_table), "toDateTime(Timestamp)"),
            (_OTEL_TEMPLATES[1], self._local(self.traces_table), "toDateTime(Start)"),
        ):
            template = (_SQL / name).read_text(encoding="utf-8")
            statements.append(template.format(table=table, ttl=ttl_clause(self.ttl, ttl_time), **values))
        mv = (_SQL / _OTEL_TEMPLATES[2]).read_text(encoding="utf-8")
        statements.append(mv.format(table=self._local(self.traces_table), ttl="", **values))
        statements += self._distributed(self.traces_table, "cityHash64(TraceId)")
        # The trace-id lookup under its plain name too: the trace answer and Grafana's trace view read it.
        lookup = f"{self.traces_table}_trace_id_ts"
        statements += self._distributed(lookup, "cityHash64(TraceId)", f"{self._local(self.traces_table)}_trace_id_ts")
        return statements

    def _row_table(self, layout: RowLayout) -> list[str]:
        table = layout.table
        time = layout.time_column
        create = (
            f"CREATE TABLE IF NOT EXISTS {self._qualified(self._local(table.name))}{self._on_cluster()} (\n"
            f"  {table.clickhouse_column_definitions()}\n"
            f") ENGINE = {self._engine('ReplacingMergeTree()')}\n"
            + (f"PARTITION BY toYYYYMM({time})\n" if time else "")
            + f"ORDER BY ({', '.join(layout.key)})\n"
            + (ttl_clause(self.ttl, f"toDateTime({time})") if time else "")
        ).rstrip()
        return [create, *self._distributed(table.name, "cityHash64(trace_id)")]

    def _counted_usage_facts(self) -> str:
        """The view every reader of facts reads (``sql/clickhouse/counted_usage_facts.sql``), as in DuckDB."""
        template = (_SQL / f"{COUNTED_USAGE_FACTS}.sql").read_text(encoding="utf-8")
        return template.format(database=self.database, cluster=self._on_cluster().strip())

    def _window_views(self) -> list[str]:
        """``sql/clickhouse/<view>.sql`` for each of :data:`WINDOW_VIEWS`: here a filter on the plain tables reaches
        their scan, and the views give the answers and the dashboard one name on both kinds of install."""
        values = {"database": self.database, "cluster": self._on_cluster().strip(),
                  "facts_in_window": WINDOW.condition("start_time", "end_time"),
                  "reads_in_window": WINDOW.condition("read_time", "read_time")}  # fmt: skip
        return [(_SQL / f"{view}.sql").read_text(encoding="utf-8").format(**values) for view in WINDOW_VIEWS]

    def _log_positions(self) -> list[str]:
        # The highest position a replica recorded wins the merge: a late duplicate of an older commit is no
        # step back.
        create = (
            f"CREATE TABLE IF NOT EXISTS {self._qualified(self._local(LOG_POSITIONS))}{self._on_cluster()} (\n"
            "  replica_id String, committed_seq Int64\n"
            f") ENGINE = {self._engine('ReplacingMergeTree(committed_seq)')}\n"
            "ORDER BY replica_id"
        )
        return [create, *self._distributed(LOG_POSITIONS, "cityHash64(replica_id)")]

    def _received_requests(self) -> list[str]:
        retention = ttl_clause(REQUEST_RETENTION, "toDateTime(received_at)")
        create = (
            f"CREATE TABLE IF NOT EXISTS {self._qualified(self._local(RECEIVED_REQUESTS))}{self._on_cluster()} (\n"
            "  digest String, received_at DateTime64(6, 'UTC')\n"
            f") ENGINE = {self._engine('ReplacingMergeTree()')}\n"
            f"ORDER BY digest\n{retention}"
        )
        return [create, *self._distributed(RECEIVED_REQUESTS, "cityHash64(digest)")]
