"""Where a store is: the one parser of ``--store`` values and of the ``clickhouse`` exporter's ``endpoint``.

Three forms (docs/store.md, "ClickHouse"):

- a DuckDB file path (``./spanledger.duckdb``, ``:memory:``);
- ``chdb:PATH``: ClickHouse's in-process engine on the directory ``PATH`` (tests, single-machine trials);
- ``clickhouse+http://user@host:8123/db`` or ``clickhouse+https://…``: a ClickHouse server. The password is
  never part of the value (it would be printed, logged and kept in shell history): it is read from the
  environment variable :data:`PASSWORD_ENV` (or another one the exporter's config names).
"""

from __future__ import annotations

import enum
import os
import re
from dataclasses import dataclass
from urllib.parse import unquote, urlsplit

__all__ = [
    "DEFAULT_DATABASE",
    "PASSWORD_ENV",
    "StoreAddress",
    "StoreAddressError",
    "StoreEngine",
    "is_identifier",
    "parse_store_address",
    "redacted",
]

PASSWORD_ENV = "SPANLEDGER_CLICKHOUSE_PASSWORD"
DEFAULT_DATABASE = "default"
_DEFAULT_PORTS = {"http": 8123, "https": 8443}
_CHDB_PREFIX = "chdb:"
_URL_PREFIX = "clickhouse+"
_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def is_identifier(name: str) -> bool:
    """A database, table or cluster name spanledger accepts: a plain identifier, the same quoted or not, so it can
    go into SQL and engine arguments (``Distributed('cluster', 'db', …)``) as it is."""
    return _IDENTIFIER.fullmatch(name) is not None


class StoreAddressError(ValueError):
    """A ``--store`` value (or endpoint) that names no store; the message names the value."""


class StoreEngine(enum.Enum):
    DUCKDB = "duckdb"
    CHDB = "chdb"
    """ClickHouse in this process (the ``chdb`` package)."""
    CLICKHOUSE = "clickhouse"
    """A ClickHouse server over HTTP(S)."""


@dataclass(frozen=True)
class StoreAddress:
    """A parsed store location. ``str()`` gives it back without any secret (fit for messages and logs)."""

    engine: StoreEngine
    path: str = ""
    """The DuckDB file or the chdb directory (empty for a server)."""
    host: str = ""
    port: int = 0
    secure: bool = False
    """HTTPS (TLS) to the server."""
    username: str = "default"
    database: str = DEFAULT_DATABASE
    password_env: str = PASSWORD_ENV
    """The environment variable holding the server's password (unset: no password)."""

    @property
    def is_clickhouse(self) -> bool:
        return self.engine is not StoreEngine.DUCKDB

    def password(self) -> str:
        return os.environ.get(self.password_env, "")

    def __str__(self) -> str:
        if self.engine is StoreEngine.DUCKDB:
            return self.path
        if self.engine is StoreEngine.CHDB:
            return f"{_CHDB_PREFIX}{self.path}"
        scheme = "https" if self.secure else "http"
        host = f"[{self.host}]" if ":" in self.host else self.host  # an IPv6 address, as urlsplit read it
        return f"{_URL_PREFIX}{scheme}://{self.username}@{host}:{self.port}/{self.database}"


def parse_store_address(value: str, *, database: str | None = None) -> StoreAddress:
    """The store ``value`` names; ``database`` (a config key) applies where the value names none.

    Raises :class:`StoreAddressError` naming ``value`` (any password in it replaced by ``***``).
    """
    text = value.strip()
    if not text:
        raise StoreAddressError("--store is empty: give a DuckDB path, chdb:PATH or clickhouse+http(s)://…")
    if text.startswith(_CHDB_PREFIX):
        path = text[len(_CHDB_PREFIX) :]
        if path.startswith("//"):  # chdb:///abs/path, clickhouse-connect's own DSN form
            path = path[2:]
        if not path:
            raise StoreAddressError(f"store {value!r}: chdb: needs a directory (chdb:/var/lib/spanledger)")
        return StoreAddress(StoreEngine.CHDB, path=path, database=database or DEFAULT_DATABASE)
    if text.startswith(_URL_PREFIX):
        return _server(text, value, database)
    if "://" in text:
        raise StoreAddressError(
            f"store {redacted(value)!r}: unknown scheme; a ClickHouse server is clickhouse+http://user@host:8123/db "
            "or clickhouse+https://…"
        )
    return StoreAddress(StoreEngine.DUCKDB, path=text)


def _server(text: str, value: str, database: str | None) -> StoreAddress:
    try:
        url = urlsplit(text[len(_URL_PREFIX) :])
        port = url.port
    except ValueError as error:
        # urllib's message quotes what it could not read as a port: with a password holding '/', its start
        raise StoreAddressError(f"store {redacted(value)!r}: {_scrubbed(str(error), value)}") from None
    if url.scheme not in _DEFAULT_PORTS:
        raise StoreAddressError(f"store {redacted(value)!r}: the scheme must be clickhouse+http or clickhouse+https")
    if url.password is not None:
        raise StoreAddressError(
            f"store {redacted(value)!r}: a password in the URL would be printed and logged; "
            f"set it in ${PASSWORD_ENV} instead"
        )
    if not url.hostname:
        raise StoreAddressError(f"store {redacted(value)!r}: no host (clickhouse+http://user@host:8123/db)")
    if url.query or url.fragment:
        raise StoreAddressError(f"store {redacted(value)!r}: query and fragment are not supported")
    path = unquote(url.path.strip("/"))
    if "/" in path:
        raise StoreAddressError(f"store {redacted(value)!r}: the path is the database, one name")
    return StoreAddress(
        StoreEngine.CLICKHOUSE,
        host=url.hostname,
        port=port or _DEFAULT_PORTS[url.scheme],
        secure=url.scheme == "https",
        username=unquote(url.username) if url.username else "default",
        database=path or database or DEFAULT_DATABASE,
    )


def _password(value: str) -> str:
    """The password of ``scheme://user:password@host…``, or ''. The credentials end at the last ``@``: a password
    may hold ``@``, ``/`` or ``:`` (a path holding ``@`` only hides more)."""
    _, separator, rest = value.partition("://")
    credentials, at, _ = rest.rpartition("@")
    if not separator or not at:
        return ""
    return credentials.partition(":")[2]


def redacted(value: str) -> str:
    """``value`` (a store URL or endpoint, in any scheme) with the password of ``user:password@`` as ``***``."""
    password = _password(value)
    if not password:
        return value
    scheme, _, rest = value.partition("://")
    credentials, _, host = rest.rpartition("@")
    return f"{scheme}://{credentials.partition(':')[0]}:***@{host}"


def _scrubbed(message: str, value: str) -> str:
    """``message`` without the password of ``value`` or any piece of it urllib quoted."""
    password = _password(value)
    if not password:
        return message
    message = message.replace(password, "***")
    return "the port is not a number" if "Port could not be cast" in message else message
