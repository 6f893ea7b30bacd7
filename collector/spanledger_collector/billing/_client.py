"""The CLI's way to the store: through a running collector's admin API, else the DuckDB file itself.

DuckDB allows one writing process, so when a collector runs, the CLI must go through it.
"""

from __future__ import annotations

import json
import os
import urllib.error
import urllib.parse
import urllib.request
from typing import Any

import duckdb

from ._errors import BillingError

__all__ = ["DEFAULT_COLLECTOR_URL", "DEFAULT_STORE_PATH", "CollectorClient", "collector_client", "open_store"]

DEFAULT_COLLECTOR_URL = "http://localhost:9464"
DEFAULT_STORE_PATH = "./spanledger.duckdb"
COLLECTOR_URL_ENV = "SPANLEDGER_COLLECTOR_URL"
STORE_PATH_ENV = "SPANLEDGER_STORE_PATH"


class CollectorClient:
    def __init__(self, base_url: str, timeout: float = 600.0) -> None:
        self.base_url = base_url.rstrip("/")
        self._timeout = timeout

    def request(self, method: str, path: str, query: dict[str, str | None] | None = None, body: Any = None) -> Any:
        params = {k: v for k, v in (query or {}).items() if v is not None}
        url = f"{self.base_url}{path}" + (f"?{urllib.parse.urlencode(params)}" if params else "")
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(url, data=data, method=method, headers={"Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(request, timeout=self._timeout) as response:
                return json.loads(response.read())
        except urllib.error.HTTPError as error:
            try:
                message = json.loads(error.read()).get("error", str(error))
            except (ValueError, AttributeError):
                message = str(error)
            raise BillingError(message) from error
        except (urllib.error.URLError, OSError) as error:
            raise BillingError(f"the collector at {self.base_url} did not answer: {error}") from error


def collector_client(url: str | None) -> CollectorClient | None:
    """A client when a collector answers at ``url`` (or $SPANLEDGER_COLLECTOR_URL); ``none`` disables.

    Only the default address may be silent (no collector running: the CLI opens the store itself); an
    address the user named that does not answer is an error, not a reason to open some other store.
    """
    named = url or os.environ.get(COLLECTOR_URL_ENV)
    base = named or DEFAULT_COLLECTOR_URL
    if base.lower() == "none":
        return None
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
            raise BillingError(f"no collector answers at {base} ({error}); {hint}") from error
        return None
    return CollectorClient(base)


def open_store(path: str | None, *, read_only: bool) -> duckdb.DuckDBPyConnection:
    store_path = path or os.environ.get(STORE_PATH_ENV) or DEFAULT_STORE_PATH
    if read_only and store_path != ":memory:" and not os.path.exists(store_path):
        raise BillingError(f"no store at {store_path}: import billing first, or pass --store PATH")
    try:
        return duckdb.connect(store_path, read_only=read_only)
    except duckdb.IOException as error:
        raise BillingError(
            f"cannot open the store {store_path}: {str(error).splitlines()[0]} "
            "(is a collector using it? pass --collector URL)"
        ) from error
