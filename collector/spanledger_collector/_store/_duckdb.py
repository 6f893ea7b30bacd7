"""The DuckDB usage store: one writer connection, per-thread cursors for readers.

Thread model: the collector's single writer thread calls :meth:`DuckDBStore.append` and
:meth:`DuckDBStore.commit`; every other thread
(admin API, billing import) calls :meth:`DuckDBStore.cursor` for a connection of its own on the same
database and closes it when done.

The collector's writer appends groups of requests into one open transaction and commits it every
``commit_interval`` (:meth:`DuckDBStore.append`, :meth:`DuckDBStore.commit`), recording in the same transaction
the position of the last committed request in the request log, which holds what was acknowledged meanwhile.
An append converts its rows to Arrow buffers and stages them; they are inserted once :data:`_INSERT_SPANS`
spans are staged, or at commit, as one Arrow C stream per table (no pyarrow on this path when the compiled
converter is built).

Writes are idempotent per request: each batch carries the digest of the request it came from, and a
batch whose digest is already in ``received_requests`` is skipped, so a client retrying the same request
(OTLP exporters resend the same bytes) changes nothing. A Bloom filter of the stored digests
(:class:`RecentDigests`) lets a request it proves new skip the costlier ``INSERT OR IGNORE``. The row tables
have no primary keys: DuckDB keeps those indexes in memory and maintaining them cost more than everything else
a write does (see docs/store.md, "Performance"). Digests older than :data:`REQUEST_RETENTION` are
pruned.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections.abc import Iterator, Sequence
from datetime import datetime, timedelta, timezone
from importlib import resources
from pathlib import Path
from typing import Any, NoReturn, Protocol

import duckdb
from spanledger.semconv import SpanledgerMeterValues as Meter

from ._compiled import columns as _columns
from ._digests import RecentDigests
from ._facts import USAGE_FACTS, UsageFact
from ._retractions import USAGE_CANDIDATES, USAGE_RETRACTIONS, StoredRelative, retract_stored_relatives
from ._rows import DATA_READS, SPANS, SpanColumns, StoreBatch
from ._schema import Table

__all__ = ["DuckDBStore", "Store", "StoreUnavailableError"]

logger = logging.getLogger("spanledger.collector")

RECEIVED_REQUESTS_DDL = """
CREATE TABLE IF NOT EXISTS received_requests (
  digest BLOB PRIMARY KEY,
  received_at TIMESTAMP NOT NULL
)"""
# Longer than any OTLP client's retry window (the OTel SDKs give up within minutes, the OTel Collector's
# retry_on_failure after 5 minutes by default).
REQUEST_RETENTION = timedelta(hours=1)
REQUEST_LOG_POSITION_DDL = """
CREATE TABLE IF NOT EXISTS request_log_position (
  committed_seq BIGINT NOT NULL
)"""
_PRUNE_EVERY_S = 60.0
# Rows are staged as Arrow tables and inserted once this many spans are staged, or at commit: DuckDB's insert
# costs ~1 ms a table whatever its size, and a 2,000-span insert ~1 µs a span more than an 8,000-span one.
_INSERT_SPANS = 8192
_DIGESTS_CHUNK = 10_000
# Rows per DuckDB row group, a quarter of DuckDB's default (122,880). A large transaction's rows wait in memory,
# uncompressed, until a row group fills and is written out compressed; the writer's transaction (10 s of spans)
# then held most of a full row group per table, more than the store's memory limit, so DuckDB spilled them to
# temporary files and read them back. Smaller groups are written out sooner: store CPU 7.6-8.1 -> 4.9-5.1 µs per
# span, and a smaller file. It is an ATTACH option, not kept in the file, so it is given at every open.
_ROW_GROUP_SIZE = 30_720
_CATALOG = "store"
# What ``retention`` expires, by the time each row's usage or read ended.
_RETAINED_ROWS = (("spans", "end_time"), ("data_reads", "read_time"), ("usage_facts", "end_time"))


def _sql(name: str) -> str:
    return resources.files("spanledger_collector._store").joinpath(f"sql/{name}.sql").read_text(encoding="utf-8")


COUNTED_USAGE_FACTS_DDL = _sql("counted_usage_facts")
"""The one place that says which facts count (``counted_usage_facts``): every reader of facts reads that view."""
_STORED_RELATIVE_FACTS = _sql("stored_relative_facts")


def _tokens(meter: Meter) -> str:
    return f"sum(quantity) FILTER (WHERE meter = '{meter.value}')"


TRACE_ROLLUPS_DDL = f"""
CREATE OR REPLACE VIEW trace_rollups AS
WITH facts AS (
  SELECT trace_id,
    min(start_time) AS start_time,
    max(end_time) AS end_time,
    {_tokens(Meter.LLM_INPUT_TOKENS)} AS input_tokens,
    {_tokens(Meter.LLM_CACHE_READ_TOKENS)} AS cache_read_tokens,
    {_tokens(Meter.LLM_CACHE_WRITE_TOKENS)} AS cache_write_tokens,
    {_tokens(Meter.LLM_OUTPUT_TOKENS)} AS output_tokens,
    sum(quantity) FILTER (WHERE meter IN ('{Meter.LLM_INPUT_TOKENS.value}', '{Meter.LLM_CACHE_READ_TOKENS.value}',
      '{Meter.LLM_CACHE_WRITE_TOKENS.value}', '{Meter.LLM_OUTPUT_TOKENS.value}')) AS total_tokens,
    sum(estimated_cost) AS estimated_cost,
    count(*) FILTER (WHERE estimated_cost IS NULL) AS unpriced_facts,
    list(DISTINCT currency) FILTER (WHERE currency IS NOT NULL) AS currencies,
    {_tokens(Meter.ACCELERATOR_SECONDS)} AS accelerator_seconds,
    {_tokens(Meter.ENDPOINT_SECONDS)} AS endpoint_seconds,
    {_tokens(Meter.EGRESS_BYTES)} AS egress_bytes,
    {_tokens(Meter.INGRESS_BYTES)} AS ingress_bytes,
    list(DISTINCT model ORDER BY model) FILTER (WHERE model IS NOT NULL) AS models,
    any_value(workflow) FILTER (WHERE workflow IS NOT NULL) AS workflow,
    any_value(tenant) FILTER (WHERE tenant IS NOT NULL) AS tenant,
    any_value(service) FILTER (WHERE service IS NOT NULL) AS service
  FROM counted_usage_facts GROUP BY trace_id
), egress AS (
  SELECT trace_id, coalesce(boundary, 'unknown') AS boundary, sum(quantity) AS quantity
  FROM counted_usage_facts WHERE meter = '{Meter.EGRESS_BYTES.value}' GROUP BY ALL
), egress_map AS (
  SELECT trace_id, map(list(boundary ORDER BY boundary), list(quantity ORDER BY boundary)) AS by_boundary
  FROM egress GROUP BY trace_id
), reads AS (
  SELECT trace_id,
    max(age_seconds) AS oldest_data_age_seconds,
    min(age_seconds) AS newest_data_age_seconds,
    list(DISTINCT source ORDER BY source) FILTER (WHERE source IS NOT NULL) AS data_sources,
    count(*) AS data_reads,
    any_value(workflow) FILTER (WHERE workflow IS NOT NULL) AS workflow,
    any_value(tenant) FILTER (WHERE tenant IS NOT NULL) AS tenant,
    any_value(service) FILTER (WHERE service IS NOT NULL) AS service
  FROM data_reads GROUP BY trace_id
)
SELECT
  coalesce(facts.trace_id, reads.trace_id) AS trace_id,
  coalesce(facts.workflow, reads.workflow) AS workflow,
  coalesce(facts.tenant, reads.tenant) AS tenant,
  coalesce(facts.service, reads.service) AS service,
  facts.start_time, facts.end_time,
  coalesce(facts.input_tokens, 0) AS input_tokens,
  coalesce(facts.cache_read_tokens, 0) AS cache_read_tokens,
  coalesce(facts.cache_write_tokens, 0) AS cache_write_tokens,
  coalesce(facts.output_tokens, 0) AS output_tokens,
  coalesce(facts.total_tokens, 0) AS total_tokens,
  facts.estimated_cost,
  coalesce(facts.unpriced_facts, 0) AS unpriced_facts,
  coalesce(facts.currencies, []) AS currencies,
  coalesce(facts.accelerator_seconds, 0) AS accelerator_seconds,
  coalesce(facts.endpoint_seconds, 0) AS endpoint_seconds,
  coalesce(facts.egress_bytes, 0) AS egress_bytes,
  egress_map.by_boundary AS egress_bytes_by_boundary,
  coalesce(facts.ingress_bytes, 0) AS ingress_bytes,
  reads.oldest_data_age_seconds,
  reads.newest_data_age_seconds,
  coalesce(reads.data_sources, []) AS data_sources,
  coalesce(reads.data_reads, 0) AS data_reads,
  coalesce(facts.models, []) AS models
