"""What differs between the OpenAI endpoints spanledger instruments: request attributes and result extraction.

Each ``Endpoint`` holds plain functions (looked up through the endpoint at call time, so a test can
replace one). They only read: request bodies are the JSON dicts the client is about to send, results
are the client's parsed objects. They may raise on odd input; the caller contains that.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from .. import semconv
from .._genai import Content, TokenUsage
from . import _content

if TYPE_CHECKING:
    from ._call import Call

__all__ = ["ENDPOINTS", "Endpoint"]

Attributes = dict[str, Any]

_OUTPUT_TYPES = {"text": "text", "json_object": "json", "json_schema": "json"}


class Endpoint:
    """One instrumented endpoint (``POST`` to ``path`` relative to the client's base URL)."""

    __slots__ = ("chunk", "input_content", "operation", "path", "request_attributes", "result", "stream_usage")

    def __init__(
        self,
        path: str,
        operation: str,
        request_attributes: Callable[[dict[str, Any], Attributes], None],
        result: Callable[[Call, Any], None],
        chunk: Callable[[Call, Any], bool] | None,
        input_content: Callable[[dict[str, Any]], Content] | None,
        stream_usage: bool,
    ) -> None:
        self.path = path
        self.operation = operation
        self.request_attributes = request_attributes
        """Add the request's attributes (everything but model, provider and server) to the span's start set."""
        self.result = result
        """Record a parsed non-stream result on the call."""
        self.chunk = chunk
        """Record one stream item on the call; return False to hide it from the caller."""
        self.input_content = input_content
        """The request's content (inputs, system instructions, tools), when content is collected."""
        self.stream_usage = stream_usage
        """Whether streams of this endpoint need ``stream_options.include_usage`` to report usage."""


def _set_common(body: dict[str, Any], attributes: Attributes, params: dict[str, str]) -> None:
    # Over the body, not the parameters: a request names a few of them (model and messages, mostly).
    for key, value in body.items():
        name = params.get(key)
        if name is not None and value is not None:
            attributes[name] = value


# --- chat completions ---------------------------------------------------------------------------

_CHAT_PARAMS = {
    "temperature": semconv.GEN_AI_REQUEST_TEMPERATURE,
    "top_p": semconv.GEN_AI_REQUEST_TOP_P,
    "frequency_penalty": semconv.GEN_AI_REQUEST_FREQUENCY_PENALTY,
    "presence_penalty": semconv.GEN_AI_REQUEST_PRESENCE_PENALTY,
    "seed": semconv.GEN_AI_REQUEST_SEED,
    "service_tier": semconv.OPENAI_REQUEST_SERVICE_TIER,
    "stream": semconv.GEN_AI_REQUEST_STREAM,
}


_CHAT_API_TYPE = semconv.OpenaiApiTypeValues.CHAT_COMPLETIONS.value  # an enum's .value costs a descriptor call


def chat_request_attributes(body: dict[str, Any], attributes: Attributes) -> None:
    attributes[semconv.OPENAI_API_TYPE] = _CHAT_API_TYPE
    _set_common(body, attributes, _CHAT_PARAMS)
    max_tokens = body.get("max_completion_tokens")
    if max_tokens is None:
        max_tokens = body.get("max_tokens")
    if max_tokens is not None:
        attributes[semconv.GEN_AI_REQUEST_MAX_TOKENS] = max_tokens
    choices = body.get("n")
    if choices is not None and choices != 1:
        attributes[semconv.GEN_AI_REQUEST_CHOICE_COUNT] = choices
    stop = body.get("stop")
    if stop is not None:
        attributes[semconv.GEN_AI_REQUEST_STOP_SEQUENCES] = (stop,) if isinstance(stop, str) else tuple(stop)
    response_format = body.get("response_format")
    if isinstance(response_format, dict):
        output_type = _OUTPUT_TYPES.get(response_format.get("type"))  # type: ignore[arg-type]
        if output_type is not None:
            attributes[semconv.GEN_AI_OUTPUT_TYPE] = output_type


def chat_usage(usage: Any) -> TokenUsage:
    prompt_details = usage.prompt_tokens_details
    completion_details = usage.completion_tokens_details
    # tuple.__new__: the NamedTuple without its Python-level __new__ (once per call).
    return tuple.__new__(
        TokenUsage,
        (
            usage.prompt_tokens,
            usage.completion_tokens,
            getattr(prompt_details, "cached_tokens", None),
            getattr(prompt_details, "cache_write_tokens", None),
            getattr(completion_details, "reasoning_tokens", None),
        ),
    )


def chat_result(call: Call, result: Any) -> None:
    attributes = call.attributes
    attributes[semconv.GEN_AI_RESPONSE_ID] = result.id
    call.response_model = result.model
    choices = result.choices
    call.finish_reasons = [choice.finish_reason for choice in choices if choice.finish_reason]
    fingerprint = result.system_fingerprint
    if fingerprint:
        attributes[semconv.OPENAI_RESPONSE_SYSTEM_FINGERPRINT] = fingerprint
    service_tier = result.service_tier
    if service_tier:
        attributes[semconv.OPENAI_RESPONSE_SERVICE_TIER] = service_tier
    usage = result.usage
    if usage is not None:
        call.usage = chat_usage(usage)
    if call.content is not None:
        call.content.outputs = _content.chat_output(choices)


def chat_chunk(call: Call, chunk: Any) -> bool:
    if call.response_model is None:
        call.response_model = chunk.model
        call.attributes[semconv.GEN_AI_RESPONSE_ID] = chunk.id
    usage = chunk.usage
    choices = chunk.choices
    if usage is not None:
        call.usage = chat_usage(usage)
        if not choices and call.hide_usage_chunk:
            return False
    if choices:
        for choice in choices:
            reason = choice.finish_reason
            if reason is not None:
                call.finish_reasons.append(reason)
            texts = call.texts
            if texts is not None:
                content = choice.delta.content if choice.delta is not None else None
                if content:
                    texts.setdefault(choice.index, []).append(content)
                else:
                    texts.setdefault(choice.index, [])
                if reason is not None:
                    call.text_finish_reasons[choice.index] = reason
    return True


def chat_input_content(body: dict[str, Any]) -> Content:
    return _content.chat_input(body)


# --- responses ----------------------------------------------------------------------------------

_RESPONSES_PARAMS = {
    "temperature": semconv.GEN_AI_REQUEST_TEMPERATURE,
    "top_p": semconv.GEN_AI_REQUEST_TOP_P,
    "max_output_tokens": semconv.GEN_AI_REQUEST_MAX_TOKENS,
    "service_tier": semconv.OPENAI_REQUEST_SERVICE_TIER,
    "stream": semconv.GEN_AI_REQUEST_STREAM,
}
_RESPONSE_FINAL_EVENTS = frozenset({"response.completed", "response.incomplete", "response.failed"})
_RESPONSE_STATUS_FINISH_REASONS = {"completed": "stop", "failed": "error", "cancelled": "cancelled"}


_RESPONSES_API_TYPE = semconv.OpenaiApiTypeValues.RESPONSES.value


def responses_request_attributes(body: dict[str, Any], attributes: Attributes) -> None:
    attributes[semconv.OPENAI_API_TYPE] = _RESPONSES_API_TYPE
    _set_common(body, attributes, _RESPONSES_PARAMS)
    text = body.get("text")
    if isinstance(text, dict):
        response_format = text.get("format")
        if isinstance(response_format, dict):
            output_type = _OUTPUT_TYPES.get(response_format.get("type"))  # type: ignore[arg-type]
            if output_type is not None:
                attributes[semconv.GEN_AI_OUTPUT_TYPE] = output_type


def responses_usage(usage: Any) -> TokenUsage:
    input_details = usage.input_tokens_details
    output_details = usage.output_tokens_details
    return TokenUsage(
        usage.input_tokens,
        usage.output_tokens,
        getattr(input_details, "cached_tokens", None),
        getattr(input_details, "cache_write_tokens", None),
        getattr(output_details, "reasoning_tokens", None),
    )


def responses_result(call: Call, response: Any) -> None:
    attributes = call.attributes
    attributes[semconv.GEN_AI_RESPONSE_ID] = response.id
    call.response_model = response.model
    status = response.status
    if status == "incomplete":
        details = response.incomplete_details
        reason = getattr(details, "reason", None) or "incomplete"
    else:
        reason = _RESPONSE_STATUS_FINISH_REASONS.get(status, status)
    if reason:
        call.finish_reasons = [reason]
    if status == "failed":
        error = response.error
        call.error_type = getattr(error, "code", None) or "response.failed"
    service_tier = response.service_tier
    if service_tier:
        attributes[semconv.OPENAI_RESPONSE_SERVICE_TIER] = service_tier
    usage = response.usage
    if usage is not None:
        call.usage = responses_usage(usage)
    if call.content is not None:
        call.content.outputs = _content.responses_output(response, reason)


def responses_event(call: Call, event: Any) -> bool:
    kind = event.type
    if kind in _RESPONSE_FINAL_EVENTS:
        responses_result(call, event.response)
    elif kind == "response.created":
        response = event.response
        call.response_model = response.model
        call.attributes[semconv.GEN_AI_RESPONSE_ID] = response.id
    elif kind == "error":
        call.error_type = getattr(event, "code", None) or "error"
    return True


def responses_input_content(body: dict[str, Any]) -> Content:
    return _content.responses_input(body)


# --- embeddings ---------------------------------------------------------------------------------


def embeddings_request_attributes(body: dict[str, Any], attributes: Attributes) -> None:
    encoding_format = body.get("encoding_format")
    if encoding_format is not None:
        attributes[semconv.GEN_AI_REQUEST_ENCODING_FORMATS] = (encoding_format,)
    dimensions = body.get("dimensions")
    if dimensions is not None:
        attributes[semconv.GEN_AI_EMBEDDINGS_DIMENSION_COUNT] = dimensions


def embeddings_result(call: Call, result: Any) -> None:
    call.response_model = result.model
    data = result.data
    if data:
        embedding = data[0].embedding
        if isinstance(embedding, list):
            call.attributes[semconv.GEN_AI_EMBEDDINGS_DIMENSION_COUNT] = len(embedding)
    usage = result.usage
    if usage is not None:
        call.usage = TokenUsage(usage.prompt_tokens)


ENDPOINTS: dict[str, Endpoint] = {
    endpoint.path: endpoint
    for endpoint in (
        Endpoint(
            "/chat/completions",
            semconv.GenAiOperationNameValues.CHAT.value,
            chat_request_attributes,
            chat_result,
            chat_chunk,
            chat_input_content,
            stream_usage=True,
        ),
        Endpoint(
            "/responses",
            # "chat", as upstream's instrumentation and the OpenAI span conventions use for the Responses API.
            semconv.GenAiOperationNameValues.CHAT.value,
            responses_request_attributes,
            responses_result,
            responses_event,
            responses_input_content,
            stream_usage=False,
        ),
        Endpoint(
            "/embeddings",
            semconv.GenAiOperationNameValues.EMBEDDINGS.value,
            embeddings_request_attributes,
            embeddings_result,
            None,
            None,
            stream_usage=False,
        ),
    )
}
"""Instrumented endpoints by the ``url`` of the client's request options."""
