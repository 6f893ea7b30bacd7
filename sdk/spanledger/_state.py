"""The telemetry of the active ``configure()``, readable from anywhere without importing ``_configure``.

``_configure`` imports the manager and the workflow processor; they (and the scopes that record outside
an instrumentation: workflows, retrievals, accelerator time) only need the active tracer, meter and
settings. Keeping that one reference here lets every module import it at the top, with no import loop.
"""

from __future__ import annotations

from opentelemetry import _logs, metrics, trace
from opentelemetry.trace import Tracer

from ._config import resolve_settings
from ._telemetry import Telemetry
from ._version import __version__

__all__ = ["INSTRUMENTATION_SCOPE", "SCHEMA_URL", "current_telemetry", "current_tracer", "set_active"]

INSTRUMENTATION_SCOPE = "spanledger"
SCHEMA_URL = "https://opentelemetry.io/schemas/1.37.0"
"""The schema of spanledger's tracer and meter: the last core semantic-conventions release that carried the
GenAI names (``gen_ai.provider.name``, the message attributes), as upstream's util-genai declares. Newer GenAI
names live in the GenAI repository, which publishes no schema yet."""

_active: Telemetry | None = None


def set_active(telemetry: Telemetry | None) -> None:
    """Make ``telemetry`` the active one (None: back to the global providers and the environment)."""
    global _active
    _active = telemetry


def current_telemetry() -> Telemetry:
    """The active ``configure()``'s telemetry, else the global providers with settings from the environment."""
    active = _active
    if active is not None:
        return active
    return Telemetry(
        tracer=trace.get_tracer(INSTRUMENTATION_SCOPE, __version__, schema_url=SCHEMA_URL),
        meter=metrics.get_meter(INSTRUMENTATION_SCOPE, __version__, schema_url=SCHEMA_URL),
        settings=resolve_settings(),
        logger=_logs.get_logger(INSTRUMENTATION_SCOPE, __version__, schema_url=SCHEMA_URL),
    )


def current_tracer() -> Tracer:
    active = _active
    if active is not None:
        return active.tracer
    return trace.get_tracer(INSTRUMENTATION_SCOPE, __version__, schema_url=SCHEMA_URL)
