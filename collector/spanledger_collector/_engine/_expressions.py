"""ClickHouse expressions over one ``otel_traces`` row that read usage as the collector's decoder does.

Everything here is generated from the semconv constants and the usage-sources table (``_usage_sources``,
from ``semconv/usage-sources.yaml``): no attribute name is spelled in this package. The reference is
``_decode/_usage.py`` (spanledger's owner spans) and ``_decode/_dialects.py`` (other producers' spans read
under the OTel GenAI names); each function says which line of the reference it mirrors.

``otel_traces`` keeps every attribute value as text (the exporter's ``AsString``), so the expressions parse
text: an absent key reads as ``''`` (hence ``mapContains``), token counts are decimal integers, other numbers
are spelled as ``_usage.NUMBER_TEXT`` and rounded half-even to 9 places as ``Decimal.quantize`` does.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Final, NamedTuple

from spanledger import semconv
from spanledger.semconv import SpanledgerEgressBoundaryValues as Boundary
from spanledger.semconv import SpanledgerMeterValues as Meter
from spanledger.semconv import SpanledgerResourceTypeValues as ResourceType

from .._decode import MAX_TOKENS, NUMBER_TEXT
from .._decode import _dialects as dialects
from .._decode._usage_sources import PROVIDER_VALUES, USAGE_SOURCES
from .._store._clickhouse_client import quote_string as literal

__all__ = [
    "AWS_CALL",
    "FACT",
    "NULLABLE_MAP",
    "RESOURCE",
    "SPAN",
    "Lets",
    "SpanReading",
    "attributed",
    "candidate_reading",
    "facts",
    "listed_values",
    "literal",
    "merged",
    "nullable",
    "object_read",
    "owner_reading",
    "reads_expressions",
]

SPAN: Final = "span_values"
RESOURCE: Final = "resource_values"
"""The span's and its resource's attributes as :data:`NULLABLE_MAP`: the queries that read through these
expressions select them (:func:`nullable`) from ``SpanAttributes`` and ``ResourceAttributes``."""
NULLABLE_MAP: Final = "Map(LowCardinality(String), Nullable(String))"
"""An attribute map whose absent key reads as NULL: one lookup (``m[key]``) where the map of ``String``
values takes three (``if(mapContains(m, key), m[key], NULL)``). A materialized view's query is analysed
and planned for every insert block, and each function node costs ~0.2-0.3 ms of CPU there."""
_NULL = "NULL"


def nullable(attributes: str) -> str:
    """A ``Map(LowCardinality(String), String)`` column as :data:`NULLABLE_MAP` (the values gain a null map;
    nothing is copied per key)."""
    return f"CAST({attributes} AS {NULLABLE_MAP})"


def _array(values: Sequence[str]) -> str:
    return "[" + ", ".join(literal(value) for value in values) + "]"


def present(attributes: str, key: str) -> str:
    return f"mapContains({attributes}, {literal(key)})"


def value(attributes: str, key: str) -> str:
    """The key's text, NULL when the key is absent (``_VALUES[get(key)] is None``); ``attributes`` is a
    :data:`NULLABLE_MAP`."""
    return f"{attributes}[{literal(key)}]"


def first(*choices: str) -> str:
    """The first non-NULL of nullable expressions (``a if a is not None else b``)."""
    return choices[0] if len(choices) == 1 else f"coalesce({', '.join(choices)})"


def first_key(attributes: str, keys: Sequence[str]) -> str:
    """The text of the first key present (``_dialects._first``)."""
    return first(*(value(attributes, key) for key in keys))


def count(text: str) -> str:
    """``_dialects._count``: a non-negative integer, else NULL (OTLP ints are printed as decimal digits)."""
    return f"if(match(ifNull({text}, ''), '^(0|[1-9][0-9]{{0,17}})$'), toInt64OrNull({text}), {_NULL})"


def tokens(counted: str) -> str:
    """``_usage._token_count`` of a :func:`count`: an int in ``[0, MAX_TOKENS]``, else NULL."""
    return f"if({counted} <= {MAX_TOKENS}, {counted}, {_NULL})"


_NUMBER_PATTERN: Final = literal(f"^(?:{NUMBER_TEXT})$")


def number(let: Lets, name: str, text: str) -> str:
    """``_usage._number``: a Decimal quantized to 9 places (half-even), NULL when not a finite number.

    Only text spelled as ``NUMBER_TEXT`` is parsed (``toDecimal256OrNull`` alone reads ``+5``, ``e3`` as 0 and
    ``1.2.3`` as 1.23); within its bounds the parse at scale 40 is exact, where ``toDecimal128OrNull(x, 18)``
    would truncate the digits that break a tie at the 9th place. A value that rounds to 10^19 or more does not
    quantize within Python's 28 digits and is None there; it is NULL here too.
    """
    parsed = let(f"{name}_parsed", f"if(match({text}, {_NUMBER_PATTERN}), toDecimal256OrNull({text}, 40), {_NULL})")
    rounded = let(f"{name}_rounded", f"roundBankers({parsed}, 9)")
    return let(name, f"if(abs({rounded}) < toDecimal256('1e19', 0), toDecimal128({rounded}, 9), {_NULL})")


def to_float(let: Lets, name: str, text: str) -> str:
    """``_usage._float``: the quantized number as the nearest double (parsed from its digits)."""
    return let(name, f"toFloat64OrNull(toString({number(let, f'{name}_number', text)}))")


_DATETIME_MICROS: Final = tuple(
    (moment - datetime(1970, 1, 1)) // timedelta(microseconds=1) for moment in (datetime.min, datetime.max)
)


def micros(seconds: str) -> str:
    """``_usage._seconds_to_datetime``: float seconds to a microsecond time (round half-even); NULL out of Python's
    ``datetime`` range, years 1 to 9999 (its OverflowError), which a ``DateTime64`` would take unchecked."""
    micro = f"roundBankers({seconds} * 1000000)"
    low, high = _DATETIME_MICROS
    return f"if({micro} BETWEEN {low} AND {high}, fromUnixTimestamp64Micro(toInt64({micro})), {_NULL})"


class Lets:
    """Named intermediate expressions (``expr AS name``) so that each is written, and computed, once."""

    def __init__(self, prefix: str) -> None:
        self.prefix = prefix
        self.items: list[tuple[str, str]] = []

    def __call__(self, name: str, expression: str) -> str:
        alias = f"{self.prefix}{name}"
        if expression != alias:
            self.items.append((alias, expression))
        return alias

    def select_list(self) -> str:
        return ",\n  ".join(f"{expression} AS {alias}" for alias, expression in self.items)

    def layered(self, source: str, columns: Sequence[str], outputs: Sequence[str]) -> str:
        """``source`` (a query of ``columns``) with the lets as columns, in nested subqueries: each level computes
        the lets whose expressions read only lets of the levels below, and passes on only what is read above it
        (``outputs`` at the top).

        ClickHouse's analyzer inlines an alias wherever it is read, so lets in one select list expand into a
        tree many times the text's size, and analysing and planning it costs more than running it (each insert
        block plans the view anew). A subquery's column is not inlined; and pruning the unread columns of a
        ``SELECT *`` chain would cost the planner more again.
        """
        names = rf"\b(?:{self.prefix}\w+|{'|'.join(columns)})\b"
        reads = {alias: set(re.findall(names, expression)) for alias, expression in self.items}
        level: dict[str, int] = dict.fromkeys(columns, 0)
        for alias, _ in self.items:
            level[alias] = 1 + max((level[name] for name in reads[alias]), default=0)
        query = source
        top = max(level.values())
        for depth in range(1, top + 1):
            above = set(outputs).union(*(reads[alias] for alias, _ in self.items if level[alias] > depth))
            selected = [name for name in (*columns, *(alias for alias, _ in self.items))
                        if name in above and level[name] < depth]  # fmt: skip
            selected += [f"{expression} AS {alias}" for alias, expression in self.items if level[alias] == depth]
            query = "SELECT\n  " + ",\n  ".join(selected) + f"\nFROM (\n{query}\n)"
        return query


class SpanReading(NamedTuple):
    """What ``_usage._owner_usage`` reads from one span, as ClickHouse expressions (NULL for None)."""

    provider: str
    declared_type: str
    resource_id: str
    account_id: str
    region: str
    model: str
    workflow: str
    tenant: str
    input_tokens: str
    cache_read: str
    cache_write_first: str
    cache_creation: str
    output_tokens: str
    accelerator_seconds: str
    accelerator_type: str
    occupancy_start: str
    occupancy_end: str
    egress: str
    ingress: str
    boundary: str
    reports: str
    """A condition: the span is one whose facts this reading gives (owner, or candidate reporting tokens)."""


# _usage._ResourceDefaults.of: the resource's values a span falls back to.
_RESOURCE_PROVIDER = first_key(RESOURCE, (semconv.GEN_AI_PROVIDER_NAME, semconv.CLOUD_PROVIDER))
_RESOURCE_WORKFLOW = first_key(RESOURCE, (semconv.SPANLEDGER_WORKFLOW_NAME, semconv.GEN_AI_WORKFLOW_NAME))
_RESOURCE_TENANT = value(RESOURCE, semconv.SPANLEDGER_TENANT_ID)
SERVICE: Final = value(RESOURCE, semconv.SERVICE_NAME)
OWNER_KEY_PRESENT: Final = present(SPAN, semconv.SPANLEDGER_USAGE_OWNER)
AWS_CALL: Final = f"SpanAttributes[{literal(semconv.RPC_SYSTEM)}] = {literal(dialects.AWS_RPC_SYSTEM)}"
"""An AWS API span (botocore instrumentation), over the stored column."""
_REPORTING_FIELDS: Final = ("request_bytes", "response_bytes")
MAY_REPORT: Final = (
    f"({present('SpanAttributes', semconv.SPANLEDGER_USAGE_OWNER)} OR hasAny(mapKeys(SpanAttributes), "
    + _array(tuple(source.name for source in USAGE_SOURCES if (source.field.endswith("_tokens")
                   and source.field != "reasoning_tokens") or source.field in _REPORTING_FIELDS))
    + f") OR {AWS_CALL})"
)  # fmt: skip
"""A cheap first test, over the stored columns: the span carries the owner mark, a token attribute of some
dialect, an HTTP body size, or is an AWS API call (``_dialects.may_report``)."""
CLIENT_KIND: Final = "SPAN_KIND_CLIENT"
"""``SpanKind`` of a client span as the exporter writes it."""
OWNER: Final = f"({OWNER_KEY_PRESENT} AND {SPAN}[{literal(semconv.SPANLEDGER_USAGE_OWNER)}] = 'true')"


def _span_or_resource(key: str, resource_value: str) -> str:
    return first(value(SPAN, key), resource_value)


def _model(response: str, request: str) -> str:
    """``response_model or request_model``: an empty response model falls through."""
    return f"if(ifNull({response}, '') != '', {response}, {request})"


def owner_reading(let: Lets) -> SpanReading:
    """A span marked ``spanledger.usage.owner = true``, read by the names the decoder reads."""
    span_provider = value(SPAN, semconv.GEN_AI_PROVIDER_NAME)
    return SpanReading(
        provider=let("owner_provider", first(span_provider, value(SPAN, semconv.CLOUD_PROVIDER), _RESOURCE_PROVIDER)),
        declared_type=let("declared_type", value(SPAN, semconv.SPANLEDGER_RESOURCE_TYPE)),
        resource_id=_span_or_resource(semconv.CLOUD_RESOURCE_ID, value(RESOURCE, semconv.CLOUD_RESOURCE_ID)),
        account_id=_span_or_resource(semconv.CLOUD_ACCOUNT_ID, value(RESOURCE, semconv.CLOUD_ACCOUNT_ID)),
        region=_span_or_resource(semconv.CLOUD_REGION, value(RESOURCE, semconv.CLOUD_REGION)),
        model=_model(
            let("response_model", value(SPAN, semconv.GEN_AI_RESPONSE_MODEL)),
            value(SPAN, semconv.GEN_AI_REQUEST_MODEL),
        ),
        workflow=workflow(),
        tenant=tenant(),
        input_tokens=value(SPAN, semconv.GEN_AI_USAGE_INPUT_TOKENS),
        cache_read=value(SPAN, semconv.GEN_AI_USAGE_CACHE_READ_INPUT_TOKENS),
        cache_write_first=value(SPAN, semconv.GEN_AI_USAGE_CACHE_WRITE_INPUT_TOKENS),
        cache_creation=value(SPAN, semconv.GEN_AI_USAGE_CACHE_CREATION_INPUT_TOKENS),
        output_tokens=value(SPAN, semconv.GEN_AI_USAGE_OUTPUT_TOKENS),
        accelerator_seconds=value(SPAN, semconv.SPANLEDGER_ACCELERATOR_TIME),
        accelerator_type=value(SPAN, semconv.SPANLEDGER_ACCELERATOR_TYPE),
        occupancy_start=value(SPAN, semconv.SPANLEDGER_OCCUPANCY_START),
        occupancy_end=value(SPAN, semconv.SPANLEDGER_OCCUPANCY_END),
        egress=value(SPAN, semconv.SPANLEDGER_EGRESS_BYTES),
        ingress=value(SPAN, semconv.SPANLEDGER_INGRESS_BYTES),
        boundary=value(SPAN, semconv.SPANLEDGER_EGRESS_BOUNDARY),
        reports=OWNER,
    )


def listed_values(names: Sequence[str]) -> str:
    """The span's values of the attribution list ``names``, in order, NULL where absent (``_attribution``'s
    ``_listed_values``: span attributes only, not the resource's)."""
    return "CAST([" + ", ".join(value(SPAN, name) for name in names) + "] AS Array(Nullable(String)))"


