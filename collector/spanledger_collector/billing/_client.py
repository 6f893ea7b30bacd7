"""Where the CLI's answers are computed: a store this process opens, or a running collector's store.

Both are a :class:`StoreLocation`: ``location.answer(TOP, TopRequest(...))`` computes an answer of the
table (``_table.py``) on that store. DuckDB allows one writing process, so when a collector runs, the CLI
must go through its admin API (:class:`CollectorStore`); otherwise it opens the file (:class:`LocalStore`).
ClickHouse takes many clients: a ``--store`` naming it is opened directly (:class:`ClickHouseStore`).
"""

from __future__ import annotations

import json
import os
import urllib.error
import urllib.parse
import urllib.request
from typing import Any, Protocol, TypeVar

import duckdb
import urllib3

from .._store._clickhouse_client import ClickHouseUnavailableError, open_clickhouse
from .._store._clickhouse_schema import ClickHouseSchema, holds_init_views
from .._store._location import StoreAddress, StoreAddressError, StoreEngine, parse_store_address, redacted
from ._engine import spans_table
from ._errors import BillingError, first_line
from ._table import Answer, Context

__all__ = [
    "COLLECTOR_TOKEN_ENV",
    "COLLECTOR_URL_ENV",
    "DEFAULT_COLLECTOR_URL",
    "DEFAULT_STORE_PATH",
    "STORE_PATH_ENV",
    "ClickHouseStore",
    "CollectorStore",
    "LocalStore",
    "StoreLocation",
    "open_store",
    "store_location",
]

DEFAULT_COLLECTOR_URL = "http://localhost:9464"
DEFAULT_STORE_PATH = "./spanledger.duckdb"
COLLECTOR_URL_ENV = "SPANLEDGER_COLLECTOR_URL"
COLLECTOR_TOKEN_ENV = "SPANLEDGER_COLLECTOR_TOKEN"
STORE_PATH_ENV = "SPANLEDGER_STORE_PATH"

R = TypeVar("R")


class StoreLocation(Protocol):
    def answer(self, answer: Answer[R], request: R, *, show_progress: bool = False) -> Any:
        """The answer to ``request`` computed on this store (a JSON-ready dict)."""


class LocalStore:
    """A DuckDB store file this process opens (read-only for answers that only read)."""

    def __init__(self, path: str) -> None:
        self.path = path

    def answer(self, answer: Answer[R], request: R, *, show_progress: bool = False) -> Any:
        connection = open_store(self.path, read_only=not answer.writes, create=answer.creates_store)
        try:
            return answer.compute(connection, request, Context(show_progress=show_progress))
        finally:
            connection.close()


class ClickHouseStore:
    """A ClickHouse store (a server, or chdb in this process) this process opens; ClickHouse takes many clients,
    so no collector is asked."""

    def __init__(self, address: StoreAddress) -> None:
        self.address = address

    def answer(self, answer: Answer[R], request: R, *, show_progress: bool = False) -> Any:
        address = self.address
        if address.engine is StoreEngine.CHDB and not answer.creates_store and not os.path.isdir(address.path):
            raise BillingError(f"no store at {address}: import billing first, or pass --store")
        try:
            client = open_clickhouse(address, create_database=answer.writes)
        except ClickHouseUnavailableError as error:
            raise BillingError(str(error)) from None
        except Exception as error:
            raise BillingError(_cannot_open(address, error)) from error
        from clickhouse_connect.driver.exceptions import ClickHouseError  # installed: the client opened

        try:
            # The store's tables, as the clickhouse exporter's create_schema makes them; not where init's views
            # are the store (the answer makes the billing tables it writes).
            if answer.writes and not holds_init_views(client, address.database):
                schema = ClickHouseSchema(address.database, traces_table=spans_table(client))
                for statement in schema.statements():
                    client.command(statement)
            return answer.compute(client, request, Context(show_progress=show_progress))
        except ClickHouseError as error:
            raise BillingError(f"the store {address}: {first_line(error)}") from error
        finally:
            client.close()


def _cannot_open(address: StoreAddress, error: BaseException) -> str:
    """Why ``address`` did not open: the server's or connection's first line; for chdb, the likely cause."""
    if address.engine is StoreEngine.CHDB:
        return (
            f"cannot open the store {address} ({first_line(error)}): chdb opens a directory in one process at a "
            "time; if a collector stores there, ask it: --collector URL"
        )
    return f"cannot open the store {address}: {first_line(error)}"


