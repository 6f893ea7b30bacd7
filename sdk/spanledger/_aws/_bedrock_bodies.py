"""What the Bedrock model families put in InvokeModel bodies and stream chunks: token usage, finish
reasons and generated text (Anthropic Messages, Amazon Nova and Titan, Meta Llama, Mistral, Cohere)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from .._genai import TokenUsage

__all__ = [
    "INVOCATION_METRICS",
    "finish_reasons_from_body",
    "invocation_metrics_usage",
    "request_settings_from_body",
    "text_from_body",
    "usage_from_body",
    "usage_from_headers",
]

INVOCATION_METRICS = "amazon-bedrock-invocationMetrics"
"""Bedrock's own count, appended to the last chunk of an InvokeModelWithResponseStream."""


def usage_from_headers(headers: Mapping[str, str]) -> TokenUsage:
    """``x-amzn-bedrock-*-token-count`` response headers (InvokeModel)."""
    return TokenUsage.from_uncached(
        headers.get("x-amzn-bedrock-input-token-count"),
        headers.get("x-amzn-bedrock-output-token-count"),
        headers.get("x-amzn-bedrock-cache-read-input-token-count"),
        headers.get("x-amzn-bedrock-cache-write-input-token-count"),
    )


def invocation_metrics_usage(doc: Mapping[str, Any]) -> TokenUsage | None:
    metrics = doc.get(INVOCATION_METRICS)
    if not isinstance(metrics, Mapping):
        return None
    return TokenUsage.from_uncached(
        metrics.get("inputTokenCount"),
        metrics.get("outputTokenCount"),
        metrics.get("cacheReadInputTokenCount"),
        metrics.get("cacheWriteInputTokenCount"),
    )


def converse_usage(usage: Mapping[str, Any]) -> TokenUsage:
    """The Converse ``usage`` block (also Nova's InvokeModel ``usage`` and stream ``metadata.usage``)."""
    return TokenUsage.from_uncached(
        usage.get("inputTokens"),
        usage.get("outputTokens"),
        usage.get("cacheReadInputTokens", usage.get("cacheReadInputTokenCount")),
        usage.get("cacheWriteInputTokens", usage.get("cacheWriteInputTokenCount")),
    )


def usage_from_body(doc: Mapping[str, Any]) -> TokenUsage:
    """Token usage from a response body or one stream chunk, whatever the model family; fields the
    body does not carry stay None."""
    usage = doc.get("usage")
    if not isinstance(usage, Mapping):
        message = doc.get("message")  # Anthropic stream ``message_start``
        usage = message.get("usage") if isinstance(message, Mapping) else None
    if not isinstance(usage, Mapping):
        metadata = doc.get("metadata")  # Nova stream ``metadata``
        usage = metadata.get("usage") if isinstance(metadata, Mapping) else None
    if isinstance(usage, Mapping):
        if "inputTokens" in usage or "outputTokens" in usage:
            return converse_usage(usage)
        return TokenUsage.from_uncached(
            usage.get("input_tokens"),
            usage.get("output_tokens"),
            usage.get("cache_read_input_tokens"),
            usage.get("cache_creation_input_tokens"),
        )
    if "inputTextTokenCount" in doc or "totalOutputTextTokenCount" in doc or "results" in doc:  # Titan
        output = doc.get("totalOutputTextTokenCount")
        results = doc.get("results")
        if output is None and isinstance(results, list):
            output = sum(int(r.get("tokenCount", 0)) for r in results if isinstance(r, Mapping))
        return TokenUsage.from_uncached(doc.get("inputTextTokenCount"), output)
    if "prompt_token_count" in doc or "generation_token_count" in doc:  # Llama
        return TokenUsage.from_uncached(doc.get("prompt_token_count"), doc.get("generation_token_count"))
    return TokenUsage()


_PER_RESULT_REASONS = (("results", "completionReason"), ("outputs", "stop_reason"), ("generations", "finish_reason"))


def finish_reasons_from_body(doc: Mapping[str, Any]) -> list[str]:
    for key in ("stop_reason", "stopReason", "completionReason", "finish_reason"):
        value = doc.get(key)
        if isinstance(value, str):
            return [value]
    delta = doc.get("delta")  # Anthropic stream ``message_delta``
    if isinstance(delta, Mapping) and isinstance(delta.get("stop_reason"), str):
        return [delta["stop_reason"]]
    stop = doc.get("messageStop")  # Nova stream
    if isinstance(stop, Mapping) and isinstance(stop.get("stopReason"), str):
        return [stop["stopReason"]]
    reasons: list[str] = []
    for key, reason_key in _PER_RESULT_REASONS:
        items = doc.get(key)
        if isinstance(items, list):
            reasons.extend(str(i[reason_key]) for i in items if isinstance(i, Mapping) and i.get(reason_key))
    return reasons


def text_from_body(doc: Mapping[str, Any]) -> str:
    """Generated text in a body or chunk (for opt-in content capture)."""
    parts: list[str] = []
    content = doc.get("content")
    if isinstance(content, list):  # Anthropic
        parts.extend(str(block.get("text", "")) for block in content if isinstance(block, Mapping))
    delta = doc.get("delta")
    if isinstance(delta, Mapping) and isinstance(delta.get("text"), str):
        parts.append(delta["text"])
    block_delta = doc.get("contentBlockDelta")  # Nova stream
    if isinstance(block_delta, Mapping):
        inner = block_delta.get("delta")
        if isinstance(inner, Mapping) and isinstance(inner.get("text"), str):
            parts.append(inner["text"])
    output = doc.get("output")  # Nova
    if isinstance(output, Mapping):
        message = output.get("message")
        if isinstance(message, Mapping) and isinstance(message.get("content"), list):
            parts.extend(str(block.get("text", "")) for block in message["content"] if isinstance(block, Mapping))
    for key in ("outputText", "generation", "completion"):
        if isinstance(doc.get(key), str):
            parts.append(doc[key])
    for key, text_key in (("results", "outputText"), ("outputs", "text"), ("generations", "text")):
        items = doc.get(key)
        if isinstance(items, list):
            parts.extend(str(item.get(text_key, "")) for item in items if isinstance(item, Mapping))
    return "".join(parts)


def request_settings_from_body(doc: Mapping[str, Any]) -> dict[str, Any]:
    """Sampling settings of an InvokeModel request body: max_tokens, temperature, top_p, top_k."""
    config: Mapping[str, Any] = doc
    for nested in ("textGenerationConfig", "inferenceConfig"):  # Titan, Nova
        if isinstance(doc.get(nested), Mapping):
            config = doc[nested]
    settings: dict[str, Any] = {}
    for name, keys in (
        ("max_tokens", ("max_tokens", "max_tokens_to_sample", "max_gen_len", "maxTokenCount", "max_new_tokens")),
        ("temperature", ("temperature",)),
        ("top_p", ("top_p", "topP", "p")),
        ("top_k", ("top_k", "topK", "k")),
    ):
        for key in keys:
            value = config.get(key)
            if isinstance(value, (int, float)) and not isinstance(value, bool):
                settings[name] = value
                break
    return settings
