"""Usage extraction: OTLP trace bytes -> span rows, usage facts (one per meter per owner span), data reads.

The meters and their sources are defined in docs/design.md ("Usage facts"). Only spans that carry
``spanledger.usage.owner = true`` produce facts; only ``spanledger.data.read`` events produce data reads.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal, InvalidOperation
from typing import Any, NamedTuple

from opentelemetry.proto.resource.v1.resource_pb2 import Resource
from spanledger import semconv
from spanledger.semconv import SpanledgerEgressBoundaryValues as Boundary
from spanledger.semconv import SpanledgerMeterValues as Meter
from spanledger.semconv import SpanledgerResourceTypeValues as ResourceType

from ._otlp import (
    AttributeValue,
    attribute_dict,
    parse_skinny_traces,
    parse_span,
    parse_span_header,
    selected_attributes,
)
from ._store import DataRead, StoreBatch, UsageFact

__all__ = ["DecodedTraces", "LlmCall", "decode_traces"]

_EPOCH = datetime(1970, 1, 1)
_OWNER_MARK = semconv.SPANLEDGER_USAGE_OWNER.encode()
_DATA_READ_MARK = semconv.EVENT_SPANLEDGER_DATA_READ.encode()
_NOT_MEASURED_MARK = semconv.SPANLEDGER_ACCELERATOR_NOT_MEASURED_REASON.encode()
_NOT_MEASURED_KEYS = frozenset({semconv.SPANLEDGER_ACCELERATOR_NOT_MEASURED_REASON})
_TOKEN_UNIT = "{token}"
_SECONDS_UNIT = "s"
_BYTES_UNIT = "By"
_MAX_NANOS = 2**63 - 1
_ZERO_TRACE = bytes(16)
_ZERO_SPAN = bytes(8)
# DECIMAL(38, 9) holds 29 integer digits; anything near that is a broken client, not usage.
_MAX_QUANTITY = Decimal(10) ** 18
_QUANTUM = Decimal("1e-9")
_SPAN_KINDS = range(6)
# The span attributes usage extraction reads; the others are never converted to Python objects.
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
_USED_KEYS = frozenset(
    {
        semconv.SPANLEDGER_USAGE_OWNER,
        semconv.GEN_AI_PROVIDER_NAME,
        semconv.CLOUD_PROVIDER,
        semconv.SPANLEDGER_RESOURCE_TYPE,
        semconv.CLOUD_RESOURCE_ID,
        semconv.CLOUD_ACCOUNT_ID,
        semconv.CLOUD_REGION,
        semconv.GEN_AI_RESPONSE_MODEL,
        semconv.GEN_AI_REQUEST_MODEL,
        semconv.SPANLEDGER_WORKFLOW_NAME,
        semconv.GEN_AI_WORKFLOW_NAME,
        semconv.SPANLEDGER_TENANT_ID,
        semconv.GEN_AI_USAGE_INPUT_TOKENS,
        semconv.GEN_AI_USAGE_CACHE_READ_INPUT_TOKENS,
        semconv.GEN_AI_USAGE_CACHE_WRITE_INPUT_TOKENS,
        semconv.GEN_AI_USAGE_CACHE_CREATION_INPUT_TOKENS,
        semconv.GEN_AI_USAGE_OUTPUT_TOKENS,
        semconv.SPANLEDGER_ACCELERATOR_TIME,
        semconv.SPANLEDGER_ACCELERATOR_TYPE,
        semconv.SPANLEDGER_OCCUPANCY_START,
        semconv.SPANLEDGER_OCCUPANCY_END,
        semconv.SPANLEDGER_EGRESS_BOUNDARY,
        semconv.SPANLEDGER_EGRESS_BYTES,
        semconv.SPANLEDGER_INGRESS_BYTES,
        semconv.GEN_AI_OPERATION_NAME,
        semconv.GEN_AI_RESPONSE_TIME_TO_FIRST_CHUNK,
        semconv.SERVER_ADDRESS,
        semconv.SERVER_PORT,
        semconv.ERROR_TYPE,
    }
)
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
    if type(value) is int:
        return Decimal(value)
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        return None
    try:
        number = Decimal(str(value))
        return number.quantize(_QUANTUM) if number.is_finite() else None
    except InvalidOperation:
        return None


def _float(value: AttributeValue) -> float | None:
    number = _number(value)
    return None if number is None else float(number)


class _Attributes:
    """Span attributes first, then resource attributes."""

    def __init__(self, span: dict[str, AttributeValue], resource: dict[str, AttributeValue]) -> None:
        self.span = span
        self.resource = resource

    def text(self, key: str, fallback: str | None = None) -> str | None:
        span = self.span
        value = span.get(key)
        if value is None and fallback is not None:
            value = span.get(fallback)
        if value is None:
            value = self.resource.get(key)
            if value is None and fallback is not None:
                value = self.resource.get(fallback)
        return _text(value)


def _span_facts(
    trace_id: str, span_id: str, header: Any, span: dict[str, AttributeValue], resource: dict[str, AttributeValue]
) -> list[UsageFact]:
    attributes = _Attributes(span, resource)
    start = nanos_to_datetime(header.start_time_unix_nano)
    end = nanos_to_datetime(header.end_time_unix_nano)
    provider = attributes.text(semconv.GEN_AI_PROVIDER_NAME, semconv.CLOUD_PROVIDER)
    declared_type = _text(span.get(semconv.SPANLEDGER_RESOURCE_TYPE))
    resource_id = attributes.text(semconv.CLOUD_RESOURCE_ID)
    account_id = attributes.text(semconv.CLOUD_ACCOUNT_ID)
    region = attributes.text(semconv.CLOUD_REGION)
    model = _text(span.get(semconv.GEN_AI_RESPONSE_MODEL)) or _text(span.get(semconv.GEN_AI_REQUEST_MODEL))
    workflow = attributes.text(semconv.SPANLEDGER_WORKFLOW_NAME, semconv.GEN_AI_WORKFLOW_NAME)
    tenant = attributes.text(semconv.SPANLEDGER_TENANT_ID)
    service = _text(resource.get(semconv.SERVICE_NAME))
    facts: list[UsageFact] = []

    def add(
        meter: str,
        quantity: Decimal | None,
        unit: str,
        resource_type: str,
        *,
        boundary: str | None = None,
        accelerator_type: str | None = None,
        interval: tuple[datetime, datetime] = (start, end),
    ) -> None:
        if quantity is None or quantity <= 0 or quantity >= _MAX_QUANTITY:
            return
        facts.append(
            UsageFact(
                trace_id, span_id, meter, interval[0], interval[1], quantity, unit, resource_id, resource_type,
                provider, account_id, region, model, boundary, accelerator_type, workflow, tenant, service,
            )
        )  # fmt: skip

    llm_type = declared_type or _LLM_MODEL
    input_tokens = _number(span.get(semconv.GEN_AI_USAGE_INPUT_TOKENS))
    cache_read = _number(span.get(semconv.GEN_AI_USAGE_CACHE_READ_INPUT_TOKENS)) or Decimal(0)
    cache_write = (
        _number(span.get(semconv.GEN_AI_USAGE_CACHE_WRITE_INPUT_TOKENS))
        or _number(span.get(semconv.GEN_AI_USAGE_CACHE_CREATION_INPUT_TOKENS))
        or Decimal(0)
    )
    if input_tokens is not None:
        add(_LLM_INPUT_TOKENS, max(Decimal(0), input_tokens - cache_read - cache_write), _TOKEN_UNIT, llm_type)
    # The guards skip a call per absent meter (add() would drop it too); this runs for every owner span.
    if cache_read:
        add(_LLM_CACHE_READ_TOKENS, cache_read, _TOKEN_UNIT, llm_type)
    if cache_write:
        add(_LLM_CACHE_WRITE_TOKENS, cache_write, _TOKEN_UNIT, llm_type)
    output_tokens = _number(span.get(semconv.GEN_AI_USAGE_OUTPUT_TOKENS))
    if output_tokens is not None:
        add(_LLM_OUTPUT_TOKENS, output_tokens, _TOKEN_UNIT, llm_type)
    accelerator_seconds = _number(span.get(semconv.SPANLEDGER_ACCELERATOR_TIME))
    if accelerator_seconds is not None:
        add(
            _ACCELERATOR_SECONDS,
            accelerator_seconds,
            _SECONDS_UNIT,
            declared_type or _GPU_INSTANCE,
            accelerator_type=_text(span.get(semconv.SPANLEDGER_ACCELERATOR_TYPE)),
        )
    if declared_type == _SAGEMAKER_ENDPOINT or (provider == _SAGEMAKER_PROVIDER):
        occupancy_start = _float(span.get(semconv.SPANLEDGER_OCCUPANCY_START))
        occupancy_end = _float(span.get(semconv.SPANLEDGER_OCCUPANCY_END))
        occupied_from = None if occupancy_start is None else _seconds_to_datetime(occupancy_start)
        occupied_to = None if occupancy_end is None else _seconds_to_datetime(occupancy_end)
        if occupied_from is not None and occupied_to is not None and occupied_to >= occupied_from:
            interval = (occupied_from, occupied_to)
            seconds = Decimal((occupied_to - occupied_from) // timedelta(microseconds=1)) / Decimal(1_000_000)
        else:
            interval = (start, end)
            seconds = Decimal(header.end_time_unix_nano - header.start_time_unix_nano) / Decimal(1_000_000_000)
        add(_ENDPOINT_SECONDS, seconds, _SECONDS_UNIT, _SAGEMAKER_ENDPOINT, interval=interval)
    egress = span.get(semconv.SPANLEDGER_EGRESS_BYTES)
    ingress = span.get(semconv.SPANLEDGER_INGRESS_BYTES)
    if egress is not None or ingress is not None:
        boundary = _text(span.get(semconv.SPANLEDGER_EGRESS_BOUNDARY)) or _UNKNOWN_BOUNDARY
        add(_EGRESS_BYTES, _number(egress), _BYTES_UNIT, _DATA_TRANSFER, boundary=boundary)
        add(_INGRESS_BYTES, _number(ingress), _BYTES_UNIT, _DATA_TRANSFER, boundary=boundary)
    return facts


def _llm_call(header: Any, span: dict[str, AttributeValue]) -> LlmCall | None:
    operation = _text(span.get(semconv.GEN_AI_OPERATION_NAME))
    if operation is None:
        return None
    input_tokens = _number(span.get(semconv.GEN_AI_USAGE_INPUT_TOKENS))
    output_tokens = _number(span.get(semconv.GEN_AI_USAGE_OUTPUT_TOKENS))
    return LlmCall(
        operation=operation,
        provider=_text(span.get(semconv.GEN_AI_PROVIDER_NAME)) or "",
        request_model=_text(span.get(semconv.GEN_AI_REQUEST_MODEL)) or "",
        response_model=_text(span.get(semconv.GEN_AI_RESPONSE_MODEL)) or "",
        server_address=_text(span.get(semconv.SERVER_ADDRESS)) or "",
        server_port=_text(span.get(semconv.SERVER_PORT)) or "",
        error_type=_text(span.get(semconv.ERROR_TYPE)) or "",
        duration_s=max(0, header.end_time_unix_nano - header.start_time_unix_nano) / 1e9,
        input_tokens=None if input_tokens is None else int(input_tokens),
        output_tokens=None if output_tokens is None else int(output_tokens),
        time_to_first_chunk_s=_float(span.get(semconv.GEN_AI_RESPONSE_TIME_TO_FIRST_CHUNK)),
    )


def _data_reads(
    trace_id: str, span_id: str, parsed: Any, span: dict[str, AttributeValue], resource: dict[str, AttributeValue]
) -> list[DataRead]:
    attributes = _Attributes(span, resource)
    reads = []
    for seq, event in enumerate(parsed.events):
        if event.name != semconv.EVENT_SPANLEDGER_DATA_READ:
            continue
        values = attribute_dict(event.attributes)
        last_modified = _float(values.get(semconv.SPANLEDGER_DATA_LAST_MODIFIED))
        age = _float(values.get(semconv.SPANLEDGER_DATA_AGE))
        if age is None and last_modified is not None:
            age = event.time_unix_nano / 1e9 - last_modified
        size = _number(values.get(semconv.SPANLEDGER_DATA_BYTES))
        if event.time_unix_nano > _MAX_NANOS:
            continue
        reads.append(
            DataRead(
                trace_id=trace_id,
                span_id=span_id,
                seq=seq,
                read_time=nanos_to_datetime(event.time_unix_nano),
                source=_text(values.get(semconv.SPANLEDGER_DATA_SOURCE)),
                source_kind=_text(values.get(semconv.SPANLEDGER_DATA_SOURCE_KIND)),
                last_modified=None if last_modified is None else _seconds_to_datetime(last_modified),
                age_seconds=age,
                bytes=int(size) if size is not None and 0 <= size < _MAX_NANOS else None,
                staleness_method=_text(values.get(semconv.SPANLEDGER_DATA_STALENESS_METHOD)),
                workflow=attributes.text(semconv.SPANLEDGER_WORKFLOW_NAME, semconv.GEN_AI_WORKFLOW_NAME),
                tenant=attributes.text(semconv.SPANLEDGER_TENANT_ID),
                service=_text(resource.get(semconv.SERVICE_NAME)),
            )
        )
    return reads


def decode_traces(data: bytes, *, extract_usage: bool = True) -> DecodedTraces:
    """Decode an ``ExportTraceServiceRequest``; raises ``DecodeError`` when it is not valid protobuf.

    Spans with an invalid trace or span id are rejected (counted, and described in ``rejection``);
    the others are accepted.
    """
    decoded = DecodedTraces()
    columns = decoded.batch.spans
    traces = parse_skinny_traces(data)
    for resource_spans in traces.resource_spans:
        resource: dict[str, AttributeValue] | None = None
        service: str | None = None
        if resource_spans.resource:
            resource = attribute_dict(Resource.FromString(resource_spans.resource).attributes)
            service = _text(resource.get(semconv.SERVICE_NAME))
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
                columns.unmeasured.append(_unmeasured(raw) if _NOT_MEASURED_MARK in raw else None)
                if extract_usage and (_OWNER_MARK in raw or _DATA_READ_MARK in raw):
                    _extract(decoded, trace_id, span_id, header, raw, resource or {})
    decoded.accepted_spans = len(columns)
    return decoded


def _unmeasured(raw: bytes) -> str | None:
    reason = _text(
        selected_attributes(parse_span(raw).attributes, _NOT_MEASURED_KEYS).get(
            semconv.SPANLEDGER_ACCELERATOR_NOT_MEASURED_REASON
        )
    )
    return None if reason is None else f"accelerator: {reason}"


def _extract(
    decoded: DecodedTraces, trace_id: str, span_id: str, header: Any, raw: bytes, resource: dict[str, AttributeValue]
) -> None:
    parsed = parse_span(raw)
    span = selected_attributes(parsed.attributes, _USED_KEYS)
    if span.get(semconv.SPANLEDGER_USAGE_OWNER) is True:
        decoded.batch.facts.extend(_span_facts(trace_id, span_id, header, span, resource))
        call = _llm_call(header, span)
        if call is not None:
            decoded.llm_calls.append(call)
    if _DATA_READ_MARK in raw:
        decoded.batch.data_reads.extend(_data_reads(trace_id, span_id, parsed, span, resource))
