"""Bedrock runtime: a GenAI span per InvokeModel / InvokeModelWithResponseStream / Converse / ConverseStream.

Token counts come from, in order of trust: the stream's ``amazon-bedrock-invocationMetrics`` (Bedrock's
own count), the ``x-amzn-bedrock-*-token-count`` headers, the Converse ``usage`` block or stream
``metadata`` event, then the model family's body. InvokeModel's body is observed as the caller reads it
(a copy of at most 1 MiB is parsed once the caller has read it all), so its span ends when the body has
been read or closed; streams end their span when the caller finishes iterating.
"""

from __future__ import annotations

import json
import time
from collections.abc import Mapping
from typing import Any

from .. import semconv
from .._genai import Content, OperationKey, TokenUsage, arguments_object, tool_definition
from .._genai._resource import inference_target_arn
from ._bedrock_bodies import (
    converse_usage,
    finish_reasons_from_body,
    invocation_metrics_usage,
    request_settings_from_body,
    text_from_body,
    usage_from_body,
    usage_from_headers,
)
from ._call import AwsCall, error_type
from ._extension import ServiceExtension, response_content_length
from ._resource import account_from_arn
from ._streams import CountingRawStream, observe_event_stream

__all__ = ["BedrockRuntimeExtension"]

_Operation = semconv.GenAiOperationNameValues
_PARSED_BODY_LIMIT = 1 << 20
_GENAI_OPERATIONS = frozenset({"InvokeModel", "InvokeModelWithResponseStream", "Converse", "ConverseStream"})


def _output_message(text: str, finish_reasons: list[str]) -> dict[str, Any]:
    message: dict[str, Any] = {"role": "assistant", "parts": [{"type": "text", "content": text}]}
    if finish_reasons:
        message["finish_reason"] = finish_reasons[0]
    return message


def _block_parts(content: Any) -> list[dict[str, Any]]:
    """Converse or Anthropic content blocks as message parts (text, tool calls and results; others by kind)."""
    if isinstance(content, str):
        return [{"type": "text", "content": content}]
    parts: list[dict[str, Any]] = []
    for block in content if isinstance(content, list) else []:
        if not isinstance(block, Mapping):
            continue
        if isinstance(block.get("text"), str):
            parts.append({"type": "text", "content": block["text"]})
        elif isinstance(block.get("toolUse"), Mapping):  # Converse
            use = block["toolUse"]
            parts.append({"type": "tool_call", "id": use.get("toolUseId"), "name": use.get("name"),
                          "arguments": arguments_object(use.get("input"))})
        elif isinstance(block.get("toolResult"), Mapping):
            result = block["toolResult"]
            parts.append({"type": "tool_call_response", "id": result.get("toolUseId"),
                          "response": result.get("content")})
        elif block.get("type") == "tool_use":  # Anthropic on InvokeModel
            parts.append({"type": "tool_call", "id": block.get("id"), "name": block.get("name"),
                          "arguments": arguments_object(block.get("input"))})
        elif block.get("type") == "tool_result":
            parts.append({"type": "tool_call_response", "id": block.get("tool_use_id"),
                          "response": block.get("content")})
        else:
            parts.append({"type": str(block.get("type") or next(iter(block), "unknown"))})
    return parts


def _messages(messages: Any) -> list[dict[str, Any]]:
    """Converse or Anthropic-style messages in the GenAI message shape."""
    return [
        {"role": message.get("role"), "parts": _block_parts(message.get("content"))}
        for message in (messages if isinstance(messages, list) else [])
        if isinstance(message, Mapping)
    ]


def _converse_tools(config: Any) -> list[dict[str, Any]]:
    tools = config.get("tools") if isinstance(config, Mapping) else None
    definitions = []
    for tool in tools if isinstance(tools, list) else []:
        spec = tool.get("toolSpec") if isinstance(tool, Mapping) else None
        if isinstance(spec, Mapping):
            schema = spec.get("inputSchema")
            parameters = schema.get("json") if isinstance(schema, Mapping) else None
            definitions.append(tool_definition("function", spec.get("name"), spec.get("description"), parameters))
    return definitions


