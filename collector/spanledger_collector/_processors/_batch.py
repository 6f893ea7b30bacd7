"""The ``batch`` processor: how its pipeline's requests are grouped into the store writer's appends.

The collector acknowledges a request once it is durable (in the store's request log, or in each onward
exporter's persistent queue), so no processor holds requests back in memory. The batching happens behind
that point: the store writer appends the requests of a pipeline in groups of up to ``send_batch_size``
spans, or what arrived within ``timeout`` of the group's first request (a group holding requests of
several pipelines is appended when the first of their limits is reached). Onward exporters group what
they send in their own sending queue (``max_request_items``, ``max_request_size``).
"""

from __future__ import annotations

from .._component import NothingToStart
from .._config import BatchSettings, LoadContext
from .._config_reader import ConfigSection
from ._item import PipelineItem

__all__ = ["BatchFactory", "BatchProcessor"]


class BatchProcessor(NothingToStart):
    def __init__(self, component_id: str, settings: BatchSettings) -> None:
        self.component_id = component_id
        self.settings = settings

    def process(self, item: PipelineItem) -> None:
        item.store_batch = self.settings


class BatchFactory:
    type = "batch"
    signals: tuple[str, ...] = ("traces", "metrics", "logs")
    after: tuple[str, ...] = ()

    def read(self, component_id: str, section: ConfigSection, context: LoadContext) -> BatchSettings:
        defaults = BatchSettings()
        return BatchSettings(
            send_batch_size=section.integer("send_batch_size", defaults.send_batch_size, minimum=1),
            timeout_s=section.duration("timeout", defaults.timeout_s),
        )

    def create(self, component_id: str, config: BatchSettings) -> BatchProcessor:
        return BatchProcessor(component_id, config)
