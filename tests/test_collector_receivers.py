"""The OTLP receivers over real sockets: auth, TLS, size caps, bad input, JSON, gzip, chunked, backpressure."""

from __future__ import annotations

import gzip
import json
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import grpc
import httpx
import pytest
from collector_fixtures import RunningCollector, collector_config, self_signed_certificate, start_collector
from google.rpc import error_details_pb2, status_pb2
from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter as GrpcSpanExporter
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter as HttpSpanExporter
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)
from opentelemetry.sdk.trace.export import SpanExportResult
from test_collector_service import genai_trace

TRACE_METHOD = "/opentelemetry.proto.collector.trace.v1.TraceService/Export"
PROTOBUF = {"Content-Type": "application/x-protobuf"}
JSON_HEADERS = {"Content-Type": "application/json"}


def otlp_json(trace_id: str = "5b8efff798038103d269b633813fc60c", span_id: str = "eee19b7ec3c1b174") -> dict[str, Any]:
    return {
        "resourceSpans": [
            {
                "resource": {"attributes": [{"key": "service.name", "value": {"stringValue": "json-app"}}]},
                "scopeSpans": [
                    {
                        "scope": {"name": "manual"},
                        "spans": [
                            {
                                "traceId": trace_id,
                                "spanId": span_id,
                                "name": "chat",
                                "kind": 3,
                                "startTimeUnixNano": "1700000000000000000",
                                "endTimeUnixNano": "1700000001000000000",
                                "attributes": [
                                    {"key": "spanledger.usage.owner", "value": {"boolValue": True}},
                                    {"key": "gen_ai.operation.name", "value": {"stringValue": "chat"}},
                                    {"key": "gen_ai.request.model", "value": {"stringValue": "gpt-4o"}},
                                    {"key": "gen_ai.usage.input_tokens", "value": {"intValue": "10"}},
                                    {"key": "gen_ai.usage.output_tokens", "value": {"intValue": 5}},
                                ],
                                "status": {"code": 1},
                            }
                        ],
                    }
                ],
            }
        ]
    }


def raw_grpc(collector: RunningCollector, body: bytes, metadata: tuple[tuple[str, str], ...] = ()) -> bytes:
    with grpc.insecure_channel(collector.grpc_endpoint) as channel:
        result: bytes = channel.unary_unary(TRACE_METHOD)(body, metadata=metadata, timeout=10)
        return result


@pytest.fixture(scope="module")
def collector(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningCollector]:
    tmp_path = tmp_path_factory.mktemp("receivers")
    config = collector_config(tmp_path)
    config["receivers"]["otlp"]["protocols"]["http"]["max_request_body_size"] = 200_000
    config["receivers"]["otlp"]["protocols"]["grpc"]["max_recv_msg_size_mib"] = 1
    with start_collector(tmp_path, config) as running:
        yield running


@pytest.mark.slow
def test_otlp_json_with_hex_ids_gzip_and_chunked(collector: RunningCollector) -> None:
    body = json.dumps(otlp_json()).encode()
    response = httpx.post(collector.http_endpoint + "/v1/traces", content=body, headers=JSON_HEADERS)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "application/json"
    compressed = gzip.compress(body)
    response = httpx.post(
        collector.http_endpoint + "/v1/traces",
        content=iter([compressed[:10], compressed[10:]]),  # no length: sent chunked
        headers={**JSON_HEADERS, "Content-Encoding": "gzip"},
    )
    assert response.status_code == 200, response.text
    assert "transfer-encoding" not in response.headers


@pytest.mark.slow
def test_partial_success_names_the_rejected_spans(collector: RunningCollector) -> None:
    document = otlp_json()
    spans = document["resourceSpans"][0]["scopeSpans"][0]["spans"]
    spans.append({**spans[0], "traceId": "abcd", "spanId": "eee19b7ec3c1b175"})
    response = httpx.post(collector.http_endpoint + "/v1/traces", json=document)
    assert response.status_code == 200
    partial = response.json()["partialSuccess"]
    assert partial["rejectedSpans"] == "1"
    assert "trace_id" in partial["errorMessage"]


