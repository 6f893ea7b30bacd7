"""httpx and httpx2: bytes on the wire and the billed boundary they crossed, on the upstream HTTP span.

The span itself is ``opentelemetry-instrumentation-httpx``'s (0.66b2 instruments both libraries:
``HTTPXClientInstrumentor`` and ``HTTPX2ClientInstrumentor``); spanledger adds to it through three seams:

* **the tracer provider** it is given: our tracer hands out the same span but does not end it when the
  transport returns if the response body is still open, so the bytes of a body read later (every
  response body is read after ``handle_request`` returns, streamed or not) land on the span that owns them;
* **the request hook**: ``spanledger.egress.boundary``, ``spanledger.usage.owner``, the destination's
  ``cloud.region``, and redaction of credentials upstream would record (query ``api-key`` values, captured
  ``Authorization`` headers);
* **the transport call**, wrapped *inside* upstream's wrapper: the request and response streams are
  replaced by counting pass-through streams, so bytes are counted chunk by chunk as they flow (never
  buffered) and the request object is restored afterwards.

Bytes on the wire are the HTTP/1.1 head (request/status line and headers as sent, ``traceparent``
included) plus the body as transferred (compressed bodies are counted compressed). Not counted: chunked
framing, TLS and TCP/IP overhead; for HTTP/2 the head is the HTTP/1.1 size, not the HPACK size.

An HTTP span never carries tokens: an LLM span above it owns those; this span owns the bytes.
"""

from __future__ import annotations

import importlib
import os
import re
from collections.abc import AsyncIterator, Iterator, Mapping, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from types import ModuleType, TracebackType
from typing import Any, ClassVar
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import wrapt
from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.instrumentation import _semconv
from opentelemetry.instrumentation.utils import unwrap
from opentelemetry.metrics import Meter, MeterProvider
from opentelemetry.trace import Span, SpanKind, Status, StatusCode, Tracer, TracerProvider
from opentelemetry.util.http import normalise_request_header_name, normalise_response_header_name
from opentelemetry.util.types import AttributeValue

from . import semconv
from ._egress import Boundary, EgressClassifier, egress_byte_counter
from ._instrumentation import Instrumentation
from ._internal_errors import internal_errors_logged, log_internal_error, logger
from ._telemetry import Telemetry

__all__ = ["Httpx2Instrumentation", "HttpxInstrumentation"]

_current_exchange: ContextVar[_Exchange | None] = ContextVar("spanledger_http_exchange", default=None)

_SENSITIVE_QUERY = re.compile(r"key|token|secret|sig|password|passwd|credential|auth|session", re.IGNORECASE)
_SENSITIVE_HEADERS = (
    "authorization",
    "proxy-authorization",
    "api-key",
    "x-api-key",
    "cookie",
    "set-cookie",
    "x-amz-security-token",
)
_REDACTED = "REDACTED"
_CAPTURE_HEADER_ENV = (
    "OTEL_INSTRUMENTATION_HTTP_CAPTURE_HEADERS_CLIENT_REQUEST",
    "OTEL_INSTRUMENTATION_HTTP_CAPTURE_HEADERS_CLIENT_RESPONSE",
)
# The attribute names upstream gives captured headers, from upstream's own name builders.
_SENSITIVE_HEADER_ATTRIBUTES = tuple(
    name(header)
    for header in _SENSITIVE_HEADERS
    for name in (normalise_request_header_name, normalise_response_header_name)
)
_URL_ATTRIBUTES = (semconv.URL_FULL, semconv.HTTP_URL)


