"""Other producers' spans read as the OTel GenAI names the usage extraction prices (issue 15).

``semconv/usage-sources.yaml`` (generated into ``_usage_sources``) says which attribute of which dialect
fills which usage field, in precedence order. :func:`standard_view` answers the OTel GenAI names the
usage extraction reads from whichever of those attributes a span carries, converting where the dialect's
definition differs (input tokens without cache tokens; output tokens only as a total).
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping
from typing import Any, Final, NamedTuple
from urllib.parse import urlsplit

from opentelemetry.proto.common.v1.common_pb2 import AnyValue
from spanledger import semconv

from ._otlp import any_value
from ._usage_sources import PROVIDER_VALUES, USAGE_SOURCES

__all__ = [
    "AWS_PROVIDER",
    "AWS_RPC_SYSTEM",
    "BEDROCK_MODEL_ARN",
    "BEDROCK_PREFIXES",
    "BEDROCK_PROFILE_ARN",
    "BEDROCK_RUNTIME",
    "REPORT_MARKS",
    "S3",
    "S3_BUCKET_ARN",
    "S3_OBJECT_SOURCE",
    "S3_READS",
    "SAGEMAKER_INVOKE",
    "SAGEMAKER_RUNTIME",
    "AttributeGetter",
    "ObjectRead",
    "compiled_view",
    "may_report",
    "object_read",
    "provider_value",
    "standard_view",
]

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
}
# HTTP body sizes, read on client spans only (a server span's request body is the caller's egress).
_AS_WIRE_BYTES: Final = {
    "request_bytes": semconv.SPANLEDGER_EGRESS_BYTES,
    "response_bytes": semconv.SPANLEDGER_INGRESS_BYTES,
}
# Workflow and tenant: spanledger's own names here, as on its own spans; the other rows of those fields are
# the attribution lists' defaults, looked up on the span and its ancestors after decoding (``_attribution``).
_OWN_ATTRIBUTION: Final = frozenset({semconv.SPANLEDGER_WORKFLOW_NAME, semconv.SPANLEDGER_TENANT_ID})
_UNCACHED_INPUT = "uncached_input_tokens"
_TOTAL = "total_tokens"
# The fields whose presence makes a span report usage (the others only describe it).
_TOKEN_FIELDS: Final = frozenset(
    {"input_tokens", _UNCACHED_INPUT, "cache_read_tokens", "cache_write_tokens", "output_tokens", _TOTAL}
)
_TOKEN_KEYS: Final = frozenset(_AS_STANDARD[field] for field in _TOKEN_FIELDS if field in _AS_STANDARD)
# Fields that make a span report usage without tokens: its full name marks it. AWS API spans are marked by
# their ``rpc.system`` value (``rpc.service`` alone is on other RPC spans too).
_NAMED_REPORT_FIELDS: Final = frozenset({"request_bytes", "response_bytes"})
AWS_RPC_SYSTEM = "aws-api"
_SOURCES: Final[dict[str, tuple[str, ...]]] = {}
for _source in USAGE_SOURCES:
    _SOURCES[_source.field] = (*_SOURCES.get(_source.field, ()), _source.name)

# spanledger's own names on a span without the owner mark are no usage of their own (the SDK decides
# ownership); its attribution names are read through the workflow and tenant fields.
_OWN_PREFIX = semconv.SPANLEDGER_USAGE_OWNER.split(".", 1)[0] + "."


def _encoded(value: int | str) -> bytes:
    message = AnyValue(int_value=value) if isinstance(value, int) else AnyValue(string_value=value)
    return bytes(message.SerializeToString())


def _report_marks() -> tuple[bytes, ...]:
    """Byte strings one of which every token attribute name contains: its second name component, dotted
    (``.usage.``, ``.token_count.``), the full names of the HTTP body sizes, and the encoded ``aws-api``
    value of ``rpc.system``. Few, they are cheap to look for in every span."""
    marks = set()
    for source in USAGE_SOURCES:
        if source.field in _TOKEN_FIELDS:
            parts = source.name.split(".")
            marks.add(f".{parts[1]}." if len(parts) > 2 else source.name)
        elif source.field in _NAMED_REPORT_FIELDS:
            marks.add(source.name)
    kept = sorted(mark for mark in marks if not any(other != mark and other in mark for other in marks))
    return (*(mark.encode() for mark in kept), _encoded(AWS_RPC_SYSTEM))


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


_INT64_END: Final = 2**63
_PROVIDER_MEMBERS: Final = frozenset(member.value for member in semconv.GenAiProviderNameValues)


@functools.lru_cache(maxsize=1024)
def provider_value(value: str) -> str:
    """A dialect's provider value as a ``gen_ai.provider.name`` value (``openai.chat`` is ``openai``)."""
    prefix = value
    while True:
        if prefix in _PROVIDER_MEMBERS:
            return prefix
        if prefix in PROVIDER_VALUES:
            return PROVIDER_VALUES[prefix]
        if "." not in prefix:
            return value
        prefix = prefix.rsplit(".", 1)[0]


