"""The usage store: usage facts, trace roll-ups and the lineage of every AI output."""

from ._facts import UsageFact

__all__ = ["UsageFact"]
