"""The engine the billing SQL runs in: DuckDB (the embedded store) or ClickHouse (a server, or chdb in-process).

The allocation and the answers are SQL files per engine (``sql/duckdb/...``, ``sql/clickhouse/...``, with the
same names); one Python driver runs them through an :class:`Engine`, which knows only how to fill a file's
``{{name}}`` placeholders, run a statement, insert rows and quote a literal in its dialect. Facts are read
through :attr:`Engine.facts`, the one place that says which usage facts count (ClickHouse: ``FINAL``, since
retried inserts may store a fact twice until the merge), or :meth:`Engine.facts_within` where a read needs only a
time window or one trace (over ``spanledger clickhouse init``'s views, whose cost then follows the window).
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from decimal import Decimal
from functools import cache
from importlib import resources
from typing import Any, Protocol

import duckdb

from .._engine._ddl import Names
from .._store import COUNTED_USAGE_FACTS, SPANS
from .._store._clickhouse_client import quote_identifier, quote_string
from .._store._clickhouse_schema import OTEL_TRACES, WINDOW, WINDOW_VIEWS
from ._lock import DEFAULT_LOCK_TIMING, BillingLock, LockTiming

__all__ = ["ClickHouseEngine", "DuckDBEngine", "Engine", "Window", "engine_of", "spans_table", "sql_text"]

_PLACEHOLDER = re.compile(r"\{\{(\w+)\}\}")


@cache
def _read(dialect: str, name: str) -> str:
    node = resources.files("spanledger_collector.billing").joinpath("sql").joinpath(dialect)
    for part in f"{name}.sql".split("/"):
        node = node.joinpath(part)
    return node.read_text(encoding="utf-8")


def sql_text(dialect: str, name: str, params: Mapping[str, object]) -> str:
    """The file ``sql/<dialect>/<name>.sql`` with each ``{{key}}`` replaced by ``str(params[key])``."""

    def fill(match: re.Match[str]) -> str:
        key = match.group(1)
        if key not in params:
            raise KeyError(f"sql/{dialect}/{name}.sql: no value for {{{{{key}}}}}")
        return str(params[key])

    return _PLACEHOLDER.sub(fill, _read(dialect, name))


@dataclass(frozen=True)
class Window:
    """What a read needs: rows overlapping ``[since, until]`` (both included; None: unbounded), of ``trace_id``
    (None: every trace). A relation read through it may hold more rows; the reading SQL keeps its own filter."""

    since: datetime | None = None
    until: datetime | None = None
    trace_id: str | None = None


# The bounds of ClickHouse's DateTime64: an unbounded side of a window.
_EARLIEST, _LATEST = datetime(1900, 1, 1), datetime(2299, 12, 31, 23, 59, 59)


class Engine(Protocol):
    dialect: str
    facts: str
    """The relation usage facts are read from (a table name or a parenthesised query; ``FINAL`` where the engine
    needs it). The one place that says which facts count: a retraction table is an anti-join here."""

    def facts_within(self, window: Window) -> str:
        """:attr:`facts`, or a relation of the facts overlapping ``window`` and more, cheaper to read."""
        ...

    def reads_within(self, window: Window) -> str:
        """The data reads of the store, or a relation of those in ``window`` and more, cheaper to read."""
        ...

    spans: str
    """The table a trace's spans are read from: the store's ``spans``, or ClickHouse's ``otel_traces`` (whose
    trace-id table is ``<spans>_trace_id_ts``)."""

    def spans_relations(self) -> dict[str, str]:
        """What a trace's spans are read from (``trace_spans.sql``'s ``spans``, and on ClickHouse ``bounds``,
        the trace-id table), as SQL relations (names quoted)."""
        ...

    def sql(self, name: str, **params: object) -> str: ...

    def execute(self, sql: str) -> None: ...

    def rows(self, sql: str) -> list[tuple[Any, ...]]: ...

    def query(self, sql: str) -> tuple[list[str], list[tuple[Any, ...]]]:
        """Column names and rows."""
        ...

    def insert(self, table: str, columns: Sequence[str], rows: Sequence[Sequence[Any]]) -> None: ...

    def literal(self, value: object) -> str: ...

    def has_table(self, name: str) -> bool: ...

    def transaction(self) -> contextlib.AbstractContextManager[None]:
        """A write of billing tables, alone: DuckDB's transaction; ClickHouse's billing lock (``_lock.py``)."""
        ...

    def check_lock(self) -> None:
        """Before the writes that make a run or snapshot current: raise :class:`BillingLockError` if another
        writer took the store's lock over (ClickHouse; DuckDB's transaction needs no check)."""
        ...

    def drop_temporary(self, names: Sequence[str]) -> None: ...


def _timestamp_text(value: datetime) -> str:
    return value.strftime("%Y-%m-%d %H:%M:%S.%f")


class DuckDBEngine:
    dialect = "duckdb"
    facts = COUNTED_USAGE_FACTS  # the store's view: usage facts no retraction names
    spans = SPANS.name

    def __init__(self, connection: duckdb.DuckDBPyConnection) -> None:
        self.connection = connection

    def spans_relations(self) -> dict[str, str]:
        return {"spans": self.spans}

    def facts_within(self, window: Window) -> str:
        return self.facts  # a table: the reading SQL's filter is pushed into the scan

    def reads_within(self, window: Window) -> str:
        return "data_reads"

    def sql(self, name: str, **params: object) -> str:
        return sql_text(self.dialect, name, params)

    def execute(self, sql: str) -> None:
        self.connection.execute(sql)

    def rows(self, sql: str) -> list[tuple[Any, ...]]:
        return self.connection.execute(sql).fetchall()

    def query(self, sql: str) -> tuple[list[str], list[tuple[Any, ...]]]:
        cursor = self.connection.execute(sql)
        return [column[0] for column in cursor.description or []], cursor.fetchall()

    def insert(self, table: str, columns: Sequence[str], rows: Sequence[Sequence[Any]]) -> None:
        if rows:
            marks = ", ".join("?" for _ in columns)
            self.connection.executemany(
                f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({marks})", [list(row) for row in rows]
            )

    def literal(self, value: object) -> str:
        if value is None:
            return "NULL"
        if isinstance(value, datetime):
            return f"TIMESTAMP '{_timestamp_text(value)}'"
        if isinstance(value, (int, Decimal)) and not isinstance(value, bool):
            return str(value)
        return "'" + str(value).replace("'", "''") + "'"

    def has_table(self, name: str) -> bool:
        row = self.connection.execute(
            "SELECT count(*) FROM information_schema.tables WHERE table_name = ? AND table_schema = 'main'", [name]
        ).fetchone()
        return bool(row and row[0])

    @contextlib.contextmanager
    def transaction(self) -> Iterator[None]:
        self.connection.execute("BEGIN TRANSACTION")
        try:
            yield
            self.connection.execute("COMMIT")
        except BaseException:
            self.connection.execute("ROLLBACK")
            raise

    def check_lock(self) -> None:
        pass

    def drop_temporary(self, names: Sequence[str]) -> None:
        for name in names:
            self.connection.execute(f"DROP TABLE IF EXISTS {name}")


class ClickHouseEngine:
    """A ``clickhouse-connect`` client: HTTP to a server, or chdb in-process (``chdb:///path``).

    Scratch tables are session ``TEMPORARY`` tables (the client keeps one session). LEFT JOINs yield NULL for
    a missing row (``join_use_nulls``) as in standard SQL, and a column name wins over a SELECT alias of the same
    name (``prefer_column_name_to_alias``), which the SQL files rely on.
    """

    dialect = "clickhouse"
    _SETTINGS: Mapping[str, Any] = {"join_use_nulls": 1, "prefer_column_name_to_alias": 1}

    def __init__(
        self, client: Any, *, traces_table: str | None = None, lock_timing: LockTiming = DEFAULT_LOCK_TIMING
    ) -> None:
        """``traces_table``: the exporter's spans table (the ``clickhouse`` exporter's ``traces_table``); not
        given, the one the store's views read (:func:`spans_table`). ``lock_timing``: the billing lock's wait and
        lease."""
        self.client = client
        self._lock = BillingLock(client, self.sql, lock_timing)
        self.spans = traces_table or spans_table(client)
        # The collector's store has the counted view (retractions applied); over an OTel Collector's
        # otel_traces, `spanledger clickhouse init` makes usage_facts itself a view that counts each call once.
        self.facts = COUNTED_USAGE_FACTS if self.has_table(COUNTED_USAGE_FACTS) else "(SELECT * FROM usage_facts FINAL)"
        self._windows: dict[str, _WindowedView | None] = {}

    def facts_within(self, window: Window) -> str:
        return self._windowed(WINDOW_VIEWS[0], window) or self.facts

    def reads_within(self, window: Window) -> str:
        return self._windowed(WINDOW_VIEWS[1], window) or "(SELECT * FROM data_reads FINAL)"

    def _windowed(self, view: str, window: Window) -> str:
        """The windowed view ``view``'s rows for ``window`` where the store has the view: over ``otel_traces``
        init's views resolve counted-once and attribution by walking whole traces, which a filter on the whole
        view does not reach; the windowed ones walk only the window's traces (docs/clickhouse.md).

        Read inline, as the view's own query (``system.tables.as_select``, looked up once) with the window as
        literals: read through the parameterised view, the same query costs ClickHouse about 1 s more
        (benchmarks/README.md), and the query is the installed one, whatever version of spanledger installed it.
        A view with ``SQL SECURITY DEFINER`` is called instead: its definer's grants, not the reader's, reach its
        tables."""
        if view not in self._windows:
            found = self.client.query(
                "SELECT as_select, position(create_table_query, ' SQL SECURITY DEFINER ') > 0 FROM system.tables "
                "WHERE database = currentDatabase() AND name = {view:String}",
                parameters={"view": view},
            ).result_rows
            self._windows[view] = _WindowedView(str(found[0][0]), bool(found[0][1])) if found else None
        found_view = self._windows[view]
        if found_view is None:
            return ""
        since, until = (
            _timestamp_text(_naive_utc(moment)) for moment in (window.since or _EARLIEST, window.until or _LATEST)
        )
        trace = window.trace_id or ""
        if found_view.definer:
            return f"{view}(since={quote_string(since)}, until={quote_string(until)}, trace={quote_string(trace)})"
        return f"({WINDOW.bound(found_view.query, since=since, until=until, trace=trace)})"

    def sql(self, name: str, **params: object) -> str:
        return sql_text(self.dialect, name, params)

    def execute(self, sql: str) -> None:
        for statement in _statements(sql):
            self._lock.renew_if_due()
            self.client.command(statement, settings=self._SETTINGS)

    def rows(self, sql: str) -> list[tuple[Any, ...]]:
        self._lock.renew_if_due()
        return [tuple(row) for row in self.client.query(sql, settings=self._SETTINGS).result_rows]

    def query(self, sql: str) -> tuple[list[str], list[tuple[Any, ...]]]:
        self._lock.renew_if_due()
        result = self.client.query(sql, settings=self._SETTINGS)
        return list(result.column_names), [tuple(row) for row in result.result_rows]

    def insert(self, table: str, columns: Sequence[str], rows: Sequence[Sequence[Any]]) -> None:
        # Times are naive UTC here (as in DuckDB); clickhouse-connect would read a naive time in the process's
        # local time zone, so they go in marked UTC.
        if rows:
            self._lock.renew_if_due()
            self.client.insert(table, [[_utc(value) for value in row] for row in rows], column_names=list(columns))

    def literal(self, value: object) -> str:
        if value is None:
            return "NULL"
        if isinstance(value, datetime):
            return f"toDateTime64('{_timestamp_text(value)}', 6, 'UTC')"
        if isinstance(value, (int, Decimal)) and not isinstance(value, bool):
            return str(value)
        return quote_string(str(value))

    def has_table(self, name: str) -> bool:
        rows = self.rows(f"EXISTS TABLE {quote_identifier(name)}")
        return bool(rows and rows[0][0])

    def spans_relations(self) -> dict[str, str]:
        """The exporter's spans table and its trace-id table (``<spans>_trace_id_ts``); where that table is
        missing (an exporter without it), an empty one of its columns: the spans are then read unbounded."""
        bounds = f"{self.spans}_trace_id_ts"
        return {
            "spans": quote_identifier(self.spans),
            "bounds": quote_identifier(bounds)
            if self.has_table(bounds)
            else "(SELECT '' AS TraceId, toDateTime(0) AS Start, toDateTime(0) AS End LIMIT 0)",
        }

    @contextlib.contextmanager
    def transaction(self) -> Iterator[None]:
        # No multi-statement transactions: the run row is written last, so a failed run leaves only rows
        # of a run id no run names (never read); the lock keeps other writers out meanwhile.
        self._lock.acquire()
        try:
            yield
        except BaseException:
            with contextlib.suppress(Exception):  # the error that stopped the write is the one to see
                self._lock.release()
            raise
        self._lock.release()

    def check_lock(self) -> None:
        self._lock.check()

    def drop_temporary(self, names: Sequence[str]) -> None:
        for name in names:
            self.client.command(f"DROP TEMPORARY TABLE IF EXISTS {name}")


@dataclass(frozen=True)
class _WindowedView:
    query: str
    """Its ``as_select``: the query with the window's parameters."""
    definer: bool
    """``SQL SECURITY DEFINER``: read by calling it."""


