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


class CountingRawStream(_ProxyBase):
    """Stands in for a ``StreamingBody``'s or ``EventStream``'s ``_raw_stream`` (a urllib3 response).

    Counts the bytes handed up, keeps a copy of the first ``keep`` bytes when asked (for response
    bodies whose usage block we parse), and calls ``on_done`` once when the stream is exhausted,
    closed, or the expected length has been read. A ``wrapt.ObjectProxy``: the caller may be handed it
    (botocore's ``with body as f`` gives the raw stream), and it must behave as the response does
    (``isinstance``, iteration, ``with``); each way of reading is counted.
    """

    def __init__(
        self,
        raw: Any,
        on_done: Callable[[int, bytes | None], None],
        *,
        expected_length: int | None = None,
        keep: int = 0,
    ) -> None:
        super().__init__(raw)
        self._self_on_done: Callable[[int, bytes | None], None] | None = on_done
        self._self_expected = expected_length
        self._self_keep = keep
        self._self_kept: bytearray | None = bytearray() if keep else None
        self._self_count = 0

    @property
    def count(self) -> int:
        return self._self_count

    def _self_saw(self, chunk: bytes | bytearray | memoryview, at_end: bool) -> None:
        """``chunk`` was handed up; ``at_end``: the read that gave it found the end of the body."""
        size = len(chunk)
        self._self_count += size
        kept = self._self_kept
        if kept is not None:
            if len(kept) + size <= self._self_keep:
                kept += chunk
            else:
                self._self_kept = None  # larger than we parse: stop copying, keep counting
        if at_end or (self._self_expected is not None and self._self_count >= self._self_expected):
            self._self_finish()

    def _self_finish(self) -> None:
        on_done, self._self_on_done = self._self_on_done, None
        if on_done is not None:
            kept = self._self_kept
            with internal_errors_logged("aws.stream_done"):
                on_done(self._self_count, bytes(kept) if kept is not None else None)

    def read(self, amt: int | None = None, *args: Any, **kwargs: Any) -> bytes:
        chunk: bytes = self.__wrapped__.read(amt, *args, **kwargs)
        # An empty chunk is the end unless none was asked for (read(0)); read() reads to the end.
        self._self_saw(chunk, amt is None or (not chunk and amt != 0))
        return chunk

    def readinto(self, buffer: Any) -> int:
        size: int = self.__wrapped__.readinto(buffer)
        view = memoryview(buffer)
        self._self_saw(view[:size], size == 0 and len(view) > 0)
        return size

    def readline(self, size: int | None = -1) -> bytes:
        line: bytes = self.__wrapped__.readline(size)
        self._self_saw(line, not line and size != 0)  # an empty line is the end, unless none was asked for
        return line

    def readlines(self, *args: Any, **kwargs: Any) -> list[bytes]:
        lines: list[bytes] = self.__wrapped__.readlines(*args, **kwargs)
        for line in lines:
            self._self_saw(line, False)
        if not args and not kwargs:  # no hint: read to the end
            self._self_finish()
        return lines

    def stream(self, *args: Any, **kwargs: Any) -> Iterator[bytes]:
        for chunk in self.__wrapped__.stream(*args, **kwargs):
            self._self_saw(chunk, False)
            yield chunk
        self._self_finish()

    def __iter__(self) -> Iterator[bytes]:
        for line in self.__wrapped__:
            self._self_saw(line, False)
            yield line
        self._self_finish()

    def __enter__(self) -> CountingRawStream:
        self.__wrapped__.__enter__()
        return self

    def __exit__(self, *exc_info: Any) -> Any:
        try:
            return self.__wrapped__.__exit__(*exc_info)
        finally:
            self._self_finish()

    def close(self) -> None:
        try:
            self.__wrapped__.close()
        finally:
            self._self_finish()

    def __del__(self) -> None:
        if getattr(self, "_self_on_done", None) is not None:
            self._self_finish()


class ObservedEventStream(_ProxyBase):
    """Wraps a botocore ``EventStream``: yields its events unchanged, tells ``on_event`` about each and
    ``on_end`` once when the stream ends (exhausted, failed, closed, or the proxy dropped).

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
            # A loop left early: botocore's stream goes on where it stopped in the caller's next loop, so the
            # call ends when the stream does (exhausted, failed, closed or dropped), not here.
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
