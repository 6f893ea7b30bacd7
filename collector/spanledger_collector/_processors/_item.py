"""What flows through a pipeline's processors: one request, and what the processors derived from it."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol

from .._component import Component
from .._config import BatchSettings
from .._decode import DecodedTraces, LlmCall
from .._store import DataRead, StoreBatch, UsageFact

__all__ = ["PipelineItem", "Processor"]


@dataclass(slots=True)
class PipelineItem:
    """One request on its way through a pipeline's processors, in their configured order."""

    signal: str
    body: bytes
    """The request as received: what the request log keeps and what identifies a retry (its digest)."""
    data: bytes
    """The request as the processors so far left it (a filter rewrites it)."""
    replaying: bool = False
    """Restored from the request log after a restart: no admission control, no metrics (counted once)."""
    decoded: DecodedTraces | None = None
    """The spans (and usage) a processor decoded from ``data``; ``None`` once ``data`` changes."""
    facts: list[UsageFact] = field(default_factory=list)
    data_reads: list[DataRead] = field(default_factory=list)
    llm_calls: list[LlmCall] = field(default_factory=list)
    counted_once: StoreBatch | None = None
    """The batch the usage processor decoded: its retractions and candidates (docs/producers.md) are stored with
    the request's rows even when a later processor changes ``data``."""
    priced: bool = False
    """The facts carry cost estimates (``spanledger.cost.*`` is attached to spans sent onward)."""
    dropped_spans: int = 0
    """Spans a processor dropped on purpose (accepted, not refused, as otelcol's filter processor does)."""
    on_stored: list[Callable[[], object]] = field(default_factory=list)
    """Run once the request's rows are in the store (or at once when the pipeline stores nothing)."""
    store_batch: BatchSettings | None = None
    """Set by the pipeline's ``batch`` processor: how the store writer groups this request with others."""


class Processor(Component, Protocol):
    """A processor instance: ``process`` sees every request of its pipelines, in the pipeline's order.

    It changes the item in place; raising :class:`~.._component.RetryableError` or
    :class:`~.._component.PermanentError` refuses the request (the receiver answers the client).
    """

    def process(self, item: PipelineItem) -> None: ...
