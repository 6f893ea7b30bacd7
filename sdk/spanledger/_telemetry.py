"""What every instrumentation is handed: the tracer, the meter, the event logger and the resolved settings."""

from __future__ import annotations

from dataclasses import dataclass, field

from opentelemetry._logs import Logger, NoOpLogger
from opentelemetry.metrics import Meter
from opentelemetry.trace import Tracer

from ._config import Settings

__all__ = ["Telemetry"]


@dataclass(frozen=True)
class Telemetry:
    tracer: Tracer
    meter: Meter
    settings: Settings
    logger: Logger = field(default_factory=lambda: NoOpLogger("spanledger"))
    """Where GenAI events are emitted (the OTel Logs API); a no-op one when events are off."""
