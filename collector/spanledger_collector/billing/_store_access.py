"""How the billing code reaches the store: the collector's store (DuckDB or ClickHouse) or a connection/client."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

from .._store import ClickHouseStore, DuckDBStore
from ._engine import ClickHouseEngine

__all__ = ["store_connection"]


@contextlib.contextmanager
def store_connection(store: Any) -> Iterator[Any]:
    """A connection for this thread: ``store`` itself when it is a DuckDB connection or a clickhouse-connect
    client, else one of the collector's store (closed afterwards).

    The collector's store gives each caller its own: a cursor of the ``DuckDBStore``, with its ingest-path
    memory and thread limits lifted meanwhile (``large_queries``); a client of its own from the
    ``ClickHouseStore``, since one clickhouse-connect client (its HTTP session, or its chdb handle) runs one
    query at a time and the store writer's thread is using the store's.
    """
    if not isinstance(store, (DuckDBStore, ClickHouseStore)):
        yield store
        return
    cursor = store.cursor()
    try:
        with store.large_queries():
            # ClickHouse: an engine that knows the exporter's spans table (``traces_table``).
            yield (
                ClickHouseEngine(cursor, traces_table=store.traces_table)
                if isinstance(store, ClickHouseStore)
                else cursor
            )
    finally:
        cursor.close()
