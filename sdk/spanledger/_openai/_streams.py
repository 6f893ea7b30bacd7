"""Proxies around ``openai.Stream`` / ``openai.AsyncStream`` that observe each item and end the call's span.

They are ``wrapt.ObjectProxy`` subclasses, so ``isinstance(stream, openai.Stream)`` and every attribute
of the real stream keep working. The span ends when the stream is exhausted, closed (``close()``, the
``with`` block, or its HTTP response closed, as openai's stream helpers do), raises, or, via ``Call.__del__``,
when the proxy is garbage-collected. No OTel context
is attached while iterating, so abandoned async generators cannot trip "Failed to detach context".

When spanledger asked for the usage chunk, it also takes that chunk off the stream *before* the client
parses it (``_UsageChunkFilter`` around the stream's SSE decoder): building the client's pydantic object
for it costs several times more than everything else spanledger does per stream. Should the decoder not
be the one expected, the proxy hides the parsed chunk instead.
"""

from __future__ import annotations

import json
import weakref
from collections.abc import AsyncIterator, Iterator
from time import time_ns
from typing import TYPE_CHECKING, Any

import wrapt

from .._genai import TokenUsage
from .._internal_errors import log_internal_error

if TYPE_CHECKING:
    from ._call import Call

__all__ = ["AsyncStreamProxy", "SyncStreamProxy", "end_with_response"]

_EMPTY_CHOICES = ('"choices":[]', '"choices": []')


def _raw_chat_usage(usage: dict[str, Any]) -> TokenUsage:
    prompt_details = usage.get("prompt_tokens_details") or {}
    completion_details = usage.get("completion_tokens_details") or {}
    return TokenUsage(
        usage.get("prompt_tokens"),
        usage.get("completion_tokens"),
        prompt_details.get("cached_tokens"),
        prompt_details.get("cache_write_tokens"),
        completion_details.get("reasoning_tokens"),
    )


class _UsageChunkFilter:
    """Wraps a stream's SSE decoder; records and drops the usage-only chat chunk spanledger asked for."""

    __slots__ = ("_call", "_decoder")

    def __init__(self, decoder: Any, call: Call) -> None:
        self._decoder = decoder
        # Weak: the stream and its generator form a cycle; the call must die with the proxy, not with it.
        self._call = weakref.ref(call)

    def _take(self, event: Any) -> bool:
        """True when ``event`` is the usage-only chunk (now recorded on the call)."""
        data = event.data
        if _EMPTY_CHOICES[0] not in data and _EMPTY_CHOICES[1] not in data:
            return False
        call = self._call()
        if call is None or not call.hide_usage_chunk:
            return False
        try:
            payload = json.loads(data)
            usage = payload.get("usage")
            if payload.get("choices") or not isinstance(usage, dict):
                return False
            call.usage = _raw_chat_usage(usage)
            if call.first_chunk_ns is None:  # no output in it: not a time_per_output_chunk point
                call.first_chunk_ns = time_ns()
            return True
        except Exception:
            log_internal_error("openai usage chunk")
            return False

    def iter_bytes(self, iterator: Iterator[bytes]) -> Iterator[Any]:
        for event in self._decoder.iter_bytes(iterator):
            if not self._take(event):
                yield event

    async def aiter_bytes(self, iterator: AsyncIterator[bytes]) -> AsyncIterator[Any]:
        async for event in self._decoder.aiter_bytes(iterator):
            if not self._take(event):
                yield event


def _filter_usage_chunk(stream: Any, call: Call) -> None:
    from openai._streaming import SSEDecoder

    if call.hide_usage_chunk and type(getattr(stream, "_decoder", None)) is SSEDecoder:
        stream._decoder = _UsageChunkFilter(stream._decoder, call)


def _arrived(call: Call) -> None:
    now = time_ns()
    if call.first_chunk_ns is None:
        call.first_chunk_ns = now
    call.chunk_times_ns.append(now)


