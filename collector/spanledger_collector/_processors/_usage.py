"""The ``spanledger_usage`` processor: usage facts and data reads from GenAI spans, and the GenAI metrics."""

from __future__ import annotations

from dataclasses import dataclass
from functools import partial

from .._component import PermanentError
from .._config import LoadContext
from .._config_reader import ConfigSection
from .._decode import DecodeError, decode_traces
from .._telemetry import UsageMetrics
from ._item import PipelineItem

__all__ = ["UsageFactory", "UsageProcessor", "UsageSettings", "decode_or_refuse"]


@dataclass(frozen=True)
class UsageSettings:
    tenant_cardinality_limit: int = 100
    """Tenants with their own label on the usage series; the others are counted under ``other``."""


def decode_or_refuse(item: PipelineItem, *, extract_usage: bool) -> None:
    """Decode ``item.data`` into ``item.decoded``; data that is not OTLP traces is refused for good."""
    try:
        item.decoded = decode_traces(item.data, extract_usage=extract_usage)
    except DecodeError as error:
        raise PermanentError(f"the body is not a valid ExportTraceServiceRequest ({error})") from None


class UsageProcessor:
    def __init__(self, component_id: str, settings: UsageSettings) -> None:
        self.component_id = component_id
        self.settings = settings
        self.metrics = UsageMetrics(tenant_cardinality_limit=settings.tenant_cardinality_limit)

    def start(self) -> None:
        pass

    def shutdown(self) -> None:
        pass

    def process(self, item: PipelineItem) -> None:
        decode_or_refuse(item, extract_usage=True)
        assert item.decoded is not None
        batch = item.decoded.batch
        item.facts, item.data_reads, item.llm_calls = batch.facts, batch.data_reads, item.decoded.llm_calls
        if not item.replaying:
            # Counted once the rows are stored, with the facts as the later processors leave them (priced in
            # place); a client's retry of a stored request is not stored again, so not counted again.
            item.on_stored.append(partial(self.metrics.record, item.llm_calls, item.facts, item.data_reads))


class UsageFactory:
    type = "spanledger_usage"
    signals: tuple[str, ...] = ("traces",)
    after: tuple[str, ...] = ()

    def read(self, component_id: str, section: ConfigSection, context: LoadContext) -> UsageSettings:
        return UsageSettings(section.integer("tenant_cardinality_limit", UsageSettings.tenant_cardinality_limit))

    def create(self, component_id: str, config: UsageSettings) -> UsageProcessor:
        return UsageProcessor(component_id, config)
