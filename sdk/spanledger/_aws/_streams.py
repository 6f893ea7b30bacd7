"""Transparent wrappers that observe response streams as the caller consumes them.

Nothing here reads ahead of the caller or buffers what the caller would not have read: the caller
gets every byte and every event exactly as botocore produces them, and the observer is told about
each one after the fact. Observer failures are logged, never raised.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

import wrapt

from .._internal_errors import internal_errors_logged, log_internal_error

__all__ = ["CountingRawStream", "ObservedEventStream", "observe_event_stream"]

if TYPE_CHECKING:
    _ProxyBase = wrapt.ObjectProxy[Any]
else:  # wrapt 1.x proxies are not subscriptable at run time
    _ProxyBase = wrapt.ObjectProxy


class CountingRawStream:
    """Stands in for a ``StreamingBody``'s or ``EventStream``'s ``_raw_stream`` (a urllib3 response).

    Counts the bytes handed up, keeps a copy of the first ``keep`` bytes when asked (for response
    bodies whose usage block we parse), and calls ``on_done`` once when the stream is exhausted,
    closed, or the expected length has been read.
    """

    def __init__(
        self,
        raw: Any,
        on_done: Callable[[int, bytes | None], None],
        *,
        expected_length: int | None = None,
        keep: int = 0,
    ) -> None:
        self._raw = raw
        self._on_done: Callable[[int, bytes | None], None] | None = on_done
        self._expected = expected_length
        self._keep = keep
        self._kept: bytearray | None = bytearray() if keep else None
        self.count = 0

    def __getattr__(self, name: str) -> Any:
        try:
            raw = self.__dict__["_raw"]
        except KeyError:
            raise AttributeError(name) from None
        return getattr(raw, name)

    def _saw(self, chunk: bytes | bytearray | memoryview) -> None:
        size = len(chunk)
        self.count += size
        kept = self._kept
        if kept is not None:
            if len(kept) + size <= self._keep:
                kept += chunk
            else:
                self._kept = None  # larger than we parse: stop copying, keep counting
        if size == 0 or (self._expected is not None and self.count >= self._expected):
            self._finish()

    def _finish(self) -> None:
        on_done, self._on_done = self._on_done, None
        if on_done is not None:
            with internal_errors_logged("aws.stream_done"):
                on_done(self.count, bytes(self._kept) if self._kept is not None else None)

    def read(self, amt: int | None = None, *args: Any, **kwargs: Any) -> bytes:
        chunk: bytes = self._raw.read(amt, *args, **kwargs)
        self._saw(chunk)
        if amt is None:
            self._finish()
        return chunk

    def readinto(self, buffer: Any) -> int:
        size: int = self._raw.readinto(buffer)
        self._saw(memoryview(buffer)[:size])
        return size

    def stream(self, *args: Any, **kwargs: Any) -> Iterator[bytes]:
        for chunk in self._raw.stream(*args, **kwargs):
            self._saw(chunk)
            yield chunk
        self._finish()

    def close(self) -> None:
        try:
            self._raw.close()
        finally:
            self._finish()

    def __del__(self) -> None:
        if self.__dict__.get("_on_done") is not None:
            self._finish()


class ObservedEventStream(_ProxyBase):
    """Wraps a botocore ``EventStream``: yields its events unchanged, tells ``on_event`` about each and
    ``on_end`` once when iteration stops (exhausted, failed, closed or abandoned).

    A ``wrapt.ObjectProxy``, so ``isinstance(stream, EventStream)`` still holds for the caller (and for the
    upstream botocore instrumentation, which only wraps streams that pass that check).
    """

    def __init__(
        self,
        stream: Any,
        on_event: Callable[[Any], None],
        on_end: Callable[[BaseException | None], None],
    ) -> None:
        super().__init__(stream)
        self._self_on_event = on_event
        self._self_on_end: Callable[[BaseException | None], None] | None = on_end

    def __iter__(self) -> Iterator[Any]:
        on_event = self._self_on_event
        try:
            for event in self.__wrapped__:
                try:
                    on_event(event)
                except Exception:
                    log_internal_error("aws.stream_event")
                yield event
        except GeneratorExit:
            self._self_end(None)
            raise
        except BaseException as error:
            self._self_end(error)
            raise
        self._self_end(None)

    def close(self) -> None:
        try:
            self.__wrapped__.close()
        finally:
            self._self_end(None)

    def __del__(self) -> None:
        if getattr(self, "_self_on_end", None) is not None:
            self._self_end(None)

    def _self_end(self, error: BaseException | None) -> None:
        on_end, self._self_on_end = self._self_on_end, None
        if on_end is not None:
            with internal_errors_logged("aws.stream_end"):
                on_end(error)


def _ignore(count: int, kept: bytes | None) -> None:
    pass


def observe_event_stream(
    stream: Any,
    on_event: Callable[[Any], None],
    on_end: Callable[[int | None, BaseException | None], None],
) -> ObservedEventStream:
    """Wrap a botocore ``EventStream``; ``on_end`` also gets the bytes that came over the wire (event-stream
    framing included), or None when the stream does not expose its raw body."""
    counter: CountingRawStream | None = None
    raw = getattr(stream, "_raw_stream", None)
    if raw is not None:
        counter = CountingRawStream(raw, _ignore)
        stream._raw_stream = counter

    def end(error: BaseException | None) -> None:
        on_end(counter.count if counter is not None else None, error)

    return ObservedEventStream(stream, on_event, end)