def _observe(call: Call, item: Any) -> bool:
    """Record one item; True when the caller should see it."""
    _arrived(call)
    try:
        return call.endpoint.chunk(call, item)  # type: ignore[misc]
    except Exception:
        log_internal_error("openai stream item")
    # Still hide the usage-only chunk spanledger asked for, so the caller sees what it would have seen.
    try:
        return not (call.hide_usage_chunk and not item.choices)
    except Exception:
        return True


def end_with_response(response: Any, call: Call, closer: str) -> None:
    """End the call when the HTTP response ``response`` is closed (its ``closer``: ``close`` or ``aclose``).

    openai's stream helpers (``chat.completions.stream()``, ``responses.stream()``) wrap the proxy and close
    the HTTP response themselves, not the stream, and a raw response read as bytes is never parsed: without
    this, their ``with`` block or ``close()`` would leave the span open until it is garbage-collected.
    """
    try:
        original = getattr(response, closer)
        ended = weakref.ref(call)  # the response must not keep the call alive (``Call.__del__``)

        def end() -> None:
            call = ended()
            # While the proxy reads, the stream closes its response itself (at the end, or on an error the
            # proxy then records): the proxy ends the call.
            if call is not None and not call.reading:
                call.end()

        if closer == "aclose":

            async def aclose() -> None:
                try:
                    await original()
                finally:
                    end()

            response.aclose = aclose
        else:

            def close() -> None:
                try:
                    original()
                finally:
                    end()

            response.close = close
    except Exception:
        log_internal_error("openai stream response")


class SyncStreamProxy(wrapt.ObjectProxy[Any]):
    def __init__(self, stream: Any, call: Call) -> None:
        super().__init__(stream)
        self._self_call = call
        _filter_usage_chunk(stream, call)
        end_with_response(stream.response, call, "close")

    def __iter__(self) -> SyncStreamProxy:
        return self

    def __next__(self) -> Any:
        call = self._self_call
        stream = self.__wrapped__
        while True:
            call.reading = True
            try:
                item = stream.__next__()
            except StopIteration:
                call.end()
                raise
            except BaseException as error:
                call.fail(error)
                raise
            finally:
                call.reading = False
            if _observe(call, item):
                return item

    def __enter__(self) -> SyncStreamProxy:
        self.__wrapped__.__enter__()
        return self

    def __exit__(self, *exc_info: Any) -> Any:
        try:
            return self.__wrapped__.__exit__(*exc_info)
        finally:
            self._self_call.end()

    def close(self) -> None:
        try:
            self.__wrapped__.close()
        finally:
            self._self_call.end()


class AsyncStreamProxy(wrapt.ObjectProxy[Any]):
    def __init__(self, stream: Any, call: Call) -> None:
        super().__init__(stream)
        self._self_call = call
        _filter_usage_chunk(stream, call)
        end_with_response(stream.response, call, "aclose")

    def __aiter__(self) -> AsyncStreamProxy:
        return self

    async def __anext__(self) -> Any:
        call = self._self_call
        stream = self.__wrapped__
        while True:
            call.reading = True
            try:
                item = await stream.__anext__()
            except StopAsyncIteration:
                call.end()
                raise
            except BaseException as error:
                call.fail(error)
                raise
            finally:
                call.reading = False
            if _observe(call, item):
                return item

    async def __aenter__(self) -> AsyncStreamProxy:
        await self.__wrapped__.__aenter__()
        return self

    async def __aexit__(self, *exc_info: Any) -> Any:
        try:
            return await self.__wrapped__.__aexit__(*exc_info)
        finally:
            self._self_call.end()

    async def close(self) -> None:
        try:
            await self.__wrapped__.close()
        finally:
            self._self_call.end()

    async def aclose(self) -> None:
        try:
            await self.__wrapped__.aclose()
        finally:
            self._self_call.end()
