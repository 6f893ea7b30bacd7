"""How the billing code reaches the store: the collector's ``DuckDBStore`` or a DuckDB connection."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

import duckdb

__all__ = ["store_connection"]


@contextlib.contextmanager
def store_connection(store: Any) -> Iterator[duckdb.DuckDBPyConnection]:
    """A connection for this thread: the connection itself, or a cursor of the store (closed afterwards).

    Through the store, its ingest-path memory and thread limits are lifted meanwhile
    (``DuckDBStore.large_queries``).
    """
    if isinstance(store, duckdb.DuckDBPyConnection):
        yield store
        return
    cursor: duckdb.DuckDBPyConnection = store.cursor()
    try:
        with store.large_queries():
            yield cursor
    finally:
        cursor.close()