def attributed(own: str, chain: str, count: int) -> str:
    """``_attribution._attributed``: the row's ``own`` value (spanledger's names on the span or resource,
    ``''`` included) if not NULL, else for each of the ``count`` listed names in order, the first value on the
    span or its ancestors; ``chain``: the listed values (:func:`listed_values`) of the span, then of each
    ancestor, nearest first."""
    if count == 0:
        return own
    candidates = f"arrayFlatten(arrayMap(i -> arrayMap(v -> v[i], {chain}), range(1, {count + 1})))"
    return f"if({own} IS NULL, arrayFirst(v -> v IS NOT NULL, {candidates}), {own})"


def workflow() -> str:
    """``_span_text(get, SPANLEDGER_WORKFLOW_NAME, GEN_AI_WORKFLOW_NAME, resource.workflow)``."""
    return first(first_key(SPAN, (semconv.SPANLEDGER_WORKFLOW_NAME, semconv.GEN_AI_WORKFLOW_NAME)), _RESOURCE_WORKFLOW)


def tenant() -> str:
    return _span_or_resource(semconv.SPANLEDGER_TENANT_ID, _RESOURCE_TENANT)


def _sources(field: str) -> tuple[str, ...]:
    return tuple(source.name for source in USAGE_SOURCES if source.field == field)


