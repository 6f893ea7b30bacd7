"""One GenAI recorder for every provider: what one ``instrument()`` call decided once, so the per-call
path only reads attributes.

The ``GenAIRecorder`` holds the tracer, the metric instruments and every choice derived from the settings
(which attribute names to write for a renamed attribute, which token metrics to emit), plus a small
cache of metric attribute dicts: the OTel SDK keys its aggregations on the attribute set, and handing it
the same dict object for the same low-cardinality combination saves building one per call.

Metric points are recorded lazily. Recording one histogram point through the OTel SDK costs about as
much as starting and ending a span, and a call records three to four, so a finished call only appends
one tuple to a queue; an observable instrument's callback, which the SDK runs at the start of every
collection (periodic export, ``force_flush``, shutdown, an in-memory reader's ``get_metrics_data``),
records the queued points just before they are read, on the collecting thread. Aggregated data is the
same; what is lost is exemplars (the points are recorded outside the call's span context). If the queue
outgrows ``_PENDING_LIMIT`` (collections too rare for the call rate), each new call records two queued
points itself, which bounds memory at the cost of recording on the caller's thread again. With a meter
that is not the OTel SDK's (no-op, proxy, vendor), points are recorded at once.
"""

from __future__ import annotations

import os
import threading
import weakref
from collections import deque
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, NamedTuple

from opentelemetry._logs import Logger, LogRecord
from opentelemetry.metrics import CallbackOptions, Meter, NoOpMeter, Observation
from opentelemetry.trace import Span, Tracer, set_span_in_context

from .. import semconv
from .._internal_errors import log_internal_error
from .._logs import events_wanted
from .._metrics import create_instrument
from .._telemetry import Telemetry
from ._content import CONTENT_ATTRIBUTES, Content
from ._hooks import CompletionHook, completion_hook_for
from ._usage import TokenUsage

__all__ = ["GenAIRecorder", "MetricAttributes", "OperationKey", "new_key"]

_LATEST = "gen_ai_latest_experimental"
_LATEST_AND_RELEASED = f"{_LATEST}/dup"
_CACHE_LIMIT = 512
_PENDING_LIMIT = 10_000

MetricAttributes = dict[str, Any]


class OperationKey(NamedTuple):
    """The low-cardinality attributes every metric point of a call carries (known when it starts)."""

    operation: str
    provider: str
    request_model: str | None = None
    server_address: str | None = None
    server_port: int | None = None


def new_key(
    operation: str, provider: str, model: str | None, address: str | None, port: int | None
) -> OperationKey:
    """``OperationKey(...)`` without the NamedTuple's Python-level ``__new__`` (made once per call)."""
    return tuple.__new__(OperationKey, (operation, provider, model, address, port))


class _MetricAttributeSets(NamedTuple):
    """The attribute dicts of one low-cardinality combination (see ``GenAIRecorder.metric_attributes``)."""

    operation: MetricAttributes
    input: MetricAttributes
    """For ``gen_ai.client.token.usage``: with ``gen_ai.token.type=input``."""
    output: MetricAttributes
    by_modality: MetricAttributes
    """For the draft's usage counters: with ``gen_ai.token.modality``."""


_INFERENCE_OPERATIONS = frozenset(
    {
        semconv.GenAiOperationNameValues.CHAT.value,
        semconv.GenAiOperationNameValues.TEXT_COMPLETION.value,
        semconv.GenAiOperationNameValues.GENERATE_CONTENT.value,
    }
)
_NO_USAGE = TokenUsage()

# One finished call: (recorder, key, response model, duration s, time to first chunk s, usage, error type,
# chunk arrival times ns). A plain tuple, private to this module, because it is built once per call on the hot path.
_Pending = tuple[
    "GenAIRecorder",
    OperationKey,
    "str | None",
    float,
    "float | None",
    "TokenUsage | None",
    "str | None",
    "Sequence[int]",
]


class _PendingQueue(deque[_Pending]):
    """Finished calls' metric points, recorded by the meter's collection hook."""

    def record_all(self, options: CallbackOptions) -> Iterable[Observation]:
        _drain(self, len(self))
        return ()


