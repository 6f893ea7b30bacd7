"""Processors between decoding and the exporters: memory limiter, (later) usage, cost and batch."""

from ._memory_limiter import MemoryLimiter, rss_bytes

__all__ = ["MemoryLimiter", "rss_bytes"]
