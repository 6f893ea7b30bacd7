"""The request log: acknowledged requests, on disk until the store has committed what they hold.

A client is acknowledged once its request is appended here and synced to disk, not when DuckDB commits. That
lets the store commit a large transaction every couple of seconds, which costs DuckDB about a third less per
row than a commit per group of requests, without making clients wait for it (see docs/store.md). The store
records the sequence number of the last request it committed in the same transaction as the rows; on start the
requests after it are replayed, and segments whose requests are all committed are deleted.

Layout: a directory of segment files named by the sequence number of their first record. A segment starts with
a file marker; each record is a 4-byte sync marker, a header (sequence number, pipeline id length, body
length, the body's digest, CRC-32 of the header and pipeline id), the pipeline id (UTF-8) and the request body
as it arrived. The digest (SHA-256, 16 bytes) is the one the store keeps to recognise a retry, computed once
per request and serving as the body's checksum too. A damaged record costs only itself: its header's own
checksum tells whether its length can be trusted (then replay skips exactly the record), and otherwise replay
scans for the next marker whose header and payload both check out. The damaged bytes are copied to
``quarantine/`` with their segment and offset, logged and counted. A crash in the middle of an append leaves a
torn record at the end of the last segment; it was never acknowledged, and opening the log cuts it off.
Segments written before the marker existed (no file marker) are still read; a damaged record ends the replay
of such a segment, as it always did.
"""

from __future__ import annotations

import hashlib
import logging
import mmap
import os
import struct
import threading
import time
import zlib
from collections.abc import Iterator
from io import FileIO
from pathlib import Path
from typing import NamedTuple

__all__ = ["DamagedRegion", "LoggedRequest", "RequestLog", "digest"]

logger = logging.getLogger("spanledger.collector")

FILE_MARKER = b"SPANLEDGER-REQUEST-LOG-2\n"
RECORD_MARKER = b"\xd1\x5e\x9a\x7b"
_HEADER = struct.Struct("<4sQHI16s")  # marker, seq, id length, body length, the body's digest
_HEADER_CRC = struct.Struct("<I")  # CRC-32 of the header's bytes after the marker and of the pipeline id
_RECORD_HEADER_BYTES = _HEADER.size + _HEADER_CRC.size
_V1_HEADER = struct.Struct("<QHII")  # segments written before the markers: seq, id length, body length, CRC-32
_SUFFIX = ".log"
QUARANTINE = "quarantine"
SEGMENT_BYTES = 64 << 20
GROUP_SYNC_WAIT_S = 0.02
"""The longest a sync waits for the next request to share its ``fdatasync`` (when requests arrive that often)."""
_GROUP_SYNC_SLACK_S = 0.002


class LoggedRequest(NamedTuple):
    seq: int
    pipeline_id: str
    body: bytes


class DamagedRegion(NamedTuple):
    """Bytes of a segment that hold no intact record. The requests they can hold are numbered after ``after``
    (the last intact one before them) up to ``upto`` (``None`` at the end of a segment: unknown)."""

    path: Path
    offset: int
    length: int
    after: int
    upto: int | None
    seen: int
    """The highest sequence number a header in it or before it showed (numbering continues after it)."""
    torn: bool
    """Whether it looks like an append a crash cut short (a partial last record, or zeros): never acknowledged."""


class _Record(NamedTuple):
    end: int
    request: LoggedRequest


def _segment_name(first_seq: int) -> str:
    return f"{first_seq:020d}{_SUFFIX}"


def digest(data: bytes) -> bytes:
    """A request's identity in the store (a retry is stored once) and its body's checksum in the log."""
    return hashlib.sha256(data).digest()[:16]  # sha256: CPUs hash it in hardware (~1.6 GB/s)


def record_bytes(seq: int, encoded_id: bytes, body: bytes, body_digest: bytes) -> tuple[bytes, bytes, bytes]:
    """One record as written: header (with its sync marker and checksum), pipeline id, body."""
    header = _HEADER.pack(RECORD_MARKER, seq, len(encoded_id), len(body), body_digest)
    checksum = zlib.crc32(encoded_id, zlib.crc32(header[len(RECORD_MARKER) :]))
    return header + _HEADER_CRC.pack(checksum), encoded_id, body