_PROVIDER_MEMBERS: Final = tuple(member.value for member in semconv.GenAiProviderNameValues)


def _provider(let: Lets, text: str) -> str:
    """``_dialects._provider``: the value, or its longest dotted prefix, that is a ``gen_ai.provider.name``
    member is kept; else the longest prefix listed in the usage sources' provider values maps it."""
    parts = let("provider_parts", f"splitByChar('.', ifNull({text}, ''))")
    prefixes = (
        f"arrayMap(n -> arrayStringConcat(arraySlice({parts}, 1, n), '.'), arrayReverse(range(1, length({parts}) + 1)))"
    )
    members = _array(_PROVIDER_MEMBERS)
    mapped_from, mapped_to = _array(tuple(PROVIDER_VALUES)), _array(tuple(PROVIDER_VALUES.values()))
    hit = let("provider_hit", f"arrayFirst(p -> has({members}, p) OR has({mapped_from}, p), {prefixes})")
    return let(
        "provider_mapped",
        f"if({text} IS NULL OR {hit} = '', {text}, "
        f"if(has({members}, {hit}), {hit}, transform({hit}, {mapped_from}, {mapped_to}, {hit})))",
    )


def _text(expression: str) -> str:
    """``_dialects._string``: a non-empty text, else NULL."""
    return f"nullIf({expression}, '')"


