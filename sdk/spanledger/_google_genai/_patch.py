"""The patch: the private per-request methods of ``google.genai.models.Models`` / ``AsyncModels``.

``generate_content`` runs automatic function calling and continuation, each a separate billed request
through ``_generate_content``; ``generate_content_stream`` likewise through ``_generate_content_stream``;
``embed_content`` through ``_embed_content``. Wrapping those gives one span per request, with that
request's own usage. When another Google Gen AI instrumentation's span is current (upstream, OpenLLMetry),
spanledger defers to it and marks it the usage owner.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

from google.genai.models import AsyncModels, Models
from opentelemetry.context import attach, detach
from opentelemetry.trace import set_span_in_context

from .. import semconv
from .._genai import GenAICall, GenAIRecorder, current_parent, new_key, open_call
from .._genai._resource import vertex_model_resource
from .._genai._streams import observe_async_iterator, observe_iterator
from .._internal_errors import log_internal_error
from . import _responses

__all__ = ["FOREIGN_SCOPES", "install", "uninstall"]

FOREIGN_SCOPES = ("opentelemetry.instrumentation.google_genai", "opentelemetry.instrumentation.google_generativeai")

_Operation = semconv.GenAiOperationNameValues
_Provider = semconv.GenAiProviderNameValues
_DEFAULT_PORTS = {"https": 443, "http": 80}
_METHODS = ("_generate_content", "_generate_content_stream", "_embed_content")
_SERVERS_LIMIT = 64
_servers: dict[str, tuple[str | None, int | None]] = {}

_recorder: GenAIRecorder | None = None
_originals: dict[tuple[type, str], Callable[..., Any]] = {}


def _server(base_url: str) -> tuple[str | None, int | None]:
    """The host and port of ``base_url``, parsed once per URL (parsing costs more than the rest of a call's start)."""
    found = _servers.get(base_url)
    if found is None:
        url = urlsplit(base_url)
        found = (url.hostname, url.port or _DEFAULT_PORTS.get(url.scheme))
        if len(_servers) >= _SERVERS_LIMIT:
            _servers.clear()
        _servers[base_url] = found
    return found


def _start(
    recorder: GenAIRecorder, models: Any, operation: str, kwargs: dict[str, Any], stream: bool
) -> GenAICall | None:
    try:
        parent = current_parent()
        if parent is None:  # instrumentation suppressed
            return None
        scope = getattr(parent, "instrumentation_scope", None)
        if scope is not None and scope.name.startswith(FOREIGN_SCOPES):
            parent.set_attribute(semconv.SPANLEDGER_USAGE_OWNER, True)
            return None
        client = models._api_client
        vertex = bool(getattr(client, "vertexai", False))
        base_url = getattr(getattr(client, "_http_options", None), "base_url", None) or ""
        address, port = _server(base_url)
        model = kwargs.get("model")
        model = model if isinstance(model, str) else None
        provider = _Provider.GCP_VERTEX_AI.value if vertex else _Provider.GCP_GEMINI.value
        key = new_key(operation, provider, model, address, port)
        attributes: dict[str, Any] = {semconv.SPANLEDGER_USAGE_OWNER: True}
        project, location = getattr(client, "project", None), getattr(client, "location", None)
        if vertex and model and project and location:
            attributes[semconv.CLOUD_RESOURCE_ID] = vertex_model_resource(project, location, "google", model)
        config = kwargs.get("config")
        content = None
        if operation == _Operation.GENERATE_CONTENT.value:
            _responses.config_attributes(config, attributes)
            if stream:
                attributes[semconv.GEN_AI_REQUEST_STREAM] = True
            if recorder.capture_content:
                content = _responses.input_content(kwargs.get("contents"), config)
        call = open_call(recorder, key, attributes, stream=stream)
        call.content = content
        return call
    except Exception:
        log_internal_error("google-genai request")
        return None


def _finish(call: GenAICall, extract: Callable[[GenAICall, Any], None], result: Any) -> Any:
    try:
        extract(call, result)
    except Exception:
        log_internal_error("google-genai response")
    call.end()
    return result


def _sync_method(name: str, operation: str, extract: Callable[[GenAICall, Any], None]) -> Callable[..., Any]:
    def wrapper(self: Any, **kwargs: Any) -> Any:
        original = _originals[(Models, name)]
        recorder = _recorder
        call = _start(recorder, self, operation, kwargs, False) if recorder is not None else None
        if call is None:
            return original(self, **kwargs)
        token = attach(set_span_in_context(call.span))  # type: ignore[arg-type]
        try:
            result = original(self, **kwargs)
        except BaseException as error:
            detach(token)
            call.fail(error)
            raise
        detach(token)
        return _finish(call, extract, result)

    return wrapper


def _sync_stream(self: Any, **kwargs: Any) -> Any:
    original = _originals[(Models, "_generate_content_stream")]
    recorder = _recorder
    call = _start(recorder, self, _Operation.GENERATE_CONTENT.value, kwargs, True) if recorder is not None else None
    if call is None:
        return original(self, **kwargs)
    try:
        iterator = original(self, **kwargs)  # a generator: the request goes out on the first next()
    except BaseException as error:
        call.fail(error)
        raise
    call.observe = _responses.generate_chunk
    call.settle = _responses.settle_stream
    return observe_iterator(iterator, call)


def _async_method(name: str, operation: str, extract: Callable[[GenAICall, Any], None]) -> Callable[..., Any]:
    async def wrapper(self: Any, **kwargs: Any) -> Any:
        original = _originals[(AsyncModels, name)]
        recorder = _recorder
        call = _start(recorder, self, operation, kwargs, False) if recorder is not None else None
        if call is None:
            return await original(self, **kwargs)
        token = attach(set_span_in_context(call.span))  # type: ignore[arg-type]
        try:
            result = await original(self, **kwargs)
        except BaseException as error:
            detach(token)
            call.fail(error)
            raise
        detach(token)
        return _finish(call, extract, result)

    return wrapper


async def _async_stream(self: Any, **kwargs: Any) -> Any:
    original = _originals[(AsyncModels, "_generate_content_stream")]
    recorder = _recorder
    call = _start(recorder, self, _Operation.GENERATE_CONTENT.value, kwargs, True) if recorder is not None else None
    if call is None:
        return await original(self, **kwargs)
    token = attach(set_span_in_context(call.span))  # type: ignore[arg-type]
    try:
        iterator = await original(self, **kwargs)
    except BaseException as error:
        detach(token)
        call.fail(error)
        raise
    detach(token)
    call.observe = _responses.generate_chunk
    call.settle = _responses.settle_stream
    return observe_async_iterator(iterator, call)


_GENERATE = _Operation.GENERATE_CONTENT.value
_EMBED = _Operation.EMBEDDINGS.value
_WRAPPERS: dict[tuple[type, str], Callable[..., Any]] = {
    (Models, "_generate_content"): _sync_method("_generate_content", _GENERATE, _responses.generate_result),
    (Models, "_generate_content_stream"): _sync_stream,
    (Models, "_embed_content"): _sync_method("_embed_content", _EMBED, _responses.embed_result),
    (AsyncModels, "_generate_content"): _async_method("_generate_content", _GENERATE, _responses.generate_result),
    (AsyncModels, "_generate_content_stream"): _async_stream,
    (AsyncModels, "_embed_content"): _async_method("_embed_content", _EMBED, _responses.embed_result),
}


def install(recorder: GenAIRecorder) -> None:
    """Route Gemini requests through ``recorder``; patch the model classes unless already patched."""
    global _recorder
    for (cls, name), wrapper in _WRAPPERS.items():
        current = vars(cls).get(name)
        if current is not None and current is not wrapper:
            _originals[(cls, name)] = current
            setattr(cls, name, wrapper)
    _recorder = recorder


def uninstall() -> None:
    """Stop recording; restore the methods unless something has wrapped ours since."""
    global _recorder
    _recorder = None
    for (cls, name), wrapper in _WRAPPERS.items():
        original = _originals.get((cls, name))
        if original is not None and vars(cls).get(name) is wrapper:
            setattr(cls, name, original)
