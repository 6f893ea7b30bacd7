"""Which request digests the store may already hold: a Bloom filter in front of ``received_requests``.

Nearly every request a collector receives is new, and proving it with ``INSERT OR IGNORE ... RETURNING``
costs DuckDB ~2-3 ms a call (a hash aggregate over the inserted keys); a plain ``INSERT`` costs ~0.4 ms. The
filter answers "certainly new" for almost all digests, so only those it cannot rule out take the exact path.

It never forgets a digest while the store may still hold it: digests are added to the newest of
:data:`GENERATIONS` filters, and the oldest is dropped every ``period`` (the store's retention), so each is
kept for at least ``(GENERATIONS - 1) * period``, longer than the store keeps it (retention plus the time until
the next prune).
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Iterable

__all__ = ["RecentDigests"]

GENERATIONS = 3
_BITS = 1 << 22  # 512 KiB a generation: ~0.7 % false positives at 360k digests (100 requests/s for an hour)
_HASHES = 4


def _positions(digest: bytes) -> tuple[int, ...]:
    # A digest is a cryptographic hash already; its bytes are the Bloom filter's independent hashes.
    value = int.from_bytes(digest[:16].ljust(16, b"\0"), "little")
    return tuple((value >> (32 * index)) & (_BITS - 1) for index in range(_HASHES))


class RecentDigests:
    """A Bloom filter of recently stored request digests, in generations that expire."""

    def __init__(self, period_s: float) -> None:
        self.period_s = period_s
        self._generations: deque[bytearray] = deque([bytearray(_BITS // 8)])
        self._rotate_at = time.monotonic() + period_s

    def add(self, digests: Iterable[bytes]) -> None:
        now = time.monotonic()
        if now >= self._rotate_at:
            self._generations.append(bytearray(_BITS // 8))
            if len(self._generations) > GENERATIONS:
                self._generations.popleft()
            self._rotate_at = now + self.period_s
        bits = self._generations[-1]
        for digest in digests:
            for position in _positions(digest):
                bits[position >> 3] |= 1 << (position & 7)

    def may_contain(self, digest: bytes) -> bool:
        positions = _positions(digest)
        return any(
            all(bits[position >> 3] & (1 << (position & 7)) for position in positions) for bits in self._generations
        )