FROM facts
FULL OUTER JOIN reads ON facts.trace_id = reads.trace_id
LEFT JOIN egress_map ON egress_map.trace_id = coalesce(facts.trace_id, reads.trace_id)
"""


class StoreUnavailableError(Exception):
    """The store failed for a reason of its own, not the data's (out of memory, I/O, a conflicting transaction):
    the same data may succeed later."""


class Store(Protocol):
    """What the collector needs from a usage store: :class:`DuckDBStore`, or ``_clickhouse.ClickHouseStore``."""

    def append(self, batches: Sequence[StoreBatch]) -> list[StoreBatch]:
        """Insert the batches into the open transaction (opening one), skipping already stored requests.

        Returns the batches inserted (a retried request's batch is not among them). On an error the open
        transaction is rolled back, with everything appended since the last commit; the error is a
        :class:`StoreUnavailableError` when it is the store's, not the data's.
        """

    def commit(self, log_position: int | None = None) -> None:
        """Commit the open transaction, recording ``log_position`` as the last committed logged request.

        On an error the transaction is rolled back; errors are classified as in :meth:`append`.
        """

    def rollback(self) -> None:
        """Drop the open transaction, if any."""

    def committed_log_position(self) -> int:
        """The request log position of the last commit (0 before the first)."""

    def stored_until(self) -> datetime | None:
        """The latest end time of a stored span (None: no spans), which bounds what an earlier process stored."""

    def cursor(self) -> Any:
        """A DB-API connection for the calling thread; the caller closes it."""

    def large_queries(self) -> contextlib.AbstractContextManager[None]:
        """Let billing work in this process use more memory and threads than the ingest path while it runs."""

    def close(self) -> None:
        """Release the store (an open transaction is rolled back); safe to call twice."""


def _roll_back(connection: duckdb.DuckDBPyConnection) -> None:
    with contextlib.suppress(duckdb.Error):  # a failed commit has already ended the transaction
        connection.rollback()


def _raise_classified(error: BaseException) -> NoReturn:
    # DB-API's OperationalError: "not necessarily under the control of the programmer" (memory, I/O, conflicts).
    if isinstance(error, (duckdb.OperationalError, MemoryError, OSError)):
        raise StoreUnavailableError(f"{type(error).__name__}: {error}") from error
    raise error


# The row tables, each derived from its record's field table (_schema.py): DDL, column order, Arrow kinds.
_ROW_TABLES = {table.name: table for table in (SPANS, USAGE_FACTS, DATA_READS, USAGE_RETRACTIONS, USAGE_CANDIDATES)}

_Chunk = Any
"""Rows staged for one insert: ``(rows, buffers per column)`` from _columns.c, or a pyarrow Table."""


def _pyarrow() -> Any:
    # Imported only where the compiled converter is missing or declines: the collector's ingest path then
    # runs without pyarrow's libraries (~25 MiB of its resident memory).
    import pyarrow

    return pyarrow


def _arrow_array(values: Sequence[Any], kind: str) -> Any:
    """``values`` as the Arrow array of a field of kind code ``kind`` (``_schema.Kind.code``)."""
    pa = _pyarrow()
    if kind == "n":
        return pa.array(values, pa.int64()).cast(pa.timestamp("ns")).cast(pa.timestamp("us"), safe=False)
    types = {
        "s": pa.string(),
        "t": pa.timestamp("us"),
        "b": pa.int8(),
        "i": pa.int32(),
        "l": pa.int64(),
        "f": pa.float64(),
        "q": pa.decimal128(38, 9),
        "c": pa.decimal128(38, 12),
    }
    return pa.array(values, types[kind])


def _pyarrow_table(columns: Sequence[Sequence[Any]], kinds: str, names: Sequence[str]) -> Any:
    """The chunk pyarrow converts, where the compiled converter is missing or declines a value."""
    arrays = [_arrow_array(values, kind) for values, kind in zip(columns, kinds, strict=True)]
    return _pyarrow().Table.from_arrays(arrays, names=list(names))


def _span_chunk(spans: SpanColumns) -> _Chunk:
    columns = [getattr(spans, attribute) for attribute in SPANS.attributes]
    if _columns is not None:
        buffers = [_columns.column_to_buffers(values, kind) for values, kind in zip(columns, SPANS.kinds, strict=True)]
        if all(column is not None for column in buffers):
            return (len(spans), buffers)
    return _pyarrow_table(columns, SPANS.kinds, SPANS.column_names)


def _rows_chunk(rows: Sequence[tuple[Any, ...]], table: Table) -> _Chunk:
    """One chunk from rows (usage facts, data reads) of ``table``, their fields in its order."""
    if _columns is not None:
        buffers = _columns.rows_to_buffers(rows, table.kinds)
        if buffers is not None:
            return (len(rows), buffers)
    return _pyarrow_table(list(zip(*rows, strict=True)), table.kinds, table.column_names)


def _insert_chunks(connection: duckdb.DuckDBPyConnection, table: str, chunks: Sequence[_Chunk]) -> None:
    # from_arrow(...).insert_into: each Arrow scan costs DuckDB ~1 ms of setup, half of what
    # register() + INSERT ... SELECT + unregister() costs.
    native = [chunk for chunk in chunks if isinstance(chunk, tuple)]
    if native:
        fields = _ROW_TABLES[table]
        stream = _columns.arrow_stream(fields.kinds, fields.column_names, native)
        connection.from_arrow(stream).insert_into(table)
    tables = [chunk for chunk in chunks if not isinstance(chunk, tuple)]
    if tables:
        connection.from_arrow(_pyarrow().concat_tables(tables)).insert_into(table)


def _create_or_extend(connection: duckdb.DuckDBPyConnection, table: Table, path: str) -> None:
    """Create ``table``, or add the columns a store written by an earlier release lacks.

    Fields are only ever appended to a record (nullable), so an older store's columns are a prefix of the
    table's; inserts then keep matching the columns by position. Anything else is refused, naming the columns.
    """
    connection.execute(table.duckdb_ddl())
    stored = tuple(
        name
        for (name,) in connection.execute(
            "SELECT column_name FROM duckdb_columns() WHERE table_name = ? AND database_name = current_database() "
            "ORDER BY column_index",
            [table.name],
        ).fetchall()
    )
    expected = table.column_names
    if stored[: len(expected)] != expected[: len(stored)] or len(stored) > len(expected):
        raise RuntimeError(
            f"the store {path}: table {table.name} has the columns {', '.join(stored)}; this release writes "
            f"{', '.join(expected)} (see docs/schema.md)"
        )
    for field in table.fields[len(stored) :]:
        if not field.nullable:
            raise RuntimeError(f"the store {path}: table {table.name} lacks the required column {field.name}")
        connection.execute(f"ALTER TABLE {table.name} ADD COLUMN {field.name} {field.kind.duckdb_type}")


def _connect(path: str, config: dict[str, str | bool | int | float | list[str]]) -> duckdb.DuckDBPyConnection:
    if path == ":memory:":
        return duckdb.connect(path, config=config)
    connection = duckdb.connect(":memory:", config=config)
    try:
        quoted = path.replace("'", "''")
        connection.execute(f"ATTACH '{quoted}' AS {_CATALOG} (ROW_GROUP_SIZE {_ROW_GROUP_SIZE})")
        connection.execute(f"USE {_CATALOG}")
    except BaseException:
        connection.close()
        raise
    return connection


class DuckDBStore:
    """Usage facts, spans and data reads in one DuckDB file (``:memory:`` for a throwaway store)."""

    def __init__(
        self,
        path: str | Path,
        *,
        threads: int | None = None,
        memory_limit_mib: int | None = None,
        retention: timedelta | None = None,
    ) -> None:
        """``retention``: spans, data reads and usage facts that ended longer ago are deleted (None: kept)."""
        self.path = str(path)
        if self.path != ":memory:":
            Path(self.path).parent.mkdir(parents=True, exist_ok=True)
        config: dict[str, str | bool | int | float | list[str]] = {}
        if threads is not None:
            config["threads"] = threads
        self._threads = threads
        self._retention = retention
        self._memory_limit = None if memory_limit_mib is None else f"{memory_limit_mib}MiB"
        if self._memory_limit is not None:
            config["memory_limit"] = self._memory_limit
        self._connection: duckdb.DuckDBPyConnection | None = _connect(self.path, config)
        self._lock = threading.Lock()
        self._large_queries = 0
        self._next_prune = 0.0
        self._in_transaction = False
        self._staged: dict[str, list[_Chunk]] = {}
        self._staged_spans = 0
        for table in _ROW_TABLES.values():
            _create_or_extend(self._connection, table, self.path)
        for ddl in (RECEIVED_REQUESTS_DDL, REQUEST_LOG_POSITION_DDL, COUNTED_USAGE_FACTS_DDL, TRACE_ROLLUPS_DDL):
            self._connection.execute(ddl)
        self._recent_digests = RecentDigests(REQUEST_RETENTION.total_seconds())
        stored = self._connection.execute("SELECT digest FROM received_requests")
        while chunk := stored.fetchmany(_DIGESTS_CHUNK):
            self._recent_digests.add(digest for (digest,) in chunk)

    def _require_open(self) -> duckdb.DuckDBPyConnection:
        if self._connection is None:
            raise RuntimeError(f"the store {self.path} is closed")
        return self._connection

    def append(self, batches: Sequence[StoreBatch]) -> list[StoreBatch]:
        received_at = datetime.now(timezone.utc).replace(tzinfo=None)
        with self._lock:
            connection = self._require_open()
            if not self._in_transaction:
                connection.begin()
                self._in_transaction = True
            try:
                new = self._new_batches(connection, batches, received_at)
                if new:
                    self._stage(new)
                if any(batch.ancestry for batch in new):
                    self._retract_stored_relatives(connection, new)
                if self._staged_spans >= _INSERT_SPANS:
                    self._insert_staged(connection)
            except BaseException as error:
                self._end_transaction()
                _roll_back(connection)
                _raise_classified(error)
        return new

    def commit(self, log_position: int | None = None) -> None:
        with self._lock:
            connection = self._require_open()
            if not self._in_transaction:
                if log_position is None:
                    return
                connection.begin()
            try:
                self._insert_staged(connection)
                if log_position is not None:
                    connection.execute("DELETE FROM request_log_position")
                    connection.execute("INSERT INTO request_log_position VALUES (?)", [log_position])
                connection.commit()
            except BaseException as error:
                _roll_back(connection)
                _raise_classified(error)
            finally:
                self._end_transaction()
            if time.monotonic() >= self._next_prune:
                self._next_prune = time.monotonic() + _PRUNE_EVERY_S
                self._prune(connection, datetime.now(timezone.utc).replace(tzinfo=None))

    def rollback(self) -> None:
        with self._lock:
            if self._in_transaction and self._connection is not None:
                self._end_transaction()
                self._connection.rollback()

    def write(self, batches: Sequence[StoreBatch]) -> list[StoreBatch]:
        """:meth:`append` and :meth:`commit` in one call (loading a store outside the collector)."""
        new = self.append(batches)
        self.commit()
        return new

    def committed_log_position(self) -> int:
        with self.cursor() as cursor:
            row = cursor.execute("SELECT max(committed_seq) FROM request_log_position").fetchone()
        return int(row[0]) if row and row[0] is not None else 0

    def stored_until(self) -> datetime | None:
        with self.cursor() as cursor:
            row = cursor.execute("SELECT max(end_time) FROM spans").fetchone()
        return None if row is None else row[0]  # type: ignore[no-any-return]

    def _prune(self, connection: duckdb.DuckDBPyConnection, now: datetime) -> None:
        """Expire request digests and, with a ``retention``, old rows; a failure is logged, never raised.

        It runs after a commit, in a transaction of its own, so a slow or failed delete holds up no rows.
        """
        expired = [("received_requests", "received_at", now - REQUEST_RETENTION)]
        if self._retention is not None:
            expired += [(table, column, now - self._retention) for table, column in _RETAINED_ROWS]
        try:
            connection.begin()
            deleted = {
                table: connection.execute(f"DELETE FROM {table} WHERE {column} < ?", [cutoff]).fetchall()[0][0]
                for table, column, cutoff in expired
            }
            if self._retention is not None:  # what named the expired facts goes with them
                for table in (USAGE_RETRACTIONS.name, USAGE_CANDIDATES.name):
                    deleted[table] = connection.execute(
                        f"DELETE FROM {table} r WHERE NOT EXISTS (SELECT 1 FROM usage_facts f "
                        "WHERE f.trace_id = r.trace_id AND f.span_id = r.span_id)"
                    ).fetchall()[0][0]
            connection.commit()
        except duckdb.Error:
            _roll_back(connection)
            logger.exception("expiring old rows from the store %s failed; retrying in a minute", self.path)
        else:
            logger.debug("expired rows from the store %s: %s", self.path, deleted)

    def _new_batches(
        self, connection: duckdb.DuckDBPyConnection, batches: Sequence[StoreBatch], received_at: datetime
    ) -> list[StoreBatch]:
        digests = list(dict.fromkeys(batch.digest for batch in batches if batch.digest is not None))
        if not digests:
            return list(batches)
        if any(map(self._recent_digests.may_contain, digests)):
            inserted = connection.execute(
                "INSERT OR IGNORE INTO received_requests SELECT unnest(?::BLOB[]), ? RETURNING digest",
                [digests, received_at],
            ).fetchall()
            unseen = {digest for (digest,) in inserted}
        else:
            connection.execute("INSERT INTO received_requests SELECT unnest(?::BLOB[]), ?", [digests, received_at])
            unseen = set(digests)
        self._recent_digests.add(digests)
        new = []
        for batch in batches:
            if batch.digest is None:
                new.append(batch)
            elif batch.digest in unseen:
                unseen.discard(batch.digest)  # the same request twice in one group: keep the first
                new.append(batch)
        return new

    def _end_transaction(self) -> None:
        self._in_transaction = False
        self._staged = {}
        self._staged_spans = 0

    def _stage(self, batches: Sequence[StoreBatch]) -> None:
        """Convert the batches' rows to Arrow buffers (freeing their Python objects); they are inserted later."""
        merged = batches[0] if len(batches) == 1 else StoreBatch.merge(batches)
        chunks = []
        if len(merged.spans):
            chunks.append((SPANS.name, _span_chunk(merged.spans)))
        if merged.facts:
            chunks.append((USAGE_FACTS.name, _rows_chunk(merged.facts, USAGE_FACTS)))
        if merged.data_reads:
            chunks.append((DATA_READS.name, _rows_chunk(merged.data_reads, DATA_READS)))
        if merged.retractions:
            chunks.append((USAGE_RETRACTIONS.name, _rows_chunk(merged.retractions, USAGE_RETRACTIONS)))
        if merged.candidates:
            chunks.append((USAGE_CANDIDATES.name, _rows_chunk(merged.candidates, USAGE_CANDIDATES)))
        for table, chunk in chunks:
            self._staged.setdefault(table, []).append(chunk)
        self._staged_spans += len(merged.spans)

    def _retract_stored_relatives(self, connection: duckdb.DuckDBPyConnection, batches: Sequence[StoreBatch]) -> None:
        """Retract what the batches' reporting spans and their stored relatives count twice, beyond the decoder's
        memory (:func:`retract_stored_relatives` decides, from what ``stored_relative_facts.sql`` finds).

        Everything staged is inserted first, so the query sees this transaction's spans, facts and retractions.
        The retractions found are inserted at once (a later check in the transaction sees them) and added to the
        batch of their reporting span (``retractions``, ``retracted``: counted when it is stored).
        """
        self._insert_staged(connection)
        checks = [(batch, check) for batch in batches for check in batch.ancestry]
        cursor = connection.execute(
            _STORED_RELATIVE_FACTS,
            {
                "trace_ids": [check.trace_id for _, check in checks],
                "span_ids": [check.span_id for _, check in checks],
                "meters": [check.meter for _, check in checks],
                "owners": [check.owner for _, check in checks],
            },
        )
        found = (
            StoredRelative(reporter, owner, ancestor, candidate, UsageFact(*row[: len(UsageFact._fields)]))
            for reporter, owner, ancestor, candidate, *row in cursor.fetchall()
        )
        rows = retract_stored_relatives(batches, found)
        if rows:
            _insert_chunks(connection, USAGE_RETRACTIONS.name, [_rows_chunk(rows, USAGE_RETRACTIONS)])

    def _insert_staged(self, connection: duckdb.DuckDBPyConnection) -> None:
        staged, self._staged, self._staged_spans = self._staged, {}, 0
        for table, chunks in staged.items():
            _insert_chunks(connection, table, chunks)

    def cursor(self) -> duckdb.DuckDBPyConnection:
        with self._lock:
            cursor = self._require_open().cursor()
        if self.path != ":memory:":
            cursor.execute(f"USE {_CATALOG}")
        return cursor

    @contextlib.contextmanager
    def large_queries(self) -> Iterator[None]:
        """Lift ``memory_limit`` and ``threads`` while a billing import or allocation runs in this process.

        The limits keep the ingest path small and off the other cores (DuckDB otherwise caches blocks up to
        80 % of RAM); allocating a month of a large bill needs about a GiB and goes faster on every core. DuckDB's
        settings are per database, so they are lifted while such work runs and put back when the last of it ends.
        """
        limits = [
            (setting, value)
            for setting, value in (("memory_limit", self._memory_limit), ("threads", self._threads))
            if value is not None
        ]
        if not limits:
            yield
            return
        with self._lock:
            if self._large_queries == 0:
                for setting, _ in limits:
                    self._require_open().execute(f"RESET {setting}")
            self._large_queries += 1
        try:
            yield
        finally:
            with self._lock:
                self._large_queries -= 1
                if self._large_queries == 0 and self._connection is not None:
                    for setting, value in limits:
                        self._connection.execute(f"SET {setting} = '{value}'")

    def close(self) -> None:
        with self._lock:
            if self._connection is not None:
                self._connection.close()
                self._connection = None