def _provider(raw: bytes) -> bytes:
    value = any_value(AnyValue.FromString(raw))
    if not isinstance(value, str):
        return raw
    mapped = provider_value(value)
    return raw if mapped == value else _encoded(mapped)


def _string(raw: bytes | None) -> str | None:
    if raw is None:
        return None
    value = any_value(AnyValue.FromString(raw))
    return value if isinstance(value, str) and value else None


# botocore's service ids (``rpc.service``, as the upstream instrumentation and spanledger's SDK set them).
S3, BEDROCK_RUNTIME, SAGEMAKER_RUNTIME = "S3", "Bedrock Runtime", "SageMaker Runtime"
S3_READS = frozenset({"GetObject"})
BEDROCK_PREFIXES = ("us.", "eu.", "apac.", "us-gov.", "global.", "jp.", "au.", "ca.")
SAGEMAKER_INVOKE = "InvokeEndpoint"
"""The prefix of the SageMaker Runtime methods that are endpoint time (``InvokeEndpoint``, its async and stream
forms)."""
S3_OBJECT_SOURCE = "s3://{bucket}/{key}"
AWS_PROVIDER = "aws"
"""The ``cloud.provider`` of an AWS API span that names none."""
_ENCODED_AWS = _encoded(AWS_PROVIDER)
_ENCODED_SAGEMAKER_ENDPOINT = _encoded(semconv.SpanledgerResourceTypeValues.SAGEMAKER_ENDPOINT.value)


# The ARNs AWS bills under, as spanledger's SDK names them (``{name}``: a value; also built in SQL by ``_engine``).
BEDROCK_PROFILE_ARN = "arn:aws:bedrock:{region}:{account}:inference-profile/{model}"
BEDROCK_MODEL_ARN = "arn:aws:bedrock:{region}::foundation-model/{model}"
S3_BUCKET_ARN = "arn:aws:s3:::{bucket}"


def _bedrock_arn(model_id: str, region: str | None, account: str | None) -> str:
    """The ARN Bedrock bills a ``modelId`` under, as spanledger's SDK names it (``inference_target_arn``)."""
    if model_id.startswith("arn:"):
        return model_id
    template = BEDROCK_PROFILE_ARN if model_id.startswith(BEDROCK_PREFIXES) else BEDROCK_MODEL_ARN
    return template.format(region=region or "", account=account or "", model=model_id)


def _bucket_arn(bucket: str) -> str:
    """The bucket's ARN as spanledger's SDK names it (an access point ARN is already the resource id)."""
    return bucket if bucket.startswith("arn:") else S3_BUCKET_ARN.format(bucket=bucket)


def _aws_service(get: AttributeGetter) -> str | None:
    """The botocore service id of an AWS API span (``rpc.system`` ``aws-api``), else None."""
    if _string(get(semconv.RPC_SYSTEM)) != AWS_RPC_SYSTEM:
        return None
    return _string(_first(get, "rpc_service"))


