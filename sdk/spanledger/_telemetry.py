"""What every instrumentation is handed: the tracer, the meter and the resolved settings."""

from __future__ import annotations

from dataclasses import dataclass

from opentelemetry.metrics import Meter
from opentelemetry.trace import Tracer

from ._config import Settings

__all__ = ["Telemetry"]


@dataclass(frozen=True)
class Telemetry:
    tracer: Tracer
    meter: Meter
    settings: Settings
