"""The OTLP/HTTP receiver's edges over real sockets: multi-member gzip, deeply nested JSON, the listen backlog,
the connection cap (issue 19, items 5 and 6)."""

from __future__ import annotations

import gzip
import selectors
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from collector_fixtures import RunningCollector, collector_config, start_collector
from google.rpc import status_pb2
from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
from test_collector_service import genai_trace

PROTOBUF = {"Content-Type": "application/x-protobuf"}


@pytest.fixture(scope="module")
def collector(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningCollector]:
    tmp_path = tmp_path_factory.mktemp("limits")
    config = collector_config(tmp_path)
    config["receivers"]["otlp"]["protocols"]["http"]["max_request_body_size"] = 300_000
    with start_collector(tmp_path, config) as running:
        yield running


def _message(response: httpx.Response) -> str:
    if response.headers["content-type"] == "application/json":
        return str(response.json()["message"])
    return status_pb2.Status.FromString(response.content).message


def test_every_member_of_a_multi_member_gzip_body_is_stored(tmp_path: Path) -> None:
    """RFC 1952: a gzip file is a series of members. Two requests' bytes, gzipped as two members, decode to one
    request holding both traces (protobuf merges concatenated messages): both are stored, not just the first."""
    first, second = (encode_spans(genai_trace(tenant=tenant)).SerializeToString() for tenant in ("acme", "globex"))
    body = gzip.compress(first) + gzip.compress(second)
    with start_collector(tmp_path) as collector:
        response = httpx.post(
            collector.http_endpoint + "/v1/traces", content=body, headers={**PROTOBUF, "Content-Encoding": "gzip"}
        )
        assert response.status_code == 200, response.content
    assert collector.query("SELECT count(*) FROM spans") == [(2 * len(genai_trace()),)]
    assert sorted(collector.query("SELECT DISTINCT tenant FROM usage_facts")) == [("acme",), ("globex",)]


def test_the_size_cap_counts_every_gzip_member(collector: RunningCollector) -> None:
    member = gzip.compress(bytes(200_000))  # each member alone is under the 300,000-byte cap
    response = httpx.post(
        collector.http_endpoint + "/v1/traces",
        content=member + member,
        headers={**PROTOBUF, "Content-Encoding": "gzip"},
    )
    assert response.status_code == 413
    garbage = httpx.post(
        collector.http_endpoint + "/v1/traces",
        content=gzip.compress(b"") + b"not gzip",
        headers={**PROTOBUF, "Content-Encoding": "gzip"},
    )
    assert garbage.status_code == 400 and "not valid gzip (member 2)" in _message(garbage)


@pytest.mark.parametrize("size", [b"-1", b"+1", b"1_0", b"0x10"])
def test_a_chunk_size_that_is_not_plain_hex_is_answered_400_at_once(collector: RunningCollector, size: bytes) -> None:
    """int(x, 16) takes "-1", which then read the body to its end past the size cap, growing memory for as long
    as the client sent. (Failed before: no answer until the client closed, hundreds of MB read.)"""
    host, port = collector.http_endpoint.removeprefix("http://").rsplit(":", 1)
    with socket.create_connection((host, int(port)), timeout=10) as sock:
        sock.sendall(
            b"POST /v1/traces HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-protobuf\r\n"
            b"Transfer-Encoding: chunked\r\n\r\n" + size + b"\r\n" + bytes(4096)
        )
        answer = b""
        while chunk := sock.recv(4096):  # the server answers and closes while the client still sends
            answer += chunk
    assert answer.startswith(b"HTTP/1.1 400") and b"is not hexadecimal" in answer


def test_json_nested_100k_deep_is_answered_400_naming_the_problem(collector: RunningCollector) -> None:
    body = b'{"resourceSpans": ' + b"[" * 100_000 + b"]" * 100_000 + b"}"
    response = httpx.post(
        collector.http_endpoint + "/v1/traces", content=body, headers={"Content-Type": "application/json"}
    )
    assert response.status_code == 400
    assert "nested too deeply" in _message(response)
    assert (
        httpx.post(
            collector.http_endpoint + "/v1/traces", content=b"{}", headers={"Content-Type": "application/json"}
        ).status_code
        == 200
    )


def test_200_connections_at_once_are_all_accepted_without_a_syn_retry(collector: RunningCollector) -> None:
    """A listen backlog of 5 dropped SYNs under a burst of connections: the client retried after 1 s."""
    host, port = collector.http_endpoint.removeprefix("http://").rsplit(":", 1)
    sockets = [socket.socket() for _ in range(200)]
    try:
        started = time.monotonic()
        for sock in sockets:
            sock.setblocking(False)
            sock.connect_ex((host, int(port)))
        pending = set(sockets)
        # A selector, not select(): earlier tests in the process (chdb) may have pushed descriptors past 1024.
        with selectors.DefaultSelector() as selector:
            for sock in sockets:
                selector.register(sock, selectors.EVENT_WRITE)
            while pending and time.monotonic() - started < 0.9:  # under the 1 s of a SYN retransmission
                for key, _ in selector.select(0.05):
                    pending.discard(key.fileobj)  # type: ignore[arg-type]
                    selector.unregister(key.fileobj)
        assert not pending, f"{len(pending)} of 200 connections were still being set up after 0.9 s"
        assert all(sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR) == 0 for sock in sockets)
    finally:
        for sock in sockets:
            sock.close()


def test_connections_past_max_connections_are_refused_with_503(tmp_path: Path) -> None:
    config = collector_config(tmp_path)
    config["receivers"]["otlp"]["protocols"]["http"]["max_connections"] = 2
    with start_collector(tmp_path, config) as collector:
        url = collector.http_endpoint + "/v1/traces"
        held = [httpx.Client(), httpx.Client()]  # keep-alive: each holds a connection (and its thread)
        for client in held:
            assert client.post(url, content=b"{}", headers={"Content-Type": "application/json"}).status_code == 200
        refused = httpx.post(url, content=b"{}", headers={"Content-Type": "application/json"})
        assert refused.status_code == 503
        assert "2 connections open (its max_connections)" in refused.text
        assert refused.headers["Retry-After"] == "1"
        held.pop().close()
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            response = httpx.post(url, content=b"{}", headers={"Content-Type": "application/json"})
            if response.status_code == 200:
                break
            time.sleep(0.05)
        assert response.status_code == 200, "a closed connection frees its place"
        held[0].close()
    assert "connections refused so far" in collector.log