def _body_content(body: Mapping[str, Any]) -> Content:
    """What an InvokeModel body says, whatever the model family (messages, prompt or inputText)."""
    content = Content()
    if isinstance(body.get("messages"), list):
        content.inputs = _messages(body["messages"])
    else:
        prompt = body.get("prompt") or body.get("inputText")
        if isinstance(prompt, str):
            content.inputs = [{"role": "user", "parts": [{"type": "text", "content": prompt}]}]
    content.system = _block_parts(body.get("system"))
    for tool in body.get("tools") or []:
        if isinstance(tool, Mapping) and tool.get("name"):
            content.tools.append(
                tool_definition("function", tool.get("name"), tool.get("description"), tool.get("input_schema"))
            )
    return content


def _response_model(call: AwsCall, outcome: _Outcome | None) -> str | None:
    """The model that answered: the response's own word, else the model id asked for.

    Bedrock serves the foundation model (or the inference profile's model) that was named and does not
    say so again in Converse responses; an ARN (a prompt router may pick the model) is not assumed.
    """
    if outcome is not None and outcome.response_model:
        return outcome.response_model
    requested = call.attributes.get(semconv.GEN_AI_REQUEST_MODEL)
    if isinstance(requested, str) and requested and not requested.startswith("arn:"):
        return requested
    return None


def _record_metrics(
    call: AwsCall, usage: TokenUsage | None, error: str | None, outcome: _Outcome | None = None
) -> None:
    attributes = call.attributes
    key = OperationKey(
        str(attributes.get(semconv.GEN_AI_OPERATION_NAME)),
        semconv.GenAiProviderNameValues.AWS_BEDROCK.value,
        attributes.get(semconv.GEN_AI_REQUEST_MODEL),  # type: ignore[arg-type]
        attributes.get(semconv.SERVER_ADDRESS),  # type: ignore[arg-type]
        attributes.get(semconv.SERVER_PORT),  # type: ignore[arg-type]
    )
    time_to_first_chunk = None
    chunk_times_ns: list[int] = []
    if outcome is not None:
        if outcome.first_chunk_at is not None:
            time_to_first_chunk = outcome.first_chunk_at - call.started
        chunk_times_ns = outcome.chunk_times_ns
    call.instruments.genai.record(
        key,
        _response_model(call, outcome) if error is None else None,
        time.perf_counter() - call.started,
        time_to_first_chunk,
        usage,
        error,
        chunk_times_ns,
    )


class _Outcome:
    """What a response told us, gathered from wherever it arrives (body, headers, stream events)."""

    def __init__(self) -> None:
        self.usage = TokenUsage()
        self.bedrock_usage: TokenUsage | None = None
        self.finish_reasons: list[str] = []
        self.text: list[str] = []
        self.response_id: str | None = None
        self.response_model: str | None = None
        self.first_chunk_at: float | None = None
        self.chunk_times_ns: list[int] = []
        """When each output chunk of a stream arrived (``perf_counter_ns``, the clock of ``call.started``)."""

    def absorb_body(self, doc: Mapping[str, Any], *, capture: bool) -> None:
        """One InvokeModel body or stream chunk; later chunks update what earlier ones said."""
        self.usage = self.usage.overlaid(usage_from_body(doc))
        bedrock_usage = invocation_metrics_usage(doc)
        if bedrock_usage is not None:
            self.bedrock_usage = bedrock_usage
        self.finish_reasons = finish_reasons_from_body(doc) or self.finish_reasons
        message = doc.get("message")
        source = message if isinstance(message, Mapping) else doc
        if isinstance(source.get("id"), str):
            self.response_id = source["id"]
        if isinstance(source.get("model"), str):
            self.response_model = source["model"]
        if capture:
            self.text.append(text_from_body(doc))

    def final_usage(self, headers: TokenUsage | None = None) -> TokenUsage:
        usage = TokenUsage()
        for source in (self.bedrock_usage, headers, self.usage):
            if source is not None:
                usage = usage.merged(source)
        return usage


