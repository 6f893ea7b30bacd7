"""Rows the usage extraction hands to a store: spans as columns, data reads and usage facts.

:class:`SpanColumns` and :class:`DataRead` are the field tables of the ``spans`` and ``data_reads`` tables
(docs/schema.md), as :class:`~._facts.UsageFact` is of ``usage_facts``.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Annotated, NamedTuple

from ._facts import UsageFact
from ._retractions import AncestryCheck, CandidateSpan, UsageRetraction
from ._schema import Column, Kind, table_of

__all__ = ["DATA_READS", "SPANS", "DataRead", "SpanColumns", "StoreBatch"]

_Text = Annotated[str, Kind.STRING]
_OptionalText = Annotated[str | None, Kind.STRING]
_OptionalName = Annotated[str | None, Kind.NAME]


@dataclass
class SpanColumns:
    """The lineage tree's rows, column by column (one Python object per value, none per span)."""

    trace_id: Annotated[list[str], Kind.STRING] = field(default_factory=list)
    span_id: Annotated[list[str], Kind.STRING] = field(default_factory=list)
    parent_span_id: Annotated[list[str | None], Kind.STRING] = field(default_factory=list)
    name: Annotated[list[str], Kind.STRING] = field(default_factory=list)
    kind: Annotated[list[int], Kind.INT8] = field(default_factory=list)
    service: Annotated[list[str | None], Kind.STRING] = field(default_factory=list)
    start_time_unix_nano: Annotated[list[int], Column(Kind.TIMESTAMP_NANOS, "start_time")] = field(default_factory=list)
    end_time_unix_nano: Annotated[list[int], Column(Kind.TIMESTAMP_NANOS, "end_time")] = field(default_factory=list)
    status_code: Annotated[list[int], Kind.INT8] = field(default_factory=list)
    unmeasured: Annotated[list[str | None], Kind.STRING] = field(default_factory=list)
    """Why a usage the span was meant to report could not be measured (``accelerator: nvml_unavailable``)."""

    def __len__(self) -> int:
        return len(self.span_id)

    def extend(self, other: SpanColumns) -> None:
        for name in self.__dataclass_fields__:
            getattr(self, name).extend(getattr(other, name))


class DataRead(NamedTuple):
    """One ``spanledger.data.read`` event (``seq`` is the event's index on its span)."""

    trace_id: _Text
    span_id: _Text
    seq: Annotated[int, Kind.INT32]
    read_time: Annotated[datetime, Kind.TIMESTAMP]
    source: _OptionalName
    source_kind: _OptionalName
    last_modified: Annotated[datetime | None, Kind.TIMESTAMP]
    age_seconds: Annotated[float | None, Kind.FLOAT64]
    bytes: Annotated[int | None, Kind.INT64]
    staleness_method: _OptionalName
    workflow: _OptionalName
    tenant: _OptionalName
    service: _OptionalName


SPANS = table_of("spans", SpanColumns)
DATA_READS = table_of("data_reads", DataRead)


@dataclass
class StoreBatch:
    """What one request adds to the store; ``digest`` identifies the request, so a retry is stored once."""

    spans: SpanColumns = field(default_factory=SpanColumns)
    facts: list[UsageFact] = field(default_factory=list)
    data_reads: list[DataRead] = field(default_factory=list)
    digest: bytes | None = None
    requests: list[bytes] = field(default_factory=list)
    """The OTLP trace requests as the processors left them, for a store that keeps whole spans (ClickHouse's
    ``otel_traces``); the DuckDB store keeps only :attr:`spans`."""
    # Counted once across requests (``_retractions``; empty for requests of spanledger's spans alone).
    retractions: list[UsageRetraction] = field(default_factory=list)
    candidates: list[CandidateSpan] = field(default_factory=list)
    ancestry: list[AncestryCheck] = field(default_factory=list)
    """Reporting spans whose ancestors the store looks up for facts to retract (not stored)."""
    retracted: list[UsageFact] = field(default_factory=list)
    """The facts that ``retractions`` retract, once stored (for the retracted counter; not stored again)."""

    @classmethod
    def merge(cls, batches: Iterable[StoreBatch]) -> StoreBatch:
        """One batch holding the rows of ``batches`` (no digest: it stands for several requests)."""
        merged = cls()
        for batch in batches:
            merged.spans.extend(batch.spans)
            merged.facts.extend(batch.facts)
            merged.data_reads.extend(batch.data_reads)
            merged.requests.extend(batch.requests)
            merged.retractions.extend(batch.retractions)
            merged.candidates.extend(batch.candidates)
        return merged