def _aws_resource(get: AttributeGetter, found: dict[str, bytes], account: str | None) -> bool:
    """An AWS API span's billed resource and provider, as spanledger's SDK gives them; True where the span is
    SageMaker endpoint time (usage without tokens or bytes)."""
    service = _aws_service(get)
    if service is None:
        return False
    if get(semconv.CLOUD_PROVIDER) is None:
        found[semconv.CLOUD_PROVIDER] = _ENCODED_AWS
    method = _string(_first(get, "rpc_method")) or ""
    endpoint = service == SAGEMAKER_RUNTIME and method.startswith(SAGEMAKER_INVOKE)
    if endpoint:
        found[semconv.SPANLEDGER_RESOURCE_TYPE] = _ENCODED_SAGEMAKER_ENDPOINT
    if get(semconv.CLOUD_RESOURCE_ID) is not None:
        return endpoint
    region = _string(found.get(semconv.CLOUD_REGION))
    account = _string(get(semconv.CLOUD_ACCOUNT_ID)) or account
    if service == S3 and (bucket := _string(_first(get, "bucket"))) is not None:
        found[semconv.CLOUD_RESOURCE_ID] = _encoded(_bucket_arn(bucket))
    elif service == BEDROCK_RUNTIME and (model := _string(found.get(semconv.GEN_AI_REQUEST_MODEL))) is not None:
        found[semconv.CLOUD_RESOURCE_ID] = _encoded(_bedrock_arn(model, region, account))
    return endpoint


class ObjectRead(NamedTuple):
    """An object read an AWS API span reports (S3 GetObject): its source, and bytes where the span has them."""

    source: str
    bytes: int | None


def object_read(get: AttributeGetter) -> ObjectRead | None:
    """The S3 object an unowned ``GetObject`` span read (``aws.s3.bucket``, ``aws.s3.key`` where present)."""
    if _aws_service(get) != S3 or _string(_first(get, "rpc_method")) not in S3_READS:
        return None
    bucket = _string(_first(get, "bucket"))
    if bucket is None:
        return None
    key = _string(_first(get, "object_key"))
    return ObjectRead(S3_OBJECT_SOURCE.format(bucket=bucket, key=key or ""), _count(_first(get, "response_bytes")))


def _server(get: AttributeGetter, found: dict[str, bytes]) -> str | None:
    """The server an HTTP client span called: ``server.address`` (or its older name), else the URL's host."""
    server = _string(found.get(semconv.SERVER_ADDRESS))
    if server is None and (url := _string(_first(get, "url"))) is not None:
        try:
            server = urlsplit(url).hostname
        except ValueError:
            return None
    return server


def _add_cache_tokens(found: dict[str, bytes]) -> None:
    """Input tokens counted without the cache tokens made the OTel count, which includes them."""
    uncached = _count(found[semconv.GEN_AI_USAGE_INPUT_TOKENS])
    if uncached is None:
        return
    cached = [_count(found.get(key)) for key in (
        semconv.GEN_AI_USAGE_CACHE_READ_INPUT_TOKENS, semconv.GEN_AI_USAGE_CACHE_WRITE_INPUT_TOKENS
    )]  # fmt: skip
    with_cache = uncached + sum(count or 0 for count in cached)
    if with_cache < _INT64_END:
        found[semconv.GEN_AI_USAGE_INPUT_TOKENS] = _encoded(with_cache)
    else:  # past int64 it is no count (and no AnyValue)
        del found[semconv.GEN_AI_USAGE_INPUT_TOKENS]


