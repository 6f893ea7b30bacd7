"""The answers as a JSON HTTP API, served by the collector's admin server under ``/api/``.

Routes (from the table of answers in ``_table.py``; money is returned as exact decimal strings):

* ``POST /api/billing/import``: a JSON body ``{"paths": [...], "currency": null, "allocate": true, "rules": null}``
  naming files inside the collector's ``import_directories``, or ``multipart/form-data`` with the files
  themselves (``file`` parts, an optional ``rules`` part, and optionally the JSON as a ``request`` part)
* ``POST /api/billing/allocate`` ``{"periods": ["2024-09"], "force": false, "rules": null}``
* ``GET /api/trace/{trace_id}``
* ``GET /api/top?by=cost|tokens|age&group=workflow|tenant|model|service&period=YYYY-MM&limit=20``
* ``GET /api/idle?period=YYYY-MM``
* ``GET /api/allocations?period=YYYY-MM``

A bad parameter is answered 400 naming it, something not in the store 404, a path outside the import
directories 403 (whether or not it exists).
"""

from __future__ import annotations

import email.parser
import email.policy
import json
from collections.abc import Mapping, Sequence
from typing import Any

from ._errors import BillingError, BillingLockError, NotFoundError, PathNotAllowedError, RequestError
from ._requests import Upload
from ._store_access import store_connection
from ._table import ANSWERS, Answer, Context, HttpRequest

__all__ = ["find_answer", "handle_request"]


def find_answer(method: str, path: str) -> tuple[Answer[Any], str | None] | None:
    """The answer a request is for, and its path argument (the trace id)."""
    for answer in ANSWERS:
        if method != answer.method:
            continue
        if path == answer.path and not answer.takes_path_arg:
            return answer, None
        prefix = answer.path + "/"
        if answer.takes_path_arg and path.startswith(prefix) and "/" not in path[len(prefix) :]:
            return answer, path[len(prefix) :]
    return None


def _json_object(body: bytes, where: str) -> Mapping[str, Any]:
    if not body.strip():
        return {}
    try:
        document = json.loads(body)
    except (ValueError, RecursionError) as error:
        raise RequestError(f"{where} is not valid JSON ({error})") from None
    if not isinstance(document, dict):
        raise RequestError(f"{where} must be a JSON object")
    return document


def _multipart(content_type: str, body: bytes, path_arg: str | None, query: Mapping[str, Sequence[str]]) -> HttpRequest:
    message = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(
        b"Content-Type: " + content_type.encode("latin-1") + b"\r\n\r\n" + body
    )
    if not message.is_multipart():
        raise RequestError("the multipart/form-data body has no parts (is the boundary right?)")
    document: Mapping[str, Any] = {}
    uploads: list[Upload] = []
    rules: Upload | None = None
    for part in message.iter_parts():
        name = part.get_param("name", header="content-disposition")
        content = part.get_payload(decode=True)
        if not isinstance(name, str) or not isinstance(content, bytes):
            raise RequestError("every multipart part needs a name (request, file or rules)")
        filename = part.get_filename()
        if name == "request":
            document = _json_object(content, "the request part")
        elif name in ("file", "rules"):
            if not filename:
                raise RequestError(f"the {name} part needs a filename")
            if name == "file":
                uploads.append(Upload(filename, content))
            elif rules is None:
                rules = Upload(filename, content)
            else:
                raise RequestError("only one rules part is allowed")
        else:
            raise RequestError(f"unknown multipart part {name!r} (expected request, file or rules)")
    return HttpRequest(path_arg, query, document, tuple(uploads), rules)


def handle_request(
    method: str,
    path: str,
    query: Mapping[str, Sequence[str]],
    body: bytes,
    store: Any,
    *,
    content_type: str | None = None,
    import_directories: Sequence[str] = (),
) -> tuple[int, Any]:
    """Route one ``/api/`` request; returns (HTTP status, JSON-ready answer).

    ``import_directories``: the only directories (or ``s3://bucket/prefix``) a request may name paths in.
    """
    found = find_answer(method, path)
    if found is None:
        return 404, {"error": f"no route for {method} {path}"}
    answer, path_arg = found
    try:
        if content_type is not None and content_type.lower().startswith("multipart/form-data"):
            http = _multipart(content_type, body, path_arg, query)
        else:
            http = HttpRequest(path_arg, query, _json_object(body, "the request body"))
        request = answer.from_http(http)
        with store_connection(store) as connection:
            return 200, answer.compute(connection, request, Context(within=tuple(import_directories)))
    except PathNotAllowedError as error:
        return 403, {"error": str(error)}
    except NotFoundError as error:
        return 404, {"error": str(error)}
    except BillingLockError as error:
        return 409, {"error": str(error)}
    except BillingError as error:
        return 400, {"error": str(error)}
