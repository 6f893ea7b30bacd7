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
from .._genai import OperationKey, TokenUsage, to_json
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


def _output_message(text: str, finish_reasons: list[str]) -> str:
    message: dict[str, Any] = {"role": "assistant", "parts": [{"type": "text", "content": text}]}
    if finish_reasons:
        message["finish_reason"] = finish_reasons[0]
    return to_json([message])


def _converse_messages(messages: Any) -> list[dict[str, Any]]:
    """Converse messages in the GenAI message shape (text parts; other blocks by their kind)."""
    converted = []
    for message in messages if isinstance(messages, list) else []:
        if not isinstance(message, Mapping):
            continue
        parts = []
        for block in message.get("content") or []:
            if isinstance(block, Mapping) and "text" in block:
                parts.append({"type": "text", "content": block["text"]})
            elif isinstance(block, Mapping):
                kind = next(iter(block), "unknown")
                parts.append({"type": kind, "content": block.get(kind)})
        converted.append({"role": message.get("role"), "parts": parts})
    return converted


def _record_metrics(call: AwsCall, usage: TokenUsage | None, error: str | None) -> None:
    attributes = call.attributes
    key = OperationKey(
        str(attributes.get(semconv.GEN_AI_OPERATION_NAME)),
        semconv.GenAiProviderNameValues.AWS_BEDROCK.value,
        attributes.get(semconv.GEN_AI_REQUEST_MODEL),  # type: ignore[arg-type]
        attributes.get(semconv.SERVER_ADDRESS),  # type: ignore[arg-type]
    )
    call.instruments.genai.record(key, None, time.perf_counter() - call.started, None, usage, error)


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
        capture = call.telemetry.settings.capture_message_content
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
                attributes[semconv.GEN_AI_INPUT_MESSAGES] = to_json(_converse_messages(params.get("messages")))
                if params.get("system"):
                    attributes[semconv.GEN_AI_SYSTEM_INSTRUCTIONS] = to_json(params["system"])
        else:
            body = self._request_body(params.get("body"))
            if "embed" in model_id:
                operation = _Operation.EMBEDDINGS
            elif "messages" in body:
                operation = _Operation.CHAT
            else:
                operation = _Operation.TEXT_COMPLETION
            attributes[semconv.GEN_AI_OPERATION_NAME] = operation.value
            settings = request_settings_from_body(body)
            prompt = body.get("messages") or body.get("prompt") or body.get("inputText")
            if capture and prompt:
                attributes[semconv.GEN_AI_INPUT_MESSAGES] = to_json(prompt)
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
            call.set(semconv.GEN_AI_RESPONSE_MODEL, outcome.response_model)
            if outcome.first_chunk_at is not None:
                call.set(semconv.GEN_AI_RESPONSE_TIME_TO_FIRST_CHUNK, outcome.first_chunk_at - call.started)
            if call.telemetry.settings.capture_message_content and outcome.text:
                call.set(semconv.GEN_AI_OUTPUT_MESSAGES, _output_message("".join(outcome.text), outcome.finish_reasons))
        _record_metrics(call, usage, None)

    def _converse(self, call: AwsCall, result: Mapping[str, Any]) -> None:
        usage_block = result.get("usage")
        usage = converse_usage(usage_block) if isinstance(usage_block, Mapping) else TokenUsage()
        stop = result.get("stopReason")
        if isinstance(stop, str):
            call.set(semconv.GEN_AI_RESPONSE_FINISH_REASONS, [stop])
        if call.telemetry.settings.capture_message_content:
            message = (result.get("output") or {}).get("message")
            if message is not None:
                converted = _converse_messages([message])
                if converted and isinstance(stop, str):
                    converted[0]["finish_reason"] = stop
                call.set(semconv.GEN_AI_OUTPUT_MESSAGES, to_json(converted))
        self._complete(call, usage, None)

    def _observe_stream(self, call: AwsCall, result: dict[str, Any], key: str) -> None:
        outcome = _Outcome()
        capture = call.telemetry.settings.capture_message_content
        converse = call.operation == "ConverseStream"

        def on_event(event: Any) -> None:
            if outcome.first_chunk_at is None:
                outcome.first_chunk_at = time.perf_counter()
            if not isinstance(event, Mapping):
                return
            if converse:
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
                doc = json.loads(chunk["bytes"])
                if isinstance(doc, Mapping):
                    outcome.absorb_body(doc, capture=capture)

        def on_end(wire_bytes: int | None, error: BaseException | None) -> None:
            call.record_wire_bytes(wire_bytes)
            if error is None:
                self._complete(call, outcome.final_usage(), outcome)
            else:
                _record_metrics(call, None, error_type(error))
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
        capture = call.telemetry.settings.capture_message_content

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
