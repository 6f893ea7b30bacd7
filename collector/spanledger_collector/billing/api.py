"""The billing answers as a JSON HTTP API, served by the collector's admin server under ``/api/``.

Routes (money is returned as exact decimal strings):

* ``POST /api/billing/import`` ``{"paths": [...], "currency": null, "allocate": true, "rules": null}``
* ``POST /api/billing/allocate`` ``{"periods": ["2024-09"], "force": false, "rules": null}``
* ``GET /api/trace/{trace_id}``
* ``GET /api/top?by=cost|tokens|age&group=workflow|tenant|model|service&period=YYYY-MM&limit=20``
* ``GET /api/idle?period=YYYY-MM``
* ``GET /api/allocations?period=YYYY-MM``
"""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path
from typing import Any

from ._allocation import allocate
from ._answers import allocation_rows, idle_capacity, top, trace_lineage
from ._errors import BillingError
from ._importer import import_and_allocate
from ._store_access import store_connection

__all__ = ["handle_request"]


def _one(query: dict[str, list[str]], name: str, default: str | None = None) -> str | None:
    values = query.get(name)
    return values[-1] if values else default


def _rules_path(request: dict[str, Any]) -> Path | None:
    rules = request.get("rules")
    return Path(rules) if isinstance(rules, str) else None


def _body(body: bytes) -> dict[str, Any]:
    if not body:
        return {}
    document = json.loads(body)
    if not isinstance(document, dict):
        raise BillingError("the request body must be a JSON object")
    return document


def handle_request(method: str, path: str, query: dict[str, list[str]], body: bytes, store: Any) -> tuple[int, Any]:
    """Route one ``/api/`` request; returns (HTTP status, JSON-ready answer)."""
    parts = [part for part in path.split("/") if part][1:]  # drop "api"
    try:
        with store_connection(store) as connection:
            if method == "POST" and parts == ["billing", "import"]:
                request = _body(body)
                paths = request.get("paths")
                if not isinstance(paths, list) or not all(isinstance(p, str) for p in paths) or not paths:
                    raise BillingError("paths: a non-empty list of file, directory or s3:// paths is required")
                return 200, import_and_allocate(
                    connection,
                    paths,
                    currency=request.get("currency"),
                    run_allocation=request.get("allocate", True),
                    rules_path=_rules_path(request),
                )
            if method == "POST" and parts == ["billing", "allocate"]:
                request = _body(body)
                runs = allocate(
                    connection,
                    request.get("periods"),
                    force=bool(request.get("force", False)),
                    rules_path=_rules_path(request),
                )
                return 200, {"runs": [asdict(r) for r in runs]}
            if method == "GET" and len(parts) == 2 and parts[0] == "trace":
                return 200, trace_lineage(connection, parts[1])
            if method == "GET" and parts == ["top"]:
                return 200, top(
                    connection,
                    by=_one(query, "by", "cost") or "cost",
                    group=_one(query, "group", "workflow") or "workflow",
                    period=_one(query, "period"),
                    limit=int(_one(query, "limit", "20") or 20),
                )
            if method == "GET" and parts == ["idle"]:
                return 200, idle_capacity(connection, period=_one(query, "period"))
            if method == "GET" and parts == ["allocations"]:
                return 200, allocation_rows(connection, period=_one(query, "period"))
    except BillingError as error:
        status = 404 if "not found" in str(error) else 400
        return status, {"error": str(error)}
    except (ValueError, json.JSONDecodeError) as error:
        return 400, {"error": str(error)}
    return 404, {"error": f"no route for {method} {path}"}