class BedrockRuntimeExtension(ServiceExtension):
    def span_name(self, call: AwsCall, service_id: str) -> str:
        if call.operation not in _GENAI_OPERATIONS:
            return super().span_name(call, service_id)
        operation = call.attributes[semconv.GEN_AI_OPERATION_NAME]
        model = call.attributes[semconv.GEN_AI_REQUEST_MODEL]
        return f"{operation!s} {model!s}"

    def before_call(self, call: AwsCall) -> None:
        if call.operation not in _GENAI_OPERATIONS:
            return
        params = call.params
        attributes = call.attributes
        model_id = str(params.get("modelId", ""))
        if model_id.startswith("arn:"):
            call.account = account_from_arn(model_id) or call.account
        attributes[semconv.GEN_AI_PROVIDER_NAME] = semconv.GenAiProviderNameValues.AWS_BEDROCK.value
        attributes[semconv.GEN_AI_REQUEST_MODEL] = model_id
        attributes[semconv.CLOUD_RESOURCE_ID] = inference_target_arn(model_id, call.region, call.account)
        if call.operation.endswith("Stream"):
            attributes[semconv.GEN_AI_REQUEST_STREAM] = True
        capture = call.instruments.genai.capture_content
        if call.operation.startswith("Converse"):
            attributes[semconv.GEN_AI_OPERATION_NAME] = _Operation.CHAT.value
            config = params.get("inferenceConfig") or {}
            settings = {
                "max_tokens": config.get("maxTokens"),
                "temperature": config.get("temperature"),
                "top_p": config.get("topP"),
            }
            stop = config.get("stopSequences")
            if isinstance(stop, list):
                attributes[semconv.GEN_AI_REQUEST_STOP_SEQUENCES] = [str(s) for s in stop]
            if capture:
                call.content = Content(
                    inputs=_messages(params.get("messages")),
                    system=_block_parts(params.get("system")),
                    tools=_converse_tools(params.get("toolConfig")),
                )
        else:
            body = self._request_body(params.get("body"))
            if "embed" in model_id:
                operation = _Operation.EMBEDDINGS
            elif "messages" not in body and ("prompt" in body or "inputText" in body):
                operation = _Operation.TEXT_COMPLETION
            else:
                # A messages body, or one spanledger cannot read (empty, a file object, not JSON): the
                # models Bedrock serves today are chat models, and nothing says this is a completion.
                operation = _Operation.CHAT
            attributes[semconv.GEN_AI_OPERATION_NAME] = operation.value
            settings = request_settings_from_body(body)
            if capture:
                call.content = _body_content(body)
        for name, key in (
            ("max_tokens", semconv.GEN_AI_REQUEST_MAX_TOKENS),
            ("temperature", semconv.GEN_AI_REQUEST_TEMPERATURE),
            ("top_p", semconv.GEN_AI_REQUEST_TOP_P),
            ("top_k", semconv.GEN_AI_REQUEST_TOP_K),
        ):
            value = settings.get(name)
            if isinstance(value, (int, float)) and not isinstance(value, bool):
                attributes[key] = value

    @staticmethod
    def _request_body(body: Any) -> dict[str, Any]:
        """The caller's request body when it is in memory and small (a file-like body is never read)."""
        if isinstance(body, (bytes, bytearray, str)) and len(body) <= _PARSED_BODY_LIMIT:
            try:
                parsed = json.loads(body)
            except ValueError:
                return {}
            return parsed if isinstance(parsed, dict) else {}
        return {}

    def on_success(self, call: AwsCall, result: dict[str, Any]) -> bool:
        operation = call.operation
        if operation == "Converse":
            self._converse(call, result)
        elif operation == "ConverseStream" and result.get("stream") is not None:
            self._observe_stream(call, result, "stream")
            return False
        elif operation == "InvokeModelWithResponseStream" and result.get("body") is not None:
            self._observe_stream(call, result, "body")
            return False
        elif operation == "InvokeModel" and self._observe_body(call, result):
            return False
        return super().on_success(call, result)

    def on_error(self, call: AwsCall, error: BaseException) -> None:
        super().on_error(call, error)
        if call.operation in _GENAI_OPERATIONS:
            _record_metrics(call, None, error_type(error))

    @staticmethod
    def _complete(call: AwsCall, usage: TokenUsage, outcome: _Outcome | None) -> None:
        usage_attributes: dict[str, Any] = {}
        call.instruments.genai.add_usage_attributes(usage_attributes, usage)
        call.update(usage_attributes)
        if outcome is not None:
            if outcome.finish_reasons:
                call.set(semconv.GEN_AI_RESPONSE_FINISH_REASONS, outcome.finish_reasons)
            call.set(semconv.GEN_AI_RESPONSE_ID, outcome.response_id)
            if outcome.first_chunk_at is not None:
                call.set(semconv.GEN_AI_RESPONSE_TIME_TO_FIRST_CHUNK, outcome.first_chunk_at - call.started)
            if call.content is not None and outcome.text:
                call.content.outputs = [_output_message("".join(outcome.text), outcome.finish_reasons)]
        call.set(semconv.GEN_AI_RESPONSE_MODEL, _response_model(call, outcome))
        genai = call.instruments.genai
        if call.span is not None and (genai.capture_content or genai.emit_event):
            genai.finish_content(call.span, call.attributes, call.pending, call.content)
        _record_metrics(call, usage, None, outcome)

    def _converse(self, call: AwsCall, result: Mapping[str, Any]) -> None:
        usage_block = result.get("usage")
        usage = converse_usage(usage_block) if isinstance(usage_block, Mapping) else TokenUsage()
        stop = result.get("stopReason")
        if isinstance(stop, str):
            call.set(semconv.GEN_AI_RESPONSE_FINISH_REASONS, [stop])
        if call.content is not None:
            message = (result.get("output") or {}).get("message")
            if message is not None:
                converted = _messages([message])
                if converted and isinstance(stop, str):
                    converted[0]["finish_reason"] = stop
                call.content.outputs = converted
        self._complete(call, usage, None)

    def _observe_stream(self, call: AwsCall, result: dict[str, Any], key: str) -> None:
        outcome = _Outcome()
        capture = call.content is not None
        converse = call.operation == "ConverseStream"

        def on_event(event: Any) -> None:
            now = time.perf_counter_ns()
            if outcome.first_chunk_at is None:
                outcome.first_chunk_at = now / 1e9
            if not isinstance(event, Mapping):
                return
            if converse:
                if "contentBlockDelta" in event:
                    outcome.chunk_times_ns.append(now)
                if "metadata" in event:
                    usage = event["metadata"].get("usage")
                    if isinstance(usage, Mapping):
                        outcome.usage = converse_usage(usage)
                elif "messageStop" in event:
                    outcome.finish_reasons = [str(event["messageStop"].get("stopReason"))]
                elif capture and "contentBlockDelta" in event:
                    outcome.text.append(str(event["contentBlockDelta"].get("delta", {}).get("text", "")))
                return
            chunk = event.get("chunk")
            if isinstance(chunk, Mapping) and chunk.get("bytes"):
                outcome.chunk_times_ns.append(now)
                doc = json.loads(chunk["bytes"])
                if isinstance(doc, Mapping):
                    outcome.absorb_body(doc, capture=capture)

        def on_end(wire_bytes: int | None, error: BaseException | None) -> None:
            call.record_wire_bytes(wire_bytes)
            if error is None:
                self._complete(call, outcome.final_usage(), outcome)
            else:
                _record_metrics(call, None, error_type(error), outcome)
            call.end(error)

        result[key] = observe_event_stream(result[key], on_event, on_end)

    def _observe_body(self, call: AwsCall, result: dict[str, Any]) -> bool:
        """Observe InvokeModel's body as the caller reads it; False when it cannot be observed."""
        body = result.get("body")
        raw = getattr(body, "_raw_stream", None)
        headers = result.get("ResponseMetadata", {}).get("HTTPHeaders", {})
        header_usage = usage_from_headers(headers)
        if raw is None:
            self._complete(call, header_usage, None)
            return False
        length = response_content_length(result)
        capture = call.content is not None

        def on_done(count: int, kept: bytes | None) -> None:
            outcome = _Outcome()
            if kept:
                try:
                    doc = json.loads(kept)
                except ValueError:
                    doc = None
                if isinstance(doc, Mapping):
                    outcome.absorb_body(doc, capture=capture)
            call.record_wire_bytes(count)
            self._complete(call, outcome.final_usage(header_usage), outcome)
            call.end()

        body._raw_stream = CountingRawStream(raw, on_done, expected_length=length, keep=_PARSED_BODY_LIMIT)  # type: ignore[union-attr]
        return True
