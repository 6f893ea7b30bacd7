"""The request log: acknowledged requests, on disk until the store has committed what they hold.

A client is acknowledged once its request is appended here and synced to disk, not when DuckDB commits.
That lets the store commit a large transaction every couple of seconds, which costs DuckDB about a third
less per row than a commit per group of requests, without making clients wait for it (see docs/design.md,
"Request log"). The store records the sequence number of the last request it committed in the same
transaction as the rows; on start the requests after it are replayed, and segments whose requests are all
committed are deleted.

Layout: a directory of segment files named by the sequence number of their first record. A record is a
header (sequence number, pipeline id length, body length, CRC-32 of id and body), the pipeline id (UTF-8)
and the request body as it arrived. A crash in the middle of an append leaves a torn record at the end of
the last segment; it was never acknowledged, and opening the log cuts it off.
"""

from __future__ import annotations

import logging
import os
import struct
import threading
import zlib
from collections.abc import Iterator
from io import FileIO
from pathlib import Path
from typing import NamedTuple

__all__ = ["LoggedRequest", "RequestLog"]

logger = logging.getLogger("spanledger.collector")

_HEADER = struct.Struct("<QHII")
_SUFFIX = ".log"
SEGMENT_BYTES = 64 << 20


class LoggedRequest(NamedTuple):
    seq: int
    pipeline_id: str
    body: bytes


def _segment_name(first_seq: int) -> str:
    return f"{first_seq:020d}{_SUFFIX}"


def _read_records(path: Path, first_seq: int) -> Iterator[tuple[int, LoggedRequest]]:
    """``(end offset, record)`` for each intact record of a segment, stopping at the first damaged one.

    Records are numbered consecutively from the segment's first sequence number; checking that also stops at
    a zero-filled tail (which some file systems leave after a crash), whose CRC-32 of nothing is 0 as well.
    """
    with path.open("rb") as segment:
        offset = 0
        expected = first_seq
        while True:
            header = segment.read(_HEADER.size)
            if len(header) < _HEADER.size:
                return
            seq, id_length, body_length, crc = _HEADER.unpack(header)
            if seq != expected or not id_length or not body_length:
                return
            payload = segment.read(id_length + body_length)
            if len(payload) < id_length + body_length or zlib.crc32(payload) != crc:
                return
            expected += 1
            offset += _HEADER.size + len(payload)
            try:
                pipeline_id = payload[:id_length].decode()
            except UnicodeDecodeError:
                return
            yield offset, LoggedRequest(seq, pipeline_id, payload[id_length:])


