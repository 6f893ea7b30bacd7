"""The table of answers: each one written once — its typed request, its route on the admin API, how the
request travels over HTTP, and the function that computes it from a store connection.

The admin API (``api.py``) decodes a request with :attr:`Answer.from_http` and computes it; the CLI
builds the typed request from its arguments and hands it to a store location (``_client.py``), which
either computes it on a store it opened (a DuckDB file, or ClickHouse) or sends it with
:attr:`Answer.to_http` to a collector.
"""

from __future__ import annotations

import contextlib
import re
import tempfile
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Generic, TypeVar

from ._allocation import allocate
from ._answers import allocation_rows, idle_capacity, top, trace_lineage
from ._errors import RequestError
from ._importer import import_and_allocate
from ._requests import AllocateRequest, ImportRequest, PeriodRequest, Source, TopRequest, TraceRequest, Upload
from ._sources import BillingFile, billing_files, check_allowed

__all__ = ["ALLOCATE", "ALLOCATIONS", "ANSWERS", "IDLE", "IMPORT", "TOP", "TRACE", "Answer", "Context", "HttpRequest"]

R = TypeVar("R")


@dataclass(frozen=True)
class HttpRequest:
    """An answer's request as it travels to the admin API (the same shape on both ends)."""

    path_arg: str | None = None
    """The one path segment after the route (``/api/trace/{trace_id}``)."""
    query: Mapping[str, Sequence[str]] = field(default_factory=dict)
    document: Mapping[str, Any] = field(default_factory=dict)
    """The JSON body (or, with uploads, the multipart ``request`` part)."""
    uploads: tuple[Upload, ...] = ()
    """Multipart ``file`` parts."""
    rules_upload: Upload | None = None
    """The multipart ``rules`` part."""


@dataclass(frozen=True)
class Context:
    within: Sequence[str] | None = None
    """Paths a request may name: ``None`` any (the CLI on its own machine); else only inside these
    directories or ``s3://bucket/prefix`` (the admin API: ``import_directories``)."""
    show_progress: bool = False


@dataclass(frozen=True)
class Answer(Generic[R]):
    name: str
    method: str
    """``GET`` reads the store; ``POST`` changes it (the admin API's write permission)."""
    path: str
    takes_path_arg: bool
    compute: Callable[[Any, R, Context], dict[str, Any]]
    """Computes the answer on a store: a DuckDB connection or a clickhouse-connect client (``_engine.py``)."""
    from_http: Callable[[HttpRequest], R]
    to_http: Callable[[R], HttpRequest]
    with_local_files_uploaded: Callable[[R], R] = lambda request: request
    """The request with the files it names on this machine replaced by their content (a collector
    elsewhere cannot read them); ``s3://`` prefixes are left for the collector to read."""
    creates_store: bool = False
    """May make the store it names (``billing import``); the others refuse a store that is not there (a typo
    would otherwise answer from a new, empty one)."""

    @property
    def writes(self) -> bool:
        return self.method != "GET"


def _one(query: Mapping[str, Sequence[str]], name: str) -> str | None:
    values = query.get(name)
    return values[-1] if values else None


def _integer(name: str, text: str | None, default: int) -> int:
    if text is None:
        return default
    if not re.fullmatch(r"-?\d{1,18}", text.strip()):
        raise RequestError(f"{name} must be an integer, not {text!r}")
    return int(text)


def _document_value(document: Mapping[str, Any], name: str, kind: type, default: Any) -> Any:
    value = document.get(name)
    if value is None:
        return default
    if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
        raise RequestError(f"{name} must be {kind.__name__ if kind is not list else 'a list'}, not {value!r}")
    return value


def _text_list(document: Mapping[str, Any], name: str) -> tuple[str, ...] | None:
    value = document.get(name)
    if value is None:
        return None
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        raise RequestError(f"{name} must be a list of strings, not {value!r}")
    return tuple(value)


def _rules(http: HttpRequest) -> Source | None:
    if http.rules_upload is not None:
        return http.rules_upload
    rules = _document_value(http.document, "rules", str, None)
    return str(rules) if rules is not None else None


def _rules_document(rules: Source | None) -> tuple[str | None, Upload | None]:
    return (None, rules) if isinstance(rules, Upload) else (rules, None)


@contextlib.contextmanager
def _on_disk(
    sources: Sequence[Source], rules: Source | None, context: Context
) -> Iterator[tuple[list[str | BillingFile], Path | None]]:
    """Uploads saved to a temporary directory; paths checked against ``context.within`` before any is read."""
    with tempfile.TemporaryDirectory(prefix="spanledger-upload-") as directory:
        files: list[str | BillingFile] = []
        for index, source in enumerate(sources):
            if isinstance(source, Upload):
                target = Path(directory) / str(index) / source.name
                target.parent.mkdir()
                target.write_bytes(source.content)
                files.append(BillingFile(target, f"upload:{source.name}"))
            else:
                files.append(source)
        rules_path = None
        if isinstance(rules, Upload):
            rules_path = Path(directory) / "rules" / rules.name
            rules_path.parent.mkdir()
            rules_path.write_bytes(rules.content)
        elif rules is not None:
            check_allowed(rules, context.within)
            rules_path = Path(rules)
        yield files, rules_path


