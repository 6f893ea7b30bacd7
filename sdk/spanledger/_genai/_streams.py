"""Proxies around a library's stream objects that show each item to the call and end it with the stream.

``wrapt.ObjectProxy`` subclasses, so ``isinstance`` and every attribute of the real stream keep working.
The call ends when the stream is exhausted, closed (``close()``, the ``with`` block), raises, or, via
``GenAICall.__del__``, when the proxy is garbage-collected. No OTel context is attached while iterating, but
for a plain generator's first step (``_ObservedIterator``).
Closing a stream flushes the call first: a library span it adopted ends with the close, and a stream
closed early must still get what was seen (and its content) onto that span.
"""

from __future__ import annotations

from typing import Any

import wrapt
from opentelemetry.context import attach, detach
from opentelemetry.trace import set_span_in_context

from ._call import GenAICall

__all__ = ["AsyncStreamProxy", "SyncStreamProxy", "observe_async_iterator", "observe_iterator"]


class SyncStreamProxy(wrapt.ObjectProxy[Any]):
    def __init__(self, stream: Any, call: GenAICall) -> None:
        super().__init__(stream)
        self._self_call = call

    def __iter__(self) -> SyncStreamProxy:
        return self

    def __next__(self) -> Any:
        call = self._self_call
        try:
            item = self.__wrapped__.__next__()
        except StopIteration:
            call.end()
            raise
        except BaseException as error:
            call.fail(error)
            raise
        call.chunk(item)
        return item

    def __enter__(self) -> SyncStreamProxy:
        self.__wrapped__.__enter__()
        return self

    def __exit__(self, *exc_info: Any) -> Any:
        self._self_call.flush()
        try:
            return self.__wrapped__.__exit__(*exc_info)
        finally:
            self._self_call.end()

    def close(self) -> None:
        self._self_call.flush()
        try:
            self.__wrapped__.close()
        finally:
            self._self_call.end()


class AsyncStreamProxy(wrapt.ObjectProxy[Any]):
    def __init__(self, stream: Any, call: GenAICall) -> None:
        super().__init__(stream)
        self._self_call = call

    def __aiter__(self) -> AsyncStreamProxy:
        return self

    async def __anext__(self) -> Any:
        call = self._self_call
        try:
            item = await self.__wrapped__.__anext__()
        except StopAsyncIteration:
            call.end()
            raise
        except BaseException as error:
            call.fail(error)
            raise
        call.chunk(item)
        return item

    async def __aenter__(self) -> AsyncStreamProxy:
        await self.__wrapped__.__aenter__()
        return self

    async def __aexit__(self, *exc_info: Any) -> Any:
        self._self_call.flush()
        try:
            return await self.__wrapped__.__aexit__(*exc_info)
        finally:
            self._self_call.end()

    async def close(self) -> None:
        self._self_call.flush()
        try:
            await self.__wrapped__.close()
        finally:
            self._self_call.end()

    async def aclose(self) -> None:
        self._self_call.flush()
        try:
            await self.__wrapped__.aclose()
        finally:
            self._self_call.end()


class _ObservedIterator:
    """A plain (generator) iterator seen through ``call``; ends it when exhausted, closed or broken off.

    A library's generator sends its request on the first ``next()`` (google-genai's sync stream): the call's
    span is the current one during that first step only, so the HTTP span of the request is its child as
    for every other call. Attached and detached inside one synchronous ``next()``, it cannot leak."""

    __slots__ = ("_call", "_iterator", "_started")

    def __init__(self, iterator: Any, call: GenAICall) -> None:
        self._iterator = iterator
        self._call = call
        self._started = False

    def __iter__(self) -> _ObservedIterator:
        return self

    def __next__(self) -> Any:
        try:
            if self._started or self._call.span is None:
                item = next(self._iterator)
            else:
                self._started = True
                token = attach(set_span_in_context(self._call.span))
                try:
                    item = next(self._iterator)
                finally:
                    detach(token)
        except StopIteration:
            self._call.end()
            raise
        except BaseException as error:
            self._call.fail(error)
            raise
        self._call.chunk(item)
        return item

    def close(self) -> None:
        try:
            close = getattr(self._iterator, "close", None)
            if close is not None:
                close()
        finally:
            self._call.end()


class _ObservedAsyncIterator:
    __slots__ = ("_call", "_iterator")

    def __init__(self, iterator: Any, call: GenAICall) -> None:
        self._iterator = iterator
        self._call = call

    def __aiter__(self) -> _ObservedAsyncIterator:
        return self

    async def __anext__(self) -> Any:
        try:
            item = await self._iterator.__anext__()
        except StopAsyncIteration:
            self._call.end()
            raise
        except BaseException as error:
            self._call.fail(error)
            raise
        self._call.chunk(item)
        return item

    async def aclose(self) -> None:
        try:
            aclose = getattr(self._iterator, "aclose", None)
            if aclose is not None:
                await aclose()
        finally:
            self._call.end()


def observe_iterator(iterator: Any, call: GenAICall) -> Any:
    """``iterator`` (a generator the library returns) observed by ``call``."""
    return _ObservedIterator(iterator, call)


def observe_async_iterator(iterator: Any, call: GenAICall) -> Any:
    """``iterator`` (an async generator the library returns) observed by ``call``."""
    return _ObservedAsyncIterator(iterator, call)
