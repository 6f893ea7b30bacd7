"""Counted once across requests: the records that correct a usage fact counted before its descendant arrived.

A span of another producer that reports usage (a *candidate*, docs/producers.md) counts unless a descendant
reports the same meter. When the descendant arrives in a later request than its counted ancestor, the
ancestor's fact is not deleted or updated: a :class:`UsageRetraction` row is inserted, in the transaction
that stores the descendant's facts. Every answer reads the facts that no retraction names (the
``counted_usage_facts`` view, ``sql/counted_usage_facts.sql``). Both tables are insert-only, so another
engine applies them the same way, and a replayed request inserts nothing twice that changes an answer.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Annotated, NamedTuple

from ._facts import UsageFact
from ._schema import Kind, table_of

if TYPE_CHECKING:
    from ._rows import StoreBatch

__all__ = [
    "COUNTED_USAGE_FACTS",
    "USAGE_CANDIDATES",
    "USAGE_RETRACTIONS",
    "AncestryCheck",
    "CandidateSpan",
    "StoredRelative",
    "UsageRetraction",
    "retract_stored_relatives",
]

_Text = Annotated[str, Kind.STRING]

COUNTED_USAGE_FACTS = "counted_usage_facts"
"""The view of the facts that count (defined in ``sql/counted_usage_facts.sql``): what every reader of facts reads."""


class UsageRetraction(NamedTuple):
    """The fact of ``meter`` on span ``span_id`` is a roll-up of ``retracted_by_span_id``'s: not counted.

    ``retracted_by_span_id`` is the descendant that reports the same meter, or, when the retracted fact is a
    candidate's under a ``spanledger.usage.owner`` ancestor, that ancestor.
    """

    trace_id: _Text
    span_id: _Text
    meter: _Text
    retracted_by_span_id: _Text


class CandidateSpan(NamedTuple):
    """A span whose stored facts are a candidate's (counted for lack of a reporting descendant), not an owner's:
    the store's check of a later descendant may retract them, never an owner's."""

    trace_id: _Text
    span_id: _Text


class AncestryCheck(NamedTuple):
    """A reporting span whose relatives the decoder's memory may not know (not stored): the store looks up its
    stored ancestors and descendants that report the same meter."""

    trace_id: str
    span_id: str
    meter: str
    owner: bool


USAGE_RETRACTIONS = table_of("usage_retractions", UsageRetraction)
USAGE_CANDIDATES = table_of("usage_candidates", CandidateSpan)


class StoredRelative(NamedTuple):
    """A counted fact of the same meter on a stored ancestor or descendant of a reporting span (the store's check:
    each store's query finds these, this module decides what they retract, so every store retracts the same)."""

    reporter: str
    reporter_is_owner: bool
    is_ancestor: bool
    relative_is_candidate: bool
    fact: UsageFact


def _order(found: StoredRelative) -> tuple[str, str, str, str, bool]:
    return found.fact.trace_id, found.reporter, found.fact.meter, found.fact.span_id, found.is_ancestor


def retract_stored_relatives(batches: Sequence[StoreBatch], found: Iterable[StoredRelative]) -> list[UsageRetraction]:
    """Retract what the batches' reporting spans and their stored relatives (``found``) count twice: a candidate
    ancestor's facts, a candidate's own under an owner ancestor or over a descendant that reports the same meter,
    a candidate descendant's under an owner.

    The retractions are added to the batch of their reporting span (``retractions``, ``retracted``: counted when
    it is stored) and returned, for the store to insert. ``found`` is taken in a defined order, so that a fact
    with several relatives is retracted by the same span in every store.
    """
    owner_of = {(check.trace_id, check.span_id): batch for batch in batches for check in batch.ancestry}
    own_facts = {(fact.trace_id, fact.span_id, fact.meter): fact for batch in batches for fact in batch.facts}
    retracted: dict[tuple[str, str, str], tuple[StoreBatch, UsageRetraction, UsageFact]] = {}

    def retract(batch: StoreBatch, fact: UsageFact | None, by: str) -> None:
        if fact is not None:
            key = (fact.trace_id, fact.span_id, fact.meter)
            retracted.setdefault(key, (batch, UsageRetraction(*key, retracted_by_span_id=by), fact))

    ordered = sorted(set(found), key=_order)
    for reporter, reporter_is_owner, is_ancestor, relative_is_candidate, relative in ordered:
        batch = owner_of[relative.trace_id, reporter]
        own = own_facts.get((relative.trace_id, reporter, relative.meter))
        if is_ancestor and relative_is_candidate:  # a roll-up of the reporter's usage
            retract(batch, relative, reporter)
        elif not reporter_is_owner:  # an owner ancestor has the usage, or a descendant reports it: a roll-up
            retract(batch, own, relative.span_id)
        elif not is_ancestor and relative_is_candidate:  # the reporter, an owner, has the descendant's usage
            retract(batch, relative, reporter)
    rows = []
    for batch, retraction, fact in retracted.values():
        batch.retractions.append(retraction)
        batch.retracted.append(fact)
        rows.append(retraction)
    return rows
