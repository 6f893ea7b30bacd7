"""The ``spanledger_usage`` processor: usage facts and data reads from GenAI spans, and the GenAI metrics."""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import partial

from .._component import NothingToStart, PermanentError
from .._config import LoadContext
from .._config_reader import ConfigSection
from .._decode import DecodeError, decode_traces
from .._decode._attribution import DEFAULT_ATTRIBUTION, Attribution, AttributionMemory, attribute, listed_names_error
from .._telemetry import CardinalityLimits, UsageMetrics
from ._item import PipelineItem

__all__ = ["UsageFactory", "UsageProcessor", "UsageSettings", "decode_or_refuse"]


@dataclass(frozen=True)
class UsageSettings:
    tenant_cardinality_limit: int = 100
    """Tenants with their own label on the usage series; the others are counted under ``other``."""
    label_cardinality_limit: int = 100
    """Distinct values of each other label fed from span data (model, workflow, provider, ...); the rest: ``other``."""
    series_cardinality_limit: int = 1000
    """Label sets per metric family; further ones are added to the all-``other`` series."""
    label_value_length_limit: int = 128
    """Characters kept of a label value from span data."""
    attribution: Attribution = field(default=DEFAULT_ATTRIBUTION)
    """Attribute names workflow and tenant are read from, in order, on a span or its ancestors, where
    ``spanledger.workflow.name`` / ``spanledger.tenant.id`` are absent (docs/producers.md)."""


def decode_or_refuse(item: PipelineItem, *, extract_usage: bool) -> None:
    """Decode ``item.data`` into ``item.decoded``; data that is not OTLP traces is refused for good."""
    try:
        item.decoded = decode_traces(item.data, extract_usage=extract_usage)
    except DecodeError as error:
        raise PermanentError(f"the body is not a valid ExportTraceServiceRequest ({error})") from None


class UsageProcessor(NothingToStart):
    def __init__(self, component_id: str, settings: UsageSettings) -> None:
        self.component_id = component_id
        self.settings = settings
        self.attribution_memory = AttributionMemory()
        self.metrics = UsageMetrics(
            limits=CardinalityLimits(
                tenant=settings.tenant_cardinality_limit,
                label=settings.label_cardinality_limit,
                series=settings.series_cardinality_limit,
                value_length=settings.label_value_length_limit,
            )
        )

    def process(self, item: PipelineItem) -> None:
        decode_or_refuse(item, extract_usage=True)
        assert item.decoded is not None
        attribute(item.decoded, item.data, self.settings.attribution, self.attribution_memory)
        batch = item.decoded.batch
        item.facts, item.data_reads, item.llm_calls = batch.facts, batch.data_reads, item.decoded.llm_calls
        item.counted_once = batch
        refused = item.decoded.refused_values
        if not item.replaying:
            # Counted once the rows are stored, with the facts as the later processors leave them (priced in
            # place); a client's retry of a stored request is not stored again, so not counted again.
            # The retracted facts: this request's, and those the store finds (added to the list when stored).
            retracted = batch.retracted
            item.on_stored.append(
                partial(self.metrics.record, item.llm_calls, item.facts, item.data_reads, refused, retracted)
            )


def _attribution(section: ConfigSection) -> Attribution:
    """``attribution: {workflow: [NAME, ...], tenant: [NAME, ...]}``; a list left out keeps its defaults,
    an empty list turns that lookup off."""

    def names(key: str, default: tuple[str, ...]) -> tuple[str, ...]:
        if not section.has(key):
            section.get(key)  # read: known
            return default
        listed = section.strings(key)
        if (error := listed_names_error(listed)) is not None:
            raise section.fail(key, error)
        return listed

    attribution = Attribution(
        workflow=names("workflow", DEFAULT_ATTRIBUTION.workflow), tenant=names("tenant", DEFAULT_ATTRIBUTION.tenant)
    )
    section.done()
    return attribution


class UsageFactory:
    type = "spanledger_usage"
    signals: tuple[str, ...] = ("traces",)
    after: tuple[str, ...] = ()

    def read(self, component_id: str, section: ConfigSection, context: LoadContext) -> UsageSettings:
        return UsageSettings(
            tenant_cardinality_limit=section.integer(
                "tenant_cardinality_limit", UsageSettings.tenant_cardinality_limit
            ),
            label_cardinality_limit=section.integer("label_cardinality_limit", UsageSettings.label_cardinality_limit),
            series_cardinality_limit=section.integer(
                "series_cardinality_limit", UsageSettings.series_cardinality_limit, minimum=1
            ),
            label_value_length_limit=section.integer(
                "label_value_length_limit", UsageSettings.label_value_length_limit, minimum=1
            ),
            attribution=_attribution(section.section("attribution")),
        )

    def create(self, component_id: str, config: UsageSettings) -> UsageProcessor:
        return UsageProcessor(component_id, config)
