"""Usage extraction: OTLP trace bytes -> span rows, usage facts (one per meter per owner span), data reads.

The meters and their sources are defined in docs/design.md ("Usage facts"). Spans that carry
``spanledger.usage.owner = true`` produce facts; so do other producers' spans that report usage in a
dialect ``_dialects`` reads, counted once (``_producers``, docs/producers.md); only
``spanledger.data.read`` events produce data reads.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import re
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal, InvalidOperation
from typing import Any, NamedTuple

from opentelemetry.proto.resource.v1.resource_pb2 import Resource
from opentelemetry.proto.trace.v1.trace_pb2 import Span
from spanledger import semconv
from spanledger.semconv import SpanledgerEgressBoundaryValues as Boundary
from spanledger.semconv import SpanledgerMeterValues as Meter
from spanledger.semconv import SpanledgerResourceTypeValues as ResourceType

from .._store import CandidateSpan, DataRead, SpanColumns, StoreBatch, UsageFact
from . import _dialects, _producers
from ._otlp import (
    AttributeValue,
    AttributeValues,
    attribute_dict,
    parse_owner_span,
    parse_skinny_traces,
    parse_span_event,
    parse_span_header,
)

__all__ = [
    "MAX_TOKENS",
    "NUMBER_TEXT",
    "SPEEDUPS",
    "DecodedTraces",
    "LlmCall",
    "decode_traces",
    "decode_traces_python",
]

logger = logging.getLogger("spanledger.collector")
_EPOCH = datetime(1970, 1, 1)
_OWNER_MARK = semconv.SPANLEDGER_USAGE_OWNER.encode()
_DATA_READ_MARK = semconv.EVENT_SPANLEDGER_DATA_READ.encode()
_NOT_MEASURED_MARK = semconv.SPANLEDGER_ACCELERATOR_NOT_MEASURED_REASON.encode()
_TOKEN_UNIT = "{token}"
_SECONDS_UNIT = "s"
_BYTES_UNIT = "By"
_MAX_NANOS = 2**63 - 1
_ZERO_TRACE = bytes(16)
_ZERO_SPAN = bytes(8)
# DECIMAL(38, 9) holds 29 integer digits; anything near that is a broken client, not usage.
_MAX_QUANTITY = Decimal(10) ** 18
MAX_TOKENS = 10**9
"""The largest token count one span may report (docs/schema.md, "Validation"): ~500 times the largest context
window offered today; anything larger is a broken client or an overflow (2**63 - 1), not usage."""
_QUANTUM = Decimal("1e-9")
NUMBER_TEXT = r"-?(?:(?:0|[1-9][0-9]*)(?:\.[0-9]{1,30})?|[1-9](?:\.[0-9]{1,30})?[eE][+-]?[0-9]{1,3})"
"""How a number sent as a string (seconds, bytes; token counts must be ints) is spelled: JSON's number, ASCII digits,
as OTLP/JSON, Go (the OTel Collector's text of a double), JavaScript and Python write one; an exponent of at most 3
digits and only after a single nonzero digit (``1.5e-7``, normalized as formatters write it); at most 30 digits
after the point (a double's text has at most 23). Nothing else: not ``+5``, padding, ``1_000``, non-ASCII digits,
``0x10``, ``inf`` or ``nan``, which Python's ``Decimal()`` reads and ClickHouse does not, or the other way round.
``otel_traces`` keeps every value as text, so ``clickhouse init``'s views read numbers through this pattern too
(``_engine._expressions.number``): within these bounds ClickHouse parses a number exactly as Decimal does."""
_NUMBER_TEXT = re.compile(NUMBER_TEXT)
_SPAN_KINDS = range(6)
_LLM_INPUT_TOKENS = Meter.LLM_INPUT_TOKENS.value
_LLM_CACHE_READ_TOKENS = Meter.LLM_CACHE_READ_TOKENS.value
_LLM_CACHE_WRITE_TOKENS = Meter.LLM_CACHE_WRITE_TOKENS.value
_LLM_OUTPUT_TOKENS = Meter.LLM_OUTPUT_TOKENS.value
_ACCELERATOR_SECONDS = Meter.ACCELERATOR_SECONDS.value
_ENDPOINT_SECONDS = Meter.ENDPOINT_SECONDS.value
_EGRESS_BYTES = Meter.EGRESS_BYTES.value
_INGRESS_BYTES = Meter.INGRESS_BYTES.value
_LLM_MODEL = ResourceType.LLM_MODEL.value
_GPU_INSTANCE = ResourceType.GPU_INSTANCE.value
_SAGEMAKER_ENDPOINT = ResourceType.SAGEMAKER_ENDPOINT.value
_DATA_TRANSFER = ResourceType.DATA_TRANSFER.value
_UNKNOWN_BOUNDARY = Boundary.UNKNOWN.value
_SAGEMAKER_PROVIDER = semconv.GenAiProviderNameValues.AWS_SAGEMAKER.value
_OBJECT_STORE = semconv.SpanledgerDataSourceKindValues.OBJECT_STORE.value
_CLIENT_KIND = Span.SpanKind.SPAN_KIND_CLIENT
_VALUES = AttributeValues()
_STATUS_CODES = range(3)


class LlmCall(NamedTuple):
    """What the GenAI client metrics need from one owner LLM span (a NamedTuple: one is built per LLM span)."""

    operation: str
    provider: str
    request_model: str
    response_model: str
    server_address: str
    server_port: str
    error_type: str
    duration_s: float
    input_tokens: int | None
    output_tokens: int | None
    time_to_first_chunk_s: float | None


@dataclass
class DecodedTraces:
    batch: StoreBatch = field(default_factory=StoreBatch)
    llm_calls: list[LlmCall] = field(default_factory=list)
    accepted_spans: int = 0
    rejected_spans: int = 0
    rejection: str = ""
    refused_values: dict[str, int] = field(default_factory=dict)
    """Attribute values refused (token counts that are not ints in ``[0, MAX_TOKENS]``), per attribute name."""


def nanos_to_datetime(nanos: int) -> datetime:
    """Naive UTC ``datetime`` (microseconds), as DuckDB ``TIMESTAMP`` stores it."""
    return _EPOCH + timedelta(microseconds=nanos // 1000)


def _seconds_to_datetime(seconds: float) -> datetime | None:
    try:
        return _EPOCH + timedelta(microseconds=round(seconds * 1_000_000))
    except OverflowError:
        return None


def _text(value: AttributeValue) -> str | None:
    if type(value) is str:
        return value
    if value is None or isinstance(value, (list, dict, bytes)):
        return None
    return str(value)


def _number(value: AttributeValue) -> Decimal | None:
    """An int, a double or a string spelled as :data:`NUMBER_TEXT`, quantized to 9 places; None for anything else,
    not finite, or too large to quantize (10^19 or more once rounded: past Decimal's 28 digits)."""
    if type(value) is int:
        return Decimal(value)
    if type(value) is float:
        number = Decimal(str(value))
    elif type(value) is str and _NUMBER_TEXT.fullmatch(value):
        number = Decimal(value)
    else:
        return None
    try:
        return number.quantize(_QUANTUM) if number.is_finite() else None
    except InvalidOperation:
        return None


def _token_count(value: AttributeValue, key: str, refused: dict[str, int]) -> int | None:
    """A token count: an int in ``[0, MAX_TOKENS]``; None when absent, and for any other value, refused (counted).

    The conventions define token counts as ints; a double, a string or a bool is the producer's error, not a count.
    """
    if value is None:
        return None
    if type(value) is int and 0 <= value <= MAX_TOKENS:
        return value
    refused[key] = refused.get(key, 0) + 1
    return None


def _float(value: AttributeValue) -> float | None:
    number = _number(value)
    return None if number is None else float(number)


class _ResourceDefaults(NamedTuple):
    """What a span falls back to when it lacks an attribute: its resource's value (decoded once per resource)."""

    provider: str | None
    resource_id: str | None
    account_id: str | None
    region: str | None
    workflow: str | None
    tenant: str | None
    service: str | None

    @classmethod
    def of(cls, resource: dict[str, AttributeValue]) -> _ResourceDefaults:
        def text(key: str, fallback: str | None = None) -> str | None:
            value = resource.get(key)
            if value is None and fallback is not None:
                value = resource.get(fallback)
            return _text(value)

        return cls(
            provider=text(semconv.GEN_AI_PROVIDER_NAME, semconv.CLOUD_PROVIDER),
            resource_id=text(semconv.CLOUD_RESOURCE_ID),
            account_id=text(semconv.CLOUD_ACCOUNT_ID),
            region=text(semconv.CLOUD_REGION),
            workflow=text(semconv.SPANLEDGER_WORKFLOW_NAME, semconv.GEN_AI_WORKFLOW_NAME),
            tenant=text(semconv.SPANLEDGER_TENANT_ID),
            service=text(semconv.SERVICE_NAME),
        )


_NO_RESOURCE = _ResourceDefaults.of({})
# Resources by their encoding: one per client process and SDK configuration, so few; bounded in count and size.
_RESOURCES: dict[bytes, _ResourceDefaults] = {}
_MAX_RESOURCES = 1024
_MAX_REMEMBERED_RESOURCE_BYTES = 8192


def _resource_defaults(resource: bytes) -> _ResourceDefaults:
    """The defaults of an encoded resource; remembered, as a client sends the same resource with every request."""
    defaults = _RESOURCES.get(resource)
    if defaults is None:
        defaults = _ResourceDefaults.of(attribute_dict(Resource.FromString(resource).attributes))
        if len(resource) <= _MAX_REMEMBERED_RESOURCE_BYTES:
            if len(_RESOURCES) >= _MAX_RESOURCES:
                _RESOURCES.clear()
            _RESOURCES[resource] = defaults
    return defaults


def _span_text(get: Any, key: str, fallback: str | None, default: str | None) -> str | None:
    """The span's value of ``key`` (else ``fallback``) as text, else the resource's ``default``."""
    value = _VALUES[get(key)]
    if value is None and fallback is not None:
        value = _VALUES[get(fallback)]
    return default if value is None else _text(value)


def _endpoint_usage(
    occupancy_start: AttributeValue,
    occupancy_end: AttributeValue,
    start: datetime,
    end: datetime,
    start_nanos: int,
    end_nanos: int,
) -> tuple[datetime, datetime, Decimal]:
    """A SageMaker endpoint span's occupied interval and seconds: the SDK's occupancy if valid, else the span's."""
    occupied_from = None if (begin := _float(occupancy_start)) is None else _seconds_to_datetime(begin)
    occupied_to = None if (finish := _float(occupancy_end)) is None else _seconds_to_datetime(finish)
    if occupied_from is not None and occupied_to is not None and occupied_to >= occupied_from:
        seconds = Decimal((occupied_to - occupied_from) // timedelta(microseconds=1)) / Decimal(1_000_000)
        return occupied_from, occupied_to, seconds
    return start, end, Decimal(end_nanos - start_nanos) / Decimal(1_000_000_000)


def _owner_usage(
    decoded: DecodedTraces, trace_id: str, span_id: str, header: Any, get: Any, resource: _ResourceDefaults
) -> None:
    """The usage facts of one owner span, and its LLM call for the GenAI metrics."""
    start = nanos_to_datetime(header.start_time_unix_nano)
    end = nanos_to_datetime(header.end_time_unix_nano)
    raw_provider = _VALUES[get(semconv.GEN_AI_PROVIDER_NAME)]
    span_provider = _text(raw_provider)
    provider = (
        span_provider if raw_provider is not None else _span_text(get, semconv.CLOUD_PROVIDER, None, resource.provider)
    )
    declared_type = _text(_VALUES[get(semconv.SPANLEDGER_RESOURCE_TYPE)])
    resource_id = _span_text(get, semconv.CLOUD_RESOURCE_ID, None, resource.resource_id)
    account_id = _span_text(get, semconv.CLOUD_ACCOUNT_ID, None, resource.account_id)
    region = _span_text(get, semconv.CLOUD_REGION, None, resource.region)
    response_model = _text(_VALUES[get(semconv.GEN_AI_RESPONSE_MODEL)])
    request_model = _text(_VALUES[get(semconv.GEN_AI_REQUEST_MODEL)])
    workflow = _span_text(get, semconv.SPANLEDGER_WORKFLOW_NAME, semconv.GEN_AI_WORKFLOW_NAME, resource.workflow)
    tenant = _span_text(get, semconv.SPANLEDGER_TENANT_ID, None, resource.tenant)
    model = response_model or request_model
    facts = decoded.batch.facts

    def add(
        meter: str,
        quantity: Decimal | None,
        unit: str,
        resource_type: str,
        boundary: str | None = None,
        accelerator_type: str | None = None,
        interval: tuple[datetime, datetime] | None = None,
    ) -> None:
        if quantity is None or quantity <= 0 or quantity >= _MAX_QUANTITY:
            return
        begin, finish = (start, end) if interval is None else interval
        facts.append(
            UsageFact(
                trace_id=trace_id,
                span_id=span_id,
                meter=meter,
                start_time=begin,
                end_time=finish,
                quantity=quantity,
                unit=unit,
                resource_id=resource_id,
                resource_type=resource_type,
                provider=provider,
                account_id=account_id,
                region=region,
                model=model,
                boundary=boundary,
                accelerator_type=accelerator_type,
                workflow=workflow,
                tenant=tenant,
                service=resource.service,
            )
        )

    def tokens(key: str) -> int | None:
        return _token_count(_VALUES[get(key)], key, decoded.refused_values)

    llm_type = declared_type or _LLM_MODEL
    input_tokens = tokens(semconv.GEN_AI_USAGE_INPUT_TOKENS)
    cache_read = tokens(semconv.GEN_AI_USAGE_CACHE_READ_INPUT_TOKENS) or 0
    cache_write = (
        tokens(semconv.GEN_AI_USAGE_CACHE_WRITE_INPUT_TOKENS)
        or tokens(semconv.GEN_AI_USAGE_CACHE_CREATION_INPUT_TOKENS)
        or 0
    )
    # The guards skip a call per absent meter (add() would drop it too); this runs for every owner span.
    if input_tokens is not None and input_tokens - cache_read - cache_write > 0:
        add(_LLM_INPUT_TOKENS, Decimal(input_tokens - cache_read - cache_write), _TOKEN_UNIT, llm_type)
    if cache_read:
        add(_LLM_CACHE_READ_TOKENS, Decimal(cache_read), _TOKEN_UNIT, llm_type)
    if cache_write:
        add(_LLM_CACHE_WRITE_TOKENS, Decimal(cache_write), _TOKEN_UNIT, llm_type)
    output_tokens = tokens(semconv.GEN_AI_USAGE_OUTPUT_TOKENS)
    if output_tokens:
        add(_LLM_OUTPUT_TOKENS, Decimal(output_tokens), _TOKEN_UNIT, llm_type)
    accelerator_seconds = _number(_VALUES[get(semconv.SPANLEDGER_ACCELERATOR_TIME)])
    if accelerator_seconds is not None:
        add(
            _ACCELERATOR_SECONDS,
            accelerator_seconds,
            _SECONDS_UNIT,
            declared_type or _GPU_INSTANCE,
            None,
            _text(_VALUES[get(semconv.SPANLEDGER_ACCELERATOR_TYPE)]),
        )
    if declared_type == _SAGEMAKER_ENDPOINT or (provider == _SAGEMAKER_PROVIDER):
        begin, finish, seconds = _endpoint_usage(
            _VALUES[get(semconv.SPANLEDGER_OCCUPANCY_START)],
            _VALUES[get(semconv.SPANLEDGER_OCCUPANCY_END)],
            start,
            end,
            header.start_time_unix_nano,
            header.end_time_unix_nano,
        )
        add(_ENDPOINT_SECONDS, seconds, _SECONDS_UNIT, _SAGEMAKER_ENDPOINT, interval=(begin, finish))
    egress = _VALUES[get(semconv.SPANLEDGER_EGRESS_BYTES)]
    ingress = _VALUES[get(semconv.SPANLEDGER_INGRESS_BYTES)]
    if egress is not None or ingress is not None:
        boundary = _text(_VALUES[get(semconv.SPANLEDGER_EGRESS_BOUNDARY)]) or _UNKNOWN_BOUNDARY
        add(_EGRESS_BYTES, _number(egress), _BYTES_UNIT, _DATA_TRANSFER, boundary=boundary)
        add(_INGRESS_BYTES, _number(ingress), _BYTES_UNIT, _DATA_TRANSFER, boundary=boundary)

    operation = _text(_VALUES[get(semconv.GEN_AI_OPERATION_NAME)])
    if operation is not None:
        decoded.llm_calls.append(
            LlmCall(
                operation=operation,
                provider=span_provider or "",
                request_model=request_model or "",
                response_model=response_model or "",
                server_address=_text(_VALUES[get(semconv.SERVER_ADDRESS)]) or "",
                server_port=_text(_VALUES[get(semconv.SERVER_PORT)]) or "",
                error_type=_text(_VALUES[get(semconv.ERROR_TYPE)]) or "",
                duration_s=max(0, header.end_time_unix_nano - header.start_time_unix_nano) / 1e9,
                input_tokens=input_tokens,
                output_tokens=output_tokens,
                time_to_first_chunk_s=_float(_VALUES[get(semconv.GEN_AI_RESPONSE_TIME_TO_FIRST_CHUNK)]),
            )
        )


def _data_reads(
    decoded: DecodedTraces, trace_id: str, span_id: str, events: Any, get: Any, resource: _ResourceDefaults
) -> None:
    workflow = _span_text(get, semconv.SPANLEDGER_WORKFLOW_NAME, semconv.GEN_AI_WORKFLOW_NAME, resource.workflow)
    tenant = _span_text(get, semconv.SPANLEDGER_TENANT_ID, None, resource.tenant)
    reads = decoded.batch.data_reads
    for seq, raw in enumerate(events):
        if _DATA_READ_MARK not in raw:
            continue
        event = parse_span_event(raw)
        if event.name != semconv.EVENT_SPANLEDGER_DATA_READ or event.time_unix_nano > _MAX_NANOS:
            continue
        value = event.attributes.get
        last_modified = _float(_VALUES[value(semconv.SPANLEDGER_DATA_LAST_MODIFIED)])
        age = _float(_VALUES[value(semconv.SPANLEDGER_DATA_AGE)])
        if age is None and last_modified is not None:
            age = event.time_unix_nano / 1e9 - last_modified
        size = _number(_VALUES[value(semconv.SPANLEDGER_DATA_BYTES)])
        reads.append(
            DataRead(
                trace_id=trace_id,
                span_id=span_id,
                seq=seq,
                read_time=nanos_to_datetime(event.time_unix_nano),
                source=_text(_VALUES[value(semconv.SPANLEDGER_DATA_SOURCE)]),
                source_kind=_text(_VALUES[value(semconv.SPANLEDGER_DATA_SOURCE_KIND)]),
                last_modified=None if last_modified is None else _seconds_to_datetime(last_modified),
                age_seconds=age,
                bytes=int(size) if size is not None and 0 <= size < _MAX_NANOS else None,
                staleness_method=_text(_VALUES[value(semconv.SPANLEDGER_DATA_STALENESS_METHOD)]),
                workflow=workflow,
                tenant=tenant,
                service=resource.service,
            )
        )


def _object_read(
    decoded: DecodedTraces,
    trace_id: str,
    span_id: str,
    header: Any,
    read: _dialects.ObjectRead,
    get: Any,
    resource: _ResourceDefaults,
) -> None:
    """The data read of another producer's S3 GetObject span: its source, at the span's end (its object's age
    is unknown: that producer records no last-modified time)."""
    decoded.batch.data_reads.append(
        DataRead(
            trace_id=trace_id,
            span_id=span_id,
            seq=0,
            read_time=nanos_to_datetime(header.end_time_unix_nano),
            source=read.source,
            source_kind=_OBJECT_STORE,
            last_modified=None,
            age_seconds=None,
            bytes=read.bytes,
            staleness_method=None,
            workflow=_span_text(get, semconv.SPANLEDGER_WORKFLOW_NAME, semconv.GEN_AI_WORKFLOW_NAME, resource.workflow),
            tenant=_span_text(get, semconv.SPANLEDGER_TENANT_ID, None, resource.tenant),
            service=resource.service,
        )
    )


def decode_traces(data: bytes, *, extract_usage: bool = True) -> DecodedTraces:
    """Decode an ``ExportTraceServiceRequest``; raises ``DecodeError`` when it is not valid protobuf.

    Spans with an invalid trace or span id are rejected (counted, and described in ``rejection``);
    the others are accepted. The compiled decoder takes the requests it handles exactly as
    :func:`decode_traces_python` does; the others, malformed ones included, go to that reference.
    """
    if _speedups is not None:
        fast = _speedups.decode_traces(data, extract_usage)
        if fast is not None:
            columns, facts, data_reads, llm_calls, rejected, rejection, refused, candidates = fast
            spans = SpanColumns(*columns)  # in SpanColumns' field order (checked when the decoder is loaded)
            decoded = DecodedTraces(
                batch=StoreBatch(spans=spans, facts=facts, data_reads=data_reads),
                llm_calls=llm_calls,
                accepted_spans=len(spans),
                rejected_spans=rejected,
                rejection=rejection,
                refused_values=refused,
            )
            if candidates or facts:  # issue 15: counted once and retractions, as in the reference
                _settle(decoded, _producers.Candidates(candidates or []), _speedups)
            return decoded
    return decode_traces_python(data, extract_usage=extract_usage)


def decode_traces_python(data: bytes, *, extract_usage: bool = True) -> DecodedTraces:
    """:func:`decode_traces` in Python: the reference, and the decoder where the compiled one is not built."""
    decoded = DecodedTraces()
    columns = decoded.batch.spans
    candidates = _producers.Candidates()  # issue 15: spans of other producers that report usage
    traces = parse_skinny_traces(data)
    for resource_spans in traces.resource_spans:
        resource = _NO_RESOURCE
        if resource_spans.resource:
            resource = _resource_defaults(resource_spans.resource)
        service = resource.service
        for scope_spans in resource_spans.scope_spans:
            for raw in scope_spans.spans:
                header = parse_span_header(raw)
                trace_bytes = header.trace_id
                span_bytes = header.span_id
                start, end = header.start_time_unix_nano, header.end_time_unix_nano
                if (
                    len(trace_bytes) != 16
                    or len(span_bytes) != 8
                    or trace_bytes == _ZERO_TRACE
                    or span_bytes == _ZERO_SPAN
                ):
                    decoded.rejected_spans += 1
                    decoded.rejection = (
                        "spans must have a 16-byte non-zero trace_id and an 8-byte non-zero span_id "
                        f"(span {header.name!r} has {len(trace_bytes)} and {len(span_bytes)} bytes)"
                    )
                    continue
                if start > _MAX_NANOS or end > _MAX_NANOS:
                    decoded.rejected_spans += 1
                    decoded.rejection = f"span {header.name!r} has a start or end time past the year 2262"
                    continue
                trace_id = trace_bytes.hex()
                span_id = span_bytes.hex()
                parent = header.parent_span_id
                columns.trace_id.append(trace_id)
                columns.span_id.append(span_id)
                columns.parent_span_id.append(parent.hex() if parent else None)
                columns.name.append(header.name)
                columns.kind.append(header.kind if header.kind in _SPAN_KINDS else 0)
                columns.service.append(service)
                columns.start_time_unix_nano.append(start)
                columns.end_time_unix_nano.append(end)
                columns.status_code.append(header.status.code if header.status.code in _STATUS_CODES else 0)
                foreign = extract_usage and _OWNER_MARK not in raw and _dialects.may_report(raw)
                if (
                    _NOT_MEASURED_MARK not in raw
                    and not foreign
                    and not (extract_usage and (_OWNER_MARK in raw or _DATA_READ_MARK in raw))
                ):
                    columns.unmeasured.append(None)
                    continue
                span = parse_owner_span(raw)
                get = span.attributes.get
                reason = _text(_VALUES[get(semconv.SPANLEDGER_ACCELERATOR_NOT_MEASURED_REASON)])
                columns.unmeasured.append(None if reason is None else f"accelerator: {reason}")
                if not extract_usage:
                    continue
                if _VALUES[get(semconv.SPANLEDGER_USAGE_OWNER)] is True:
                    _owner_usage(decoded, trace_id, span_id, header, get, resource)
                elif foreign:
                    client = header.kind == _CLIENT_KIND
                    view = _dialects.standard_view(get, client=client, account=resource.account_id)
                    if view is not None:
                        scratch = DecodedTraces()
                        _owner_usage(scratch, trace_id, span_id, header, view, resource)
                        candidates.add(_producers.Candidate(trace_id, span_id, scratch.batch.facts, scratch.llm_calls))
                    if (read := _dialects.object_read(get)) is not None:
                        _object_read(decoded, trace_id, span_id, header, read, get, resource)
                if _DATA_READ_MARK in raw:
                    _data_reads(decoded, trace_id, span_id, span.events, get, resource)
    _settle(decoded, candidates, None)
    decoded.accepted_spans = len(columns)
    return decoded


def _settle(decoded: DecodedTraces, candidates: _producers.Candidates, compiled: _producers.Compiled | None) -> None:
    """Issue 15: which candidates count, and what this request retracts of earlier ones (docs/producers.md)."""
    batch = decoded.batch
    settled = candidates.settle(batch.facts, batch.spans, compiled=compiled)
    if settled is None:
        return
    batch.facts.extend(settled.facts)
    decoded.llm_calls.extend(settled.llm_calls)
    batch.retractions, batch.retracted = settled.retractions, settled.retracted
    batch.candidates, batch.ancestry = settled.candidates, settled.ancestry


# The compiled decoder's attribute slots (named in _speedups.c) and the attributes they read.
_SLOT_KEYS = {
    "NOT_MEASURED_REASON": semconv.SPANLEDGER_ACCELERATOR_NOT_MEASURED_REASON,
    "USAGE_OWNER": semconv.SPANLEDGER_USAGE_OWNER,
    "PROVIDER_NAME": semconv.GEN_AI_PROVIDER_NAME,
    "CLOUD_PROVIDER": semconv.CLOUD_PROVIDER,
    "RESOURCE_TYPE": semconv.SPANLEDGER_RESOURCE_TYPE,
    "CLOUD_RESOURCE_ID": semconv.CLOUD_RESOURCE_ID,
    "CLOUD_ACCOUNT_ID": semconv.CLOUD_ACCOUNT_ID,
    "CLOUD_REGION": semconv.CLOUD_REGION,
    "RESPONSE_MODEL": semconv.GEN_AI_RESPONSE_MODEL,
    "REQUEST_MODEL": semconv.GEN_AI_REQUEST_MODEL,
    "WORKFLOW_NAME": semconv.SPANLEDGER_WORKFLOW_NAME,
    "GEN_AI_WORKFLOW_NAME": semconv.GEN_AI_WORKFLOW_NAME,
    "TENANT_ID": semconv.SPANLEDGER_TENANT_ID,
    "INPUT_TOKENS": semconv.GEN_AI_USAGE_INPUT_TOKENS,
    "CACHE_READ_TOKENS": semconv.GEN_AI_USAGE_CACHE_READ_INPUT_TOKENS,
    "CACHE_WRITE_TOKENS": semconv.GEN_AI_USAGE_CACHE_WRITE_INPUT_TOKENS,
    "CACHE_CREATION_TOKENS": semconv.GEN_AI_USAGE_CACHE_CREATION_INPUT_TOKENS,
    "OUTPUT_TOKENS": semconv.GEN_AI_USAGE_OUTPUT_TOKENS,
    "ACCELERATOR_TIME": semconv.SPANLEDGER_ACCELERATOR_TIME,
    "ACCELERATOR_TYPE": semconv.SPANLEDGER_ACCELERATOR_TYPE,
    "OCCUPANCY_START": semconv.SPANLEDGER_OCCUPANCY_START,
    "OCCUPANCY_END": semconv.SPANLEDGER_OCCUPANCY_END,
    "EGRESS_BYTES": semconv.SPANLEDGER_EGRESS_BYTES,
    "INGRESS_BYTES": semconv.SPANLEDGER_INGRESS_BYTES,
    "EGRESS_BOUNDARY": semconv.SPANLEDGER_EGRESS_BOUNDARY,
    "OPERATION_NAME": semconv.GEN_AI_OPERATION_NAME,
    "SERVER_ADDRESS": semconv.SERVER_ADDRESS,
    "SERVER_PORT": semconv.SERVER_PORT,
    "ERROR_TYPE": semconv.ERROR_TYPE,
    "TIME_TO_FIRST_CHUNK": semconv.GEN_AI_RESPONSE_TIME_TO_FIRST_CHUNK,
    "DATA_LAST_MODIFIED": semconv.SPANLEDGER_DATA_LAST_MODIFIED,
    "DATA_AGE": semconv.SPANLEDGER_DATA_AGE,
    "DATA_BYTES": semconv.SPANLEDGER_DATA_BYTES,
    "DATA_SOURCE": semconv.SPANLEDGER_DATA_SOURCE,
    "DATA_SOURCE_KIND": semconv.SPANLEDGER_DATA_SOURCE_KIND,
    "DATA_STALENESS_METHOD": semconv.SPANLEDGER_DATA_STALENESS_METHOD,
}


def field_order_differences(speedups: Any) -> list[str]:
    """Where the compiled decoder's record layouts differ from the field tables (empty when they agree)."""
    expected = {
        "USAGE_FACT_FIELDS": UsageFact._fields,
        "DATA_READ_FIELDS": DataRead._fields,
        "LLM_CALL_FIELDS": LlmCall._fields,
        "SPAN_COLUMNS": tuple(column.name for column in dataclasses.fields(SpanColumns)),
        "CANDIDATE_FIELDS": _producers.Candidate._fields,
        "REPORTED_FIELDS": _producers.Reported._fields,
        "CANDIDATE_SPAN_FIELDS": CandidateSpan._fields,
    }
    differences = []
    for name, fields in expected.items():
        built = getattr(speedups, name, None)
        if built != fields:
            differences.append(f"{name}: compiled {built}, field table {fields}")
    return differences


def _load_speedups() -> Any:
    """The compiled decoder, configured, or None where it was not built or ``SPANLEDGER_NO_SPEEDUPS`` is set.

    A decoder built from an older field table (a record's fields added, removed or reordered since it was
    compiled) would put values in the wrong fields: it is declined, with an error naming the difference.
    """
    if os.environ.get("SPANLEDGER_NO_SPEEDUPS"):
        return None
    try:
        from . import _speedups  # type: ignore[attr-defined]
    except ImportError:
        return None
    differences = field_order_differences(_speedups)
    if differences:
        logger.error(
            "the compiled decoder does not match the field tables and is not used (rebuild it: pip install -e .): %s",
            "; ".join(differences),
        )
        return None
    _speedups.configure(
        {
            "keys": {slot: _SLOT_KEYS[slot].encode() for slot in _speedups.ATTRIBUTE_SLOTS},
            "owner_mark": _OWNER_MARK,
            "data_read_mark": _DATA_READ_MARK,
            "not_measured_mark": _NOT_MEASURED_MARK,
            "value": _VALUES,
            "text": _text,
            "number": _number,
            "to_float": _float,
            "seconds_to_datetime": _seconds_to_datetime,
            "endpoint_usage": _endpoint_usage,
            "resource_defaults": _resource_defaults,
            "no_resource": _NO_RESOURCE,
            "usage_fact": UsageFact,
            "data_read": DataRead,
            "llm_call": LlmCall,
            "decimal": Decimal,
            "zero": Decimal(0),
            "max_quantity": _MAX_QUANTITY,
            "max_tokens": MAX_TOKENS,
            "max_nanos": _MAX_NANOS,
            "not_measured_prefix": "accelerator: ",
            "llm_input_tokens": _LLM_INPUT_TOKENS,
            "llm_cache_read_tokens": _LLM_CACHE_READ_TOKENS,
            "llm_cache_write_tokens": _LLM_CACHE_WRITE_TOKENS,
            "llm_output_tokens": _LLM_OUTPUT_TOKENS,
            "accelerator_seconds": _ACCELERATOR_SECONDS,
            "endpoint_seconds": _ENDPOINT_SECONDS,
            "egress_bytes": _EGRESS_BYTES,
            "ingress_bytes": _INGRESS_BYTES,
            "token_unit": _TOKEN_UNIT,
            "seconds_unit": _SECONDS_UNIT,
            "bytes_unit": _BYTES_UNIT,
            "llm_model": _LLM_MODEL,
            "gpu_instance": _GPU_INSTANCE,
            "sagemaker_endpoint": _SAGEMAKER_ENDPOINT,
            "data_transfer": _DATA_TRANSFER,
            "unknown_boundary": _UNKNOWN_BOUNDARY,
            "sagemaker_provider": _SAGEMAKER_PROVIDER,
            "empty": "",
        }
    )
    _speedups.configure_foreign(_dialects.compiled_view(_SLOT_KEYS))  # issue 15: other producers' usage
    return _speedups


_speedups = _load_speedups()
SPEEDUPS = _speedups is not None
"""Whether the compiled decoder is in use (it is built at install time where a C compiler is present)."""
