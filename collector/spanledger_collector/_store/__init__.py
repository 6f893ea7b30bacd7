"""The usage store: usage facts, trace roll-ups and the lineage of every AI output."""

from ._duckdb import DuckDBStore, Store, StoreUnavailableError
from ._facts import UsageFact
from ._request_log import LoggedRequest, RequestLog
from ._rows import DataRead, SpanColumns, StoreBatch
from ._writer import Replayer, StoreWriter, digest

__all__ = [
    "DataRead",
    "DuckDBStore",
    "LoggedRequest",
    "Replayer",
    "RequestLog",
    "SpanColumns",
    "Store",
    "StoreBatch",
    "StoreUnavailableError",
    "StoreWriter",
    "UsageFact",
    "digest",
]
