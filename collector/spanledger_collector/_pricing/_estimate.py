"""The result of pricing one usage fact."""

from __future__ import annotations

from decimal import Decimal
from typing import NamedTuple

__all__ = ["Estimate"]


class Estimate(NamedTuple):
    """A priced (or unpriced) usage fact. ``cost`` is ``None`` exactly when ``unpriced_reason`` is set."""

    cost: Decimal | None
    currency: str | None
    catalog_version: str
    unpriced_reason: str | None = None
