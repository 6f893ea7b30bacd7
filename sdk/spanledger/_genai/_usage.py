"""Token counts of one GenAI call, in the OpenTelemetry meaning whatever the provider's convention."""

from __future__ import annotations

from typing import Any, NamedTuple

__all__ = ["TokenUsage", "to_int"]


def to_int(value: Any) -> int | None:
    """``value`` as a token count, or None when it is not one (absent, a bool, not a number)."""
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, int):
        return value
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


class TokenUsage(NamedTuple):
    """Token counts as the GenAI conventions define them; None where the provider did not report one.

    ``input`` includes the cache reads and writes, ``output`` includes the reasoning tokens (both are
    also given on their own). Providers that count input *without* the cached tokens (Anthropic, Bedrock)
    go through :meth:`from_uncached`.
    """

    input: int | None = None
    output: int | None = None
    cache_read: int | None = None
    cache_write: int | None = None
    reasoning: int | None = None

    @classmethod
    def from_uncached(
        cls, uncached_input: Any, output: Any, cache_read: Any = None, cache_write: Any = None, reasoning: Any = None
    ) -> TokenUsage:
        """Counts from a provider whose input figure leaves out cache reads and writes (values are coerced)."""
        # Once per call: an int or None (what a parsed response holds) is taken as it is, without a call to
        # ``to_int`` per count, and the tuple is made without the NamedTuple's Python-level ``__new__``.
        uncached = uncached_input if uncached_input is None or type(uncached_input) is int else to_int(uncached_input)
        read = cache_read if cache_read is None or type(cache_read) is int else to_int(cache_read)
        write = cache_write if cache_write is None or type(cache_write) is int else to_int(cache_write)
        output = output if output is None or type(output) is int else to_int(output)
        reasoning = reasoning if reasoning is None or type(reasoning) is int else to_int(reasoning)
        total = None if uncached is None else uncached + (read or 0) + (write or 0)
        return tuple.__new__(cls, (total, output, read, write, reasoning))

    @property
    def uncached_input(self) -> int | None:
        """Input tokens neither read from nor written to the cache."""
        if self.input is None:
            return None
        return self.input - (self.cache_read or 0) - (self.cache_write or 0)

    def merged(self, other: TokenUsage) -> TokenUsage:
        """These counts with what is still unknown filled from ``other`` (this one wins where both report)."""
        return _combine(self, other)

    def overlaid(self, later: TokenUsage) -> TokenUsage:
        """A later report of the same call over this one (the later one wins where both report).

        For streams that report usage piecemeal (Anthropic's ``message_start`` then ``message_delta``).
        """
        return _combine(later, self)


def _combine(first: TokenUsage, second: TokenUsage) -> TokenUsage:
    """Part by part, ``first``'s count where it has one, else ``second``'s.

    The parts are the uncached input, the cache reads, the cache writes, the output and the reasoning
    tokens; the input total is recombined from the first three, whichever report carried them (a report
    without cache counts says nothing about them, so its input is taken as uncached).
    """
    uncached = first.uncached_input
    if uncached is None:
        uncached = second.uncached_input
    return TokenUsage.from_uncached(
        uncached,
        first.output if first.output is not None else second.output,
        first.cache_read if first.cache_read is not None else second.cache_read,
        first.cache_write if first.cache_write is not None else second.cache_write,
        first.reasoning if first.reasoning is not None else second.reasoning,
    )
