"""Every component the collector can build, by kind and type: the one place a component is registered.

A component is a factory (``read`` a config section into a typed, frozen config at load; ``create`` the
component from it at start) plus that config class. To add one, write both (see the README, "Writing a
component") and list the factory here under its type; ``_graph`` then reads, checks and wires it.
"""

from __future__ import annotations

from typing import Any, Protocol, TypeVar

from ._clickhouse_factory import ClickHouseExporterFactory
from ._config import BatchSettings, LoadContext
from ._config_reader import ConfigSection
from ._exporters import AwsOtlpExporterFactory, ExporterFactory, OtlpGrpcExporterFactory, OtlpHttpExporterFactory
from ._factories import (
    BearerTokenAuthFactory,
    FileStorageFactory,
    OpenStore,
    OtlpReceiverFactory,
    StoreExporterFactory,
)
from ._processors import (
    BatchFactory,
    CostFactory,
    FilterFactory,
    MemoryLimiterFactory,
    Processor,
    UsageFactory,
)

__all__ = [
    "EXPORTERS",
    "EXTENSIONS",
    "PROCESSORS",
    "RECEIVERS",
    "STORES",
    "ExtensionFactory",
    "ProcessorFactory",
    "StoreFactory",
]

ConfigT = TypeVar("ConfigT")


class ProcessorFactory(Protocol[ConfigT]):
    signals: tuple[str, ...]
    """The pipeline types (traces, metrics, logs) the processor works in."""
    after: tuple[str, ...]
    """Processor types that must come before it in a pipeline (``spanledger_cost`` prices usage found earlier)."""

    def read(self, component_id: str, section: ConfigSection, context: LoadContext) -> ConfigT: ...

    def create(self, component_id: str, config: ConfigT) -> Processor: ...


class ExtensionFactory(Protocol[ConfigT]):
    def read(self, component_id: str, section: ConfigSection, context: LoadContext) -> ConfigT: ...

    def extend(self, context: LoadContext, component_id: str, config: ConfigT, *, enabled: bool) -> LoadContext:
        """What the extension provides to the components read after it (an authenticator, a data directory)."""
        ...


class StoreFactory(Protocol[ConfigT]):
    def read(self, component_id: str, section: ConfigSection, context: LoadContext) -> ConfigT: ...

    def create(self, component_id: str, config: ConfigT, batch: BatchSettings) -> OpenStore:
        """Open the store and its request log; the writer is started by the service."""
        ...


RECEIVERS: dict[str, OtlpReceiverFactory] = {"otlp": OtlpReceiverFactory()}

PROCESSORS: dict[str, ProcessorFactory[Any]] = {
    "memory_limiter": MemoryLimiterFactory(),
    "batch": BatchFactory(),
    "filter": FilterFactory(),
    "spanledger_usage": UsageFactory(),
    "spanledger_cost": CostFactory(),
}

STORES: dict[str, StoreFactory[Any]] = {
    "spanledger_store": StoreExporterFactory(),
    "clickhouse": ClickHouseExporterFactory(),
}
"""Exporters that are the store: at most one per configuration; pipelines hand it rows through its writer."""

EXPORTERS: dict[str, ExporterFactory] = {
    "otlp": OtlpGrpcExporterFactory(),
    "otlp_grpc": OtlpGrpcExporterFactory(),
    "otlphttp": OtlpHttpExporterFactory(),
    "awsotlp": AwsOtlpExporterFactory(),
}
"""Onward exporters: each a ``Consumer`` with a persistent sending queue."""

EXTENSIONS: dict[str, ExtensionFactory[Any]] = {
    "bearertokenauth": BearerTokenAuthFactory(),
    "file_storage": FileStorageFactory(),
}
