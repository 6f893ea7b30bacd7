"""Errors of the billing section; each message names the file, row and column (or period) at fault."""

from __future__ import annotations

__all__ = [
    "BillingError",
    "BillingImportError",
    "BillingLockError",
    "CurrencyMixError",
    "NotFoundError",
    "PathNotAllowedError",
    "RequestError",
    "first_line",
]


class BillingError(Exception):
    """A billing import, allocation or answer cannot be done; the message says why."""


class BillingImportError(BillingError):
    """A billing file or row is invalid; nothing of the import was stored."""


class BillingLockError(BillingError):
    """Another import or allocation holds the store's billing lock, or took it over from this one (the API
    answers 409)."""


class CurrencyMixError(BillingError):
    """One computation would add amounts in different currencies."""


class RequestError(BillingError):
    """A parameter of an answer is invalid (the API answers 400); the message names it."""


class NotFoundError(BillingError):
    """What the answer is about is not in the store (the API answers 404)."""


class PathNotAllowedError(BillingError):
    """A path outside the directories the collector was configured to import from (the API answers 403)."""


def first_line(error: BaseException) -> str:
    """The first line of a library's error message (DuckDB's and ClickHouse's go on with context and advice)."""
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__