class _Exchange:
    """One request/response on the wire: its span, boundary and byte counts, until the body is closed."""

    __slots__ = ("body_open", "boundary", "counting", "egress", "finished", "ingress", "instrumentation", "left",
                 "region", "request_stream", "span")

    def __init__(self, span: Span, instrumentation: _HttpxInstrumentationBase) -> None:
        self.span = span
        self.instrumentation = instrumentation
        self.boundary: Boundary = Boundary.UNKNOWN
        self.region: str | None = None
        self.request_stream: Any = None
        self.counting = False
        self.egress = 0
        self.ingress = 0
        self.body_open = False
        self.left = False
        self.finished = False

    def leave(self) -> None:
        """The transport call returned (or raised): finish now unless a response body is still open."""
        self.left = True
        if not self.body_open:
            self.finish()

    def body_closed(self) -> None:
        self.body_open = False
        if self.left:
            self.finish()

    def finish(self) -> None:
        if self.finished:
            return
        self.finished = True
        try:
            self.instrumentation.record(self)
        except Exception:
            log_internal_error("httpx byte count")
        self.span.end()


class _ExchangeScope:
    """``start_as_current_span`` for upstream's span: a new exchange; the span ends with the exchange."""

    __slots__ = ("_exchange", "_exchange_token", "_instrumentation", "_record_exception", "_set_status", "_span",
                 "_token")

    def __init__(
        self, span: Span, instrumentation: _HttpxInstrumentationBase, record_exception: bool, set_status: bool
    ) -> None:
        self._span = span
        self._instrumentation = instrumentation
        self._record_exception = record_exception
        self._set_status = set_status

    def __enter__(self) -> Span:
        self._exchange = _Exchange(self._span, self._instrumentation)
        self._exchange_token = _current_exchange.set(self._exchange)
        self._token = otel_context.attach(trace.set_span_in_context(self._span))
        return self._span

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        otel_context.detach(self._token)
        _current_exchange.reset(self._exchange_token)
        if exc is not None and self._span.is_recording():
            # What opentelemetry.trace.use_span does for a span it is given.
            if self._record_exception:
                self._span.record_exception(exc)
            if self._set_status:
                self._span.set_status(Status(StatusCode.ERROR, f"{type(exc).__name__}: {exc}"))
        self._exchange.leave()


class _DeferringTracer(Tracer):
    """The tracer upstream is given: spans from ``telemetry.tracer``, ended by their exchange."""

    def __init__(self, tracer: Tracer, instrumentation: _HttpxInstrumentationBase) -> None:
        self._tracer = tracer
        self._instrumentation = instrumentation

    def start_span(self, name: str, *args: Any, **kwargs: Any) -> Span:
        return self._tracer.start_span(name, *args, **kwargs)

    def start_as_current_span(  # type: ignore[override]
        self,
        name: str,
        context: otel_context.Context | None = None,
        kind: SpanKind = SpanKind.INTERNAL,
        attributes: Mapping[str, AttributeValue] | None = None,
        links: Sequence[trace.Link] | None = None,
        start_time: int | None = None,
        record_exception: bool = True,
        set_status_on_exception: bool = True,
        end_on_exit: bool = True,
    ) -> _ExchangeScope:
        span = self._tracer.start_span(name, context, kind, attributes, links, start_time)
        return _ExchangeScope(span, self._instrumentation, record_exception, set_status_on_exception)


class _TracerProvider(TracerProvider):
    def __init__(self, tracer: _DeferringTracer) -> None:
        self._tracer = tracer

    def get_tracer(self, *args: Any, **kwargs: Any) -> Tracer:
        return self._tracer


class _MeterProvider(MeterProvider):
    def __init__(self, meter: Meter) -> None:
        self._meter = meter

    def get_meter(self, *args: Any, **kwargs: Any) -> Meter:
        return self._meter


@contextmanager
def _http_semconv_mode(opt_in: str) -> Iterator[None]:
    """Upstream's HTTP naming for the instrumentor instrumented inside the block.

    Upstream reads ``OTEL_SEMCONV_STABILITY_OPT_IN`` once per process into a class-level table and each
    instrumentor takes its mode from that table when it instruments (the mode is then bound into its
    wrappers). Setting the HTTP entry only around our ``instrument()`` call gives our httpx spans the
    names spanledger chose without changing the environment or any other HTTP instrumentation.
    """
    stability = _semconv._OpenTelemetrySemanticConventionStability
    stability._initialize()  # type: ignore[no-untyped-call]
    table = stability._OTEL_SEMCONV_STABILITY_SIGNAL_MAPPING
    signal = _semconv._OpenTelemetryStabilitySignalType.HTTP
    previous = table.get(signal)
    table[signal] = _semconv._StabilityMode(opt_in)
    try:
        yield
    finally:
        if previous is None:
            table.pop(signal, None)
        else:
            table[signal] = previous