@pytest.mark.slow
@pytest.mark.parametrize(
    ("headers", "body", "status", "message"),
    [
        (PROTOBUF, b"\xff\xff\xff\xff", 400, "not a valid ExportTraceServiceRequest"),
        (JSON_HEADERS, b"{not json", 400, "not valid JSON"),
        (JSON_HEADERS, b'{"resourceSpans": [{"scopeSpans": [{"spans": [{"traceId": "zz"}]}]}]}', 400, "not a hex id"),
        (JSON_HEADERS, b'{"resourceSpans": 7}', 400, "OTLP/JSON"),
        ({"Content-Type": "text/plain"}, b"hello", 415, "unsupported content type"),
        ({**PROTOBUF, "Content-Encoding": "gzip"}, b"not gzip at all", 400, "not valid gzip"),
        ({**PROTOBUF, "Content-Encoding": "br"}, b"x", 400, "unsupported Content-Encoding"),
        (PROTOBUF, b"x" * 300_000, 413, "larger than the limit"),
        ({**PROTOBUF, "Content-Encoding": "gzip"}, gzip.compress(b"\0" * 300_000), 413, "larger than the limit"),
    ],
)
def test_bad_http_input_is_refused_with_a_reason(
    collector: RunningCollector, headers: dict[str, str], body: bytes, status: int, message: str
) -> None:
    response = httpx.post(collector.http_endpoint + "/v1/traces", content=body, headers=headers)
    assert response.status_code == status
    if response.headers["content-type"] == "application/json":
        text = response.json()["message"]
    else:
        text = status_pb2.Status.FromString(response.content).message
    assert message in text
    # The collector keeps serving.
    good = httpx.post(collector.http_endpoint + "/v1/traces", json=otlp_json())
    assert good.status_code == 200


@pytest.mark.slow
def test_bad_grpc_input_is_invalid_argument_and_oversize_is_resource_exhausted(collector: RunningCollector) -> None:
    with pytest.raises(grpc.RpcError) as error:
        raw_grpc(collector, b"\xff\xff\xff\xff")
    assert error.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "ExportTraceServiceRequest" in (error.value.details() or "")
    with pytest.raises(grpc.RpcError) as error:
        raw_grpc(collector, b"\0" * (2 * 1024 * 1024))
    assert error.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    empty = ExportTraceServiceRequest().SerializeToString()
    response = ExportTraceServiceResponse.FromString(raw_grpc(collector, empty))
    assert not response.HasField("partial_success")


@pytest.mark.slow
def test_unknown_path_and_method(collector: RunningCollector) -> None:
    assert httpx.post(collector.http_endpoint + "/v1/nope", content=b"", headers=PROTOBUF).status_code == 404
    assert httpx.get(collector.http_endpoint + "/v1/traces").status_code == 405


@pytest.mark.slow
def test_bearer_token_auth_on_both_receivers(tmp_path: Path) -> None:
    config = collector_config(tmp_path)
    config["extensions"] = {"bearertokenauth": {"token": "${env:SPANLEDGER_TEST_TOKEN}"}}
    config["service"]["extensions"] = ["bearertokenauth"]
    for protocol in ("grpc", "http"):
        config["receivers"]["otlp"]["protocols"][protocol]["auth"] = {"authenticator": "bearertokenauth"}
    spans = genai_trace()
    with start_collector(tmp_path, config, env={"SPANLEDGER_TEST_TOKEN": "s3cret"}) as collector:
        with pytest.raises(grpc.RpcError) as error:
            raw_grpc(collector, ExportTraceServiceRequest().SerializeToString())
        assert error.value.code() == grpc.StatusCode.UNAUTHENTICATED
        with pytest.raises(grpc.RpcError) as error:
            raw_grpc(collector, b"", metadata=(("authorization", "Bearer wrong"),))
        assert error.value.code() == grpc.StatusCode.UNAUTHENTICATED
        denied = httpx.post(collector.http_endpoint + "/v1/traces", json=otlp_json())
        assert denied.status_code == 401
        grpc_exporter = GrpcSpanExporter(
            endpoint=collector.grpc_endpoint, insecure=True, headers={"authorization": "Bearer s3cret"}
        )
        assert grpc_exporter.export(spans) == SpanExportResult.SUCCESS
        http_exporter = HttpSpanExporter(
            endpoint=collector.http_endpoint + "/v1/traces", headers={"Authorization": "Bearer s3cret"}
        )
        assert http_exporter.export(spans) == SpanExportResult.SUCCESS
    assert collector.query("SELECT count(*) FROM spans") == [(len(spans),)]


