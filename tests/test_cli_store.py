"""The DuckDB store the CLI opens itself (``--collector none``): billing work gets DuckDB's block allocator, which
holds what it takes until the store is closed, so it lives and dies with the command's connection."""

from __future__ import annotations

from pathlib import Path

import duckdb
from spanledger_collector.billing._client import open_store


def _block_allocator(connection: duckdb.DuckDBPyConnection) -> str:
    return str(connection.execute("SELECT current_setting('block_allocator_memory')").fetchone()[0])


def test_writing_commands_use_the_block_allocator_until_the_store_is_closed(tmp_path: Path) -> None:
    path = str(tmp_path / "store.duckdb")
    writing = open_store(path, read_only=False)
    try:
        assert _block_allocator(writing) not in ("0 bytes", "0")
    finally:
        writing.close()
    reading = open_store(path, read_only=True)
    try:
        assert _block_allocator(reading) in ("0 bytes", "0")
    finally:
        reading.close()
