"""The botocore instrumentation: one wrapper around ``BaseClient._make_api_call`` dispatching to per-service
extensions (S3, Bedrock runtime, SageMaker runtime; every other service gets the generic span).

Coexistence with ``opentelemetry-instrumentation-botocore`` (no duplicate spans, whatever the order):

* when our wrapper is the outer one, the call runs with instrumentation suppressed, so the upstream
  wrapper (which checks ``is_instrumentation_enabled()``) passes straight through;
* when the upstream wrapper is the outer one, its span for this very operation is current when ours
  runs, and we add our attributes to that span instead of starting a second one (and suppress what
  runs below, as in the first case).

Either way the instrumentation is suppressed inside the call, which also keeps HTTP-level
instrumentations (urllib3) from adding a span that would count the same bytes again.
"""

from __future__ import annotations

import sys
import weakref
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit

from opentelemetry import context, trace
from opentelemetry.context import _SUPPRESS_INSTRUMENTATION_KEY
from opentelemetry.instrumentation.utils import is_instrumentation_enabled
from opentelemetry.trace import Span, SpanKind

from .. import semconv
from .._egress import EgressClassifier
from .._instrumentation import Instrumentation
from .._internal_errors import log_internal_error
from .._telemetry import Telemetry
from ._bedrock import BedrockRuntimeExtension
from ._call import AwsCall, Instruments, current_call
from ._extension import ServiceExtension, content_length
from ._resource import process_account
from ._s3 import S3Extension
from ._sagemaker import SageMakerRuntimeExtension

__all__ = ["BotocoreInstrumentation"]

_UPSTREAM_SCOPE = "opentelemetry.instrumentation.botocore"
_UNKNOWN_BOUNDARY = semconv.SpanledgerEgressBoundaryValues.UNKNOWN.value
_GENERIC = ServiceExtension()
_EXTENSIONS: dict[str, ServiceExtension] = {
    "s3": S3Extension(),
    "bedrock-runtime": BedrockRuntimeExtension(),
    "sagemaker-runtime": SageMakerRuntimeExtension(),
}


def _count_request_bytes(request: Any, **_: Any) -> None:
    """botocore ``before-send`` handler: adds each attempt's body size to the call in flight.

    Returns None, which tells botocore to send the request as usual.
    """
    call = current_call.get()
    if call is None:
        return
    try:
        body = request.body
        if not body:
            call.add_request_bytes(0)
            return
        headers = request.headers
        length = content_length(headers.get("Content-Length") or headers.get("X-Amz-Decoded-Content-Length"))
        if length is not None:
            call.add_request_bytes(length)
        elif isinstance(body, (bytes, bytearray)):
            call.add_request_bytes(len(body))
    except Exception:
        log_internal_error("aws.request_bytes")


def _upstream_active() -> bool:
    """Whether ``opentelemetry-instrumentation-botocore`` is imported and instrumenting (cheap check)."""
    module = sys.modules.get(_UPSTREAM_SCOPE)
    instrumentor = getattr(getattr(module, "BotocoreInstrumentor", None), "_instance", None)
    return bool(getattr(instrumentor, "is_instrumented_by_opentelemetry", False))


def _upstream_span(operation: str) -> Span | None:
    """The upstream botocore instrumentation's span for this operation, if it is the current span."""
    if not _upstream_active():
        return None
    span = trace.get_current_span()
    scope = getattr(span, "instrumentation_scope", None)
    if scope is None or not scope.name.startswith(_UPSTREAM_SCOPE):
        return None
    attributes: Mapping[str, Any] = getattr(span, "attributes", None) or {}
    if attributes.get(semconv.RPC_METHOD) != operation:
        return None
    return span


