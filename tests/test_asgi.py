"""AcceleratorMiddleware on a real Starlette app served by uvicorn over real sockets, requests in parallel.

The GPU is ``_fake_pynvml`` (no GPU exists here): the app marks this process busy on it while any request
is generating, as one model shared by concurrent requests would.
"""

from __future__ import annotations

import asyncio
import os
import socket
import sys
import threading
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager

import httpx
import pytest
import uvicorn
from _fake_pynvml import FakeGpu, fake_pynvml
from conftest import Capture
from opentelemetry.sdk.trace import ReadableSpan
from spanledger import semconv
from spanledger._nvml import load_nvml
from spanledger.asgi import AcceleratorMiddleware
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, StreamingResponse
from starlette.routing import Route

PERIOD_S = 166_667 / 1e6
ROUTE = "accelerator POST /v1/chat/completions"


class SharedModel:
    """One model on one GPU: the GPU is busy while at least one request is generating."""

    def __init__(self, gpu: FakeGpu | None) -> None:
        self.gpu = gpu
        self.generating = 0
        self.busy_since = 0.0
        self.busy_seconds = 0.0

    async def generate(self, tokens: int) -> AsyncIterator[bytes]:
        self.generating += 1
        if self.generating == 1:
            self.busy_since = time.monotonic()
            if self.gpu:
                self.gpu.run(os.getpid(), 100)
        try:
            for index in range(tokens):
                await asyncio.sleep(0.05)
                yield f'data: {{"choices":[{{"delta":{{"content":"t{index}"}}}}]}}\n\n'.encode()
            yield b"data: [DONE]\n\n"
        finally:
            self.generating -= 1
            if self.generating == 0:
                if self.gpu:
                    self.gpu.stop(os.getpid())
                self.busy_seconds += time.monotonic() - self.busy_since


def make_app(model: SharedModel) -> Starlette:
    async def completions(request: Request) -> StreamingResponse | JSONResponse:
        body = await request.json()
        if body.get("fail"):
            raise RuntimeError("model crashed")
        return StreamingResponse(model.generate(int(body["tokens"])), media_type="text/event-stream")

    return Starlette(
        routes=[Route("/v1/chat/completions", completions, methods=["POST"])],
        middleware=[Middleware(AcceleratorMiddleware, device=0)],
    )


@pytest.fixture(autouse=True)
def fresh_nvml() -> Iterator[None]:
    load_nvml.cache_clear()
    yield
    load_nvml.cache_clear()


@contextmanager
def serve(app: Starlette) -> Iterator[str]:
    """``app`` under uvicorn on a free local port, for the block; yields the base URL."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="on"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.01)
    try:
        yield f"http://127.0.0.1:{sock.getsockname()[1]}"
    finally:
        server.should_exit = True
        thread.join(10)
        sock.close()


def accelerator_spans(capture: Capture, count: int) -> list[ReadableSpan]:
    deadline = time.monotonic() + 5
    while True:
        spans = [span for span in capture.spans() if span.name == ROUTE]
        if len(spans) >= count or time.monotonic() > deadline:
            return spans
        time.sleep(0.02)


async def chat(client: httpx.AsyncClient, base: str, tokens: int) -> list[str]:
    async with client.stream("POST", f"{base}/v1/chat/completions", json={"tokens": tokens}) as response:
        assert response.status_code == 200
        return [line async for line in response.aiter_lines() if line]


def test_concurrent_requests_share_the_gpu_busy_time(capture: Capture, monkeypatch: pytest.MonkeyPatch) -> None:
    gpu = FakeGpu()
    monkeypatch.setitem(sys.modules, "pynvml", fake_pynvml(gpu))
    model = SharedModel(gpu)

    async def run(base: str) -> list[list[str]]:
        async with httpx.AsyncClient(timeout=10) as client:
            return await asyncio.gather(chat(client, base, 12), chat(client, base, 8), chat(client, base, 8))

    with serve(make_app(model)) as base:
        streams = asyncio.run(run(base))
    assert [len(lines) for lines in streams] == [13, 9, 9]  # every event reached the client
    spans = accelerator_spans(capture, 3)
    assert len(spans) == 3
    seconds = [float((s.attributes or {})[semconv.SPANLEDGER_ACCELERATOR_TIME]) for s in spans]  # type: ignore[arg-type]
    # The three requests together used the GPU's busy time once, not three times over.
    assert sum(seconds) == pytest.approx(model.busy_seconds, abs=PERIOD_S + 0.05)
    assert max(seconds) < model.busy_seconds * 0.75
    for span in spans:
        attributes = span.attributes or {}
        assert attributes[semconv.SPANLEDGER_ACCELERATOR_MEASUREMENT] == "nvml"
        assert attributes[semconv.SPANLEDGER_ACCELERATOR_CONCURRENCY] >= 2  # type: ignore[operator]
        assert attributes[semconv.SPANLEDGER_ACCELERATOR_TYPE] == "NVIDIA H100 80GB HBM3"
        assert attributes[semconv.SPANLEDGER_USAGE_OWNER] is True
        # The request carried the client's traceparent: the GPU time sits in the caller's trace.
        client_spans = [c for c in capture.spans() if c.context.span_id == (span.parent.span_id if span.parent else 0)]
        assert client_spans and client_spans[0].context.trace_id == span.context.trace_id


def test_without_nvml_requests_still_get_concurrency_and_a_reason(capture: Capture) -> None:
    model = SharedModel(None)

    async def run(base: str) -> None:
        async with httpx.AsyncClient(timeout=10) as client:
            await chat(client, base, 2)
            await asyncio.gather(chat(client, base, 4), chat(client, base, 4))

    with serve(make_app(model)) as base:
        asyncio.run(run(base))
    spans = accelerator_spans(capture, 3)
    concurrency = sorted(int((s.attributes or {})[semconv.SPANLEDGER_ACCELERATOR_CONCURRENCY]) for s in spans)  # type: ignore[arg-type]
    assert concurrency == [1, 2, 2]
    for span in spans:
        assert (span.attributes or {})[semconv.SPANLEDGER_ACCELERATOR_MEASUREMENT] == "not_measured"


def test_app_errors_reach_the_server_unchanged(capture: Capture) -> None:
    with serve(make_app(SharedModel(None))) as base:
        response = httpx.post(f"{base}/v1/chat/completions", json={"fail": True})
    assert response.status_code == 500
    (span,) = accelerator_spans(capture, 1)
    assert span.status.status_code.name == "ERROR"
    assert (span.attributes or {})[semconv.ERROR_TYPE] == "RuntimeError"
