"""Errors of the billing section; each message names the file, row and column (or period) at fault."""

from __future__ import annotations

__all__ = ["BillingError", "BillingImportError", "CurrencyMixError"]


class BillingError(Exception):
    """A billing import, allocation or answer cannot be done; the message says why."""


class BillingImportError(BillingError):
    """A billing file or row is invalid; nothing of the import was stored."""


class CurrencyMixError(BillingError):
    """One computation would add amounts in different currencies."""
