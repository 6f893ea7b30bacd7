"""httpx and httpx2 bytes on the wire and egress boundary, against a real HTTP/1.1 server that counts bytes."""

from __future__ import annotations

import gc
from collections.abc import AsyncIterator, Iterator
from types import ModuleType
from typing import Any

import httpx
import httpx2
import pytest
import spanledger
from _wire_server import WireExchange, wire_server
from conftest import Capture
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from spanledger import semconv
from spanledger._config import resolve_settings
from spanledger._egress import EgressClassifier, parse_egress_rules

MODULES = [pytest.param(httpx, id="httpx"), pytest.param(httpx2, id="httpx2")]


@pytest.fixture
def server() -> Iterator[tuple[str, list[WireExchange]]]:
    with wire_server() as running:
        yield running


def http_spans(capture: Capture) -> list[ReadableSpan]:
    return [span for span in capture.spans() if span.attributes and semconv.SPANLEDGER_EGRESS_BYTES in span.attributes]


def assert_matches_wire(span: ReadableSpan, wire: WireExchange) -> None:
    attributes = span.attributes or {}
    assert attributes[semconv.SPANLEDGER_EGRESS_BYTES] == wire.head_in + wire.body_in
    assert attributes[semconv.SPANLEDGER_INGRESS_BYTES] == wire.head_out + wire.body_out
    assert attributes[semconv.SPANLEDGER_USAGE_OWNER] is True
    assert not [key for key in attributes if key.startswith("gen_ai.")], "an HTTP span never carries tokens"


def egress_points(capture: Capture) -> dict[tuple[str, str], int]:
    points = capture.metrics().get(semconv.METRIC_SPANLEDGER_EGRESS_BYTES.name, [])
    boundary, direction = semconv.SPANLEDGER_EGRESS_BOUNDARY, semconv.NETWORK_IO_DIRECTION
    return {(point.attributes[boundary], point.attributes[direction]): point.value for point in points}


@pytest.mark.parametrize("module", MODULES)
def test_sync_requests_count_bytes_as_they_crossed_the_socket(
    module: ModuleType, capture: Capture, server: tuple[str, list[WireExchange]]
) -> None:
    base, wire = server
    upload = [b"u" * 700 for _ in range(7)]
    with module.Client() as client:
        assert len(client.get(f"{base}/bytes?n=1500").content) == 1500
        assert client.post(f"{base}/upload", content=iter(upload)).text == "4900"  # chunked upload
        assert client.post(f"{base}/upload", content=b"x" * 321).text == "321"
        with client.stream("GET", f"{base}/stream?n=20000&chunks=8") as response:
            assert sum(len(chunk) for chunk in response.iter_raw()) == 20000
        assert client.get(f"{base}/gzip?n=50000").content == b"g" * 50000

    spans = http_spans(capture)
    assert [exchange.method for exchange in wire] == ["GET", "POST", "POST", "GET", "GET"]
    for span, exchange in zip(spans, wire, strict=True):
        assert_matches_wire(span, exchange)
    # Compressed bodies are counted compressed, as they crossed the wire.
    assert spans[-1].attributes[semconv.SPANLEDGER_INGRESS_BYTES] < 1000
    points = egress_points(capture)
    assert points[("unknown", "transmit")] == sum(w.head_in + w.body_in for w in wire)
    assert points[("unknown", "receive")] == sum(w.head_out + w.body_out for w in wire)


@pytest.mark.parametrize("module", MODULES)
async def test_async_requests_count_streamed_uploads_and_downloads(
    module: ModuleType, capture: Capture, server: tuple[str, list[WireExchange]]
) -> None:
    base, wire = server

    async def upload() -> AsyncIterator[bytes]:
        for _ in range(5):
            yield b"a" * 1000

    async with module.AsyncClient() as client:
        assert (await client.post(f"{base}/upload", content=upload())).text == "5000"
        async with client.stream("GET", f"{base}/stream?n=9000&chunks=3") as response:
            assert sum([len(chunk) async for chunk in response.aiter_raw()]) == 9000
        assert len((await client.get(f"{base}/bytes?n=10")).content) == 10

    spans = http_spans(capture)
    assert len(spans) == len(wire) == 3
    for span, exchange in zip(spans, wire, strict=True):
        assert_matches_wire(span, exchange)