@pytest.mark.slow
def test_tls_on_both_receivers(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # requests lets these override a session's own CA file, which is how the OTLP/HTTP exporter passes it.
    monkeypatch.delenv("REQUESTS_CA_BUNDLE", raising=False)
    monkeypatch.delenv("CURL_CA_BUNDLE", raising=False)
    cert_file, key_file = self_signed_certificate(tmp_path)
    config = collector_config(tmp_path)
    for protocol in ("grpc", "http"):
        settings = config["receivers"]["otlp"]["protocols"][protocol]
        settings["endpoint"] = "localhost:0"
        settings["tls"] = {"cert_file": str(cert_file), "key_file": str(key_file)}
    spans = genai_trace()
    with start_collector(tmp_path, config) as collector:
        port = collector.grpc_endpoint.rpartition(":")[2]
        credentials = grpc.ssl_channel_credentials(root_certificates=cert_file.read_bytes())
        grpc_exporter = GrpcSpanExporter(endpoint=f"localhost:{port}", credentials=credentials)
        assert grpc_exporter.export(spans) == SpanExportResult.SUCCESS
        http_port = collector.http_endpoint.rpartition(":")[2]
        http_exporter = HttpSpanExporter(
            endpoint=f"https://localhost:{http_port}/v1/traces", certificate_file=str(cert_file)
        )
        assert http_exporter.export(spans) == SpanExportResult.SUCCESS
        with pytest.raises(httpx.HTTPError):
            httpx.post(f"http://localhost:{http_port}/v1/traces", json=otlp_json(), timeout=5)
    assert collector.query("SELECT count(*) FROM spans") == [(len(spans),)]


@pytest.mark.slow
def test_memory_limiter_refuses_with_retry_hints(tmp_path: Path) -> None:
    config = collector_config(tmp_path)
    config["processors"]["memory_limiter"] = {"check_interval": "50ms", "limit_mib": 2, "spike_limit_mib": 1}
    for pipeline in config["service"]["pipelines"].values():
        pipeline["processors"] = ["memory_limiter", *[p for p in pipeline["processors"] if p != "memory_limiter"]]
    with start_collector(tmp_path, config) as collector:
        response = httpx.post(collector.http_endpoint + "/v1/traces", json=otlp_json())
        assert response.status_code == 503
        assert response.headers["retry-after"] == "1"
        assert "soft limit" in response.json()["message"]
        with pytest.raises(grpc.RpcError) as error:
            raw_grpc(collector, ExportTraceServiceRequest().SerializeToString())
        assert error.value.code() == grpc.StatusCode.UNAVAILABLE
        trailers = dict(error.value.trailing_metadata() or ())
        status = status_pb2.Status.FromString(trailers["grpc-status-details-bin"])
        retry_info = error_details_pb2.RetryInfo()
        assert status.details[0].Unpack(retry_info)
        assert retry_info.retry_delay.seconds == 1
        assert collector.get("/health")[0] == 200
        assert 'otelcol_receiver_refused_spans_total{receiver="otlp",transport="http"} 1.0' in collector.scrape()


def _ipv6_loopback() -> bool:
    try:
        with socket.socket(socket.AF_INET6) as probe:
            probe.bind(("::1", 0))
        return True
    except OSError:
        return False


@pytest.mark.skipif(not _ipv6_loopback(), reason="no IPv6 loopback on this machine")
def test_receivers_listen_on_ipv6_addresses(tmp_path: Path) -> None:
    """``[::1]:0`` is a valid endpoint (read_endpoint takes the brackets off). (Failed before: the HTTP receiver
    could not start, "Address family for hostname not supported"; gRPC read "::1:0" as another address.)"""
    config = collector_config(tmp_path)
    for protocol in ("http", "grpc"):
        config["receivers"]["otlp"]["protocols"][protocol]["endpoint"] = "[::1]:0"
    with start_collector(tmp_path, config) as collector:
        assert collector.http_endpoint.startswith("http://[::1]:")
        exported = HttpSpanExporter(endpoint=collector.http_endpoint + "/v1/traces").export(genai_trace())
        assert exported is SpanExportResult.SUCCESS
        grpc_exporter = GrpcSpanExporter(endpoint=collector.grpc_endpoint, insecure=True)
        assert grpc_exporter.export(genai_trace()) is SpanExportResult.SUCCESS
