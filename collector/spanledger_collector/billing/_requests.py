"""The typed parameters of each answer, validated once for the CLI and the admin API alike.

Constructing a request validates it: a bad value raises :class:`RequestError` naming the parameter
(``limit must be an integer from 1 to 10000, not -1``), which the API answers with 400 and the CLI prints.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from ._answers import GROUPS, RANKINGS
from ._errors import RequestError

__all__ = [
    "MAX_LIMIT",
    "AllocateRequest",
    "ImportRequest",
    "PeriodRequest",
    "Source",
    "TopRequest",
    "TraceRequest",
    "Upload",
]

MAX_LIMIT = 10_000
_TRACE_ID = re.compile(r"[0-9a-f]{32}")
_PERIOD = re.compile(r"\d{4}-(0[1-9]|1[0-2])")
_CURRENCY = re.compile(r"[A-Za-z]{3}")
_UPLOAD_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,199}")


@dataclass(frozen=True)
class Upload:
    """A file's content sent with the request; ``name`` (a base name) says its format (``.csv``, ``.parquet``)."""

    name: str
    content: bytes

    def __post_init__(self) -> None:
        if not _UPLOAD_NAME.fullmatch(self.name) or ".." in self.name:
            raise RequestError(f"upload {self.name!r}: expected a plain file name such as export.csv")


Source = str | Upload
"""A path (file, directory or ``s3://bucket/prefix``) or content sent with the request."""


def _period(name: str, value: str | None) -> None:
    if value is not None and (not isinstance(value, str) or not _PERIOD.fullmatch(value)):
        raise RequestError(f"{name} must be a billing period YYYY-MM, not {value!r}")


def _flag(name: str, value: object) -> None:
    if not isinstance(value, bool):
        raise RequestError(f"{name} must be true or false, not {value!r}")


def _source(name: str, value: object) -> None:
    if isinstance(value, Upload):
        return
    if not isinstance(value, str) or not value or "\0" in value:
        raise RequestError(f"{name} must be a non-empty path, not {value!r}")


@dataclass(frozen=True)
class TraceRequest:
    trace_id: str

    def __post_init__(self) -> None:
        if not isinstance(self.trace_id, str) or not _TRACE_ID.fullmatch(self.trace_id):
            raise RequestError(f"trace id must be 32 lowercase hex digits, not {self.trace_id!r}")

    @classmethod
    def of(cls, text: str) -> TraceRequest:
        """From what a user typed (surrounding blanks and upper case allowed)."""
        return cls(text.strip().lower())


@dataclass(frozen=True)
class TopRequest:
    by: str = "cost"
    group: str = "workflow"
    period: str | None = None
    limit: int = 20

    def __post_init__(self) -> None:
        if self.by not in RANKINGS:
            raise RequestError(f"by must be one of {', '.join(RANKINGS)}, not {self.by!r}")
        if self.group not in GROUPS:
            raise RequestError(f"group must be one of {', '.join(GROUPS)}, not {self.group!r}")
        _period("period", self.period)
        if isinstance(self.limit, bool) or not isinstance(self.limit, int) or not 1 <= self.limit <= MAX_LIMIT:
            raise RequestError(f"limit must be an integer from 1 to {MAX_LIMIT}, not {self.limit!r}")


@dataclass(frozen=True)
class PeriodRequest:
    """``idle`` and ``allocations``: one billing period, by default the latest allocated."""

    period: str | None = None

    def __post_init__(self) -> None:
        _period("period", self.period)


@dataclass(frozen=True)
class AllocateRequest:
    periods: tuple[str, ...] | None = None
    """``None``: every period with billing lines."""
    force: bool = False
    rules: Source | None = None

    def __post_init__(self) -> None:
        if self.periods is not None:
            if not isinstance(self.periods, tuple):
                raise RequestError(f"periods must be a list of billing periods YYYY-MM, not {self.periods!r}")
            for period in self.periods:
                _period("periods", period)
        _flag("force", self.force)
        if self.rules is not None:
            _source("rules", self.rules)


@dataclass(frozen=True)
class ImportRequest:
    sources: tuple[Source, ...]
    currency: str | None = None
    """Currency of FOCUS files that have no BillingCurrency column."""
    allocate: bool = True
    rules: Source | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.sources, tuple) or not self.sources:
            raise RequestError("paths: a non-empty list of file, directory or s3:// paths (or uploads) is required")
        for source in self.sources:
            _source("paths", source)
        if self.currency is not None and (not isinstance(self.currency, str) or not _CURRENCY.fullmatch(self.currency)):
            raise RequestError(f"currency must be an ISO 4217 code such as USD, not {self.currency!r}")
        _flag("allocate", self.allocate)
        if self.rules is not None:
            _source("rules", self.rules)

    @property
    def paths(self) -> tuple[str, ...]:
        return tuple(source for source in self.sources if isinstance(source, str))
