"""The usage store: usage facts, trace roll-ups and the lineage of every AI output."""

from ._clickhouse import ClickHouseStore
from ._duckdb import DuckDBStore, Store, StoreUnavailableError
from ._facts import USAGE_FACTS, UsageFact, with_estimate
from ._location import StoreAddress, StoreAddressError, StoreEngine, parse_store_address
from ._request_log import LoggedRequest, RequestLog
from ._retractions import (
    COUNTED_USAGE_FACTS,
    USAGE_CANDIDATES,
    USAGE_RETRACTIONS,
    AncestryCheck,
    CandidateSpan,
    UsageRetraction,
)
from ._rows import DATA_READS, SPANS, DataRead, SpanColumns, StoreBatch
from ._schema import Field, Kind, Table
from ._writer import Replayer, StoreWriter, digest

__all__ = [
    "COUNTED_USAGE_FACTS",
    "DATA_READS",
    "SPANS",
    "USAGE_CANDIDATES",
    "USAGE_FACTS",
    "USAGE_RETRACTIONS",
    "AncestryCheck",
    "CandidateSpan",
    "ClickHouseStore",
    "DataRead",
    "DuckDBStore",
    "Field",
    "Kind",
    "LoggedRequest",
    "Replayer",
    "RequestLog",
    "SpanColumns",
    "Store",
    "StoreAddress",
    "StoreAddressError",
    "StoreBatch",
    "StoreEngine",
    "StoreUnavailableError",
    "StoreWriter",
    "Table",
    "UsageFact",
    "UsageRetraction",
    "digest",
    "parse_store_address",
    "with_estimate",
]
