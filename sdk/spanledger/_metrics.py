"""Create OpenTelemetry instruments from the semconv registry's metric specs."""

from __future__ import annotations

from typing import Any

from opentelemetry.metrics import Meter

from .semconv import MetricSpec

__all__ = ["create_instrument"]


def create_instrument(meter: Meter, spec: MetricSpec) -> Any:
    """The instrument ``spec`` describes, with the registry's bucket boundaries as advice."""
    if spec.instrument == "histogram":
        if spec.buckets:
            return meter.create_histogram(
                spec.name,
                unit=spec.unit,
                description=spec.description,
                explicit_bucket_boundaries_advisory=list(spec.buckets),
            )
        return meter.create_histogram(spec.name, unit=spec.unit, description=spec.description)
    if spec.instrument == "counter":
        return meter.create_counter(spec.name, unit=spec.unit, description=spec.description)
    if spec.instrument == "updowncounter":
        return meter.create_up_down_counter(spec.name, unit=spec.unit, description=spec.description)
    return meter.create_gauge(spec.name, unit=spec.unit, description=spec.description)
