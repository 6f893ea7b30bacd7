"""GenAI span attributes and metrics for AWS model calls, honouring ``OTEL_SEMCONV_STABILITY_OPT_IN``."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from opentelemetry.util.types import AttributeValue

from .. import semconv
from ._call import AwsCall

__all__ = ["TokenUsage", "record_genai_metrics", "set_usage", "to_json"]

_LATEST = "gen_ai_latest_experimental"


@dataclass
class TokenUsage:
    """Token counts as Bedrock reports them: input tokens *without* the cached ones, and the cache reads
    and writes separately. :attr:`input` is the OTel figure (cache reads and writes included)."""

    uncached_input: int | None = None
    output: int | None = None
    cache_read: int | None = None
    cache_write: int | None = None

    @property
    def input(self) -> int | None:
        if self.uncached_input is None:
            return None
        return self.uncached_input + (self.cache_read or 0) + (self.cache_write or 0)

    def merge(self, other: TokenUsage) -> None:
        """Fill what is still unknown from ``other`` (the source merged first wins)."""
        for name in ("uncached_input", "output", "cache_read", "cache_write"):
            if getattr(self, name) is None:
                setattr(self, name, getattr(other, name))

    @classmethod
    def from_uncached(
        cls, uncached_input: Any, output: Any, cache_read: Any = None, cache_write: Any = None
    ) -> TokenUsage:
        return cls(_int(uncached_input), _int(output), _int(cache_read), _int(cache_write))


def _int(value: Any) -> int | None:
    if isinstance(value, bool) or value is None:
        return None
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


def _wants(opt_in: str) -> tuple[bool, bool]:
    """(emit released names, emit latest names)."""
    modes = {part.strip() for part in opt_in.split(",")}
    if f"{_LATEST}/dup" in modes:
        return True, True
    if _LATEST in modes:
        return False, True
    return True, False


def set_usage(call: AwsCall, usage: TokenUsage) -> None:
    call.set(semconv.GEN_AI_USAGE_INPUT_TOKENS, usage.input)
    call.set(semconv.GEN_AI_USAGE_OUTPUT_TOKENS, usage.output)
    call.set(semconv.GEN_AI_USAGE_CACHE_READ_INPUT_TOKENS, usage.cache_read)
    released, latest = _wants(call.telemetry.settings.semconv_opt_in)
    if released:
        call.set(semconv.GEN_AI_USAGE_CACHE_CREATION_INPUT_TOKENS, usage.cache_write)
    if latest:
        call.set(semconv.GEN_AI_USAGE_CACHE_WRITE_INPUT_TOKENS, usage.cache_write)


def record_genai_metrics(call: AwsCall, usage: TokenUsage, duration: float, error_type: str | None) -> None:
    attributes: dict[str, AttributeValue] = {
        key: value
        for key, value in (
            (semconv.GEN_AI_OPERATION_NAME, call.attributes.get(semconv.GEN_AI_OPERATION_NAME)),
            (semconv.GEN_AI_PROVIDER_NAME, semconv.GenAiProviderNameValues.AWS_BEDROCK.value),
            (semconv.GEN_AI_REQUEST_MODEL, call.attributes.get(semconv.GEN_AI_REQUEST_MODEL)),
            (semconv.SERVER_ADDRESS, call.attributes.get(semconv.SERVER_ADDRESS)),
            (semconv.ERROR_TYPE, error_type),
        )
        if value is not None
    }
    instruments = call.instruments
    instruments.operation_duration.record(duration, attributes)
    if error_type is not None:
        return
    released, latest = _wants(call.telemetry.settings.semconv_opt_in)
    token_type = semconv.GenAiTokenTypeValues
    if released:
        for count, kind in ((usage.input, token_type.INPUT), (usage.output, token_type.OUTPUT)):
            if count is not None:
                instruments.token_usage.record(count, {**attributes, semconv.GEN_AI_TOKEN_TYPE: kind.value})
    if latest:
        for count, counter in (
            (usage.input, instruments.input_tokens),
            (usage.output, instruments.output_tokens),
            (usage.cache_read, instruments.cache_read_tokens),
            (usage.cache_write, instruments.cache_write_tokens),
        ):
            if count:
                counter.add(count, attributes)


def to_json(value: Any) -> str:
    """Captured message content as JSON (binary blocks such as images become their length)."""
    return json.dumps(value, default=_unencodable, ensure_ascii=False)


def _unencodable(value: Any) -> Any:
    if isinstance(value, (bytes, bytearray, memoryview)):
        return f"<{len(value)} bytes>"
    return str(value)
