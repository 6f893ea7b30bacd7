"""Accelerator time: the real pynvml without a GPU, and the NVML path through a pynvml substitute.

No GPU exists on this machine, so the NVML path runs against ``_fake_pynvml`` (the real library's structures
and errors, a simulated device) put in ``sys.modules`` where spanledger imports ``pynvml``.
"""

from __future__ import annotations

import asyncio
import os
import sys
import threading
import time
from collections.abc import Iterator

import pytest
import spanledger
from _fake_pynvml import FakeGpu, fake_pynvml
from conftest import Capture
from opentelemetry.sdk.trace import ReadableSpan
from spanledger import semconv
from spanledger._nvml import Nvml, load_nvml

PERIOD_S = 166_667 / 1e6


@pytest.fixture(autouse=True)
def fresh_nvml() -> Iterator[None]:
    load_nvml.cache_clear()
    yield
    load_nvml.cache_clear()


@pytest.fixture
def gpu(monkeypatch: pytest.MonkeyPatch) -> FakeGpu:
    device = FakeGpu()
    monkeypatch.setitem(sys.modules, "pynvml", fake_pynvml(device))
    return device


def finished(capture: Capture, name: str, count: int = 1) -> list[ReadableSpan]:
    """Spans called ``name`` once ``count`` have ended (they end when NVML has sampled the work's end)."""
    deadline = time.monotonic() + 5
    while True:
        spans = [span for span in capture.spans() if span.name == name]
        if len(spans) >= count or time.monotonic() > deadline:
            return spans
        time.sleep(0.02)


def busy_on(gpu: FakeGpu, seconds: float, util: int = 100) -> float:
    """Keep this process's kernels on ``gpu`` for ``seconds``; returns how long they really ran."""
    start = time.monotonic()
    gpu.run(os.getpid(), util)
    time.sleep(seconds)
    gpu.stop(os.getpid())
    return time.monotonic() - start


def test_without_a_gpu_the_block_runs_and_the_span_says_not_measured(capture: Capture) -> None:
    if isinstance(load_nvml(), Nvml):
        pytest.skip("a real GPU is here (tests/test_accelerator_gpu.py measures it)")
    with spanledger.accelerator(device=0) as span:
        assert span.is_recording()
        result = sum(range(10))
    assert result == 45
    (ended,) = finished(capture, "accelerator")
    attributes = ended.attributes or {}
    assert attributes[semconv.SPANLEDGER_ACCELERATOR_MEASUREMENT] == "not_measured"
    reason = str(attributes[semconv.SPANLEDGER_ACCELERATOR_NOT_MEASURED_REASON])
    assert reason.startswith("nvml_unavailable")  # the real pynvml found no NVML library
    assert semconv.SPANLEDGER_ACCELERATOR_TIME not in attributes
    assert semconv.METRIC_SPANLEDGER_ACCELERATOR_TIME.name not in capture.metrics()


def test_without_pynvml_the_reason_names_the_extra(capture: Capture, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "pynvml", None)  # import pynvml -> ImportError
    with spanledger.accelerator():
        pass
    (ended,) = finished(capture, "accelerator")
    assert "spanledger[nvml]" in str((ended.attributes or {})[semconv.SPANLEDGER_ACCELERATOR_NOT_MEASURED_REASON])


def test_busy_time_of_this_process_is_measured_through_nvml(capture: Capture, gpu: FakeGpu) -> None:
    gpu.run(12345, 100)  # another process on the same GPU is never attributed to us
    with spanledger.accelerator(device=0):
        ran = busy_on(gpu, 0.6, util=50)
    (span,) = finished(capture, "accelerator")
    attributes = span.attributes or {}
    assert attributes[semconv.SPANLEDGER_ACCELERATOR_MEASUREMENT] == "nvml"
    assert attributes[semconv.SPANLEDGER_ACCELERATOR_TYPE] == "NVIDIA H100 80GB HBM3"
    assert attributes[semconv.SPANLEDGER_ACCELERATOR_COUNT] == 1
    assert attributes[semconv.SPANLEDGER_ACCELERATOR_CONCURRENCY] == 1
    assert attributes[semconv.SPANLEDGER_USAGE_OWNER] is True
    seconds = float(attributes[semconv.SPANLEDGER_ACCELERATOR_TIME])  # type: ignore[arg-type]
    assert seconds == pytest.approx(0.5 * ran, abs=0.5 * PERIOD_S + 0.02)
    (point,) = capture.metrics()[semconv.METRIC_SPANLEDGER_ACCELERATOR_TIME.name]
    assert point.attributes == {semconv.SPANLEDGER_ACCELERATOR_TYPE: "NVIDIA H100 80GB HBM3"}
    assert point.value == pytest.approx(seconds)