_queues: weakref.WeakKeyDictionary[Meter, _PendingQueue] = weakref.WeakKeyDictionary()
_queues_lock = threading.Lock()


def _pending_queue(meter: Meter) -> _PendingQueue:
    """The one queue and collection hook of ``meter`` (the SDK keeps the first instrument of a name)."""
    with _queues_lock:
        queue = _queues.get(meter)
        if queue is None:
            queue = _queues[meter] = _PendingQueue()
            spec = semconv.METRIC_SPANLEDGER_SDK_DEFERRED_MEASUREMENTS
            meter.create_observable_gauge(
                spec.name, callbacks=[queue.record_all], unit=spec.unit, description=spec.description
            )
        return queue


def _forget_parent_points() -> None:
    # A forked child inherits the queues; the parent records those points, the child must not again.
    for queue in list(_queues.values()):
        queue.clear()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_forget_parent_points)


def _drain(queue: _PendingQueue, count: int) -> None:
    for _ in range(count):
        try:
            recorder, key, response_model, duration, time_to_first_chunk, usage, error_type, gaps = queue.popleft()
        except IndexError:
            return
        try:
            recorder.record_now(key, response_model, duration, time_to_first_chunk, usage, error_type, gaps)
        except Exception:
            log_internal_error("genai metrics")


