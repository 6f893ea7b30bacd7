"""Rows the usage extraction hands to a store: spans as columns, data reads and usage facts."""

from __future__ import annotations

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
    spans: SpanColumns = field(default_factory=SpanColumns)
    facts: list[UsageFact] = field(default_factory=list)
    data_reads: list[DataRead] = field(default_factory=list)

    def extend(self, other: StoreBatch) -> None:
        self.spans.extend(other.spans)
        self.facts.extend(other.facts)
        self.data_reads.extend(other.data_reads)
