"""ASGI middleware for self-hosted inference servers: accelerator-seconds and concurrency per request.

    from spanledger.asgi import AcceleratorMiddleware
    app = AcceleratorMiddleware(app, device=0)          # any ASGI app
    app.add_middleware(AcceleratorMiddleware, device=0)  # Starlette / FastAPI (vLLM's OpenAI server too)

Each HTTP request gets an ``accelerator {METHOD} {path}`` span, a child of the caller's trace when the
request carries ``traceparent`` (and no server instrumentation already made a span current), covering the
request until its response is fully sent (a streamed completion included). It owns the accelerator-seconds
the request used: the process's GPU busy time over the request's interval, where each NVML sample period's
busy time is split evenly among the requests in flight at that moment. Concurrent requests sharing one GPU
therefore add up to the GPU's busy time instead of each claiming all of it. ``spanledger.accelerator.concurrency``
is the peak number of requests in flight during the request. Without NVML the span says ``not_measured``
and why, and still records the concurrency.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from opentelemetry import context as otel_context
from opentelemetry import propagate, trace
from opentelemetry.trace import Span, SpanKind

from . import semconv
from ._accelerator import (
    AcceleratorMeasurement,
    ConcurrencyLedger,
    DeviceSpec,
    record_accelerator_span,
)
from ._errors import record_error
from ._internal_errors import internal_errors_logged
from ._state import current_telemetry
from ._telemetry import Telemetry

__all__ = ["AcceleratorMiddleware"]

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

_REQUESTS = 0  # the one "device" of the in-flight ledger: this middleware's requests


class AcceleratorMiddleware:
    """Per-request accelerator time and concurrency for an ASGI app (see the module docstring)."""

    def __init__(self, app: ASGIApp, *, device: DeviceSpec = None) -> None:
        self.app = app
        self.device = device
        self._in_flight = ConcurrencyLedger()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope.get("type") != "http":
            await self.app(scope, receive, send)
            return
        started = self._start(scope)
        try:
            await self.app(scope, receive, send)
        except BaseException as error:
            self._end(started, error)
            raise
        self._end(started, None)

    def _start(self, scope: Scope) -> tuple[Telemetry, Span, AcceleratorMeasurement, int, object] | None:
        with internal_errors_logged("asgi accelerator start"):
            telemetry = current_telemetry()
            parent = None
            if not trace.get_current_span().get_span_context().is_valid:
                headers = {k.decode("latin-1"): v.decode("latin-1") for k, v in scope.get("headers") or ()}
                parent = propagate.extract(headers)
            method = str(scope.get("method", "HTTP"))
            span = telemetry.tracer.start_span(
                f"accelerator {method} {scope.get('path', '')}",
                context=parent,
                kind=SpanKind.INTERNAL,
                attributes={semconv.HTTP_REQUEST_METHOD: method},
            )
            token = otel_context.attach(trace.set_span_in_context(span))
            measurement = AcceleratorMeasurement(self.device)
            request = self._in_flight.begin([_REQUESTS], measurement.start_us)
            return telemetry, span, measurement, request, token
        return None

    def _end(self, started: tuple[Telemetry, Span, AcceleratorMeasurement, int, object] | None,
             error: BaseException | None) -> None:
        if started is None:
            return
        telemetry, span, measurement, request, token = started
        with internal_errors_logged("asgi accelerator end"):
            otel_context.detach(token)  # type: ignore[arg-type]
        with internal_errors_logged("asgi accelerator end"):
            if error is not None:
                record_error(span, error)
            measurement.stop()
            measurement.concurrency = self._in_flight.finish(request, [_REQUESTS], measurement.end_us)[_REQUESTS][1]
            record_accelerator_span(telemetry, span, measurement)