class CollectorStore:
    """The store of the collector whose admin API answers at ``base_url``.

    Files a request names are read here and uploaded: they are on this machine, not the collector's.
    ``token`` (``$SPANLEDGER_COLLECTOR_TOKEN``) is sent as a bearer token; an ``https`` URL is verified
    against the system's CAs (``SSL_CERT_FILE`` names another bundle).
    """

    def __init__(self, base_url: str, *, token: str | None = None, timeout: float = 600.0) -> None:
        self.base_url = base_url.rstrip("/")
        self._token = token
        self._timeout = timeout

    def answer(self, answer: Answer[R], request: R, *, show_progress: bool = False) -> Any:
        http = answer.to_http(answer.with_local_files_uploaded(request))
        path = answer.path + (f"/{urllib.parse.quote(http.path_arg, safe='')}" if http.path_arg is not None else "")
        query = urllib.parse.urlencode([(name, value) for name, values in http.query.items() for value in values])
        headers = {"Authorization": f"Bearer {self._token}"} if self._token else {}
        data: bytes | None = None
        if http.uploads or http.rules_upload is not None:
            document = json.dumps(http.document).encode()
            fields: list[tuple[str, Any]] = [("request", ("request.json", document, "application/json"))]
            fields += [("file", (upload.name, upload.content)) for upload in http.uploads]
            if http.rules_upload is not None:
                fields.append(("rules", (http.rules_upload.name, http.rules_upload.content)))
            data, headers["Content-Type"] = urllib3.encode_multipart_formdata(fields)
        elif answer.writes:
            data, headers["Content-Type"] = json.dumps(http.document).encode(), "application/json"
        return self._call(answer.method, f"{self.base_url}{path}" + (f"?{query}" if query else ""), data, headers)

    def _call(self, method: str, url: str, data: bytes | None, headers: dict[str, str]) -> Any:
        request = urllib.request.Request(url, data=data, method=method, headers=headers)
        try:
            with urllib.request.urlopen(request, timeout=self._timeout) as response:
                return json.loads(response.read())
        except urllib.error.HTTPError as error:
            try:
                message = json.loads(error.read()).get("error", str(error))
            except (ValueError, AttributeError):
                message = str(error)
            if error.code == 401 and not self._token:
                message += f" (set {COLLECTOR_TOKEN_ENV})"
            raise BillingError(message) from error
        except (urllib.error.URLError, OSError) as error:
            raise BillingError(f"the collector at {redacted(self.base_url)} did not answer: {error}") from error


def store_location(store: str | None, collector: str | None) -> StoreLocation:
    """A running collector when one answers at ``collector`` (or $SPANLEDGER_COLLECTOR_URL); else the
    store file ``store`` (or $SPANLEDGER_STORE_PATH). ``collector`` ``none`` always opens the file.
    A ClickHouse ``store`` (``chdb:PATH``, ``clickhouse+http(s)://…``) is always opened directly.

    Only the default address may be silent (no collector running: the CLI opens the store itself); an
    address the user named that does not answer is an error, not a reason to open some other store.
    """
    value = store or os.environ.get(STORE_PATH_ENV) or DEFAULT_STORE_PATH
    try:
        address = parse_store_address(value)
    except StoreAddressError as error:
        raise BillingError(str(error)) from None
    if address.is_clickhouse:
        return ClickHouseStore(address)
    local = LocalStore(address.path)
    named = collector or os.environ.get(COLLECTOR_URL_ENV)
    base = named or DEFAULT_COLLECTOR_URL
    if base.lower() == "none":
        return local
    try:
        # Generous: a refused connection fails at once, and a busy collector must not be mistaken for none
        # (the CLI would then open --store itself: a lock error, or a fresh ./spanledger.duckdb).
        with urllib.request.urlopen(f"{base.rstrip('/')}/health", timeout=5.0):
            pass
    except urllib.error.HTTPError:
        pass  # it answered (unhealthy is still running)
    except (urllib.error.URLError, OSError, ValueError) as error:
        if named:
            hint = "pass --collector none to use --store"
            raise BillingError(f"no collector answers at {redacted(base)} ({error}); {hint}") from error
        return local
    return CollectorStore(base, token=os.environ.get(COLLECTOR_TOKEN_ENV))


_DUCKDB_MAGIC = b"DUCK"
"""At byte 8 of a DuckDB database file."""


def open_store(path: str, *, read_only: bool, create: bool = False) -> duckdb.DuckDBPyConnection:
    """The DuckDB store file ``path``; only ``create`` (an import) makes one that is not there."""
    if path != ":memory:":
        if not os.path.exists(path):
            if read_only or not create:
                raise BillingError(f"no store at {path}: import billing first, or pass --store PATH")
        elif not _is_duckdb_file(path):
            raise BillingError(f"{path} is not a spanledger store (not a DuckDB database file): check --store")
    try:
        return duckdb.connect(path, read_only=read_only)
    except duckdb.Error as error:
        locked = "lock" in str(error).lower()
        hint = " (is a collector using it? pass --collector URL)" if locked else ""
        raise BillingError(f"cannot open the store {path}: {first_line(error)}{hint}") from error


def _is_duckdb_file(path: str) -> bool:
    """A DuckDB database file (DuckDB would open another existing file, e.g. a CSV, as an empty database)."""
    try:
        with open(path, "rb") as file:
            head = file.read(12)
    except OSError:
        return True  # a directory or unreadable file: DuckDB's own error names it
    return len(head) == 0 or head[8:12] == _DUCKDB_MAGIC
