"""The ``clickhouse`` store exporter: factory and typed config (docs/store.md, "ClickHouse").

::

    exporters:
      clickhouse:
        endpoint: https://clickhouse.internal:8443   # or http://…:8123, or chdb:/var/lib/spanledger/ch
        database: spanledger                          # default: default
        username: spanledger                          # default: default
        password: ${env:CLICKHOUSE_PASSWORD}
        create_schema: true                           # create the database and tables at start
        ttl: 2160h                                    # rows older than this are dropped (0: kept)
        cluster: prod                                 # optional: ON CLUSTER, Replicated + Distributed tables
        traces_table: otel_traces
        commit_interval: 10s
        replica_id: collector-a                       # default: a UUID kept in the request log directory
        request_log: /var/lib/spanledger/requests     # this replica's request log

A value the exporter cannot honour (a password in the URL, a cluster or credentials for the in-process chdb, a
TTL below a second, a name that is not a plain identifier, ``ttl`` or ``cluster`` without ``create_schema``) is
refused at load, naming the key, never changed; an existing traces table without the columns written is refused
at start, naming ``traces_table``.
"""

from __future__ import annotations

import os
import socket
import uuid
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path

from ._component import ConfigError
from ._config import BatchSettings, LoadContext
from ._config_reader import ConfigSection
from ._factories import OpenStore
from ._store import RequestLog, StoreWriter
from ._store._clickhouse import ClickHouseStore, InitDatabaseError
from ._store._clickhouse_schema import OTEL_TRACES, ClickHouseSchema, ttl_clause
from ._store._location import (
    DEFAULT_DATABASE,
    StoreAddress,
    StoreAddressError,
    StoreEngine,
    is_identifier,
    parse_store_address,
    redacted,
)
from ._store._otel_traces import OTEL_TRACES_COLUMNS
from .billing._schema import ensure_billing_tables

__all__ = ["ClickHouseExporterFactory", "ClickHouseSettings"]

_SERVER_REQUEST_LOG = "./spanledger-clickhouse.requests"
_REPLICA_ID_FILE = "replica-id"


@dataclass(frozen=True)
class ClickHouseSettings:
    """``clickhouse``: where the store is, how its schema is made, and this replica's request log."""

    address: StoreAddress
    password: str | None = field(default=None, repr=False)
    """From the config (``${env:…}``); None: ``$SPANLEDGER_CLICKHOUSE_PASSWORD``."""
    create_schema: bool = True
    ttl_s: float = 0.0
    cluster: str | None = None
    traces_table: str = OTEL_TRACES
    commit_interval_s: float = 10.0
    replica_id: str = ""
    """Empty: the one kept in the request log's directory (:func:`log_replica_id`)."""
    request_log: Path = Path(_SERVER_REQUEST_LOG)

    def schema(self) -> ClickHouseSchema:
        ttl = timedelta(seconds=self.ttl_s) if self.ttl_s else None
        return ClickHouseSchema(self.address.database, cluster=self.cluster, ttl=ttl, traces_table=self.traces_table)


def _endpoint(section: ConfigSection, database: str) -> StoreAddress:
    endpoint = section.required_text("endpoint")
    if endpoint.startswith(("http://", "https://")):
        value = f"clickhouse+{endpoint}"
    elif endpoint.startswith("chdb:"):
        value = endpoint
    else:
        raise section.fail("endpoint", f"{redacted(endpoint)!r}: expected http(s)://host:port or chdb:PATH")
    try:
        address = parse_store_address(value, database=database)
    except StoreAddressError as error:
        raise section.fail("endpoint", str(error)) from None
    if address.engine is StoreEngine.CLICKHOUSE and address.database != database:
        raise section.fail("endpoint", "give the database in `database`, not in the endpoint's path")
    return address