def _stream_classes(module: ModuleType) -> tuple[type[Any], type[Any]]:
    """Counting request and response streams that pass ``module``'s (httpx or httpx2) type checks."""

    class CountingRequestStream(module.SyncByteStream, module.AsyncByteStream):  # type: ignore[misc, name-defined]
        __slots__ = ("_exchange", "_stream")

        def __init__(self, stream: Any, exchange: _Exchange) -> None:
            self._stream = stream
            self._exchange = exchange

        def __iter__(self) -> Iterator[bytes]:
            exchange = self._exchange
            for chunk in self._stream:
                exchange.egress += len(chunk)
                yield chunk

        async def __aiter__(self) -> AsyncIterator[bytes]:
            exchange = self._exchange
            async for chunk in self._stream:
                exchange.egress += len(chunk)
                yield chunk

        def close(self) -> None:
            self._stream.close()

        async def aclose(self) -> None:
            await self._stream.aclose()

    class CountingResponseStream(module.SyncByteStream, module.AsyncByteStream):  # type: ignore[misc, name-defined]
        __slots__ = ("_exchange", "_stream")

        def __init__(self, stream: Any, exchange: _Exchange) -> None:
            self._stream = stream
            self._exchange = exchange
            exchange.body_open = True

        def __iter__(self) -> Iterator[bytes]:
            exchange = self._exchange
            for chunk in self._stream:
                exchange.ingress += len(chunk)
                yield chunk

        async def __aiter__(self) -> AsyncIterator[bytes]:
            exchange = self._exchange
            async for chunk in self._stream:
                exchange.ingress += len(chunk)
                yield chunk

        def close(self) -> None:
            try:
                self._stream.close()
            finally:
                self._exchange.body_closed()

        async def aclose(self) -> None:
            try:
                await self._stream.aclose()
            finally:
                self._exchange.body_closed()

        def __del__(self) -> None:
            # A streamed response the application never closed still ends its span.
            if self._exchange.body_open:
                with internal_errors_logged("httpx response finalizer"):
                    self._exchange.body_closed()

    return CountingRequestStream, CountingResponseStream


def _head_size(first_line: int, raw_headers: Sequence[tuple[bytes, bytes]]) -> int:
    size = first_line + 4  # the line's CRLF, then the blank line after the headers
    for name, value in raw_headers:
        size += len(name) + len(value) + 4  # ": " and CRLF
    return size


def _request_head_size(request: Any) -> int:
    # "METHOD /target HTTP/1.1"
    return _head_size(len(request.method) + len(request.url.raw_path) + 10, request.headers.raw)


def _response_head_size(status_code: int, headers: Any, extensions: Mapping[str, Any] | None) -> int:
    extensions = extensions or {}
    version = extensions.get("http_version") or b"HTTP/1.1"
    reason = extensions.get("reason_phrase") or b""
    # "HTTP/1.1 200 OK"
    return _head_size(len(version) + len(str(status_code)) + len(reason) + 2, headers.raw if headers else ())


def _redact_query(url: str) -> str | None:
    """``url`` with credential-looking query values replaced, or ``None`` when there are none."""
    parts = urlsplit(url)
    pairs = parse_qsl(parts.query, keep_blank_values=True)
    if not any(_SENSITIVE_QUERY.search(name) for name, _ in pairs):
        return None
    redacted = [(name, _REDACTED if _SENSITIVE_QUERY.search(name) else value) for name, value in pairs]
    return urlunsplit(parts._replace(query=urlencode(redacted)))


