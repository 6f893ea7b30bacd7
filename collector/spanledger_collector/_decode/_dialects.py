"""Other producers' spans read as the OTel GenAI names the usage extraction prices (issue 15).

``semconv/usage-sources.yaml`` (generated into ``_usage_sources``) says which attribute of which dialect
fills which usage field, in precedence order. :func:`standard_view` answers the OTel GenAI names the
usage extraction reads from whichever of those attributes a span carries, converting where the dialect's
definition differs (input tokens without cache tokens; output tokens only as a total).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Final

from opentelemetry.proto.common.v1.common_pb2 import AnyValue
from spanledger import semconv

from ._otlp import any_value
from ._usage_sources import PROVIDER_VALUES, USAGE_SOURCES

__all__ = ["REPORT_MARKS", "AttributeGetter", "may_report", "standard_view"]

AttributeGetter = Callable[[str], "bytes | None"]
"""A span's attribute lookup: the encoded ``AnyValue`` of a name, or None."""

# Fields read as-is, by the OTel GenAI (or server/cloud) name the usage extraction reads them under.
_AS_STANDARD: Final = {
    "provider": semconv.GEN_AI_PROVIDER_NAME,
    "request_model": semconv.GEN_AI_REQUEST_MODEL,
    "response_model": semconv.GEN_AI_RESPONSE_MODEL,
    "input_tokens": semconv.GEN_AI_USAGE_INPUT_TOKENS,
    "cache_read_tokens": semconv.GEN_AI_USAGE_CACHE_READ_INPUT_TOKENS,
    "cache_write_tokens": semconv.GEN_AI_USAGE_CACHE_WRITE_INPUT_TOKENS,
    "output_tokens": semconv.GEN_AI_USAGE_OUTPUT_TOKENS,
    "region": semconv.CLOUD_REGION,
    "server_address": semconv.SERVER_ADDRESS,
    "workflow": semconv.SPANLEDGER_WORKFLOW_NAME,
    "tenant": semconv.SPANLEDGER_TENANT_ID,
}
_UNCACHED_INPUT = "uncached_input_tokens"
_TOTAL = "total_tokens"
# The fields whose presence makes a span report usage (the others only describe it).
_TOKEN_FIELDS: Final = frozenset(
    {"input_tokens", _UNCACHED_INPUT, "cache_read_tokens", "cache_write_tokens", "output_tokens", _TOTAL}
)
_TOKEN_KEYS: Final = frozenset(_AS_STANDARD[field] for field in _TOKEN_FIELDS if field in _AS_STANDARD)
_SOURCES: Final[dict[str, tuple[str, ...]]] = {}
for _source in USAGE_SOURCES:
    _SOURCES[_source.field] = (*_SOURCES.get(_source.field, ()), _source.name)

# spanledger's own names on a span without the owner mark are no usage of their own (the SDK decides
# ownership); its attribution names are read through the workflow and tenant fields.
_OWN_PREFIX = semconv.SPANLEDGER_USAGE_OWNER.split(".", 1)[0] + "."


def _report_marks() -> tuple[bytes, ...]:
    """Byte strings one of which every token attribute name contains: its second name component, dotted
    (``.usage.``, ``.token_count.``). Few and starting with a dot, they are cheap to look for in every span."""
    marks = set()
    for source in USAGE_SOURCES:
        if source.field in _TOKEN_FIELDS:
            parts = source.name.split(".")
            marks.add(f".{parts[1]}." if len(parts) > 2 else source.name)
    kept = sorted(mark for mark in marks if not any(other != mark and other in mark for other in marks))
    return tuple(mark.encode() for mark in kept)


REPORT_MARKS: Final = _report_marks()
"""A span none of whose bytes contain these reports no usage in any dialect (a cheap first test)."""


def may_report(raw: bytes) -> bool:
    return any(mark in raw for mark in REPORT_MARKS)


def _first(get: AttributeGetter, field: str) -> bytes | None:
    for name in _SOURCES[field]:
        raw = get(name)
        if raw is not None:
            return raw
    return None


def _count(raw: bytes | None) -> int | None:
    """A token count the arithmetic below may use: an integer attribute (doubles and text are left as sent)."""
    if raw is None:
        return None
    value = any_value(AnyValue.FromString(raw))
    return value if isinstance(value, int) and not isinstance(value, bool) and value >= 0 else None


def _encoded(value: int | str) -> bytes:
    message = AnyValue(int_value=value) if isinstance(value, int) else AnyValue(string_value=value)
    return bytes(message.SerializeToString())


_PROVIDER_MEMBERS: Final = frozenset(member.value for member in semconv.GenAiProviderNameValues)


def _provider(raw: bytes) -> bytes:
    """A dialect's provider value as a ``gen_ai.provider.name`` value (``openai.chat`` is ``openai``)."""
    value = any_value(AnyValue.FromString(raw))
    if not isinstance(value, str):
        return raw
    prefix = value
    while True:
        if prefix in _PROVIDER_MEMBERS:
            return raw if prefix == value else _encoded(prefix)
        if prefix in PROVIDER_VALUES:
            return _encoded(PROVIDER_VALUES[prefix])
        if "." not in prefix:
            return raw
        prefix = prefix.rsplit(".", 1)[0]


def standard_view(get: AttributeGetter) -> AttributeGetter | None:
    """The span's attributes under the OTel GenAI names, or None where it reports no tokens in any dialect."""
    found: dict[str, bytes] = {}
    for field, key in _AS_STANDARD.items():
        raw = _first(get, field)
        if raw is not None:
            found[key] = raw
    provider_key = semconv.GEN_AI_PROVIDER_NAME
    if provider_key in found:
        found[provider_key] = _provider(found[provider_key])
    input_key = semconv.GEN_AI_USAGE_INPUT_TOKENS
    if input_key not in found and (uncached := _count(_first(get, _UNCACHED_INPUT))) is not None:
        # The dialect counts input without the cache tokens; the OTel name includes them.
        cached = [_count(found.get(key)) for key in (
            semconv.GEN_AI_USAGE_CACHE_READ_INPUT_TOKENS, semconv.GEN_AI_USAGE_CACHE_WRITE_INPUT_TOKENS
        )]  # fmt: skip
        found[input_key] = _encoded(uncached + sum(count or 0 for count in cached))
    output_key = semconv.GEN_AI_USAGE_OUTPUT_TOKENS
    if output_key not in found:
        total, inputs = _count(_first(get, _TOTAL)), _count(found.get(input_key))
        if total is not None and inputs is not None and total >= inputs:
            found[output_key] = _encoded(total - inputs)
    if not _TOKEN_KEYS.intersection(found):
        return None

    def view(key: str) -> bytes | None:
        raw = found.get(key)
        if raw is not None:
            return raw
        if key.startswith(_OWN_PREFIX):
            return None
        return get(key)

    return view