def _formatted(template: str, **values: str) -> str:
    """``template.format(**values)`` in SQL, each ``{name}`` the expression ``values[name]``."""
    parts = re.split(r"\{(\w+)\}", template)
    pieces = [literal(part) if index % 2 == 0 else values[part] for index, part in enumerate(parts) if part]
    return f"concat({', '.join(pieces)})"


class AwsCall(NamedTuple):
    """``_dialects._aws_service`` and what depends on it, over one span (conditions are never NULL)."""

    service: str
    """The botocore service id of an AWS API span (``rpc.system`` ``aws-api``), else NULL."""
    bedrock: str
    endpoint: str
    """SageMaker endpoint time (``InvokeEndpoint``...)."""
    object_read: str
    """An S3 ``GetObject`` of a bucket: ``_dialects.object_read`` is not None."""
    bucket: str


def aws_call(let: Lets) -> AwsCall:
    system = value(SPAN, semconv.RPC_SYSTEM)
    service = let("aws_service", f"if(ifNull({system} = {literal(dialects.AWS_RPC_SYSTEM)}, false), "
                                 f"{_text(first_key(SPAN, _sources('rpc_service')))}, {_NULL})")  # fmt: skip
    method = let("aws_method", _text(first_key(SPAN, _sources("rpc_method"))))
    bucket = let("aws_bucket", _text(first_key(SPAN, _sources("bucket"))))
    return AwsCall(
        service=service,
        bedrock=let("aws_bedrock", f"ifNull({service} = {literal(dialects.BEDROCK_RUNTIME)}, false)"),
        endpoint=let(
            "aws_endpoint",
            f"ifNull({service} = {literal(dialects.SAGEMAKER_RUNTIME)} "
            f"AND startsWith({method}, {literal(dialects.SAGEMAKER_INVOKE)}), false)",
        ),
        object_read=let(
            "aws_object_read",
            f"ifNull({service} = {literal(dialects.S3)} AND has({_array(tuple(sorted(dialects.S3_READS)))}, {method}) "
            f"AND {bucket} IS NOT NULL, false)",
        ),
        bucket=bucket,
    )