def _is_v1(start: bytes, first_seq: int) -> bool:
    """Whether a segment was written before the markers: it then starts with its first record's sequence number
    (so one damaged byte of a file marker does not make a segment look old)."""
    return len(start) >= 8 and int.from_bytes(start[:8], "little") == first_seq


def _scan(path: Path, first_seq: int) -> Iterator[_Record | DamagedRegion]:
    """The intact records of a segment and the damaged regions between them, in file order."""
    with path.open("rb") as segment:
        size = os.fstat(segment.fileno()).st_size
        if not size:
            return
        with mmap.mmap(segment.fileno(), 0, access=mmap.ACCESS_READ) as data:
            if _is_v1(data[:8], first_seq):
                yield from _scan_v1(data, size, first_seq)
                return
            yield from _scan_v2(path, data, size, first_seq)


def _scan_v2(path: Path, data: mmap.mmap, size: int, first_seq: int) -> Iterator[_Record | DamagedRegion]:
    position = len(FILE_MARKER)
    expected = first_seq
    after = first_seq - 1
    damaged_from: int | None = None
    while position < size:
        header_end = position + _RECORD_HEADER_BYTES
        end = None
        if header_end <= size and data[position : position + len(RECORD_MARKER)] == RECORD_MARKER:
            header = data[position : position + _HEADER.size]
            _, seq, id_length, body_length, body_digest = _HEADER.unpack(header)
            (header_crc,) = _HEADER_CRC.unpack(data[position + _HEADER.size : header_end])
            encoded_id = data[header_end : header_end + id_length]
            if (
                zlib.crc32(encoded_id, zlib.crc32(header[len(RECORD_MARKER) :])) == header_crc
                and seq >= expected
                and id_length
                and body_length
            ):
                end = header_end + id_length + body_length
        if end is None or end > size:
            # Not a record here (or one cut short at the end): scan for the next marker.
            if damaged_from is None:
                damaged_from = position
            following = data.find(RECORD_MARKER, position + 1)
            position = size if following < 0 else following
            continue
        body = data[header_end + id_length : end]
        try:
            pipeline_id = encoded_id.decode() if digest(body) == body_digest else None
        except UnicodeDecodeError:
            pipeline_id = None
        if pipeline_id is None:
            # The header checks out, so the record's length can be trusted: skip exactly this record.
            if damaged_from is None:
                damaged_from = position
            expected = seq + 1
            position = end
            continue
        if damaged_from is not None:
            yield DamagedRegion(path, damaged_from, position - damaged_from, after, seq - 1, seq - 1, False)
            damaged_from = None
        after = seq
        yield _Record(end, LoggedRequest(seq, pipeline_id, body))
        expected = seq + 1
        position = end
    if damaged_from is not None:
        tail = data[damaged_from:size]
        yield DamagedRegion(path, damaged_from, len(tail), after, None, expected - 1, _torn(tail))


def _torn(tail: bytes) -> bool:
    """Whether a segment's damaged tail is an append a crash cut short (zeros, part of a header, or a record
    whose intact header promises more bytes than there are), rather than damage to a complete record."""
    if not tail.strip(b"\0") or len(tail) < _RECORD_HEADER_BYTES:
        return True
    header = tail[: _HEADER.size]
    marker, _, id_length, body_length, _ = _HEADER.unpack(header)
    (header_crc,) = _HEADER_CRC.unpack(tail[_HEADER.size : _RECORD_HEADER_BYTES])
    encoded_id = tail[_RECORD_HEADER_BYTES : _RECORD_HEADER_BYTES + id_length]
    return bool(
        marker == RECORD_MARKER
        and (
            len(encoded_id) < id_length  # cut short inside the pipeline id: the checksum cannot be checked
            or zlib.crc32(encoded_id, zlib.crc32(header[len(RECORD_MARKER) :])) == header_crc
        )
        and _RECORD_HEADER_BYTES + id_length + body_length > len(tail)
    )


