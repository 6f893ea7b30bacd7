"""``billing import``: normalise billing files and store them as snapshots, all or nothing.

A snapshot is the set of lines one delivery holds for one scope (provider, billing account, billing
period). Its id is a digest of the normalised lines, so importing the same delivery again changes
nothing; a different delivery for the same scope becomes the current snapshot and the previous one is
kept, marked ``superseded_by``, for audit.

Into ClickHouse the files are read and normalised by DuckDB in memory (its CSV/Parquet/JSON readers and the same
SQL), seeded with the store's snapshot ids; the new snapshots and their lines then go to ClickHouse as Arrow, and
a superseded snapshot gets a newer revision of its row (no UPDATE there; docs/billing.md).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, TextIO

import duckdb

from ._allocation import allocate
from ._engine import ClickHouseEngine, DuckDBEngine, Engine, engine_of
from ._errors import BillingImportError, CurrencyMixError
from ._formats import normalised_select, stage_file, validate
from ._progress import Progress
from ._rules import load_rules
from ._schema import LINE_COLUMNS, ensure_billing_tables
from ._sources import BillingFile, billing_files

__all__ = ["ImportResult", "SnapshotResult", "import_and_allocate", "import_billing"]

_HASHED_COLUMNS = [name for name in LINE_COLUMNS if name != "cost_flags"]


def _field(text: str) -> str:
    """SQL: the text ``text`` as one field of a ``|``-joined key, escaped (``\\`` and ``\\|``) when it holds either
    character, so no two rows or scopes join to the same key ("a|b", "c" against "a", "b|c"). Text without them,
    nearly all, is left as it is: the keys of stores made before stay the same."""
    return (
        f"CASE WHEN strpos({text}, '|') > 0 OR strpos({text}, '\\') > 0 "
        f"THEN replace(replace({text}, '\\', '\\\\'), '|', '\\|') ELSE {text} END"
    )


_SCOPE = (
    f"concat_ws('|', coalesce({_field('provider_name')}, ''), coalesce({_field('billing_account_id')}, ''), "
    "strftime(billing_period_start, '%Y-%m-%dT%H:%M:%SZ'))"
)


@dataclass(frozen=True)
class SnapshotResult:
    snapshot_id: str
    scope: str
    billing_period: str
    """YYYY-MM of the billing period start."""
    row_count: int
    status: str
    """``imported`` (first of its scope), ``replaced`` (superseded an older snapshot) or ``unchanged``."""
    replaced_snapshot_id: str | None = None


@dataclass(frozen=True)
class ImportResult:
    files: tuple[str, ...]
    snapshots: tuple[SnapshotResult, ...]

    @property
    def changed_periods(self) -> tuple[str, ...]:
        return tuple(sorted({s.billing_period for s in self.snapshots if s.status != "unchanged"}))


def import_billing(
    store: Any,
    paths: Sequence[str | BillingFile],
    *,
    currency: str | None = None,
    show_progress: bool = False,
    progress_stream: TextIO | None = None,
    within: Sequence[str] | None = None,
) -> ImportResult:
    """Import billing exports (FOCUS 1.0-1.2, AWS CUR 2.0, OpenAI Costs API pages) from files, directories or S3.

    Raises :class:`BillingImportError` naming the file, row and column of the first bad value; nothing is
    stored then. ``currency`` is used only for FOCUS files that have no ``BillingCurrency`` column.
    ``within``: read only paths inside these directories (``s3://bucket/prefix``), as the admin API does.
    ``store``: a DuckDB connection, a clickhouse-connect client or an :class:`~._engine.Engine`.
    """
    engine = engine_of(store)
    ensure_billing_tables(engine)
    if isinstance(engine, ClickHouseEngine):
        return _import_into_clickhouse(
            engine, paths, currency=currency, show_progress=show_progress, progress_stream=progress_stream,
            within=within,
        )  # fmt: skip
    assert isinstance(engine, DuckDBEngine)
    connection = engine.connection
    with billing_files(paths, within=within) as files:
        progress = Progress(len(files) + 1, enabled=show_progress, stream=progress_stream)
        connection.execute("BEGIN TRANSACTION")
        try:
            result = _import(connection, files, currency, progress)
            connection.execute("COMMIT")
        except BaseException:
            connection.execute("ROLLBACK")
            raise
        finally:
            progress.close()
            for index in range(len(files)):
                connection.execute(f"DROP TABLE IF EXISTS billing_raw_{index}")
            connection.execute("DROP TABLE IF EXISTS billing_incoming")
    return result


_SNAPSHOT_COLUMNS = (
    "snapshot_id", "scope", "billing_period_start", "billing_period_end", "format", "sources", "row_count",
    "billing_currency", "imported_at", "seq", "superseded_by",
)  # fmt: skip


def _import_into_clickhouse(
    engine: ClickHouseEngine,
    paths: Sequence[str | BillingFile],
    *,
    currency: str | None,
    show_progress: bool,
    progress_stream: TextIO | None,
    within: Sequence[str] | None,
) -> ImportResult:
    columns = ", ".join(_SNAPSHOT_COLUMNS)
    # Under the store's billing lock: the stored snapshots read here decide what the new ones supersede.
    with engine.transaction(), duckdb.connect() as memory:
        stored = engine.client.query_arrow(f"SELECT {columns}, revision FROM billing_snapshots FINAL")
        # UTC: the stored snapshots come in as UTC-aware times, which DuckDB would turn into local ones
        memory.execute("SET TimeZone = 'UTC'")
        ensure_billing_tables(memory)
        memory.register("stored_snapshots", stored)
        memory.execute(f"INSERT INTO billing_snapshots SELECT {columns} FROM stored_snapshots")
        result = import_billing(
            memory, paths, currency=currency, show_progress=show_progress, progress_stream=progress_stream,
            within=within,
        )  # fmt: skip
        new = [s.snapshot_id for s in result.snapshots if s.status != "unchanged"]
        replaced = [s.replaced_snapshot_id for s in result.snapshots if s.replaced_snapshot_id]
        if new:
            # Lines first, the snapshot rows last: a snapshot is current only once its lines are all stored.
            lines = memory.sql("SELECT * FROM billing_lines WHERE list_contains(?, snapshot_id)", params=[new])
            engine.client.insert_arrow("billing_lines", lines.to_arrow_table())
            engine.check_lock()
            snapshots = memory.sql(
                f"SELECT {columns} FROM billing_snapshots WHERE list_contains(?, snapshot_id)", params=[new]
            ).to_arrow_table()
            engine.client.insert_arrow("billing_snapshots", snapshots)
        if replaced:
            superseded = memory.sql(
                """SELECT s.* EXCLUDE (superseded_by, revision), m.superseded_by, s.revision + 1 AS revision
                   FROM stored_snapshots s JOIN billing_snapshots m USING (snapshot_id)
                   WHERE list_contains(?, snapshot_id)""",
                params=[replaced],
            ).to_arrow_table()
            engine.client.insert_arrow("billing_snapshots", superseded)
    return result


def import_and_allocate(
    store: Any,
    paths: Sequence[str | BillingFile],
    *,
    currency: str | None = None,
    run_allocation: bool = True,
    show_progress: bool = False,
    rules_path: Path | None = None,
    within: Sequence[str] | None = None,
) -> dict[str, Any]:
    """Import, then allocate the periods the files hold; the JSON the CLI and the API return.

    Every period of the files, not only those whose snapshots changed: an import committed before its allocation
    failed or was interrupted is allocated by the retry (a period whose inputs are unchanged is skipped).

    ``rules_path``: classification rules for the allocation instead of the packaged ones.
    """
    if run_allocation:
        load_rules(rules_path)  # a bad rules file fails before anything is imported
    engine: Engine = engine_of(store)
    result = import_billing(engine, paths, currency=currency, show_progress=show_progress, within=within)
    periods = sorted({snapshot.billing_period for snapshot in result.snapshots})
    runs = allocate(engine, periods, rules_path=rules_path) if run_allocation and periods else []
    return {
        "files": list(result.files),
        "snapshots": [asdict(s) for s in result.snapshots],
        "runs": [asdict(r) for r in runs],
    }


def _import(
    connection: duckdb.DuckDBPyConnection, files: Sequence[BillingFile], currency: str | None, progress: Progress
) -> ImportResult:
    columns = ", ".join(f"{name} {kind}" for name, kind in LINE_COLUMNS.items())
    connection.execute(
        f"CREATE OR REPLACE TEMP TABLE billing_incoming (source_file VARCHAR, source_row BIGINT, format VARCHAR, "
        f"{columns})"
    )
    names: list[str] = []
    for index, billing_file in enumerate(files):
        staged = stage_file(connection, billing_file.local_path, billing_file.display_name, f"billing_raw_{index}")
        validate(connection, staged, currency)
        ordered = ", ".join(["source_file", "source_row", "format", *LINE_COLUMNS])
        connection.execute(
            f"INSERT INTO billing_incoming ({ordered}) SELECT {ordered} FROM ({normalised_select(staged, currency)})"
        )
        connection.execute(f"DROP TABLE billing_raw_{index}")
        names.append(billing_file.display_name)
        progress.step(billing_file.display_name)
    # Without a commitment discount EffectiveCost must equal BilledCost; some exports (the FOCUS sample data)
    # round it. Use BilledCost then, and say so on the line.
    connection.execute(
        """UPDATE billing_incoming SET
             cost_flags = 'effective_cost_not_amortised(reported=' || effective_cost::VARCHAR || ')',
             effective_cost = billed_cost
           WHERE commitment_discount_id IS NULL AND lower(charge_category) = 'usage'
             AND effective_cost IS DISTINCT FROM billed_cost"""
    )
    connection.execute("UPDATE billing_incoming SET list_cost = 0 WHERE list_cost IS NULL")
    _check_currencies(connection)
    snapshots = _store_snapshots(connection, ",".join(sorted(set(names))), _format_of(connection))
    progress.step("stored")
    return ImportResult(tuple(names), snapshots)


def _format_of(connection: duckdb.DuckDBPyConnection) -> str:
    formats = [row[0] for row in connection.execute("SELECT DISTINCT format FROM billing_incoming").fetchall()]
    return ",".join(sorted(formats))


def _check_currencies(connection: duckdb.DuckDBPyConnection) -> None:
    mixed = connection.execute(
        f"""WITH ordered AS (SELECT {_SCOPE} AS scope, billing_currency, source_file, source_row FROM billing_incoming),
                 firsts AS (SELECT scope, arg_min(billing_currency, (source_file, source_row)) AS first_currency
                            FROM ordered GROUP BY scope)
            SELECT o.source_file, o.source_row, o.scope, f.first_currency, o.billing_currency
            FROM ordered o JOIN firsts f USING (scope) WHERE o.billing_currency <> f.first_currency
            ORDER BY o.source_file, o.source_row LIMIT 1"""
    ).fetchone()
    if mixed:
        source_file, row, scope, first, other = mixed
        pair = " and ".join(sorted((first, other)))
        raise CurrencyMixError(
            f"{source_file}: row {row}, column BillingCurrency: {other} in billing period {scope}, which is in "
            f"{first}: it mixes currencies {pair}; one computation uses one currency"
        )


def _store_snapshots(
    connection: duckdb.DuckDBPyConnection, sources: str, file_format: str
) -> tuple[SnapshotResult, ...]:
    # NULL is \N, which no text is: a text \N is escaped to \\N.
    row_text = " || '|' || ".join(f"coalesce({_field(f'{name}::VARCHAR')}, '\\N')" for name in _HASHED_COLUMNS)
    connection.execute("ALTER TABLE billing_incoming ADD COLUMN scope VARCHAR")
    connection.execute(f"UPDATE billing_incoming SET scope = {_SCOPE}")
    digests = connection.execute(
        f"""SELECT scope, sha256(string_agg(row_digest, ',' ORDER BY row_digest)), count(*),
                   min(billing_period_start), min(billing_period_end), min(billing_currency)
            FROM (SELECT scope, billing_period_start, billing_period_end, billing_currency,
                         md5({row_text}) AS row_digest FROM billing_incoming)
            GROUP BY scope ORDER BY scope"""
    ).fetchall()
    results: list[SnapshotResult] = []
    now = datetime.now(timezone.utc).replace(tzinfo=None)
    for scope, digest, count, period_start, period_end, currency in digests:
        period = period_start.strftime("%Y-%m")
        known = connection.execute("SELECT 1 FROM billing_snapshots WHERE snapshot_id = ?", [digest]).fetchone()
        if known:
            results.append(SnapshotResult(digest, scope, period, count, "unchanged"))
            continue
        current = connection.execute(
            "SELECT snapshot_id FROM billing_snapshots WHERE scope = ? AND superseded_by IS NULL", [scope]
        ).fetchone()
        seq_row = connection.execute("SELECT coalesce(max(seq), 0) + 1 FROM billing_snapshots").fetchone()
        assert seq_row is not None
        connection.execute(
            "INSERT INTO billing_snapshots VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, NULL)",
            [digest, scope, period_start, period_end, file_format, sources, count, currency, now, seq_row[0]],
        )
        if current:
            connection.execute(
                "UPDATE billing_snapshots SET superseded_by = ? WHERE snapshot_id = ?", [digest, current[0]]
            )
        ordered = ", ".join(["source_file", "source_row", "format", *LINE_COLUMNS])
        connection.execute(
            f"""INSERT INTO billing_lines (snapshot_id, line_no, {ordered})
                SELECT ?, row_number() OVER (ORDER BY source_file, source_row), {ordered}
                FROM billing_incoming WHERE scope = ?""",
            [digest, scope],
        )
        results.append(
            SnapshotResult(
                digest, scope, period, count, "replaced" if current else "imported", current[0] if current else None
            )
        )
    if not results:
        raise BillingImportError(f"{sources}: no billing rows")
    return tuple(results)