def standard_view(get: AttributeGetter, *, client: bool, account: str | None = None) -> AttributeGetter | None:
    """The span's attributes under the names the usage extraction reads (OTel GenAI, cloud and spanledger's
    byte counts), or None where it reports no usage: no tokens in any dialect, no HTTP body sizes on a client
    span (``client``: its kind is CLIENT), no SageMaker endpoint call. ``account``: the resource's
    ``cloud.account.id`` (for a Bedrock ARN)."""
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
        found[input_key] = _encoded(uncached)
        _add_cache_tokens(found)
    output_key = semconv.GEN_AI_USAGE_OUTPUT_TOKENS
    if output_key not in found:
        total, inputs = _count(_first(get, _TOTAL)), _count(found.get(input_key))
        if total is not None and inputs is not None and total >= inputs:
            found[output_key] = _encoded(total - inputs)
    if input_key in found and _aws_service(get) == BEDROCK_RUNTIME:
        # Bedrock's usage.inputTokens leaves out the cache reads and writes, and the botocore instrumentation
        # copies it into gen_ai.usage.input_tokens as is (extensions/bedrock.py, _converse_on_success).
        _add_cache_tokens(found)
    tokens = bool(_TOKEN_KEYS.intersection(found))
    wire = False
    if client:
        for field, key in _AS_WIRE_BYTES.items():
            if (size := _count(_first(get, field))) is not None:
                found[key] = _encoded(size)
                wire = True
        if wire and not tokens and get(semconv.CLOUD_RESOURCE_ID) is None and (server := _server(get, found)):
            found[semconv.CLOUD_RESOURCE_ID] = _encoded(server)  # the HTTP service called is the resource
    endpoint = _aws_resource(get, found, account)
    if not (tokens or wire or endpoint):
        return None

    def view(key: str) -> bytes | None:
        raw = found.get(key)
        if raw is not None:
            return raw
        if key.startswith(_OWN_PREFIX) and key not in _OWN_ATTRIBUTION:
            return None
        return get(key)

    return view


# The usage fields the compiled decoder reads on another producer's span as :func:`standard_view` does; the
# attribution fields (workflow, tenant) are read after decoding, from the raw request, by ``_attribution``
# whichever decoder ran, and reasoning tokens are part of the output count (not read). A span carrying an
# attribute of any other field of the usage-sources table (HTTP and botocore facts, and whatever is
# added later) goes, with its request, to this reference: a new field is declined until C reads it.
_COMPILED_FIELDS: Final = frozenset(
    {"provider", "request_model", "response_model", "server_address", "region", *_TOKEN_FIELDS}
)
_UNREAD_FIELDS: Final = frozenset({"workflow", "tenant", "reasoning_tokens"})
_PYTHON_ONLY_FIELDS: Final = frozenset(
    source.field for source in USAGE_SOURCES if source.field not in _COMPILED_FIELDS | _UNREAD_FIELDS
)


def compiled_view(slot_keys: Mapping[str, str]) -> dict[str, Any]:
    """:func:`standard_view` as tables for the compiled decoder's ``configure_foreign()``; ``slot_keys`` maps its
    attribute slots to the names they read. Source names are numbered; each usage field read as-is is the slot
    of its OTel name, with its sources in precedence order."""
    names: list[str] = []

    def indexes(field: str) -> tuple[int, ...]:
        for name in _SOURCES.get(field, ()):
            if name not in names:
                names.append(name)
        return tuple(names.index(name) for name in _SOURCES.get(field, ()))

    slot_of = {key: slot for slot, key in slot_keys.items()}
    fields = {slot_of[key]: indexes(field) for field, key in _AS_STANDARD.items() if field in _COMPILED_FIELDS}
    uncached, total = indexes(_UNCACHED_INPUT), indexes(_TOTAL)
    declined = tuple(index for field in sorted(_PYTHON_ONLY_FIELDS) for index in indexes(field))
    from .._store import CandidateSpan
    from ._producers import Candidate, Reported

    return {
        "names": tuple(name.encode() for name in names),
        "report_marks": REPORT_MARKS,
        "fields": fields,
        "uncached": uncached,
        "total": total,
        "declines": declined,
        "blank": tuple(
            slot
            for slot, key in slot_keys.items()
            if key.startswith(_OWN_PREFIX) and key not in _OWN_ATTRIBUTION and slot not in fields
        ),
        "token_slots": tuple(slot_of[key] for key in sorted(_TOKEN_KEYS)),
        "provider": provider_value,
        "candidate": Candidate,
        "reported": Reported,
        "candidate_span": CandidateSpan,
    }
