"""One usage fact: a quantity of one meter, owned by one span (docs/schema.md, "usage_facts").

:class:`UsageFact` is the field table of the ``usage_facts`` table: each field's type and storage kind are
declared here once; the DDL, the Arrow kinds and the compiled decoder's field order are derived from it.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Annotated, NamedTuple

from ._schema import Kind, table_of

__all__ = ["ESTIMATE_FIELDS", "USAGE_FACTS", "UsageFact", "with_estimate"]

_Text = Annotated[str, Kind.STRING]
_Name = Annotated[str, Kind.NAME]
_OptionalText = Annotated[str | None, Kind.STRING]
_OptionalName = Annotated[str | None, Kind.NAME]
_Timestamp = Annotated[datetime, Kind.TIMESTAMP]


class UsageFact(NamedTuple):
    """Immutable; a tuple so a batch of facts transposes into store columns without per-field Python calls.

    ``quantity`` has at most 9 decimal places and ``estimated_cost`` at most 12 (the store's scales).
    """

    trace_id: _Text
    span_id: _Text
    meter: _Name
    start_time: _Timestamp
    end_time: _Timestamp
    quantity: Annotated[Decimal, Kind.QUANTITY]
    unit: _Name
    resource_id: _OptionalText = None
    resource_type: _OptionalName = None
    provider: _OptionalName = None
    account_id: _OptionalName = None
    region: _OptionalName = None
    model: _OptionalName = None
    boundary: _OptionalName = None
    accelerator_type: _OptionalName = None
    workflow: _OptionalName = None
    tenant: _OptionalName = None
    service: _OptionalName = None
    # The estimate: set by the cost processor (with_estimate), None until then.
    estimated_cost: Annotated[Decimal | None, Kind.MONEY] = None
    currency: _OptionalName = None
    catalog_version: _OptionalName = None
    unpriced_reason: _OptionalName = None


USAGE_FACTS = table_of("usage_facts", UsageFact)
ESTIMATE_FIELDS = UsageFact._fields[UsageFact._fields.index("estimated_cost") :]
"""The fields of a fact's estimate, its last ones (``Estimate`` in ``_pricing`` holds the same)."""
_MEASURED = len(UsageFact._fields) - len(ESTIMATE_FIELDS)
_new_tuple = tuple.__new__


def with_estimate(fact: UsageFact, estimate: tuple[Decimal | None, str | None, str | None, str | None]) -> UsageFact:
    """``fact`` with its estimate (:data:`ESTIMATE_FIELDS`, in order) replaced.

    It builds the tuple directly: ``UsageFact(...)`` and ``_replace`` run Python code, several times the cost,
    and this runs for every priced fact.
    """
    return _new_tuple(UsageFact, fact[:_MEASURED] + estimate)  # type: ignore[no-any-return]