def _arn_or(identifier: str, arn: str) -> str:
    """An identifier that is already an ARN is the resource id as it is."""
    return f"if(startsWith({identifier}, 'arn:'), {identifier}, {arn})"


def candidate_reading(let: Lets) -> SpanReading:
    """A span without the owner mark, read through ``_dialects.standard_view``: each usage field from the
    first of its source attributes present, input derived from uncached input plus cache tokens, output from
    a total; spanledger's own names other than workflow and tenant read as absent. Workflow and tenant are
    read as on an owner span (the other names are the attribution lists', applied in ``usage_facts``). An HTTP
    client span's body sizes are bytes on the wire of the server it called; an AWS API span names the resource
    AWS bills (bucket, Bedrock model or profile ARN), Bedrock's input tokens gain the cache tokens it leaves out,
    and a SageMaker ``InvokeEndpoint`` call is endpoint time (``_dialects._aws_resource``)."""
    found = {field: let(f"found_{field}", first_key(SPAN, _sources(field))) for field in (
        "provider", "request_model", "response_model", "input_tokens", "cache_read_tokens",
        "cache_write_tokens", "output_tokens", "region",
    )}  # fmt: skip
    aws = aws_call(let)
    cache_counts = let(
        "cache_counts",
        f"ifNull({count(found['cache_read_tokens'])}, 0) + ifNull({count(found['cache_write_tokens'])}, 0)",
    )
    uncached = let("uncached", count(first_key(SPAN, _sources("uncached_input_tokens"))))
    derived_input = f"toString({uncached} + {cache_counts})"
    input_read = let("input", first(found["input_tokens"], f"if({uncached} IS NULL, {_NULL}, {derived_input})"))
    input_count = let("input_count", count(input_read))
    total = let("total", count(first_key(SPAN, _sources("total_tokens"))))
    derived_output = (
        f"if({total} IS NOT NULL AND {input_count} IS NOT NULL AND {total} >= {input_count}, "
        f"toString({total} - {input_count}), {_NULL})"
    )
    output_tokens = let("output", first(found["output_tokens"], derived_output))
    # Bedrock's usage.inputTokens leaves the cache reads and writes out, and the botocore instrumentation copies
    # it into gen_ai.usage.input_tokens as is (after the output's derivation, as in the decoder).
    input_tokens = let(
        "input_tokens_read",
        f"if({aws.bedrock} AND {input_count} IS NOT NULL, toString({input_count} + {cache_counts}), {input_read})",
    )
    tokens = " OR ".join(
        f"{expression} IS NOT NULL"
        for expression in (input_tokens, found["cache_read_tokens"], found["cache_write_tokens"], output_tokens)
    )
    client = let("client", f"SpanKind = {literal(CLIENT_KIND)}")

    def body_size(field: str) -> str:
        return f"if({client}, toString({count(first_key(SPAN, _sources(field)))}), {_NULL})"

    egress, ingress = let("wire_egress", body_size("request_bytes")), let("wire_ingress", body_size("response_bytes"))
    wire = let("wire_bytes", f"({egress} IS NOT NULL OR {ingress} IS NOT NULL)")
    # _dialects._server: server.address (or its older name), else the URL's host
    url_host = _text(f"lower(domain(ifNull({first_key(SPAN, _sources('url'))}, '')))")
    server = first(_text(first_key(SPAN, _sources("server_address"))), url_host)
    region, model = found["region"], _text(found["request_model"])
    account = first(_text(value(SPAN, semconv.CLOUD_ACCOUNT_ID)), value(RESOURCE, semconv.CLOUD_ACCOUNT_ID))
    profile = _formatted(dialects.BEDROCK_PROFILE_ARN, region=f"ifNull({_text(region)}, '')",
                         account=f"ifNull({account}, '')", model=model)  # fmt: skip
    foundation = _formatted(dialects.BEDROCK_MODEL_ARN, region=f"ifNull({_text(region)}, '')", model=model)
    prefixes = _array(dialects.BEDROCK_PREFIXES)
    bedrock_arn = _arn_or(model, f"if(arrayExists(p -> startsWith({model}, p), {prefixes}), {profile}, {foundation})")
    bucket_arn = _arn_or(aws.bucket, _formatted(dialects.S3_BUCKET_ARN, bucket=aws.bucket))
    derived_resource = (
        f"multiIf({aws.service} = {literal(dialects.S3)} AND {aws.bucket} IS NOT NULL, {bucket_arn}, "
        f"{aws.bedrock} AND {model} IS NOT NULL, {bedrock_arn}, "
        f"{wire} AND NOT ({tokens}), {server}, {_NULL})"
    )
    provider = first(
        _provider(let, found["provider"]),
        value(SPAN, semconv.CLOUD_PROVIDER),
        f"if({aws.service} IS NULL, {_NULL}, {literal(dialects.AWS_PROVIDER)})",
        _RESOURCE_PROVIDER,
    )
    return SpanReading(
        provider=let("candidate_provider", provider),
        declared_type=f"if({aws.endpoint}, {literal(ResourceType.SAGEMAKER_ENDPOINT.value)}, {_NULL})",
        resource_id=first(
            value(SPAN, semconv.CLOUD_RESOURCE_ID), derived_resource, value(RESOURCE, semconv.CLOUD_RESOURCE_ID)
        ),
        account_id=_span_or_resource(semconv.CLOUD_ACCOUNT_ID, value(RESOURCE, semconv.CLOUD_ACCOUNT_ID)),
        region=first(region, value(RESOURCE, semconv.CLOUD_REGION)),
        model=_model(found["response_model"], found["request_model"]),
        workflow=workflow(),
        tenant=tenant(),
        input_tokens=input_tokens,
        cache_read=found["cache_read_tokens"],
        cache_write_first=found["cache_write_tokens"],
        cache_creation=value(SPAN, semconv.GEN_AI_USAGE_CACHE_CREATION_INPUT_TOKENS),
        output_tokens=output_tokens,
        accelerator_seconds=_NULL,
        accelerator_type=_NULL,
        occupancy_start=_NULL,
        occupancy_end=_NULL,
        egress=egress,
        ingress=ingress,
        boundary=_NULL,
        reports=f"(NOT {OWNER_KEY_PRESENT} AND ({tokens} OR {wire} OR {aws.endpoint}))",
    )


