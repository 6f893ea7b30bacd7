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
        replica_id: collector-a                       # default: host name and request log directory
        request_log: /var/lib/spanledger/requests     # this replica's request log

A value the exporter cannot honour (a password in the URL, a cluster or credentials for the in-process chdb, a
TTL below a second) is refused at load, naming the key, never changed.
"""

from __future__ import annotations

import socket
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

from ._config import BatchSettings, LoadContext
from ._config_reader import ConfigSection
from ._factories import OpenStore
from ._store import RequestLog, StoreWriter
from ._store._clickhouse import ClickHouseStore
from ._store._clickhouse_schema import OTEL_TRACES, ClickHouseSchema, ttl_clause
from ._store._location import DEFAULT_DATABASE, StoreAddress, StoreAddressError, StoreEngine, parse_store_address

__all__ = ["ClickHouseExporterFactory", "ClickHouseSettings"]

_SERVER_REQUEST_LOG = "./spanledger-clickhouse.requests"


@dataclass(frozen=True)
class ClickHouseSettings:
    """``clickhouse``: where the store is, how its schema is made, and this replica's request log."""

    address: StoreAddress
    password: str | None = None
    """From the config (``${env:…}``); None: ``$SPANLEDGER_CLICKHOUSE_PASSWORD``."""
    create_schema: bool = True
    ttl_s: float = 0.0
    cluster: str | None = None
    traces_table: str = OTEL_TRACES
    commit_interval_s: float = 10.0
    replica_id: str = ""
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
        raise section.fail("endpoint", f"{endpoint!r}: expected http(s)://host:port or chdb:PATH")
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
        database = section.text("database", DEFAULT_DATABASE) or DEFAULT_DATABASE
        address = _endpoint(section, database)
        username, password = section.text("username"), section.text("password")
        cluster = section.text("cluster") or None
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
        default_log = f"{address.path}.requests" if address.engine is StoreEngine.CHDB else _SERVER_REQUEST_LOG
        request_log = Path(section.text("request_log", default_log) or default_log)
        replica_id = section.text("replica_id") or f"{socket.gethostname()}:{request_log.resolve()}"
        settings = ClickHouseSettings(
            address=address,
            password=password,
            create_schema=section.boolean("create_schema", True),
            ttl_s=ttl_s,
            cluster=cluster,
            traces_table=section.text("traces_table", OTEL_TRACES) or OTEL_TRACES,
            commit_interval_s=section.duration("commit_interval", "10s"),
            replica_id=replica_id,
            request_log=request_log,
        )
        return settings

    def create(self, component_id: str, config: ClickHouseSettings, batch: BatchSettings) -> OpenStore:
        """Open the store (creating its schema with ``create_schema``) and this replica's request log."""
        store = ClickHouseStore(
            config.address,
            replica_id=config.replica_id,
            schema=config.schema() if config.create_schema else None,
            password=config.password,
            traces_table=config.traces_table,
        )
        log = RequestLog(config.request_log, committed_seq=store.committed_log_position())
        writer = StoreWriter(store, log, batch, commit_interval_s=config.commit_interval_s)
        return OpenStore(store, writer, None)
