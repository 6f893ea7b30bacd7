"""The one place clickhouse-connect (and, for ``chdb:``, chdb) is imported: a client for a :class:`StoreAddress`.

Production talks HTTP(S) to a server; ``chdb:PATH`` runs the same engine in this process. Both are
clickhouse-connect clients with one API (``command``, ``query``, ``insert``, ``query_arrow``, ``insert_arrow``), so
everything above this module is the same code for both. The HTTP transport is only the client library's
standard calls: no server can run on the development machines (docs/store.md, "ClickHouse").
"""

from __future__ import annotations

import importlib.util
from typing import Any

from ._location import StoreAddress, StoreEngine

__all__ = ["ClickHouseUnavailableError", "open_clickhouse", "quote_identifier", "quote_string"]


class ClickHouseUnavailableError(ImportError):
    """The extra a ClickHouse store needs is not installed; the message names the install command."""


def _clickhouse_connect(address: StoreAddress) -> Any:
    extra = "chdb" if address.engine is StoreEngine.CHDB else "clickhouse"
    for module in ("clickhouse_connect", "chdb") if extra == "chdb" else ("clickhouse_connect",):
        if importlib.util.find_spec(module) is None:
            raise ClickHouseUnavailableError(
                f"the store {address} needs the {module} package: pip install 'spanledger[{extra}]'"
            )
    import clickhouse_connect

    return clickhouse_connect


def quote_identifier(name: str) -> str:
    """``name`` as a ClickHouse identifier in double quotes."""
    return '"' + name.replace("\\", "\\\\").replace('"', '\\"') + '"'


def quote_string(text: str) -> str:
    """``text`` as a ClickHouse string literal."""
    return "'" + text.replace("\\", "\\\\").replace("'", "\\'") + "'"


def open_clickhouse(
    address: StoreAddress,
    *,
    create_database: bool = False,
    on_cluster: str | None = None,
    password: str | None = None,
    **settings: Any,
) -> Any:
    """A clickhouse-connect client on ``address`` (its database the default one for unqualified names).

    ``create_database``: create the database first when missing (the exporter's ``create_schema``), on every
    node of ``on_cluster`` when given.
    ``password``: else the one in ``address``'s environment variable. ``settings``: ClickHouse session settings.
    """
    if not address.is_clickhouse:
        raise ValueError(f"the store {address} is a DuckDB file, not ClickHouse")
    clickhouse_connect = _clickhouse_connect(address)
    if address.engine is StoreEngine.CHDB:
        client = clickhouse_connect.get_client(interface="chdb", path=address.path, settings=settings)
    else:
        client = clickhouse_connect.get_client(
            host=address.host,
            port=address.port,
            interface="https" if address.secure else "http",
            username=address.username,
            password=address.password() if password is None else password,
            settings=settings,
        )
    try:
        if create_database:
            cluster = f" ON CLUSTER {quote_identifier(on_cluster)}" if on_cluster else ""
            client.command(f"CREATE DATABASE IF NOT EXISTS {quote_identifier(address.database)}{cluster}")
        client.database = address.database
    except BaseException:
        client.close()
        raise
    return client
