"""Onward exporters: OTLP/gRPC, OTLP/HTTP (Datadog's intake among others) and AWS CloudWatch / X-Ray.

Every exporter is a :class:`QueuedExporter`: a persistent on-disk sending queue and a retrying sender.
Their factories (``read`` an ``exporters:`` entry at load, ``create`` at start) are registered in
``spanledger_collector._registry``; ``exporter.stats()`` returns an :class:`ExporterStats` for the
collector's self-telemetry.
"""

from ._factories import (
    AwsOtlpExporterFactory,
    ExporterFactory,
    OtlpGrpcExporterFactory,
    OtlpHttpExporterFactory,
    QueuedExporterConfig,
)
from ._queued import QueuedExporter
from ._stats import ExporterStats

__all__ = [
    "AwsOtlpExporterFactory",
    "ExporterFactory",
    "ExporterStats",
    "OtlpGrpcExporterFactory",
    "OtlpHttpExporterFactory",
    "QueuedExporter",
    "QueuedExporterConfig",
]
