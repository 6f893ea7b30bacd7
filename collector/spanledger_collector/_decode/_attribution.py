"""Workflow and tenant from standard attributes on a span or its ancestors (issue 15).

A usage fact or data read is attributed by ``spanledger.workflow.name`` / ``spanledger.tenant.id`` where
the decoder found them (on the span, else its resource; for the workflow also ``gen_ai.workflow.name`` on
the span or resource, as spanledger's own spans are read). What is still unattributed after decoding is
looked up here in an ordered list of attribute names (``spanledger_usage``'s ``attribution`` setting):
for each name in order, on the span, then its parent, and so on to the root; the first value found wins.
The ancestors are this request's spans and, for earlier requests, :class:`AttributionMemory`.

This is a pass over the decoded facts after either decoder (the compiled one does not know the lists), so
a request whose facts are all attributed costs one loop over them. Baggage reaches OTLP only as span
attributes that a baggage span processor copied (OTel's ``BaggageSpanProcessor`` keeps the baggage key as
the attribute name; others prefix it, e.g. ``baggage.tenant_id``): list those attribute names.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable, Iterable
from operator import itemgetter
from typing import Any, Final, NamedTuple, TypeVar

from google.protobuf.message import DecodeError
from spanledger import semconv

from .._store import DataRead, SpanColumns, UsageFact
from ._ancestry import RECENT_SPANS, RecentLinks, SpanKey, ancestors
from ._otlp import AttributeValues, parse_owner_span, parse_skinny_traces, parse_span_header
from ._usage import DecodedTraces
from ._usage import _text as attribute_text
from ._usage_sources import USAGE_SOURCES

__all__ = ["DEFAULT_ATTRIBUTION", "Attribution", "AttributionMemory", "attribute", "listed_names_error"]

_OWN_DIALECT = "spanledger"
_OWN_PREFIX = semconv.SPANLEDGER_WORKFLOW_NAME.split(".", 1)[0] + "."
_VALUES = AttributeValues()


def _key_bytes(name: str) -> bytes:
    encoded = name.encode()
    length, varint = len(encoded), bytearray()
    while length >= 0x80:
        varint.append(length & 0x7F | 0x80)
        length >>= 7
    varint.append(length)
    return b"\x0a" + bytes(varint) + encoded


_Row = TypeVar("_Row", UsageFact, DataRead)
_Lookup = Callable[[str, str, tuple[str, ...]], "str | None"]
# Each row kind's (workflow, tenant) getters: indexing the tuple is cheaper than the named attribute.
_GETTERS: Final = tuple(
    (itemgetter(kind._fields.index("workflow")), itemgetter(kind._fields.index("tenant")))
    for kind in (UsageFact, DataRead)
)


class Attribution(NamedTuple):
    """The attribute names workflow and tenant are looked up in, in order (after spanledger's own)."""

    workflow: tuple[str, ...]
    tenant: tuple[str, ...]

    def names(self) -> frozenset[str]:
        return frozenset(self.workflow + self.tenant)

    def marks(self) -> tuple[bytes, ...]:
        """Each name as an OTLP ``KeyValue`` key is encoded (tag, length, bytes): ``tenant.id`` is not found
        inside ``spanledger.tenant.id``."""
        return _marks(self.names())

    def pattern(self) -> re.Pattern[bytes]:
        """Any of :meth:`marks` (one search per span)."""
        return _pattern(self.marks())


@functools.cache
def _marks(names: frozenset[str]) -> tuple[bytes, ...]:
    return tuple(_key_bytes(name) for name in sorted(names))


@functools.cache
def _pattern(marks: tuple[bytes, ...]) -> re.Pattern[bytes]:
    return re.compile(b"|".join(re.escape(mark) for mark in marks))


def _defaults(field: str) -> tuple[str, ...]:
    return tuple(s.name for s in USAGE_SOURCES if s.field == field and s.dialect != _OWN_DIALECT)


DEFAULT_ATTRIBUTION: Final = Attribution(workflow=_defaults("workflow"), tenant=_defaults("tenant"))
"""The rows of the ``workflow`` and ``tenant`` fields of ``semconv/usage-sources.yaml``, spanledger's own aside."""


def listed_names_error(listed: tuple[str, ...]) -> str | None:
    """What is wrong with an attribution list (a name with surrounding or only spaces, spanledger's own, twice),
    or None."""
    for index, name in enumerate(listed):
        if name != name.strip() or not name.strip():
            return f"attribute name {name!r} (item {index}) has surrounding or only spaces"
        if name.startswith(_OWN_PREFIX):
            return f"{name!r} is spanledger's own name, always read first; list other names"
        if name in listed[:index]:
            return f"{name!r} is listed twice"
    return None


class AttributionMemory:
    """The parent links of recent requests in which some span carried a listed attribute, and those values
    (bounded by a number of spans: :class:`RecentLinks`), so that a span in a later request finds an ancestor
    that came earlier (another service's exporter flushing first)."""

    def __init__(self, max_spans: int = RECENT_SPANS) -> None:
        self.links: RecentLinks[dict[str, str]] = RecentLinks(max_spans)
        """The links, and per trace the listed values of its spans that carried any."""

    def __bool__(self) -> bool:
        return bool(self.links.kept)

    def knows(self, trace_id: str) -> bool:
        return trace_id in self.links.kept

    def values(self, trace_id: str) -> dict[str, dict[str, str]]:
        """The trace's remembered spans' listed values, per span id."""
        return self.links.kept.get(trace_id, {})

    def remember(self, columns: SpanColumns, values: dict[SpanKey, dict[str, str]]) -> dict[SpanKey, str | None]:
        """The request's links and listed values; the links (earlier ones too)."""
        self.links.add(columns)
        self.links.keep(values)
        return self.links.parents


def _listed_values(data: bytes, names: frozenset[str], pattern: re.Pattern[bytes]) -> dict[SpanKey, dict[str, str]]:
    """The listed attributes of the request's spans that carry any (a span without their bytes is not parsed)."""
    found: dict[SpanKey, dict[str, str]] = {}
    search = pattern.search
    for resource_spans in parse_skinny_traces(data).resource_spans:
        for scope_spans in resource_spans.scope_spans:
            for raw in scope_spans.spans:
                if search(raw) is None:
                    continue
                # A span or value the decoder never read may not parse (a string that is not UTF-8): it gives no
                # listed value, and the request's other spans and facts keep theirs.
                try:
                    attributes = parse_owner_span(raw).attributes
                except DecodeError:
                    continue
                values = {}
                for name in names:
                    encoded = attributes.get(name)
                    if encoded is None:
                        continue
                    try:
                        text = attribute_text(_VALUES[encoded])
                    except DecodeError:
                        continue
                    if text is not None:
                        values[name] = text
                if values:
                    header = parse_span_header(raw)
                    found[header.trace_id.hex(), header.span_id.hex()] = values
    return found


def attribute(decoded: DecodedTraces, data: bytes, attribution: Attribution, memory: AttributionMemory) -> None:
    """Fill the workflow and tenant the decoder left empty on ``decoded``'s facts and data reads, from the
    ``attribution`` lists on each span or its ancestors; remember the listed values of this request."""
    batch = decoded.batch
    names = attribution.names()
    if not names:
        return
    columns = batch.spans
    rows: tuple[list[Any], list[Any]] = (batch.facts, batch.data_reads)
    attributed = (batch.facts or batch.data_reads) and all(
        None not in map(get, part) for part, getters in zip(rows, _GETTERS, strict=True) for get in getters
    )
    if attributed and not memory:
        # Rows, all attributed by spanledger's names, and no trace remembered: spanledger's own load ends here.
        # Its spans are not remembered as ancestors for later requests (its SDK passes its names on to
        # descendants, in process and through baggage).
        return
    known = {trace for trace in set(columns.trace_id) if memory.knows(trace)} if memory else set()
    if attributed and not known:
        return
    carried = attribution.pattern().search(data) is not None  # one pass for all marks (a pass each: 1.6x the time)
    if not carried and not known:
        return
    needy = {row.trace_id for row in _rows(*rows) if row.workflow is None or row.tenant is None}
    parents = memory.remember(columns, _listed_values(data, names, attribution.pattern()) if carried else {})
    if needy:
        chains: dict[SpanKey, list[dict[str, str]]] = {}

        def lookup(trace: str, span: str, listed: tuple[str, ...]) -> str | None:
            chain = chains.get((trace, span))
            if chain is None:
                values = memory.values(trace)  # this request's and the earlier ones
                spans = [span, *(ancestor for _, ancestor in ancestors(parents, trace, span))]
                chain = chains[trace, span] = [values[span] for span in spans if span in values]
            for name in listed:
                for carried_values in chain:
                    value = carried_values.get(name)
                    if value is not None:
                        return value
            return None

        batch.facts = [_attributed(fact, lookup, attribution) for fact in batch.facts]
        batch.data_reads = [_attributed(read, lookup, attribution) for read in batch.data_reads]


def _rows(facts: list[UsageFact], reads: list[DataRead]) -> Iterable[UsageFact | DataRead]:
    yield from facts
    yield from reads


def _attributed(row: _Row, lookup: _Lookup, attribution: Attribution) -> _Row:
    workflow, tenant = row.workflow, row.tenant
    if workflow is not None and tenant is not None:
        return row
    if workflow is None:
        workflow = lookup(row.trace_id, row.span_id, attribution.workflow)
    if tenant is None:
        tenant = lookup(row.trace_id, row.span_id, attribution.tenant)
    if workflow is row.workflow and tenant is row.tenant:
        return row
    return row._replace(workflow=workflow, tenant=tenant)