def merged(let: Lets, owner: SpanReading, candidate: SpanReading) -> SpanReading:
    """One reading of every span that may report: a span with the owner mark is read as an owner span (and
    reports nothing unless the mark is ``true``), any other as another producer's."""
    marked = let("owner", f"toUInt8({OWNER_KEY_PRESENT})")
    return SpanReading._make(
        mine if mine == theirs else f"if({marked}, {mine}, {theirs})"
        for mine, theirs in zip(owner, candidate, strict=True)
    )


START_NANOS: Final = "toUnixTimestamp64Nano(Timestamp)"
# Duration is UInt64: a span that ends before it starts wraps; read as the signed difference it was.
END_NANOS: Final = f"({START_NANOS} + reinterpretAsInt64(Duration))"
_START = f"fromUnixTimestamp64Micro(intDiv({START_NANOS}, 1000))"
_END = f"fromUnixTimestamp64Micro(intDiv({END_NANOS}, 1000))"
FACT: Final = "fact"
"""The ARRAY JOIN alias of one fact: ``(meter, quantity, unit, resource_type, boundary, accelerator_type,
start_time, end_time)``."""


def facts(let: Lets, reading: SpanReading) -> str:
    """``_owner_usage``: the facts one span gives, as an array of tuples (the caller keeps
    ``0 < quantity < 10**18``)."""
    # The fields read more than once, as lets: the analyzer would otherwise plan each reading of them anew.
    reading = reading._replace(**{
        field: let(f"{field}_text", getattr(reading, field)) for field in (
            "declared_type", "input_tokens", "cache_read", "cache_write_first", "cache_creation", "output_tokens",
            "accelerator_seconds", "egress", "ingress", "boundary",
        )
    })  # fmt: skip

    def token_count(field: str) -> str:
        return tokens(let(f"{field}_count", count(getattr(reading, field))))

    llm_type = f"ifNull({reading.declared_type}, {literal(ResourceType.LLM_MODEL.value)})"
    input_tokens = let("input_tokens", token_count("input_tokens"))
    cache_read = let("cache_read", f"ifNull({token_count('cache_read')}, 0)")
    # `tokens(write) or tokens(creation) or 0`: a zero falls through like an absent value.
    cache_write_first = let("cache_write_first", f"ifNull({token_count('cache_write_first')}, 0)")
    cache_write = let(
        "cache_write", f"if({cache_write_first} != 0, {cache_write_first}, ifNull({token_count('cache_creation')}, 0))"
    )
    output_tokens = let("output_tokens", f"ifNull({token_count('output_tokens')}, 0)")
    provider = reading.provider
    occupied_from = let("occupied_from", micros(to_float(let, "occupancy_start", reading.occupancy_start)))
    occupied_to = let("occupied_to", micros(to_float(let, "occupancy_end", reading.occupancy_end)))
    occupancy_valid = let(
        "occupancy_valid",
        f"ifNull({occupied_from} IS NOT NULL AND {occupied_to} IS NOT NULL "
        f"AND {occupied_to} >= {occupied_from}, false)",
    )
    occupied_seconds = f"toDecimal128(dateDiff('microsecond', {occupied_from}, {occupied_to}), 9) / 1000000"
    span_seconds = f"toDecimal128({END_NANOS} - {START_NANOS}, 9) / 1000000000"
    endpoint = (
        f"ifNull({reading.declared_type} = {literal(ResourceType.SAGEMAKER_ENDPOINT.value)} "
        f"OR {provider} = {literal(semconv.GenAiProviderNameValues.AWS_SAGEMAKER.value)}, false)"
    )
    transfer = f"({reading.egress} IS NOT NULL OR {reading.ingress} IS NOT NULL)"
    boundary = f"if(ifNull({reading.boundary}, '') != '', {reading.boundary}, {literal(Boundary.UNKNOWN.value)})"
    token_unit, seconds_unit, bytes_unit = literal("{token}"), literal("s"), literal("By")
    accelerator = number(let, "accelerator_seconds", reading.accelerator_seconds)
    egress = number(let, "egress", reading.egress)
    ingress = number(let, "ingress", reading.ingress)

    start, end = let("start", _START), let("end", _END)
    llm_type = let("llm_type", llm_type)
    # (condition, meter, quantity, unit, resource_type, boundary, accelerator_type, start, end) of each fact
    rows = (
        (f"{input_tokens} IS NOT NULL", Meter.LLM_INPUT_TOKENS,
         f"toInt64({input_tokens}) - {cache_read} - {cache_write}", token_unit, llm_type, _NULL, _NULL, start, end),
        ("true", Meter.LLM_CACHE_READ_TOKENS, cache_read, token_unit, llm_type, _NULL, _NULL, start, end),
        ("true", Meter.LLM_CACHE_WRITE_TOKENS, cache_write, token_unit, llm_type, _NULL, _NULL, start, end),
        ("true", Meter.LLM_OUTPUT_TOKENS, output_tokens, token_unit, llm_type, _NULL, _NULL, start, end),
        (f"{reading.accelerator_seconds} IS NOT NULL", Meter.ACCELERATOR_SECONDS, accelerator, seconds_unit,
         f"ifNull({reading.declared_type}, {literal(ResourceType.GPU_INSTANCE.value)})", _NULL,
         reading.accelerator_type, start, end),
        (endpoint, Meter.ENDPOINT_SECONDS, f"if({occupancy_valid}, {occupied_seconds}, {span_seconds})",
         seconds_unit, literal(ResourceType.SAGEMAKER_ENDPOINT.value), _NULL, _NULL,
         f"if({occupancy_valid}, assumeNotNull({occupied_from}), {start})",
         f"if({occupancy_valid}, assumeNotNull({occupied_to}), {end})"),
        (transfer, Meter.EGRESS_BYTES, egress, bytes_unit, literal(ResourceType.DATA_TRANSFER.value), boundary,
         _NULL, start, end),
        (transfer, Meter.INGRESS_BYTES, ingress, bytes_unit, literal(ResourceType.DATA_TRANSFER.value), boundary,
         _NULL, start, end),
    )  # fmt: skip
    # Parallel arrays zipped, not one `if(condition, [tuple(...)], [])` per fact: constant columns stay
    # constants and the plan has a few nodes per fact. A fact whose condition fails has a NULL quantity,
    # which the caller's `0 < quantity` drops (as it drops a NULL quantity of a fact that holds).
    quantities = (
        "["
        + ", ".join(f"if({condition}, toDecimal128({quantity}, 9), {_NULL})" for condition, _, quantity, *_ in rows)
        + "]"
    )
    columns = [
        _array(tuple(row[1].value for row in rows)),
        quantities,
        f"[{', '.join(row[3] for row in rows)}]",
        *(f"CAST([{', '.join(row[index] for row in rows)}] AS Array(Nullable(String)))" for index in (4, 5, 6)),
        *(f"[{', '.join(row[index] for row in rows)}]" for index in (7, 8)),
    ]
    return f"arrayZip({', '.join(columns)})"