class BotocoreInstrumentation(Instrumentation):
    name = "botocore"
    modules = ("botocore",)

    def __init__(self) -> None:
        self._telemetry: Telemetry | None = None
        self._instruments: Instruments | None = None
        self._account: str | None = None
        self._egress: EgressClassifier | None = None
        self._hooked_emitters: weakref.WeakSet[Any] = weakref.WeakSet()
        self._endpoints: dict[str, tuple[str, int | None]] = {}

    def instrument(self, telemetry: Telemetry) -> None:
        from botocore.client import BaseClient

        resource = getattr(telemetry.tracer, "resource", None)
        resource_attributes: Mapping[str, Any] = getattr(resource, "attributes", None) or {}
        self._account = process_account(resource_attributes)
        self._egress = EgressClassifier.from_settings(telemetry.settings, resource_attributes)
        self._instruments = Instruments(telemetry)
        self._telemetry = telemetry
        if not self._is_wrapped(BaseClient):
            import wrapt

            wrapt.wrap_function_wrapper(BaseClient, "_make_api_call", self._wrapper)

    def uninstrument(self) -> None:
        self._telemetry = None
        from botocore.client import BaseClient

        outer = BaseClient.__dict__.get("_make_api_call")
        if getattr(outer, "_self_wrapper", None) == self._wrapper:
            BaseClient._make_api_call = outer.__wrapped__  # type: ignore[method-assign,union-attr]
        # Otherwise another wrapper (the upstream one) sits on top of ours; ours stays in the chain,
        # inactive (it passes calls straight through while ``_telemetry`` is None).

    def _is_wrapped(self, client_class: type) -> bool:
        function: Any = client_class.__dict__.get("_make_api_call")
        while function is not None:
            if getattr(function, "_self_wrapper", None) == self._wrapper:
                return True
            function = getattr(function, "__wrapped__", None)
        return False

    def _wrapper(self, wrapped: Any, instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        telemetry = self._telemetry
        if telemetry is None or not is_instrumentation_enabled():
            return wrapped(*args, **kwargs)
        call: AwsCall | None = None
        try:
            call, extension, call_context = self._start(telemetry, instance, args)
        except Exception:
            log_internal_error("aws.start")
        if call is None:
            return wrapped(*args, **kwargs)

        context_token = context.attach(call_context)
        call_token = current_call.set(call)
        try:
            result = wrapped(*args, **kwargs)
        except BaseException as error:
            current_call.reset(call_token)
            context.detach(context_token)
            self._finish_failed(call, extension, error)
            raise
        current_call.reset(call_token)
        context.detach(context_token)
        self._finish(call, extension, result)
        return result

    def _start(
        self, telemetry: Telemetry, client: Any, args: tuple[Any, ...]
    ) -> tuple[AwsCall, ServiceExtension, context.Context]:
        operation, params = args[0], args[1]
        meta = client.meta
        service_model = meta.service_model
        extension = _EXTENSIONS.get(service_model.service_name, _GENERIC)
        assert self._instruments is not None and self._egress is not None
        host, port = self._endpoint(meta.endpoint_url)
        call = AwsCall(
            telemetry=telemetry,
            instruments=self._instruments,
            service=service_model.service_name,
            operation=operation,
            params=params if isinstance(params, Mapping) else {},
            region=meta.region_name,
            account=self._account,
            boundary=self._egress.classify(host).value if host else _UNKNOWN_BOUNDARY,
        )
        attributes = call.attributes
        attributes[semconv.RPC_SYSTEM] = "aws-api"
        attributes[semconv.RPC_SERVICE] = service_model.service_id
        attributes[semconv.RPC_METHOD] = operation
        attributes[semconv.CLOUD_PROVIDER] = "aws"
        attributes[semconv.SPANLEDGER_USAGE_OWNER] = True
        if call.region:
            attributes[semconv.CLOUD_REGION] = call.region
        attributes[semconv.SPANLEDGER_EGRESS_BOUNDARY] = call.boundary
        if host:
            attributes[semconv.SERVER_ADDRESS] = host
        if port:
            attributes[semconv.SERVER_PORT] = port
        extension.before_call(call)
        if call.account:
            attributes[semconv.CLOUD_ACCOUNT_ID] = call.account
        self._hook_client(meta.events)

        upstream = _upstream_span(operation)
        if upstream is not None:
            call.owns_span = False
            upstream.set_attributes(attributes)
            call.span = upstream
            return call, extension, context.set_value(_SUPPRESS_INSTRUMENTATION_KEY, True)
        span = telemetry.tracer.start_span(
            extension.span_name(call, service_model.service_id), kind=SpanKind.CLIENT, attributes=attributes
        )
        call.span = span
        return call, extension, context.set_value(_SUPPRESS_INSTRUMENTATION_KEY, True, trace.set_span_in_context(span))

    def _endpoint(self, url: str) -> tuple[str, int | None]:
        endpoint = self._endpoints.get(url)
        if endpoint is None:
            parts = urlsplit(url)
            if len(self._endpoints) >= 256:
                self._endpoints.clear()
            endpoint = self._endpoints[url] = (parts.hostname or "", parts.port)
        return endpoint

    def _hook_client(self, events: Any) -> None:
        if events in self._hooked_emitters:
            return
        events.register_first("before-send", _count_request_bytes, unique_id="spanledger-request-bytes")
        self._hooked_emitters.add(events)

    @staticmethod
    def _finish(call: AwsCall, extension: ServiceExtension, result: Any) -> None:
        end_now = True
        try:
            if isinstance(result, dict):
                metadata = result.get("ResponseMetadata", {})
                call.set(semconv.AWS_REQUEST_ID, metadata.get("RequestId"))
                call.set(semconv.HTTP_RESPONSE_STATUS_CODE, metadata.get("HTTPStatusCode"))
                end_now = extension.on_success(call, result)
        except Exception:
            log_internal_error(f"aws.{call.service}.on_success")
            end_now = True
        if end_now:
            try:
                call.end()
            except Exception:
                log_internal_error("aws.end")

    @staticmethod
    def _finish_failed(call: AwsCall, extension: ServiceExtension, error: BaseException) -> None:
        try:
            response = getattr(error, "response", None)
            if isinstance(response, Mapping):
                metadata = response.get("ResponseMetadata", {})
                call.set(semconv.AWS_REQUEST_ID, metadata.get("RequestId"))
                call.set(semconv.HTTP_RESPONSE_STATUS_CODE, metadata.get("HTTPStatusCode"))
            extension.on_error(call, error)
        except Exception:
            log_internal_error(f"aws.{call.service}.on_error")
        try:
            call.end(error)
        except Exception:
            log_internal_error("aws.end")
