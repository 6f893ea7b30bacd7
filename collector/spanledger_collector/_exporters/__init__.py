"""Onward exporters: OTLP/gRPC, OTLP/HTTP (Datadog's intake among others) and AWS CloudWatch / X-Ray.

Every exporter is a :class:`QueuedExporter`: a persistent on-disk sending queue and a retrying sender.
``FACTORIES[type].create(component_id, config, data_dir)`` builds one from its ``exporters:`` entry;
``exporter.stats()`` returns an :class:`ExporterStats` for the collector's self-telemetry.
"""

from ._factories import AwsOtlpExporterFactory, ExporterFactory, OtlpGrpcExporterFactory, OtlpHttpExporterFactory
from ._queued import QueuedExporter
from ._stats import ExporterStats

__all__ = ["FACTORIES", "ExporterFactory", "ExporterStats", "QueuedExporter"]

FACTORIES: dict[str, ExporterFactory] = {
    "otlp": OtlpGrpcExporterFactory(),
    "otlp_grpc": OtlpGrpcExporterFactory(),
    "otlphttp": OtlpHttpExporterFactory(),
    "awsotlp": AwsOtlpExporterFactory(),
}
