"""Failure isolation: nothing in spanledger raises into the application.

Every piece of instrumentation code that runs inside a user's call goes through
:func:`internal_errors_logged` (or :func:`log_internal_error` in an ``except`` block). The error
is logged with its traceback the first time a given place fails and at debug level after that, so
a broken extractor on a hot path cannot flood the application's logs.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator
from contextlib import contextmanager

__all__ = ["internal_errors_logged", "log_internal_error", "logger"]

logger = logging.getLogger("spanledger")

_reported: set[str] = set()
_reported_lock = threading.Lock()


def log_internal_error(where: str) -> None:
    """Log the exception being handled as a spanledger bug at ``where``; call only from ``except``."""
    with _reported_lock:
        first = where not in _reported
        _reported.add(where)
    if first:
        logger.exception(
            "spanledger internal error in %s; the application is unaffected. "
            "Please report this at https://github.com/spanledger/spanledger/issues",
            where,
        )
    else:
        logger.debug("spanledger internal error in %s (repeated)", where, exc_info=True)


@contextmanager
def internal_errors_logged(where: str) -> Iterator[None]:
    """Run the block; if it raises, log it once (see module docstring) and carry on."""
    try:
        yield
    except Exception:
        log_internal_error(where)
