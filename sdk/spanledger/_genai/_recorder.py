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
from collections.abc import Iterable
from typing import Any, NamedTuple

from opentelemetry.metrics import CallbackOptions, Meter, NoOpMeter, Observation
from opentelemetry.trace import Tracer

from .. import semconv
from .._internal_errors import log_internal_error
from .._metrics import create_instrument
from .._telemetry import Telemetry
from ._usage import TokenUsage

__all__ = ["GenAIRecorder", "MetricAttributes", "OperationKey"]

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


# One finished call: (recorder, key, response model, duration s, time to first chunk s, usage, error type).
# A plain tuple, private to this module, because it is built once per call on the hot path.
_Pending = tuple["GenAIRecorder", OperationKey, "str | None", float, "float | None", "TokenUsage | None", "str | None"]


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
            recorder, key, response_model, duration, time_to_first_chunk, usage, error_type = queue.popleft()
        except IndexError:
            return
        try:
            recorder.record_now(key, response_model, duration, time_to_first_chunk, usage, error_type)
        except Exception:
            log_internal_error("genai metrics")


class GenAIRecorder:
    """Tracer, instruments and settings-derived choices shared by the GenAI instrumentations."""

    def __init__(self, telemetry: Telemetry) -> None:
        settings = telemetry.settings
        meter = telemetry.meter
        self.telemetry = telemetry
        self.tracer: Tracer = telemetry.tracer
        self.capture_content = settings.capture_message_content
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
        self.emit_token_histogram = both or not latest
        self.emit_usage_counters = latest

        self.duration = create_instrument(meter, semconv.METRIC_GEN_AI_CLIENT_OPERATION_DURATION)
        self.time_to_first_chunk = create_instrument(meter, semconv.METRIC_GEN_AI_CLIENT_OPERATION_TIME_TO_FIRST_CHUNK)
        self.token_usage = (
            create_instrument(meter, semconv.METRIC_GEN_AI_CLIENT_TOKEN_USAGE) if self.emit_token_histogram else None
        )
        if self.emit_usage_counters:
            self.input_tokens = create_instrument(meter, semconv.METRIC_GEN_AI_CLIENT_INFERENCE_USAGE_INPUT_TOKENS)
            self.output_tokens = create_instrument(meter, semconv.METRIC_GEN_AI_CLIENT_INFERENCE_USAGE_OUTPUT_TOKENS)
            self.cache_read_tokens = create_instrument(
                meter, semconv.METRIC_GEN_AI_CLIENT_INFERENCE_USAGE_CACHE_READ_INPUT_TOKENS
            )
            self.cache_write_tokens = create_instrument(
                meter, semconv.METRIC_GEN_AI_CLIENT_INFERENCE_USAGE_CACHE_WRITE_INPUT_TOKENS
            )
            self.reasoning_tokens = create_instrument(
                meter, semconv.METRIC_GEN_AI_CLIENT_INFERENCE_USAGE_REASONING_OUTPUT_TOKENS
            )
        self._metric_attributes: dict[tuple[Any, ...], tuple[MetricAttributes, MetricAttributes, MetricAttributes]] = {}
        self._pending = _pending_queue(meter) if type(meter).__module__.startswith("opentelemetry.sdk.") else None

    # --- span attributes ------------------------------------------------------------------------------

    def add_usage_attributes(self, attributes: dict[str, Any], usage: TokenUsage) -> None:
        """Put ``usage``'s span attributes into ``attributes`` (counts the provider did not report are left out)."""
        input_tokens, output_tokens, cache_read, cache_write, reasoning = usage
        if input_tokens is not None:
            attributes[semconv.GEN_AI_USAGE_INPUT_TOKENS] = input_tokens
        if output_tokens is not None:
            attributes[semconv.GEN_AI_USAGE_OUTPUT_TOKENS] = output_tokens
        if cache_read is not None:
            attributes[semconv.GEN_AI_USAGE_CACHE_READ_INPUT_TOKENS] = cache_read
        if cache_write is not None:
            for name in self.cache_write_attributes:
                attributes[name] = cache_write
        if reasoning is not None:
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
    ) -> None:
        """Queue the metric points of one finished call (see the module docstring)."""
        pending = self._pending
        if pending is None:
            self.record_now(key, response_model, duration, time_to_first_chunk, usage, error_type)
            return
        pending.append((self, key, response_model, duration, time_to_first_chunk, usage, error_type))
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
    ) -> None:
        """Record the metric points of one finished call."""
        operation_attributes, input_attributes, output_attributes = self.metric_attributes(key, response_model)
        if error_type is None:
            self.duration.record(duration, operation_attributes)
        else:
            self.duration.record(duration, {**operation_attributes, semconv.ERROR_TYPE: error_type})
        if time_to_first_chunk is not None:
            self.time_to_first_chunk.record(time_to_first_chunk, operation_attributes)
        if usage is None:
            return
        input_tokens, output_tokens, cache_read, cache_write, reasoning = usage
        histogram = self.token_usage
        if histogram is not None:
            if input_tokens is not None:
                histogram.record(input_tokens, input_attributes)
            if output_tokens is not None:
                histogram.record(output_tokens, output_attributes)
        if self.emit_usage_counters:
            for counter, value in (
                (self.input_tokens, input_tokens),
                (self.output_tokens, output_tokens),
                (self.cache_read_tokens, cache_read),
                (self.cache_write_tokens, cache_write),
                (self.reasoning_tokens, reasoning),
            ):
                if value:
                    counter.add(value, operation_attributes)

    def metric_attributes(
        self, key: OperationKey, response_model: str | None
    ) -> tuple[MetricAttributes, MetricAttributes, MetricAttributes]:
        """The (operation, input-token, output-token) attribute dicts for one low-cardinality combination.

        The dicts are shared between calls: never mutate them.
        """
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
        found = (
            attributes,
            {**attributes, semconv.GEN_AI_TOKEN_TYPE: semconv.GenAiTokenTypeValues.INPUT.value},
            {**attributes, semconv.GEN_AI_TOKEN_TYPE: semconv.GenAiTokenTypeValues.OUTPUT.value},
        )
        if len(self._metric_attributes) >= _CACHE_LIMIT:
            self._metric_attributes.clear()
        self._metric_attributes[cache_key] = found
        return found
