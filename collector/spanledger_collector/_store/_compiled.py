"""The store's compiled module (``_columns.c``): ``None`` where it is not built or ``SPANLEDGER_NO_SPEEDUPS`` is set.

Its users fall back to Python (pyarrow for the row conversion, tuple slicing for :func:`~._facts.with_estimate`).
"""

from __future__ import annotations

import contextlib
import os
from typing import Any

__all__ = ["columns"]

columns: Any = None
if not os.environ.get("SPANLEDGER_NO_SPEEDUPS"):
    with contextlib.suppress(ImportError):  # not built
        from . import _columns as columns  # type: ignore[attr-defined, no-redef]
