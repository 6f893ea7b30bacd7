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
_OptionalText = Annotated[str | None, Kind.STRING]
_Timestamp = Annotated[datetime, Kind.TIMESTAMP]


class UsageFact(NamedTuple):
    """Immutable; a tuple so a batch of facts transposes into store columns without per-field Python calls.

    ``quantity`` has at most 9 decimal places and ``estimated_cost`` at most 12 (the store's scales).
    """

    trace_id: _Text
    span_id: _Text
    meter: _Text
    start_time: _Timestamp
    end_time: _Timestamp
    quantity: Annotated[Decimal, Kind.QUANTITY]
    unit: _Text
    resource_id: _OptionalText = None
    resource_type: _OptionalText = None
    provider: _OptionalText = None
    account_id: _OptionalText = None
    region: _OptionalText = None
    model: _OptionalText = None
    boundary: _OptionalText = None
    accelerator_type: _OptionalText = None
    workflow: _OptionalText = None
    tenant: _OptionalText = None
    service: _OptionalText = None
    # The estimate: set by the cost processor (with_estimate), None until then.
    estimated_cost: Annotated[Decimal | None, Kind.MONEY] = None
    currency: _OptionalText = None
    catalog_version: _OptionalText = None
    unpriced_reason: _OptionalText = None


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