def _scan_v1(data: mmap.mmap, size: int, first_seq: int) -> Iterator[_Record | DamagedRegion]:
    """Records of a segment written before the markers, stopping at the first damaged one (which has no
    reliable way to find the record after it). Records are numbered consecutively from the segment's first
    sequence number; checking that also stops at a zero-filled tail, whose CRC-32 of nothing is 0 as well."""
    position = 0
    expected = first_seq
    while position + _V1_HEADER.size <= size:
        seq, id_length, body_length, crc = _V1_HEADER.unpack(data[position : position + _V1_HEADER.size])
        end = position + _V1_HEADER.size + id_length + body_length
        if seq != expected or not id_length or not body_length or end > size:
            return
        payload = data[position + _V1_HEADER.size : end]
        if zlib.crc32(payload) != crc:
            return
        try:
            pipeline_id = payload[:id_length].decode()
        except UnicodeDecodeError:
            return
        yield _Record(end, LoggedRequest(seq, pipeline_id, payload[id_length:]))
        expected += 1
        position = end


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
        self._quarantined: set[tuple[Path, int]] = set()
        self.damaged_records = 0
        """Damaged regions found since the log was opened (each quarantined once), for the collector's metrics."""
        self._last_seq = max(self._cut_torn_tail(committed_seq), committed_seq)
        self._synced_seq = self._last_seq
        # Requests up to here were written before a failed sync: Linux reports a writeback error once and may
        # drop the pages, so a later sync's success says nothing about them. Only a store commit clears them.
        self._failed_upto = 0
        self._files: dict[Path, FileIO] = {}
        self._active: tuple[Path, FileIO] | None = None
        self._active_bytes = 0
        # Grouped syncs: the time between appends (moving average), and how often waiting for one paid off.
        self._appended_at = 0.0
        self._append_interval = 1.0
        self._wait_success = 1.0
        self._syncs = 0
        self._sync_waiters = 0
        self._sync_seconds = 0.0

    def _cut_torn_tail(self, committed_seq: int) -> int:
        """Cut what follows the last segment's last intact record (quarantining it unless it is a torn append);
        returns the last sequence number used."""
        if not self._segments:
            return 0
        first_seq, path = self._segments[-1]
        last_seq, end = first_seq - 1, 0
        for item in _scan(path, first_seq):
            if isinstance(item, _Record):
                last_seq, end = item.request.seq, item.end
            elif item.upto is None:  # the tail
                if item.torn:
                    logger.warning(
                        "request log %s: cut %d bytes after request %d (a write the crash interrupted; never"
                        " acknowledged)",
                        path,
                        item.length,
                        item.after,
                    )
                else:
                    self._quarantine(item, committed_seq)
                last_seq = max(last_seq, item.seen)
        size = path.stat().st_size
        if not end:  # no intact record: keep the file marker, or let the next append write one
            with path.open("rb") as segment:
                start = segment.read(len(FILE_MARKER))
            end = len(FILE_MARKER) if start == FILE_MARKER else 0
        if size > end:
            with path.open("r+b") as segment:
                segment.truncate(end)
        return last_seq

    def _quarantine(self, region: DamagedRegion, committed_seq: int) -> None:
        """Copy a damaged region aside (once), log and count it, unless it can only hold committed requests."""
        place = (region.path, region.offset)
        if (region.upto is not None and region.upto <= committed_seq) or place in self._quarantined:
            return
        self._quarantined.add(place)
        self.damaged_records += 1
        directory = self.directory / QUARANTINE
        target = directory / f"{region.path.name}.{region.offset}.damaged"
        try:
            directory.mkdir(exist_ok=True)
            with region.path.open("rb") as segment:
                segment.seek(region.offset)
                damaged = segment.read(region.length)
            if not target.exists():
                target.write_bytes(damaged)
        except OSError as error:
            target = Path(f"(not copied: {error})")
        holds = (
            f"request {region.upto}"
            if region.upto == region.after + 1
            else f"requests {region.after + 1}-{region.upto}"
            if region.upto is not None
            else f"requests after {region.after}"
        )
        logger.error(
            "request log %s: %d damaged bytes at offset %d fail their checksum and are skipped; they held %s"
            " (possibly acknowledged, now lost); copied to %s. Recovery continues with the next intact record.",
            region.path,
            region.length,
            region.offset,
            holds,
            target,
        )

    @property
    def last_seq(self) -> int:
        return self._last_seq

    def append(self, pipeline_id: str, body: bytes, body_digest: bytes | None = None) -> int:
        """Write one request (``body_digest``: its :func:`digest`, if the caller has it); returns its sequence
        number. Call :meth:`sync` before acknowledging it."""
        encoded_id = pipeline_id.encode()
        if body_digest is None:
            body_digest = digest(body)
        with self._lock:
            seq = self._last_seq + 1
            if self._active is None or self._active_bytes >= self._segment_bytes:
                self._rotate(seq)
            assert self._active is not None
            parts = record_bytes(seq, encoded_id, body, body_digest)
            size = sum(len(part) for part in parts)
            written = os.writev(self._active[1].fileno(), parts)
            if written != size:  # a regular file writes all of it unless the disk is full
                self._active[1].truncate(self._active_bytes)
                raise OSError(f"request log {self._active[0]}: wrote {written} of {size} bytes (is the disk full?)")
            self._active_bytes += size
            self._last_seq = seq
            now = time.monotonic()
            self._append_interval += 0.2 * (min(now - self._appended_at, 1.0) - self._append_interval)
            self._appended_at = now
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
        if not file.tell():
            file.write(FILE_MARKER)
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
        with self._lock:
            self._sync_waiters += 1
        with self._sync_lock:
            with self._lock:
                self._sync_waiters -= 1
                alone = not self._sync_waiters and self._last_seq == seq
            if self._synced_seq >= seq:
                return
            if alone:
                self._wait_for_company()
            with self._lock:
                if seq <= self._failed_upto:
                    raise OSError(f"request log {self.directory}: request {seq} was written before a failed sync")
                active, written = self._active, self._last_seq
                if active is None:
                    raise OSError(f"request log {self.directory}: the segment holding request {seq} is closed")
            started = time.monotonic()
            try:
                os.fdatasync(active[1].fileno())
            except OSError:
                with self._lock:
                    self._sync_failed()
                raise
            self._sync_seconds += 0.2 * (time.monotonic() - started - self._sync_seconds)
            self._synced_seq = max(self._synced_seq, written)

    def _wait_for_company(self) -> None:
        """With ``_sync_lock`` held, for a request that would be synced alone (no other waits to sync, none was
        written after it): when requests arrive every few milliseconds, wait (at most ``GROUP_SYNC_WAIT_S``) for
        the next one to be written, so one ``fdatasync`` covers both; a sync costs about as much CPU as
        receiving the request. Waits that keep gaining nothing (one client waiting for each answer before it
        sends again) stop, and are retried now and then. When syncs take long (a busy disk or box), requests
        queue behind them and share them anyway: no waiting then."""
        self._syncs += 1
        if (
            self._append_interval > GROUP_SYNC_WAIT_S
            or self._sync_seconds > self._append_interval / 4  # syncs are slow: they group without waiting
            or (self._wait_success < 0.3 and self._syncs % 32)
        ):
            return
        slack = max(_GROUP_SYNC_SLACK_S, self._append_interval / 2)
        wait = self._appended_at + self._append_interval + slack - time.monotonic()
        if wait <= 0:
            return
        before = self._last_seq
        time.sleep(min(wait, GROUP_SYNC_WAIT_S))
        self._wait_success += 0.2 * ((self._last_seq > before) - self._wait_success)

    def _sync_failed(self) -> None:
        """With ``_lock`` held: fail every request written so far, and write later ones to a new segment (a
        record the kernel lost here is then the end of its segment, not a damaged region before later ones)."""
        self._failed_upto = self._last_seq
        self._active = None

    def replay(self, after: int) -> Iterator[LoggedRequest]:
        """The logged requests with a sequence number above ``after``, in order (for a start after a crash)."""
        for first_seq, path in list(self._segments):
            for item in _scan(path, first_seq):
                if isinstance(item, DamagedRegion):
                    if not item.torn:  # a torn tail of the active segment is the append in progress
                        self._quarantine(item, after)
                elif item.request.seq > after:
                    yield item.request

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
