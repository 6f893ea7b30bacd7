"""The store writes small row groups (so the writer's open transaction fits its memory limit) into a plain
DuckDB file that any DuckDB client opens as usual."""

from __future__ import annotations

from pathlib import Path

import duckdb
from spanledger_collector._store import DuckDBStore

ROWS = 70_000


def test_row_groups_are_a_quarter_of_duckdbs_default_and_the_file_opens_anywhere(tmp_path: Path) -> None:
    path = tmp_path / "store.duckdb"
    store = DuckDBStore(path, threads=1, memory_limit_mib=32)
    with store.cursor() as cursor:
        cursor.execute(
            "INSERT INTO spans (trace_id, span_id, name, kind, start_time, end_time, status_code) "
            "SELECT printf('%032x', range), printf('%016x', range), 'chat', 3, TIMESTAMP '2026-11-24', "
            "TIMESTAMP '2026-11-24', 0 FROM range(?)",
            [ROWS],
        )
        cursor.execute("CHECKPOINT")
        row_groups = cursor.execute("SELECT count(DISTINCT row_group_id) FROM pragma_storage_info('spans')").fetchall()
    store.close()
    assert row_groups == [(3,)]  # 30,720 rows each; DuckDB's default (122,880) would make one

    with duckdb.connect(str(path), read_only=True) as connection:
        assert connection.execute("SELECT count(*) FROM spans").fetchall() == [(ROWS,)]