@pytest.mark.parametrize("module", MODULES)
def test_span_stays_open_until_the_streamed_body_is_closed(
    module: ModuleType, capture: Capture, server: tuple[str, list[WireExchange]]
) -> None:
    base, wire = server
    with module.Client() as client, client.stream("GET", f"{base}/stream?n=3000&chunks=3") as response:
        chunks = response.iter_raw(1000)
        first = next(chunks)
        assert len(first) == 1000
        assert http_spans(capture) == []
        rest = b"".join(chunks)
        assert len(first) + len(rest) == 3000
    (span,) = http_spans(capture)
    assert_matches_wire(span, wire[0])
    assert span.end_time is not None and span.start_time is not None


@pytest.mark.parametrize("module", MODULES)
def test_an_abandoned_streamed_response_still_ends_its_span(
    module: ModuleType, capture: Capture, server: tuple[str, list[WireExchange]]
) -> None:
    base, _ = server
    client = module.Client()
    response = client.send(client.build_request("GET", f"{base}/bytes?n=100"), stream=True)
    assert response.status_code == 200
    del response
    gc.collect()
    (span,) = http_spans(capture)
    assert span.attributes[semconv.SPANLEDGER_EGRESS_BYTES] > 0
    client.close()


@pytest.fixture
def zoned_capture(monkeypatch: pytest.MonkeyPatch) -> Iterator[Capture]:
    monkeypatch.setenv("SPANLEDGER_EGRESS_RULES", "localhost=intra_zone, 127.0.0.0/8=zone:eu-west-1a")
    monkeypatch.setenv("SPANLEDGER_AVAILABILITY_ZONE", "eu-west-1b")
    exporter, reader = InMemorySpanExporter(), InMemoryMetricReader()
    handle = spanledger.configure(
        export="none", additional_span_processors=[SimpleSpanProcessor(exporter)], metric_readers=[reader]
    )
    yield Capture(exporter=exporter, metric_reader=reader, handle=handle)
    handle.shutdown()


@pytest.mark.parametrize("module", MODULES)
def test_boundary_comes_from_the_rules_and_the_process_zone(
    module: ModuleType, zoned_capture: Capture, server: tuple[str, list[WireExchange]]
) -> None:
    base, wire = server
    port = base.rsplit(":", 1)[1]
    with module.Client() as client:
        client.get(f"{base}/bytes?n=10")  # 127.0.0.1 is in eu-west-1a, we are in eu-west-1b
        client.get(f"http://localhost:{port}/bytes?n=20")
    by_ip, by_name = http_spans(zoned_capture)
    assert by_ip.attributes[semconv.SPANLEDGER_EGRESS_BOUNDARY] == "inter_zone"
    assert by_ip.attributes[semconv.CLOUD_REGION] == "eu-west-1"
    assert by_name.attributes[semconv.SPANLEDGER_EGRESS_BOUNDARY] == "intra_zone"
    points = egress_points(zoned_capture)
    assert points[("inter_zone", "transmit")] == wire[0].head_in
    assert points[("inter_zone", "receive")] == wire[0].head_out + 10
    assert points[("intra_zone", "receive")] == wire[1].head_out + 20


