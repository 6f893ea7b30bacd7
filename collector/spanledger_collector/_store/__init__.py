"""The usage store: usage facts, trace roll-ups and the lineage of every AI output."""

from ._duckdb import DuckDBStore, Store, StoreUnavailableError
from ._facts import USAGE_FACTS, UsageFact, with_estimate
from ._request_log import LoggedRequest, RequestLog
from ._rows import DATA_READS, SPANS, DataRead, SpanColumns, StoreBatch
from ._schema import Field, Kind, Table
from ._writer import Replayer, StoreWriter, digest

__all__ = [
    "DATA_READS",
    "SPANS",
    "USAGE_FACTS",
    "DataRead",
    "DuckDBStore",
    "Field",
    "Kind",
    "LoggedRequest",
    "Replayer",
    "RequestLog",
    "SpanColumns",
    "Store",
    "StoreBatch",
    "StoreUnavailableError",
    "StoreWriter",
    "Table",
    "UsageFact",
    "digest",
    "with_estimate",
]
