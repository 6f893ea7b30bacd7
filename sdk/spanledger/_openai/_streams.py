"""Proxies around ``openai.Stream`` / ``openai.AsyncStream`` that observe each item and end the call's span.

They are ``wrapt.ObjectProxy`` subclasses, so ``isinstance(stream, openai.Stream)`` and every attribute
of the real stream keep working. The span ends when the stream is exhausted, closed (``close()``, the
``with`` block), raises, or, via ``Call.__del__``, when the proxy is garbage-collected. No OTel context
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

__all__ = ["AsyncStreamProxy", "SyncStreamProxy"]

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


class SyncStreamProxy(wrapt.ObjectProxy[Any]):
    def __init__(self, stream: Any, call: Call) -> None:
        super().__init__(stream)
        self._self_call = call
        _filter_usage_chunk(stream, call)

    def __iter__(self) -> SyncStreamProxy:
        return self

    def __next__(self) -> Any:
        call = self._self_call
        stream = self.__wrapped__
        while True:
            try:
                item = stream.__next__()
            except StopIteration:
                call.end()
                raise
            except BaseException as error:
                call.fail(error)
                raise
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

    def __aiter__(self) -> AsyncStreamProxy:
        return self

    async def __anext__(self) -> Any:
        call = self._self_call
        stream = self.__wrapped__
        while True:
            try:
                item = await stream.__anext__()
            except StopAsyncIteration:
                call.end()
                raise
            except BaseException as error:
                call.fail(error)
                raise
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
