"""One usage fact: a quantity of one meter, owned by one span (docs/schema.md, "usage_facts").

:class:`UsageFact` is the field table of the ``usage_facts`` table: each field's type and storage kind are
declared here once; the DDL, the Arrow kinds and the compiled decoder's field order are derived from it.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from decimal import Decimal
from typing import Annotated, NamedTuple

from ._compiled import columns
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
_WIDTH = len(UsageFact._fields)
_MEASURED = _WIDTH - len(ESTIMATE_FIELDS)
_new_tuple = tuple.__new__


def _with_estimate(
    fact: UsageFact,
    cost: Decimal | None,
    currency: str | None,
    catalog_version: str | None,
    unpriced_reason: str | None,
) -> UsageFact:
    # The reference, and the fallback where _columns.c is not built. tuple.__new__ rather than UsageFact(...)
    # or _replace, which run Python code, several times the cost.
    if type(fact) is not UsageFact or len(fact) != _WIDTH:
        got = (
            f"a {type(fact).__name__} of {len(fact)} fields" if isinstance(fact, tuple) else f"a {type(fact).__name__}"
        )
        raise TypeError(f"with_estimate: expected a UsageFact of {_WIDTH} fields, got {got}")
    estimate = (cost, currency, catalog_version, unpriced_reason)
    return _new_tuple(UsageFact, fact[:_MEASURED] + estimate)  # type: ignore[no-any-return]


with_estimate: Callable[[UsageFact, Decimal | None, str | None, str | None, str | None], UsageFact] = (
    _with_estimate if columns is None else columns.estimate_builder(UsageFact, _WIDTH)
)
"""``with_estimate(fact, cost, currency, catalog_version, unpriced_reason)``: ``fact`` with its estimate
(:data:`ESTIMATE_FIELDS`, in that order) replaced; a ``TypeError`` where ``fact`` is not a :class:`UsageFact`
(a subclass or a tuple of the same length included), so that no record of another shape is built.

It runs for every priced fact: the compiled one (``_columns.c``) builds the fact as one tuple, without the
reference's slice, concatenation and argument parsing (tests/test_store_fact_estimate.py checks they agree).
"""
