"""Billing join: import billing exports, allocate them to usage facts, answer cost questions."""

from ._allocation import RunResult, allocate
from ._answers import allocation_rows, idle_capacity, top, trace_lineage
from ._errors import BillingError, BillingImportError, BillingLockError, CurrencyMixError
from ._importer import ImportResult, SnapshotResult, import_and_allocate, import_billing
from ._rules import Rules, load_rules

__all__ = [
    "BillingError",
    "BillingImportError",
    "BillingLockError",
    "CurrencyMixError",
    "ImportResult",
    "Rules",
    "RunResult",
    "SnapshotResult",
    "allocate",
    "allocation_rows",
    "idle_capacity",
    "import_and_allocate",
    "import_billing",
    "load_rules",
    "top",
    "trace_lineage",
]
