"""One usage fact: a quantity of one meter, owned by one span (see docs/design.md, "Usage facts")."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import NamedTuple

__all__ = ["UsageFact"]


class UsageFact(NamedTuple):
    """Immutable; a tuple so a batch of facts transposes into store columns without per-field Python calls.

    ``quantity`` has at most 9 decimal places and ``estimated_cost`` at most 12 (the store's scales).
    """

    trace_id: str
    span_id: str
    meter: str
    start_time: datetime
    end_time: datetime
    quantity: Decimal
    unit: str
    resource_id: str | None = None
    resource_type: str | None = None
    provider: str | None = None
    account_id: str | None = None
    region: str | None = None
    model: str | None = None
    boundary: str | None = None
    accelerator_type: str | None = None
    workflow: str | None = None
    tenant: str | None = None
    service: str | None = None
    estimated_cost: Decimal | None = None
    currency: str | None = None
    catalog_version: str | None = None
    unpriced_reason: str | None = None
