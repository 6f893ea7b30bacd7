"""One usage fact: a quantity of one meter, owned by one span (see docs/design.md, "Usage facts")."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

__all__ = ["UsageFact"]


@dataclass(frozen=True)
class UsageFact:
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
