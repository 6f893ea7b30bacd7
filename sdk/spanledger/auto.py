"""``import spanledger.auto``: configure from the environment and instrument everything, in one line.

Like ``import ddtrace.auto``. Options come only from ``SPANLEDGER_*`` / ``OTEL_*`` variables; a bad
value is logged and never stops the application.
"""

from ._configure import configure
from ._internal_errors import internal_errors_logged

__all__: list[str] = []

with internal_errors_logged("import spanledger.auto"):
    configure()