class _HttpxInstrumentationBase(Instrumentation):
    library: ClassVar[str]
    instrumentor_path: ClassVar[str]

    def __init__(self) -> None:
        self._instrumentor: Any = None
        self._module: ModuleType | None = None
        self._wrapped = False

    def instrument(self, telemetry: Telemetry) -> None:
        module = importlib.import_module(self.library)
        module_name, _, class_name = self.instrumentor_path.partition(":")
        instrumentor = getattr(importlib.import_module(module_name), class_name)()
        if instrumentor.is_instrumented_by_opentelemetry:
            logger.warning(
                "spanledger: %s is already instrumented by opentelemetry-instrumentation-httpx; spanledger "
                "cannot add byte counts to those spans. Let spanledger instrument it (remove the "
                "instrumentor's instrument() call), or disable spanledger's %r instrumentation.",
                self.library,
                self.name,
            )
            return
        self._module = module
        resource = getattr(telemetry.tracer, "resource", None)
        self._classifier = EgressClassifier.from_settings(
            telemetry.settings, getattr(resource, "attributes", None)
        )
        self._counter = egress_byte_counter(telemetry.meter)
        self._redact_headers = any(os.environ.get(name) for name in _CAPTURE_HEADER_ENV)
        self._request_stream, self._response_stream = _stream_classes(module)
        self._connect_errors = (module.ConnectError, module.ConnectTimeout)
        # Ours first: upstream then wraps our wrapper, so ours runs inside upstream's span.
        wrapt.wrap_function_wrapper(module, "HTTPTransport.handle_request", self._handle_request)
        wrapt.wrap_function_wrapper(module, "AsyncHTTPTransport.handle_async_request", self._handle_async_request)
        self._wrapped = True
        with _http_semconv_mode(telemetry.settings.http_semconv_opt_in):
            instrumentor.instrument(
                tracer_provider=_TracerProvider(_DeferringTracer(telemetry.tracer, self)),
                meter_provider=_MeterProvider(telemetry.meter),
                request_hook=self._request_hook,
                response_hook=self._response_hook if self._redact_headers else None,
                async_request_hook=self._async_request_hook,
                async_response_hook=self._async_response_hook if self._redact_headers else None,
            )
        self._instrumentor = instrumentor

    def uninstrument(self) -> None:
        if self._instrumentor is not None:
            self._instrumentor.uninstrument()
            self._instrumentor = None
        if self._wrapped and self._module is not None:
            unwrap(self._module.HTTPTransport, "handle_request")
            unwrap(self._module.AsyncHTTPTransport, "handle_async_request")
            self._wrapped = False

    # hooks (called by upstream inside its span): redaction only, the rest is in the transport wrapper

    def _request_hook(self, span: Span, request: Any) -> None:
        try:
            if (request.url.query or self._redact_headers) and span.is_recording():
                attributes: dict[str, AttributeValue] = {}
                if request.url.query:
                    redacted = _redact_query(str(request.url))
                    if redacted is not None:
                        recorded = getattr(span, "attributes", None) or {}
                        attributes.update((key, redacted) for key in _URL_ATTRIBUTES if key in recorded)
                if self._redact_headers:
                    _redact_captured_headers(span, attributes)
                if attributes:
                    span.set_attributes(attributes)
        except Exception:
            log_internal_error(f"{self.library} request hook")

    def _response_hook(self, span: Span, request: Any, response: Any) -> None:
        try:
            if span.is_recording():
                attributes: dict[str, AttributeValue] = {}
                _redact_captured_headers(span, attributes)
                if attributes:
                    span.set_attributes(attributes)
        except Exception:
            log_internal_error(f"{self.library} response hook")

    async def _async_request_hook(self, span: Span, request: Any) -> None:
        self._request_hook(span, request)

    async def _async_response_hook(self, span: Span, request: Any, response: Any) -> None:
        self._response_hook(span, request, response)

    # transport wrappers (called by upstream's wrapper, inside its span)

    def _handle_request(self, wrapped: Any, instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        exchange = _current_exchange.get()
        if exchange is None or exchange.left:
            return wrapped(*args, **kwargs)
        request = self._before(exchange, args, kwargs)
        try:
            response = wrapped(*args, **kwargs)
        except BaseException as error:
            self._after_error(exchange, request, error)
            raise
        self._after(exchange, request, response)
        return response

    async def _handle_async_request(
        self, wrapped: Any, instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]
    ) -> Any:
        exchange = _current_exchange.get()
        if exchange is None or exchange.left:
            return await wrapped(*args, **kwargs)
        request = self._before(exchange, args, kwargs)
        try:
            response = await wrapped(*args, **kwargs)
        except BaseException as error:
            self._after_error(exchange, request, error)
            raise
        self._after(exchange, request, response)
        return response

    def _before(self, exchange: _Exchange, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        """Locate the destination and count the request body as it is sent; the request, or None on failure."""
        try:
            request = args[0] if args else kwargs["request"]
            exchange.boundary, exchange.region = self._classifier.locate(request.url.host)
            exchange.request_stream = request.stream
            request.stream = self._request_stream(request.stream, exchange)
            exchange.counting = True
            return request
        except Exception:
            log_internal_error(f"{self.library} request")
            return None

    def _after(self, exchange: _Exchange, request: Any, response: Any) -> None:
        if request is None:
            return
        try:
            request.stream = exchange.request_stream
            exchange.egress += _request_head_size(request)
            exchange.ingress += _response_head_size(response.status_code, response.headers, response.extensions)
            response.stream = self._response_stream(response.stream, exchange)
        except Exception:
            exchange.counting = False
            log_internal_error(f"{self.library} response")

    def _after_error(self, exchange: _Exchange, request: Any, error: BaseException) -> None:
        if request is None:
            return
        try:
            request.stream = exchange.request_stream
            if not isinstance(error, self._connect_errors):  # otherwise nothing was sent
                exchange.egress += _request_head_size(request)
        except Exception:
            log_internal_error(f"{self.library} request error")

    def record(self, exchange: _Exchange) -> None:
        """Put the exchange's boundary and byte counts on its span and the egress counter."""
        if not exchange.counting:
            return  # a spanledger failure: no numbers rather than wrong ones
        span = exchange.span
        if span.is_recording():
            attributes: dict[str, AttributeValue] = {
                semconv.SPANLEDGER_USAGE_OWNER: True,
                semconv.SPANLEDGER_EGRESS_BOUNDARY: exchange.boundary.value,
                semconv.SPANLEDGER_EGRESS_BYTES: exchange.egress,
                semconv.SPANLEDGER_INGRESS_BYTES: exchange.ingress,
            }
            if exchange.region is not None:
                attributes[semconv.CLOUD_REGION] = exchange.region
            span.set_attributes(attributes)
        self._counter.add_exchange(exchange.boundary.value, exchange.egress, exchange.ingress)


def _redact_captured_headers(span: Span, attributes: dict[str, AttributeValue]) -> None:
    recorded = getattr(span, "attributes", None) or {}
    for key in _SENSITIVE_HEADER_ATTRIBUTES:
        if key in recorded:
            attributes[key] = (_REDACTED,)


class HttpxInstrumentation(_HttpxInstrumentationBase):
    """Bytes on the wire and egress boundary for ``httpx`` (sync and async clients)."""

    name = "httpx"
    modules = ("httpx",)
    library = "httpx"
    instrumentor_path = "opentelemetry.instrumentation.httpx:HTTPXClientInstrumentor"


class Httpx2Instrumentation(_HttpxInstrumentationBase):
    """Bytes on the wire and egress boundary for ``httpx2`` (the openai SDK's transport)."""

    name = "httpx2"
    modules = ("httpx2",)
    library = "httpx2"
    instrumentor_path = "opentelemetry.instrumentation.httpx:HTTPX2ClientInstrumentor"
