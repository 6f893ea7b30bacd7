"""SageMaker runtime: endpoint ARN, bytes in and out, and how long the request occupied the endpoint.

Occupancy (``spanledger.occupancy.start`` / ``.end``, seconds since the epoch) is what the collector
divides endpoint-hours by. InvokeEndpoint occupies the endpoint from the request until the response
arrives; InvokeEndpointWithResponseStream until the last event has been received. InvokeEndpointAsync
only enqueues: the inference runs later, at a time the caller never sees, so its span records a zero
occupancy (start = end = the enqueue time) rather than charging the enqueue round trip as endpoint time.
"""

from __future__ import annotations

import time
from typing import Any

from .. import semconv
from ._call import AwsCall
from ._extension import ServiceExtension
from ._resource import sagemaker_endpoint_arn
from ._streams import observe_event_stream

__all__ = ["SageMakerRuntimeExtension"]

_ENDPOINT_RESOURCE_TYPE = "sagemaker_endpoint"
"""``spanledger.resource.type`` value that tells the collector to turn occupancy into endpoint-seconds."""


class SageMakerRuntimeExtension(ServiceExtension):
    def before_call(self, call: AwsCall) -> None:
        call.attributes[semconv.SPANLEDGER_RESOURCE_TYPE] = _ENDPOINT_RESOURCE_TYPE
        name = call.params.get("EndpointName")
        if isinstance(name, str):
            call.attributes[semconv.CLOUD_RESOURCE_ID] = sagemaker_endpoint_arn(name, call.region, call.account)
        call.attributes[semconv.SPANLEDGER_OCCUPANCY_START] = call.start_time

    def on_success(self, call: AwsCall, result: dict[str, Any]) -> bool:
        if call.operation == "InvokeEndpointAsync":
            call.set(semconv.SPANLEDGER_OCCUPANCY_END, call.start_time)
        elif call.operation == "InvokeEndpointWithResponseStream" and result.get("Body") is not None:

            def on_end(wire_bytes: int | None, error: BaseException | None) -> None:
                call.set(semconv.SPANLEDGER_OCCUPANCY_END, time.time())
                call.record_wire_bytes(wire_bytes)
                call.end(error)

            result["Body"] = observe_event_stream(result["Body"], _ignore_event, on_end)
            return False
        else:
            call.set(semconv.SPANLEDGER_OCCUPANCY_END, time.time())
        return super().on_success(call, result)

    def on_error(self, call: AwsCall, error: BaseException) -> None:
        # A failed request held the endpoint while it ran (or was refused at once); a failed enqueue never ran.
        never_ran = call.operation == "InvokeEndpointAsync"
        call.set(semconv.SPANLEDGER_OCCUPANCY_END, call.start_time if never_ran else time.time())
        super().on_error(call, error)


def _ignore_event(event: Any) -> None:
    pass