class ReadsExpressions(NamedTuple):
    """``_usage._data_reads``, over one element of ``Events`` after ARRAY JOIN."""

    condition: str
    source: str
    source_kind: str
    last_modified: str
    age_seconds: str
    bytes: str
    staleness_method: str
    workflow: str
    tenant: str


def reads_expressions(let: Lets, event_time: str, event_name: str, event_attributes: str) -> ReadsExpressions:
    last_modified = to_float(
        let, "last_modified_seconds", value(event_attributes, semconv.SPANLEDGER_DATA_LAST_MODIFIED)
    )
    age = to_float(let, "age_attribute", value(event_attributes, semconv.SPANLEDGER_DATA_AGE))
    size = number(let, "size", value(event_attributes, semconv.SPANLEDGER_DATA_BYTES))
    event_seconds = f"toUnixTimestamp64Nano({event_time}) / 1e9"
    return ReadsExpressions(
        condition=f"{event_name} = {literal(semconv.EVENT_SPANLEDGER_DATA_READ)}",
        source=value(event_attributes, semconv.SPANLEDGER_DATA_SOURCE),
        source_kind=value(event_attributes, semconv.SPANLEDGER_DATA_SOURCE_KIND),
        last_modified=f"if({last_modified} IS NULL, {_NULL}, {micros(last_modified)})",
        age_seconds=first(age, f"if({last_modified} IS NULL, {_NULL}, {event_seconds} - {last_modified})"),
        bytes=f"if({size} >= 0 AND {size} < {2**63 - 1}, toInt64(trunc({size})), {_NULL})",
        staleness_method=value(event_attributes, semconv.SPANLEDGER_DATA_STALENESS_METHOD),
        workflow=workflow(),
        tenant=tenant(),
    )


class ObjectRead(NamedTuple):
    """``_dialects.object_read`` and ``_usage._object_read``, over one span."""

    condition: str
    read_time: str
    source: str
    bytes: str
    workflow: str
    tenant: str


def object_read(let: Lets) -> ObjectRead:
    aws = aws_call(let)
    key = _text(first_key(SPAN, _sources("object_key")))
    return ObjectRead(
        condition=aws.object_read,
        read_time=_END,
        source=_formatted(dialects.S3_OBJECT_SOURCE, bucket=aws.bucket, key=f"ifNull({key}, '')"),
        bytes=count(first_key(SPAN, _sources("response_bytes"))),
        workflow=workflow(),
        tenant=tenant(),
    )
