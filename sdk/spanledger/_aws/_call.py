"""One botocore API call as the instrumentation sees it: its parameters, where it goes, and its span."""

from __future__ import annotations

import time
from collections.abc import Mapping
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any

from opentelemetry.trace import Span, Status, StatusCode
from opentelemetry.util.types import AttributeValue

from .. import semconv
from .._egress import egress_byte_counter
from .._errors import error_type as generic_error_type
from .._genai import GenAIRecorder
from .._metrics import create_instrument
from .._telemetry import Telemetry

__all__ = ["AwsCall", "Instruments", "current_call", "error_type"]

current_call: ContextVar[AwsCall | None] = ContextVar("spanledger_aws_call", default=None)
"""The call in flight in this context, so botocore's ``before-send`` hook can count the request bytes."""


@dataclass(slots=True)
class AwsCall:
    telemetry: Telemetry
    instruments: Instruments
    service: str
    """botocore service name (``s3``, ``bedrock-runtime``, ``sagemaker-runtime``)."""
    operation: str
    params: Mapping[str, Any]
    region: str | None
    account: str | None
    """Account from the process's resource or the environment; an ARN in the parameters wins."""
    boundary: str
    """The billed network boundary between this process and the endpoint (``spanledger.egress.boundary``)."""
    attributes: dict[str, AttributeValue] = field(default_factory=dict)
    """Attributes known before the request is sent (the span starts with them)."""
    span: Span | None = None
    owns_span: bool = True
    """False when the upstream botocore instrumentation made the span and we only add to it."""
    start_time: float = field(default_factory=time.time)
    """Wall-clock start (seconds since the epoch), for occupancy."""
    started: float = field(default_factory=time.perf_counter)
    """Monotonic start, for durations."""
    request_bytes: int = 0
    request_bytes_known: bool = False
    ended: bool = False
    content: Any = None
    """The GenAI call's ``Content`` when content is collected (Bedrock)."""
    pending: dict[str, AttributeValue] = field(default_factory=dict)
    """Attributes learnt after the span started, set on it in one go when it ends (cheaper than one by one)."""

    def set(self, key: str, value: AttributeValue | None) -> None:
        """Set an attribute on the span (or, before it starts, on its initial attributes); ``None`` is skipped."""
        if value is None:
            return
        if self.span is None:
            self.attributes[key] = value
        else:
            self.pending[key] = value

    def update(self, attributes: Mapping[str, AttributeValue]) -> None:
        if self.span is None:
            self.attributes.update(attributes)
        else:
            self.pending.update(attributes)

    def add_request_bytes(self, size: int) -> None:
        self.request_bytes += size
        self.request_bytes_known = True

    def record_wire_bytes(self, response_bytes: int | None) -> None:
        """Bytes on the wire both ways, with the boundary they crossed (this span owns them)."""
        if self.request_bytes_known:
            self.set(semconv.SPANLEDGER_EGRESS_BYTES, self.request_bytes)
        if response_bytes is not None:
            self.set(semconv.SPANLEDGER_INGRESS_BYTES, response_bytes)
        self.instruments.wire_bytes.add_exchange(self.boundary, self.request_bytes, response_bytes or 0)

    def end(self, error: BaseException | None = None) -> None:
        """End the span once (only if we made it)."""
        if self.ended:
            return
        self.ended = True
        if self.span is None:
            return
        if error is not None:
            self.pending[semconv.ERROR_TYPE] = error_type(error)
        if self.pending:
            self.span.set_attributes(self.pending)
        if error is not None and self.owns_span:
            self.span.set_status(Status(StatusCode.ERROR, str(error)))
        if self.owns_span:
            self.span.end()


def error_type(error: BaseException) -> str:
    """The AWS error code for a ``ClientError``, else the exception's class name."""
    response = getattr(error, "response", None)
    if isinstance(response, Mapping):
        code = response.get("Error", {}).get("Code")
        if code:
            return str(code)
    return generic_error_type(error)


class Instruments:
    """The metric instruments AWS calls record into, created once per ``instrument()``."""

    def __init__(self, telemetry: Telemetry) -> None:
        meter = telemetry.meter
        self.wire_bytes = egress_byte_counter(meter)  # shared with the httpx instrumentation
        self.data_age = create_instrument(meter, semconv.METRIC_SPANLEDGER_DATA_AGE)
        self.genai = GenAIRecorder(telemetry)
