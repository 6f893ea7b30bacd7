"""The patch itself: ``SyncAPIClient.request`` / ``AsyncAPIClient.request``, the client's single choke point.

Every endpoint method (``create``, ``with_raw_response``, ``with_streaming_response``, the ``stream()``
helpers) funnels into ``request`` with the final options, and retries happen inside it, so one wrapper
there gives exactly one span per logical call, sees the JSON body before it is sent (to add
``stream_options``) and covers raw responses without patching each resource class. Requests to other
endpoints pass straight through after one dict lookup.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from openai._base_client import AsyncAPIClient, SyncAPIClient
from opentelemetry.context import attach, detach
from opentelemetry.trace import set_span_in_context

from ._call import start_call
from ._endpoints import ENDPOINTS
from ._recorder import Recorder

__all__ = ["install", "uninstall"]

_recorder: Recorder | None = None
_original_sync: Callable[..., Any] | None = None
_original_async: Callable[..., Any] | None = None
_patched = False


def _sync_request(self: Any, cast_to: Any, options: Any, *args: Any, **kwargs: Any) -> Any:
    recorder = _recorder
    if recorder is not None and options.method == "post":
        endpoint = ENDPOINTS.get(options.url)
        if endpoint is not None:
            call = start_call(recorder, endpoint, self, options, kwargs.get("stream", False))
            if call is not None:
                token = attach(set_span_in_context(call.span))
                retry = False
                try:
                    result = _original_sync(self, cast_to, options, *args, **kwargs)  # type: ignore[misc]
                except BaseException as error:
                    if not call.retry_without_stream_options(error):
                        detach(token)
                        call.fail(error)
                        raise
                    retry = True
                if retry:  # outside the except block, so a second error does not chain the first
                    try:
                        result = _original_sync(self, cast_to, options, *args, **kwargs)  # type: ignore[misc]
                    except BaseException as error:
                        detach(token)
                        call.fail(error)
                        raise
                detach(token)
                return call.complete(result)
    return _original_sync(self, cast_to, options, *args, **kwargs)  # type: ignore[misc]


async def _async_request(self: Any, cast_to: Any, options: Any, *args: Any, **kwargs: Any) -> Any:
    recorder = _recorder
    if recorder is not None and options.method == "post":
        endpoint = ENDPOINTS.get(options.url)
        if endpoint is not None:
            call = start_call(recorder, endpoint, self, options, kwargs.get("stream", False))
            if call is not None:
                token = attach(set_span_in_context(call.span))
                retry = False
                try:
                    result = await _original_async(self, cast_to, options, *args, **kwargs)  # type: ignore[misc]
                except BaseException as error:
                    if not call.retry_without_stream_options(error):
                        detach(token)
                        call.fail(error)
                        raise
                    retry = True
                if retry:
                    try:
                        result = await _original_async(self, cast_to, options, *args, **kwargs)  # type: ignore[misc]
                    except BaseException as error:
                        detach(token)
                        call.fail(error)
                        raise
                detach(token)
                return call.complete(result)
    return await _original_async(self, cast_to, options, *args, **kwargs)  # type: ignore[misc]


def install(recorder: Recorder) -> None:
    """Route OpenAI requests through ``recorder``; patch the client classes unless already patched."""
    global _recorder, _original_sync, _original_async, _patched
    if not _patched:
        _original_sync = SyncAPIClient.request
        _original_async = AsyncAPIClient.request
        SyncAPIClient.request = _sync_request  # type: ignore[method-assign,assignment]
        AsyncAPIClient.request = _async_request  # type: ignore[method-assign,assignment]
        _patched = True
    _recorder = recorder


def uninstall() -> None:
    """Stop recording; restore the client classes unless something has wrapped our patch since.

    A wrapper left in place passes every request straight through. The saved originals are never
    cleared, so a request already inside ``_sync_request`` still finds them.
    """
    global _recorder, _patched
    _recorder = None
    if (
        _patched
        and vars(SyncAPIClient).get("request") is _sync_request
        and vars(AsyncAPIClient).get("request") is _async_request
    ):
        SyncAPIClient.request = _original_sync  # type: ignore[method-assign,assignment]
        AsyncAPIClient.request = _original_async  # type: ignore[method-assign,assignment]
        _patched = False