def test_overlapping_blocks_share_the_busy_time_instead_of_double_counting(capture: Capture, gpu: FakeGpu) -> None:
    both_started = threading.Barrier(2)
    bounds: dict[str, tuple[float, float]] = {}

    def work(name: str, delay: float, seconds: float) -> None:
        time.sleep(delay)
        with spanledger.accelerator(device=gpu.uuid, name=name):
            start = time.time()
            if name == "first":
                gpu.run(os.getpid(), 100)
            else:
                both_started.wait()
            time.sleep(seconds)
            bounds[name] = (start, time.time())

    first = threading.Thread(target=work, args=("first", 0, 0.9))
    second = threading.Thread(target=work, args=("second", 0.3, 0.3))
    first.start()
    second.start()
    both_started.wait()
    first.join()
    second.join()
    gpu.stop(os.getpid())
    (a,) = finished(capture, "first")
    (b,) = finished(capture, "second")
    share_a = float((a.attributes or {})[semconv.SPANLEDGER_ACCELERATOR_TIME])  # type: ignore[arg-type]
    share_b = float((b.attributes or {})[semconv.SPANLEDGER_ACCELERATOR_TIME])  # type: ignore[arg-type]
    overlap = min(bounds["first"][1], bounds["second"][1]) - max(bounds["first"][0], bounds["second"][0])
    busy = bounds["first"][1] - bounds["first"][0]  # the GPU was busy for the whole first block
    assert share_a + share_b == pytest.approx(busy, abs=PERIOD_S + 0.03)  # not busy + overlap
    assert share_b == pytest.approx(overlap / 2, abs=PERIOD_S / 2 + 0.03)
    assert (a.attributes or {})[semconv.SPANLEDGER_ACCELERATOR_CONCURRENCY] == 2
    assert (b.attributes or {})[semconv.SPANLEDGER_ACCELERATOR_CONCURRENCY] == 2


def test_decorator_on_sync_and_async_functions_passes_results_and_errors_through(
    capture: Capture, gpu: FakeGpu
) -> None:
    @spanledger.accelerator(device=0, name="embed")
    def embed(text: str) -> int:
        return len(text)

    @spanledger.accelerator(name="generate")
    async def generate(prompt: str) -> str:
        await asyncio.sleep(0)
        raise ValueError(prompt)

    assert embed("abc") == 3
    with pytest.raises(ValueError, match="boom"):
        asyncio.run(generate("boom"))
    (embedded,) = finished(capture, "embed")
    (generated,) = finished(capture, "generate")
    assert (embedded.attributes or {})[semconv.SPANLEDGER_ACCELERATOR_MEASUREMENT] == "nvml"
    assert generated.status.status_code.name == "ERROR"
    # device=None counts only devices this process used; it used none here.
    assert (generated.attributes or {})[semconv.SPANLEDGER_ACCELERATOR_COUNT] == 0


def test_unknown_device_is_reported_and_the_block_still_runs(capture: Capture, gpu: FakeGpu) -> None:
    ran = False
    with spanledger.accelerator(device=7):
        ran = True
    assert ran
    (span,) = finished(capture, "accelerator")
    attributes = span.attributes or {}
    assert attributes[semconv.SPANLEDGER_ACCELERATOR_MEASUREMENT] == "not_measured"
    assert str(attributes[semconv.SPANLEDGER_ACCELERATOR_NOT_MEASURED_REASON]).startswith("unknown_device")


async def test_async_context_manager(capture: Capture, gpu: FakeGpu) -> None:
    async with spanledger.accelerator(device=0, name="async-block"):
        await asyncio.sleep(0)
    (span,) = finished(capture, "async-block")
    assert (span.attributes or {})[semconv.SPANLEDGER_ACCELERATOR_MEASUREMENT] == "nvml"


def test_generators_are_refused_at_decoration() -> None:
    with pytest.raises(TypeError, match="generator"):

        @spanledger.accelerator()
        def tokens() -> Iterator[int]:
            yield 1


def test_a_block_open_for_hours_keeps_a_bounded_history_with_the_same_busy_time() -> None:
    """Past MAX_HISTORY entries the older half is merged into duration-weighted averages: bounded memory, and
    the busy time over any whole merged stretch unchanged."""
    import random

    from spanledger._nvml import MAX_HISTORY, _merge_older_half, busy_seconds

    rng = random.Random(7)
    timestamp, history = 1_700_000_000_000_000, [(1_700_000_000_000_000, 0.0)]
    for _ in range(MAX_HISTORY + 1):
        timestamp += rng.randint(150_000, 250_000)
        history.append((timestamp, float(rng.randint(0, 100))))
    whole = [(history[0][0], history[-1][0], 1.0)]
    recent = [(history[-100][0], history[-1][0], 0.5)]
    before = busy_seconds(history, whole), busy_seconds(history, recent)
    _merge_older_half(history)
    assert len(history) <= MAX_HISTORY * 3 // 4 + 2
    assert busy_seconds(history, whole) == pytest.approx(before[0], rel=1e-12)
    assert busy_seconds(history, recent) == before[1]
