"""Fuzz the OTLP/HTTP and OTLP/gRPC inputs of a running collector: no crash, no hang, still serving.

Inputs: random bytes, random JSON, and mutations (bit flips, truncation, splices) of a valid GenAI
request. Every answer must be a deliberate one (200, 400, 413, 415 / OK, INVALID_ARGUMENT,
RESOURCE_EXHAUSTED), never a 500 or INTERNAL (an unhandled error), and the collector must answer a good
request and /health afterwards. Example counts are bounded so the whole module stays well under a minute.
"""

from __future__ import annotations

import gzip
import json
from collections.abc import Iterator
from pathlib import Path

import grpc
import httpx
import pytest
from collector_fixtures import RunningCollector, collector_config, start_collector
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from test_collector_receivers import TRACE_METHOD, otlp_json
from test_collector_service import genai_trace

VALID = encode_spans(genai_trace()).SerializeToString()
FUZZ = settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow]
)
HTTP_OK = {200, 400, 413, 415}
GRPC_OK = {grpc.StatusCode.OK, grpc.StatusCode.INVALID_ARGUMENT, grpc.StatusCode.RESOURCE_EXHAUSTED}


@st.composite
def mutations_of(draw: st.DrawFn, originals: st.SearchStrategy[bytes], max_operations: int = 8) -> bytes:
    """Bit flips, truncations, insertions and deletions applied to one of ``originals``."""
    data = bytearray(draw(originals))
    for _ in range(draw(st.integers(1, max_operations))):
        operation = draw(st.sampled_from(["flip", "truncate", "insert", "delete"]))
        position = draw(st.integers(0, max(0, len(data) - 1)))
        if operation == "flip" and data:
            data[position] ^= 1 << draw(st.integers(0, 7))
        elif operation == "truncate":
            del data[position:]
        elif operation == "insert":
            data[position:position] = draw(st.binary(min_size=1, max_size=16))
        elif data:
            del data[position : position + draw(st.integers(1, 32))]
    return bytes(data)


def mutated() -> st.SearchStrategy[bytes]:
    return mutations_of(st.just(VALID))


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=12), children, max_size=4),
    max_leaves=30,
)


@st.composite
def mutated_json(draw: st.DrawFn) -> object:
    document = otlp_json()
    span = document["resourceSpans"][0]["scopeSpans"][0]["spans"][0]
    key = draw(st.sampled_from([*span.keys(), "attributes", "events", "links", "status", "kind"]))
    span[key] = draw(json_values | st.sampled_from(["", "00", "ff" * 40, -1, 2**70, {"code": 99}, [{"key": 1}]]))
    return document


@pytest.fixture(scope="module")
def collector(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningCollector]:
    tmp_path: Path = tmp_path_factory.mktemp("fuzz")
    config = collector_config(tmp_path)
    config["receivers"]["otlp"]["protocols"]["http"]["max_request_body_size"] = 1_000_000
    with start_collector(tmp_path, config) as running:
        yield running


@pytest.fixture(scope="module")
def http(collector: RunningCollector) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=collector.http_endpoint, timeout=30) as client:
        yield client


@pytest.fixture(scope="module")
def channel(collector: RunningCollector) -> Iterator[grpc.Channel]:
    with grpc.insecure_channel(collector.grpc_endpoint) as opened:
        yield opened


def _assert_still_serving(collector: RunningCollector, http: httpx.Client) -> None:
    assert http.post("/v1/traces", content=VALID, headers={"Content-Type": "application/x-protobuf"}).status_code == 200
    assert collector.get("/health")[0] == 200
    assert collector.process.poll() is None


@pytest.mark.slow
@FUZZ
@given(body=st.binary(max_size=2048) | mutated(), compress=st.booleans())
def test_http_protobuf_fuzz(collector: RunningCollector, http: httpx.Client, body: bytes, compress: bool) -> None:
    headers = {"Content-Type": "application/x-protobuf"}
    if compress:
        body, headers["Content-Encoding"] = gzip.compress(body), "gzip"
    response = http.post("/v1/traces", content=body, headers=headers)
    assert response.status_code in HTTP_OK, response.content


@pytest.mark.slow
@FUZZ
@given(document=json_values | mutated_json(), path=st.sampled_from(["/v1/traces", "/v1/metrics", "/v1/logs"]))
def test_http_json_fuzz(collector: RunningCollector, http: httpx.Client, document: object, path: str) -> None:
    response = http.post(path, content=json.dumps(document), headers={"Content-Type": "application/json"})
    assert response.status_code in HTTP_OK, response.content


@pytest.mark.slow
@FUZZ
@given(body=st.binary(max_size=2048) | mutated())
def test_grpc_fuzz(collector: RunningCollector, channel: grpc.Channel, body: bytes) -> None:
    export = channel.unary_unary(TRACE_METHOD)
    try:
        export(body, timeout=30)
    except grpc.RpcError as error:
        assert error.code() in GRPC_OK, error.details()


@pytest.mark.slow
def test_still_serving_after_fuzzing(collector: RunningCollector, http: httpx.Client, channel: grpc.Channel) -> None:
    _assert_still_serving(collector, http)
    channel.unary_unary(TRACE_METHOD)(ExportTraceServiceRequest.FromString(VALID).SerializeToString(), timeout=30)
    assert "Traceback" not in collector.log, collector.log