class ClickHouseExporterFactory:
    """``clickhouse`` (at most one store): spans into ``otel_traces``, usage facts and data reads beside them."""

    type = "clickhouse"

    def read(self, component_id: str, section: ConfigSection, context: LoadContext) -> ClickHouseSettings:
        database = _identifier(section, "database", DEFAULT_DATABASE) or DEFAULT_DATABASE
        address = _endpoint(section, database)
        username, password = section.text("username"), section.secret("password")
        cluster = _identifier(section, "cluster", None)
        if address.engine is StoreEngine.CHDB:
            for key, value in (("username", username), ("password", password), ("cluster", cluster)):
                if value:
                    raise section.fail(key, "the in-process chdb engine has no users or clusters; remove it")
        elif username:
            address = StoreAddress(
                address.engine,
                host=address.host,
                port=address.port,
                secure=address.secure,
                username=username,
                database=address.database,
            )
        ttl_s = section.duration("ttl", 0.0)
        try:
            ttl_clause(timedelta(seconds=ttl_s) if ttl_s else None, "t")
        except ValueError as error:
            raise section.fail("ttl", str(error)) from None
        create_schema = section.boolean("create_schema", True)
        if not create_schema:
            for key, given in (("ttl", bool(ttl_s)), ("cluster", cluster is not None)):
                if given:
                    raise section.fail(
                        key,
                        "shapes the tables create_schema makes; with create_schema: false, set it on your own "
                        "tables and remove it here",
                    )
        default_log = f"{address.path}.requests" if address.engine is StoreEngine.CHDB else _SERVER_REQUEST_LOG
        request_log = Path(section.text("request_log", default_log) or default_log)
        return ClickHouseSettings(
            address=address,
            password=password,
            create_schema=create_schema,
            ttl_s=ttl_s,
            cluster=cluster,
            traces_table=_identifier(section, "traces_table", OTEL_TRACES) or OTEL_TRACES,
            commit_interval_s=section.duration("commit_interval", "10s"),
            replica_id=section.text("replica_id") or "",
            request_log=request_log,
        )

    def create(self, component_id: str, config: ClickHouseSettings, batch: BatchSettings) -> OpenStore:
        """Open the store (creating its schema with ``create_schema``) and this replica's request log."""
        try:
            store = ClickHouseStore(
                config.address,
                replica_id=config.replica_id or log_replica_id(config.request_log),
                schema=config.schema() if config.create_schema else None,
                password=config.password,
                traces_table=config.traces_table,
            )
        except InitDatabaseError as error:
            raise ConfigError(f"exporters.{component_id}.database: {error}") from None
        missing = store.missing_trace_columns()
        if missing:
            store.close()
            where = f"exporters.{component_id}.traces_table: the table {config.traces_table} in {config.address}"
            if len(missing) == len(OTEL_TRACES_COLUMNS):
                raise ConfigError(f"{where} does not exist (create it, or set create_schema: true)")
            raise ConfigError(
                f"{where} has no column {', '.join(missing)}: not the schema of the OTel Collector exporter's traces "
                "table that spanledger writes (an older exporter's table? point traces_table at a new one)"
            )
        if config.create_schema and not config.cluster:
            # The billing tables too (empty until a billing import; on a cluster the first import makes them):
            # the answers and the ClickHouse dashboard's lineage read them.
            cursor = store.cursor()
            try:
                ensure_billing_tables(cursor)
            finally:
                cursor.close()
        log = RequestLog(config.request_log, committed_seq=store.committed_log_position())
        writer = StoreWriter(store, log, batch, commit_interval_s=config.commit_interval_s)
        return OpenStore(store, writer, None)


def _identifier(section: ConfigSection, key: str, default: str | None) -> str | None:
    """A database, table or cluster name: a plain identifier (it is written into SQL and engine arguments)."""
    value = section.text(key, default)
    if value is not None and not is_identifier(value):
        raise section.fail(key, f"{value!r} is not a plain name (letters, digits and _, not starting with a digit)")
    return value


def log_replica_id(request_log: Path) -> str:
    """This replica's id, kept in its request log's directory: made once, a UUID, so two replicas never share
    one by accident (a host name and path can repeat across containers and cloned machines, and two replicas on
    one id would skip each other's requests). A log written before the file existed keeps its old id, host name
    and directory, so its committed position still applies."""
    path = request_log / _REPLICA_ID_FILE
    try:
        kept = path.read_text(encoding="utf-8").strip()
    except FileNotFoundError:
        kept = ""
    if kept:
        return kept
    request_log.mkdir(parents=True, exist_ok=True)
    older = any(request_log.glob("*.log"))
    value = f"{socket.gethostname()}:{request_log.resolve()}" if older else str(uuid.uuid4())
    partial = path.with_suffix(".partial")
    with partial.open("w", encoding="utf-8") as file:
        file.write(value + "\n")
        file.flush()
        os.fsync(file.fileno())
    os.replace(partial, path)
    return value