@pytest.mark.parametrize("module", MODULES)
def test_credentials_in_query_and_captured_headers_are_redacted(
    module: ModuleType, monkeypatch: pytest.MonkeyPatch, server: tuple[str, list[WireExchange]]
) -> None:
    monkeypatch.setenv("OTEL_INSTRUMENTATION_HTTP_CAPTURE_HEADERS_CLIENT_REQUEST", "authorization,x-api-key,accept")
    exporter = InMemorySpanExporter()
    handle = spanledger.configure(export="none", additional_span_processors=[SimpleSpanProcessor(exporter)])
    base, _ = server
    with module.Client() as client:
        client.get(
            f"{base}/bytes?n=5&api-key=sk-secret&access_token=tok-secret",
            headers={"Authorization": "Bearer sk-secret", "X-Api-Key": "sk-secret", "Accept": "text/plain"},
        )
    handle.shutdown()
    (span,) = exporter.get_finished_spans()
    recorded = repr(dict(span.attributes or {}))
    assert "secret" not in recorded
    assert "REDACTED" in recorded
    assert "text/plain" in recorded  # harmless captured headers stay


@pytest.mark.parametrize("module", MODULES)
def test_a_broken_spanledger_hook_never_breaks_the_request(
    module: ModuleType, capture: Capture, server: tuple[str, list[WireExchange]], monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(self: Any, host: str) -> Any:
        raise RuntimeError("boom")

    monkeypatch.setattr(EgressClassifier, "locate", broken)
    monkeypatch.setattr("spanledger._http._response_head_size", lambda *args: 1 / 0)
    base, _ = server
    with module.Client() as client:
        response = client.get(f"{base}/bytes?n=64")
    assert response.status_code == 200 and response.content == b"b" * 64
    (span,) = capture.spans()  # the span still ended, without byte counts rather than wrong ones
    assert semconv.SPANLEDGER_EGRESS_BYTES not in (span.attributes or {})


@pytest.mark.parametrize("module", MODULES)
def test_transport_errors_reach_the_caller_unchanged(module: ModuleType, capture: Capture) -> None:
    with wire_server() as (base, _):
        pass  # the port is closed now
    with module.Client() as client, pytest.raises(module.ConnectError):
        client.get(f"{base}/bytes?n=1")
    (span,) = capture.spans()
    assert span.attributes[semconv.SPANLEDGER_EGRESS_BYTES] == 0
    assert span.status.status_code.name == "ERROR"


@pytest.mark.parametrize("module", MODULES)
def test_http_errors_count_their_bytes_too(
    module: ModuleType, capture: Capture, server: tuple[str, list[WireExchange]]
) -> None:
    base, wire = server
    with module.Client() as client:
        response = client.get(f"{base}/bytes?n=42&status=503_Service_Unavailable")
    assert response.status_code == 503
    (span,) = http_spans(capture)
    assert_matches_wire(span, wire[0])


@pytest.mark.parametrize(
    ("host", "boundary", "region"),
    [
        ("10.1.2.3", "inter_zone", "us-east-1"),  # 10.1/16 is us-east-1a, we run in us-east-1b
        ("10.9.9.9", "unknown", "us-east-1"),  # same region, zone unknown: could be either
        ("192.168.4.4", "inter_region", "eu-west-1"),
        ("db.svc.cluster.local", "intra_zone", None),
        ("s3.eu-west-1.amazonaws.com", "inter_region", "eu-west-1"),
        ("my-bucket.s3.us-east-1.amazonaws.com", "intra_zone", "us-east-1"),  # same-region service endpoint
        ("bedrock-runtime.us-east-1.amazonaws.com", "intra_zone", "us-east-1"),
        ("runtime.sagemaker.us-west-2.amazonaws.com", "inter_region", "us-west-2"),
        ("s3-eu-west-1.amazonaws.com", "inter_region", "eu-west-1"),
        ("s3.amazonaws.com", "intra_zone", "us-east-1"),
        ("vpce-0a1b.s3.us-east-1.vpce.amazonaws.com", "intra_zone", "us-east-1"),
        ("8.8.8.8", "internet", None),
        ("127.0.0.1", "unknown", None),  # loopback is not assumed free without a rule
        ("api.openai.com", "unknown", None),  # no DNS lookups: a name needs a rule
    ],
)
def test_boundary_classification(host: str, boundary: str, region: str | None) -> None:
    rules = parse_egress_rules(
        "10.1.0.0/16=zone:us-east-1a; 10.0.0.0/8=region:us-east-1\n"
        "192.168.0.0/16=region:eu-west-1, *.svc.cluster.local=intra_zone"
    )
    classifier = EgressClassifier(rules, zone="us-east-1b")
    assert classifier.locate(host) == (boundary, region)


def test_catch_all_rule_and_unknown_own_region() -> None:
    classifier = EgressClassifier(parse_egress_rules(".internal=intra_zone, *=internet"))
    assert classifier.classify("api.openai.com") == "internet"
    assert classifier.classify("db.internal") == "intra_zone"
    assert classifier.classify("s3.eu-west-1.amazonaws.com") == "internet"  # rules come first
    assert EgressClassifier().classify("s3.eu-west-1.amazonaws.com") == "unknown"  # own region unknown


@pytest.mark.parametrize(
    ("rules", "message"),
    [
        ("10.0.0.0/8", "expected PATTERN=TARGET"),
        ("10.0.0.0/33=internet", "not a valid CIDR"),
        ("host=far_away", "is not one of"),
        ("host=region:", "is not one of"),
        ("bad host=internet", "is not a host"),
    ],
)
def test_bad_rules_name_the_entry(rules: str, message: str) -> None:
    with pytest.raises(ValueError, match=message) as raised:
        parse_egress_rules(f".ok=internet, {rules}")
    assert repr(rules) in str(raised.value)


def test_bad_rules_in_the_environment_are_logged_naming_the_variable(caplog: pytest.LogCaptureFixture) -> None:
    settings = resolve_settings(environ={"SPANLEDGER_EGRESS_RULES": "10.0.0.0/8=nowhere", "AWS_REGION": "us-east-1"})
    assert settings.egress_rules == "" and settings.region == "us-east-1"
    assert "SPANLEDGER_EGRESS_RULES" in caplog.text and "'10.0.0.0/8=nowhere'" in caplog.text


# -- HTTP names: the stable conventions by default, old and new with http/dup -----------------------

STABLE_NAMES = ("http.request.method", "url.full", "http.response.status_code", "server.address")
OLD_NAMES = ("http.method", "http.url", "http.status_code")


@pytest.mark.parametrize("module", MODULES)
@pytest.mark.parametrize(
    "opt_in, present, absent",
    [
        (None, STABLE_NAMES, OLD_NAMES),
        ("gen_ai_latest_experimental", STABLE_NAMES, OLD_NAMES),
        ("http/dup,gen_ai_latest_experimental", STABLE_NAMES + OLD_NAMES, ()),
    ],
    ids=["default", "other-domains-only", "dup"],
)
def test_http_spans_carry_the_stable_names(
    module: ModuleType,
    monkeypatch: pytest.MonkeyPatch,
    server: tuple[str, list[WireExchange]],
    opt_in: str | None,
    present: tuple[str, ...],
    absent: tuple[str, ...],
) -> None:
    if opt_in is not None:
        monkeypatch.setenv("OTEL_SEMCONV_STABILITY_OPT_IN", opt_in)
    exporter, reader = InMemorySpanExporter(), InMemoryMetricReader()
    handle = spanledger.configure(
        export="none", additional_span_processors=[SimpleSpanProcessor(exporter)], metric_readers=[reader]
    )
    base, _ = server
    with module.Client() as client:
        client.get(f"{base}/bytes?n=5")
    metrics_data = reader.get_metrics_data()
    handle.shutdown()
    (span,) = exporter.get_finished_spans()
    attributes = span.attributes or {}
    assert span.name == "GET"
    assert all(name in attributes for name in present), dict(attributes)
    assert not any(name in attributes for name in absent), dict(attributes)
    assert attributes["http.response.status_code"] == 200
    metric_names = {
        metric.name
        for resource_metrics in (metrics_data.resource_metrics if metrics_data else ())
        for scope_metrics in resource_metrics.scope_metrics
        for metric in scope_metrics.metrics
    }
    assert "http.client.request.duration" in metric_names
    assert ("http.client.duration" in metric_names) is bool(absent == ())
