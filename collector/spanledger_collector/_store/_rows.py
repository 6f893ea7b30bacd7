"""Rows the usage extraction hands to a store: spans as columns, data reads and usage facts."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import NamedTuple

from ._facts import UsageFact

__all__ = ["DataRead", "SpanColumns", "StoreBatch"]


@dataclass
class SpanColumns:
    """The lineage tree's rows, column by column (one Python object per value, none per span)."""

    trace_id: list[str] = field(default_factory=list)
    span_id: list[str] = field(default_factory=list)
    parent_span_id: list[str | None] = field(default_factory=list)
    name: list[str] = field(default_factory=list)
    kind: list[int] = field(default_factory=list)
    service: list[str | None] = field(default_factory=list)
    start_time_unix_nano: list[int] = field(default_factory=list)
    end_time_unix_nano: list[int] = field(default_factory=list)
    status_code: list[int] = field(default_factory=list)
    unmeasured: list[str | None] = field(default_factory=list)
    """Why a usage the span was meant to report could not be measured (``accelerator: nvml_unavailable``)."""

    def __len__(self) -> int:
        return len(self.span_id)

    def extend(self, other: SpanColumns) -> None:
        for name in self.__dataclass_fields__:
            getattr(self, name).extend(getattr(other, name))


class DataRead(NamedTuple):
    """One ``spanledger.data.read`` event (``seq`` is the event's index on its span)."""

    trace_id: str
    span_id: str
    seq: int
    read_time: datetime
    source: str | None
    source_kind: str | None
    last_modified: datetime | None
    age_seconds: float | None
    bytes: int | None
    staleness_method: str | None
    workflow: str | None
    tenant: str | None
    service: str | None


@dataclass
class StoreBatch:
    """What one request adds to the store; ``digest`` identifies the request, so a retry is stored once."""

    spans: SpanColumns = field(default_factory=SpanColumns)
    facts: list[UsageFact] = field(default_factory=list)
    data_reads: list[DataRead] = field(default_factory=list)
    digest: bytes | None = None

    @classmethod
    def merge(cls, batches: Iterable[StoreBatch]) -> StoreBatch:
        """One batch holding the rows of ``batches`` (no digest: it stands for several requests)."""
        merged = cls()
        for batch in batches:
            merged.spans.extend(batch.spans)
            merged.facts.extend(batch.facts)
            merged.data_reads.extend(batch.data_reads)
        return merged