class GenAIRecorder:
    """Tracer, instruments and settings-derived choices shared by the GenAI instrumentations."""

    def __init__(self, telemetry: Telemetry) -> None:
        settings = telemetry.settings
        meter = telemetry.meter
        self.telemetry = telemetry
        self.tracer: Tracer = telemetry.tracer
        mode = settings.capture_message_content
        self.content_on_span = mode in ("span_only", "span_and_event")
        self.content_on_event = mode in ("event_only", "span_and_event")
        self.emit_event = events_wanted(settings)
        self.logger: Logger = telemetry.logger
        self.hook: CompletionHook | None = None
        try:
            self.hook = completion_hook_for(settings.completion_hook, settings.content_upload_path)
        except Exception:
            log_internal_error("completion hook")
        self.capture_content = self.content_on_span or self.content_on_event or self.hook is not None
        """Whether calls collect their content at all (for the span, the event or the hook)."""
        self.records_metrics = not isinstance(meter, NoOpMeter)
        """False when metric points go nowhere (``metrics=False``, ``OTEL_SDK_DISABLED``)."""

        # The settings keep only the last gen_ai token of OTEL_SEMCONV_STABILITY_OPT_IN.
        opt_in = settings.semconv_opt_in
        both = opt_in == _LATEST_AND_RELEASED
        latest = both or opt_in == _LATEST
        released_cache_write = semconv.GEN_AI_USAGE_CACHE_CREATION_INPUT_TOKENS
        newest_cache_write = semconv.RENAMED_ATTRIBUTES[released_cache_write]
        self.cache_write_attributes: tuple[str, ...] = (
            (released_cache_write, newest_cache_write)
            if both
            else (newest_cache_write,)
            if latest
            else (released_cache_write,)
        )

        # Released metrics always; the draft's token metrics only behind their own switch (they may still
        # change name or shape, and dashboards must not lose the released histogram when they appear).
        self.duration = create_instrument(meter, semconv.METRIC_GEN_AI_CLIENT_OPERATION_DURATION)
        self.time_to_first_chunk = create_instrument(meter, semconv.METRIC_GEN_AI_CLIENT_OPERATION_TIME_TO_FIRST_CHUNK)
        self.time_per_output_chunk = create_instrument(
            meter, semconv.METRIC_GEN_AI_CLIENT_OPERATION_TIME_PER_OUTPUT_CHUNK
        )
        self.token_usage = create_instrument(meter, semconv.METRIC_GEN_AI_CLIENT_TOKEN_USAGE)
        self.experimental_metrics = settings.experimental_metrics
        if self.experimental_metrics:
            self.usage_counters = tuple(
                create_instrument(meter, spec)
                for spec in (
                    semconv.METRIC_GEN_AI_CLIENT_INFERENCE_USAGE_INPUT_TOKENS,
                    semconv.METRIC_GEN_AI_CLIENT_INFERENCE_USAGE_OUTPUT_TOKENS,
                    semconv.METRIC_GEN_AI_CLIENT_INFERENCE_USAGE_CACHE_READ_INPUT_TOKENS,
                    semconv.METRIC_GEN_AI_CLIENT_INFERENCE_USAGE_CACHE_WRITE_INPUT_TOKENS,
                    semconv.METRIC_GEN_AI_CLIENT_INFERENCE_USAGE_REASONING_OUTPUT_TOKENS,
                )
            )
            self.operation_input_tokens = create_instrument(
                meter, semconv.METRIC_GEN_AI_CLIENT_INFERENCE_OPERATION_INPUT_TOKENS
            )
            self.operation_output_tokens = create_instrument(
                meter, semconv.METRIC_GEN_AI_CLIENT_INFERENCE_OPERATION_OUTPUT_TOKENS
            )
        self._metric_attributes: dict[tuple[Any, ...], _MetricAttributeSets] = {}
        self._pending = _pending_queue(meter) if type(meter).__module__.startswith("opentelemetry.sdk.") else None

    # --- content and the event -------------------------------------------------------------------------

    def finish_content(
        self,
        span: Span,
        start_attributes: Mapping[str, Any],
        end_attributes: dict[str, Any],
        content: Content | None,
    ) -> None:
        """Place one call's content as the capture mode says, call the hook and emit the event.

        Called when the call ends, before ``end_attributes`` go on the span and the span ends; the content
        goes into ``end_attributes`` for the span modes. The event carries the span's attributes (start and
        end) and, for the event modes, the content as structured values; its context is the span's.
        """
        if content is not None and self.content_on_span:
            content.span_attributes(end_attributes)
        record = None
        if self.emit_event:
            attributes = {**start_attributes, **end_attributes}
            for name in CONTENT_ATTRIBUTES:
                attributes.pop(name, None)
            if content is not None and self.content_on_event:
                content.event_attributes(attributes)
            record = LogRecord(
                event_name=semconv.EVENT_GEN_AI_CLIENT_INFERENCE_OPERATION_DETAILS,
                attributes=attributes,
                context=set_span_in_context(span),
            )
        hook = self.hook
        if hook is not None and content is not None:
            try:
                hook.on_completion(
                    inputs=content.inputs,
                    outputs=content.outputs,
                    system_instruction=content.system,
                    tool_definitions=content.tools or None,
                    span=span,
                    log_record=record,
                )
            except Exception:
                log_internal_error("completion hook")
        if record is not None:
            self.logger.emit(record)

    # --- span attributes ------------------------------------------------------------------------------

    def add_usage_attributes(self, attributes: dict[str, Any], usage: TokenUsage) -> None:
        """Put ``usage``'s span attributes into ``attributes`` (counts the provider did not report are left out,
        and zero cache-write and reasoning counts too)."""
        input_tokens, output_tokens, cache_read, cache_write, reasoning = usage
        if input_tokens is not None:
            attributes[semconv.GEN_AI_USAGE_INPUT_TOKENS] = input_tokens
        if output_tokens is not None:
            attributes[semconv.GEN_AI_USAGE_OUTPUT_TOKENS] = output_tokens
        if cache_read is not None:
            attributes[semconv.GEN_AI_USAGE_CACHE_READ_INPUT_TOKENS] = cache_read
        # A zero cache-write or reasoning count is what providers report for a model or request without
        # caching or reasoning (OpenAI's reasoning_tokens=0 on gpt-4o, Bedrock's cache headers): no attribute.
        if cache_write:
            for name in self.cache_write_attributes:
                attributes[name] = cache_write
        if reasoning:
            attributes[semconv.GEN_AI_USAGE_REASONING_OUTPUT_TOKENS] = reasoning

    # --- metrics --------------------------------------------------------------------------------------

    def record(
        self,
        key: OperationKey,
        response_model: str | None,
        duration: float,
        time_to_first_chunk: float | None,
        usage: TokenUsage | None,
        error_type: str | None,
        chunk_times_ns: Sequence[int] = (),
    ) -> None:
        """Queue the metric points of one finished call (see the module docstring).

        ``chunk_times_ns``: for a stream, when each chunk arrived (``time_ns``/``perf_counter_ns``, any one
        clock); the gaps between them are recorded as ``time_per_output_chunk`` at collection time.
        """
        pending = self._pending
        if pending is None:
            self.record_now(key, response_model, duration, time_to_first_chunk, usage, error_type, chunk_times_ns)
            return
        pending.append((self, key, response_model, duration, time_to_first_chunk, usage, error_type, chunk_times_ns))
        if len(pending) > _PENDING_LIMIT:
            _drain(pending, 2)

    def record_now(
        self,
        key: OperationKey,
        response_model: str | None,
        duration: float,
        time_to_first_chunk: float | None,
        usage: TokenUsage | None,
        error_type: str | None,
        chunk_times_ns: Sequence[int] = (),
    ) -> None:
        """Record the metric points of one finished call."""
        sets = self.metric_attributes(key, response_model)
        operation_attributes = sets.operation
        if error_type is None:
            self.duration.record(duration, operation_attributes)
        else:
            self.duration.record(duration, {**operation_attributes, semconv.ERROR_TYPE: error_type})
        if time_to_first_chunk is not None:
            self.time_to_first_chunk.record(time_to_first_chunk, operation_attributes)
        if len(chunk_times_ns) > 1:
            per_chunk = self.time_per_output_chunk
            previous = chunk_times_ns[0]
            for arrived in chunk_times_ns[1:]:
                per_chunk.record((arrived - previous) / 1e9, operation_attributes)
                previous = arrived
        if self.experimental_metrics and key.operation in _INFERENCE_OPERATIONS:
            self._record_draft_token_metrics(sets, usage, error_type)
        if usage is None:
            return
        input_tokens, output_tokens = usage.input, usage.output
        if input_tokens is not None:
            self.token_usage.record(input_tokens, sets.input)
        if output_tokens is not None:
            self.token_usage.record(output_tokens, sets.output)

    def _record_draft_token_metrics(
        self, sets: _MetricAttributeSets, usage: TokenUsage | None, error_type: str | None
    ) -> None:
        # The draft: counters for every inference operation, failed ones included, 0 for a count not received
        # (no provider here reports a modality breakdown, so the modality is "unknown"); the per-operation
        # histograms only for successful operations, and only for counts the provider reported.
        counts = usage if usage is not None else _NO_USAGE
        for counter, value in zip(self.usage_counters, counts, strict=True):
            counter.add(value or 0, sets.by_modality)
        if error_type is None and usage is not None:
            if usage.input is not None:
                self.operation_input_tokens.record(usage.input, sets.operation)
            if usage.output is not None:
                self.operation_output_tokens.record(usage.output, sets.operation)

    def metric_attributes(self, key: OperationKey, response_model: str | None) -> _MetricAttributeSets:
        """The attribute dicts of one low-cardinality combination; shared between calls: never mutate them."""
        cache_key = (key, response_model)
        found = self._metric_attributes.get(cache_key)
        if found is not None:
            return found
        operation, provider, request_model, address, port = key
        attributes: MetricAttributes = {
            semconv.GEN_AI_OPERATION_NAME: operation,
            semconv.GEN_AI_PROVIDER_NAME: provider,
        }
        if request_model:
            attributes[semconv.GEN_AI_REQUEST_MODEL] = request_model
        if response_model:
            attributes[semconv.GEN_AI_RESPONSE_MODEL] = response_model
        if address:
            attributes[semconv.SERVER_ADDRESS] = address
        if port:
            attributes[semconv.SERVER_PORT] = port
        found = _MetricAttributeSets(
            attributes,
            {**attributes, semconv.GEN_AI_TOKEN_TYPE: semconv.GenAiTokenTypeValues.INPUT.value},
            {**attributes, semconv.GEN_AI_TOKEN_TYPE: semconv.GenAiTokenTypeValues.OUTPUT.value},
            {**attributes, semconv.GEN_AI_TOKEN_MODALITY: semconv.GenAiTokenModalityValues.UNKNOWN.value},
        )
        if len(self._metric_attributes) >= _CACHE_LIMIT:
            self._metric_attributes.clear()
        self._metric_attributes[cache_key] = found
        return found