def _statements(sql: str) -> list[str]:
    """The statements of a file (``;`` at a line's end separates them; ClickHouse takes one at a time)."""
    return [part.strip() for part in re.split(r";\s*\n", sql + "\n") if part.strip() and not _only_comments(part)]


def _only_comments(text: str) -> bool:
    return all(not line.strip() or line.strip().startswith("--") for line in text.splitlines())


def spans_table(client: Any) -> str:
    """The spans table of the client's database, for a process without the collector's config (the CLI): the
    one ``spanledger clickhouse init`` installed its view over, else the exporter's (``otel_traces`` by
    default), found through the views that read it."""
    # init's own names (its CLI takes only the traces table's name)
    params = {"init_view": Names(database="").usage_reports_view, "default": OTEL_TRACES}
    found = client.query(
        sql_text("clickhouse", "spans_table", {key: quote_string(value) for key, value in params.items()})
    ).result_rows
    return str(found[0][0]) if found else OTEL_TRACES


def _naive_utc(moment: datetime) -> datetime:
    return moment.astimezone(timezone.utc).replace(tzinfo=None) if moment.tzinfo else moment


def _utc(value: Any) -> Any:
    return value.replace(tzinfo=timezone.utc) if isinstance(value, datetime) and value.tzinfo is None else value


def engine_of(store: Any) -> Engine:
    """The engine of a DuckDB connection or a clickhouse-connect client (an Engine is returned as is)."""
    if isinstance(store, (DuckDBEngine, ClickHouseEngine)):
        return store
    if isinstance(store, duckdb.DuckDBPyConnection):
        return DuckDBEngine(store)
    if hasattr(store, "query_arrow") and hasattr(store, "command"):
        return ClickHouseEngine(store)
    raise TypeError(f"not a billing store: {type(store).__name__}")