class RequestLog:
    """Append-only, segmented, synced before every acknowledgement (concurrent appends share one sync)."""

    def __init__(self, directory: str | Path, *, committed_seq: int = 0, segment_bytes: int = SEGMENT_BYTES) -> None:
        """Open (creating) the log in ``directory``; sequence numbers continue after ``committed_seq``, the
        store's last committed position, also when every segment has been released."""
        self.directory = Path(directory)
        self.directory.mkdir(parents=True, exist_ok=True)
        self._segment_bytes = segment_bytes
        # Lock order: _sync_lock, then _lock. Files are closed only under both, so a sync never meets a closed fd.
        self._sync_lock = threading.Lock()
        self._lock = threading.Lock()
        self._segments: list[tuple[int, Path]] = sorted(
            (int(path.name.removesuffix(_SUFFIX)), path)
            for path in self.directory.glob(f"*{_SUFFIX}")
            if path.name.removesuffix(_SUFFIX).isdigit()
        )
        self._last_seq = max(self._cut_torn_tail(), committed_seq)
        self._synced_seq = self._last_seq
        # Requests up to here were written before a failed sync: Linux reports a writeback error once and may
        # drop the pages, so a later sync's success says nothing about them. Only a store commit clears them.
        self._failed_upto = 0
        self._files: dict[Path, FileIO] = {}
        self._active: tuple[Path, FileIO] | None = None
        self._active_bytes = 0

    def _cut_torn_tail(self) -> int:
        if not self._segments:
            return 0
        first_seq, path = self._segments[-1]
        last_seq, end = first_seq - 1, 0
        for offset, record in _read_records(path, first_seq):
            last_seq, end = record.seq, offset
        size = path.stat().st_size
        if size > end:
            logger.warning(
                "request log %s: cut %d bytes after request %d (a write the crash interrupted; never acknowledged)",
                path,
                size - end,
                last_seq,
            )
            with path.open("r+b") as segment:
                segment.truncate(end)
        return last_seq

    @property
    def last_seq(self) -> int:
        return self._last_seq

    def append(self, pipeline_id: str, body: bytes) -> int:
        """Write one request; returns its sequence number. Call :meth:`sync` before acknowledging it."""
        encoded_id = pipeline_id.encode()
        crc = zlib.crc32(body, zlib.crc32(encoded_id))
        with self._lock:
            seq = self._last_seq + 1
            if self._active is None or self._active_bytes >= self._segment_bytes:
                self._rotate(seq)
            assert self._active is not None
            parts = (_HEADER.pack(seq, len(encoded_id), len(body), crc), encoded_id, body)
            size = sum(len(part) for part in parts)
            written = os.writev(self._active[1].fileno(), parts)
            if written != size:  # a regular file writes all of it unless the disk is full
                self._active[1].truncate(self._active_bytes)
                raise OSError(f"request log {self._active[0]}: wrote {written} of {size} bytes (is the disk full?)")
            self._active_bytes += size
            self._last_seq = seq
        return seq

    def _rotate(self, first_seq: int) -> None:
        if self._active is not None:
            # Earlier segments are synced here: sync() only ever syncs the active one.
            try:
                os.fdatasync(self._active[1].fileno())
            except OSError:
                self._sync_failed()
                raise
            self._synced_seq = self._last_seq
        path = self.directory / _segment_name(first_seq)
        if not self._segments or self._segments[-1][1] != path:
            self._segments.append((first_seq, path))
        file = path.open("ab", buffering=0)
        self._files[path] = file
        self._active = (path, file)
        self._active_bytes = file.tell()
        self._sync_directory()

    def _sync_directory(self) -> None:
        """Make a new segment's name durable: syncing the file's data does not sync its directory entry."""
        directory = os.open(self.directory, os.O_RDONLY)
        try:
            os.fsync(directory)
        finally:
            os.close(directory)

    def sync(self, seq: int) -> None:
        """Return once request ``seq`` is on disk; one ``fdatasync`` covers every request written before it."""
        with self._sync_lock:
            if self._synced_seq >= seq:
                return
            with self._lock:
                if seq <= self._failed_upto:
                    raise OSError(f"request log {self.directory}: request {seq} was written before a failed sync")
                active, written = self._active, self._last_seq
                if active is None:
                    raise OSError(f"request log {self.directory}: the segment holding request {seq} is closed")
            try:
                os.fdatasync(active[1].fileno())
            except OSError:
                with self._lock:
                    self._sync_failed()
                raise
            self._synced_seq = max(self._synced_seq, written)

    def _sync_failed(self) -> None:
        """With ``_lock`` held: fail every request written so far, and write later ones to a new segment, so a
        record the kernel lost here (replay stops at a damaged record) cannot hide them."""
        self._failed_upto = self._last_seq
        self._active = None

    def replay(self, after: int) -> Iterator[LoggedRequest]:
        """The logged requests with a sequence number above ``after``, in order (for a start after a crash)."""
        for first_seq, path in list(self._segments):
            for _, record in _read_records(path, first_seq):
                if record.seq > after:
                    yield record

    def release(self, upto: int) -> None:
        """Delete the segments whose requests are all committed to the store (sequence numbers up to ``upto``)."""
        with self._sync_lock, self._lock:
            while self._segments:
                following = self._segments[1][0] if len(self._segments) > 1 else self._last_seq + 1
                if following - 1 > upto:
                    break
                _, path = self._segments.pop(0)
                file = self._files.pop(path, None)
                if file is not None:
                    file.close()
                if self._active is not None and self._active[0] == path:
                    self._active = None
                path.unlink(missing_ok=True)
            self._synced_seq = max(self._synced_seq, min(upto, self._last_seq))

    def close(self) -> None:
        """Close the segment files; safe to call twice."""
        with self._sync_lock, self._lock:
            for file in self._files.values():
                file.close()
            self._files.clear()
            self._active = None