def _upload_local(source: Source) -> list[Source]:
    if isinstance(source, Upload) or source.startswith("s3://"):
        return [source]
    with billing_files([source]) as files:
        return [Upload(re.sub(r"[^A-Za-z0-9._-]", "_", f.local_path.name), f.local_path.read_bytes()) for f in files]


def _upload_rules(rules: Source | None) -> Source | None:
    if rules is None or isinstance(rules, Upload):
        return rules
    path = Path(rules)
    try:
        return Upload(re.sub(r"[^A-Za-z0-9._-]", "_", path.name), path.read_bytes())
    except OSError as error:
        raise RequestError(f"{rules}: cannot read the rules file ({error.strerror})") from None


# --- the answers -------------------------------------------------------------------------------------


def _import(connection: Any, request: ImportRequest, context: Context) -> dict[str, Any]:
    with _on_disk(request.sources, request.rules, context) as (files, rules_path):
        return import_and_allocate(
            connection,
            files,
            currency=request.currency,
            run_allocation=request.allocate,
            show_progress=context.show_progress,
            rules_path=rules_path,
            within=context.within,
        )


def _import_from_http(http: HttpRequest) -> ImportRequest:
    paths = _text_list(http.document, "paths") or ()
    return ImportRequest(
        (*paths, *http.uploads),
        currency=_document_value(http.document, "currency", str, None),
        allocate=_document_value(http.document, "allocate", bool, True),
        rules=_rules(http),
    )


def _import_to_http(request: ImportRequest) -> HttpRequest:
    rules, rules_upload = _rules_document(request.rules)
    document = {"paths": list(request.paths), "currency": request.currency, "allocate": request.allocate}
    uploads = tuple(source for source in request.sources if isinstance(source, Upload))
    return HttpRequest(document={**document, "rules": rules}, uploads=uploads, rules_upload=rules_upload)


def _import_uploaded(request: ImportRequest) -> ImportRequest:
    sources = tuple(upload for source in request.sources for upload in _upload_local(source))
    return ImportRequest(sources, request.currency, request.allocate, _upload_rules(request.rules))


IMPORT: Answer[ImportRequest] = Answer(
    "billing import",
    "POST",
    "/api/billing/import",
    False,
    _import,
    _import_from_http,
    _import_to_http,
    _import_uploaded,
    creates_store=True,
)


def _allocate(connection: Any, request: AllocateRequest, context: Context) -> dict[str, Any]:
    with _on_disk((), request.rules, context) as (_, rules_path):
        runs = allocate(connection, request.periods, force=request.force, rules_path=rules_path)
    return {"runs": [asdict(run) for run in runs]}


def _allocate_to_http(request: AllocateRequest) -> HttpRequest:
    rules, rules_upload = _rules_document(request.rules)
    periods = None if request.periods is None else list(request.periods)
    return HttpRequest(document={"periods": periods, "force": request.force, "rules": rules}, rules_upload=rules_upload)


ALLOCATE: Answer[AllocateRequest] = Answer(
    "billing allocate",
    "POST",
    "/api/billing/allocate",
    False,
    _allocate,
    lambda http: AllocateRequest(
        _text_list(http.document, "periods"),
        force=_document_value(http.document, "force", bool, False),
        rules=_rules(http),
    ),
    _allocate_to_http,
    lambda request: AllocateRequest(request.periods, request.force, _upload_rules(request.rules)),
)

TRACE: Answer[TraceRequest] = Answer(
    "trace",
    "GET",
    "/api/trace",
    True,
    lambda connection, request, _: trace_lineage(connection, request.trace_id),
    lambda http: TraceRequest.of(http.path_arg or ""),
    lambda request: HttpRequest(path_arg=request.trace_id),
)

TOP: Answer[TopRequest] = Answer(
    "top",
    "GET",
    "/api/top",
    False,
    lambda connection, request, _: top(
        connection, by=request.by, group=request.group, period=request.period, limit=request.limit
    ),
    lambda http: TopRequest(
        by=_one(http.query, "by") or "cost",
        group=_one(http.query, "group") or "workflow",
        period=_one(http.query, "period"),
        limit=_integer("limit", _one(http.query, "limit"), 20),
    ),
    lambda request: HttpRequest(
        query={
            "by": [request.by],
            "group": [request.group],
            "limit": [str(request.limit)],
            **({"period": [request.period]} if request.period else {}),
        }
    ),
)


def _period_query(request: PeriodRequest) -> HttpRequest:
    return HttpRequest(query={"period": [request.period]} if request.period else {})


IDLE: Answer[PeriodRequest] = Answer(
    "idle",
    "GET",
    "/api/idle",
    False,
    lambda connection, request, _: idle_capacity(connection, period=request.period),
    lambda http: PeriodRequest(_one(http.query, "period")),
    _period_query,
)

ALLOCATIONS: Answer[PeriodRequest] = Answer(
    "allocations",
    "GET",
    "/api/allocations",
    False,
    lambda connection, request, _: allocation_rows(connection, period=request.period),
    lambda http: PeriodRequest(_one(http.query, "period")),
    _period_query,
)

ANSWERS: tuple[Answer[Any], ...] = (IMPORT, ALLOCATE, TRACE, TOP, IDLE, ALLOCATIONS)
