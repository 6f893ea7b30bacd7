"""Accelerator time on a real NVIDIA GPU: the real ``pynvml`` and real CUDA work (torch matmuls).

Runs only where NVML finds a GPU and torch has CUDA; everywhere else (CI, the development machine) the
module is skipped with the reason. Bounds are generous on purpose: they separate a measurement from its
failure modes (no samples, another PID, wrong units, double counting), they do not time the GPU.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
import spanledger
from conftest import Capture
from opentelemetry.sdk.trace import ReadableSpan
from spanledger import semconv
from spanledger._nvml import MAX_SAMPLE_PERIOD_US


def _gpu_or_skip() -> tuple[Any, str]:
    """``(torch, NVML name of device 0)``, or skip the module saying what is missing."""
    try:
        import pynvml
    except ImportError:
        pytest.skip("no real GPU: pynvml (nvidia-ml-py) is not installed", allow_module_level=True)
    try:
        pynvml.nvmlInit()
        try:
            if pynvml.nvmlDeviceGetCount() == 0:
                pytest.skip("no real GPU: NVML sees 0 devices", allow_module_level=True)
            name = pynvml.nvmlDeviceGetName(pynvml.nvmlDeviceGetHandleByIndex(0))
        finally:
            pynvml.nvmlShutdown()
    except pynvml.NVMLError as error:
        pytest.skip(f"no real GPU: NVML cannot start ({error})", allow_module_level=True)
    try:
        import torch
    except ImportError:
        pytest.skip("no torch to make CUDA work with", allow_module_level=True)
    if not torch.cuda.is_available():
        pytest.skip("torch has no CUDA device", allow_module_level=True)
    return torch, name.decode() if isinstance(name, bytes) else str(name)


torch, GPU_NAME = _gpu_or_skip()

NVML = semconv.SpanledgerAcceleratorMeasurementValues.NVML.value
QUIET_S = MAX_SAMPLE_PERIOD_US / 1e6
"""Idle time before a block, so the sample period it starts in holds no earlier work."""


@pytest.fixture(scope="module", autouse=True)
def cuda_ready() -> Iterator[None]:
    """CUDA context, cuBLAS and the operands exist before any measured block (their setup is not measured)."""
    keep_busy(0.3)
    yield


_operands: dict[str, Any] = {}


def keep_busy(seconds: float) -> None:
    """Back-to-back 4096² fp32 matmuls on CUDA device 0 for about ``seconds`` of wall time."""
    a = _operands.get("a")
    if a is None:
        a = _operands["a"] = torch.randn(4096, 4096, device="cuda:0")
    start = time.monotonic()
    while time.monotonic() - start < seconds:
        for _ in range(8):
            torch.mm(a, a)
        torch.cuda.synchronize(0)


def ended(capture: Capture, name: str) -> ReadableSpan:
    """The span called ``name`` once it has ended (after NVML sampled the end of its work)."""
    deadline = time.monotonic() + 2 * QUIET_S + 1
    while True:
        spans = [span for span in capture.spans() if span.name == name]
        if spans or time.monotonic() > deadline:
            assert len(spans) == 1, f"expected one span {name!r}, got {[s.name for s in capture.spans()]}"
            return spans[0]
        time.sleep(0.02)


def wall_s(span: ReadableSpan) -> float:
    assert span.start_time is not None and span.end_time is not None
    return (span.end_time - span.start_time) / 1e9


def accelerator_s(span: ReadableSpan) -> float:
    attributes = span.attributes or {}
    assert attributes[semconv.SPANLEDGER_ACCELERATOR_MEASUREMENT] == NVML, dict(attributes)
    return float(attributes[semconv.SPANLEDGER_ACCELERATOR_TIME])  # type: ignore[arg-type]


def test_a_busy_block_is_measured_as_most_of_its_wall_time(capture: Capture) -> None:
    time.sleep(QUIET_S)
    with spanledger.accelerator(device=0, name="busy"):
        keep_busy(2.0)
    span = ended(capture, "busy")
    attributes = span.attributes or {}
    seconds, wall = accelerator_s(span), wall_s(span)
    print(f"\nbusy block: wall {wall:.3f} s, accelerator {seconds:.3f} s, fraction {seconds / wall:.2f}")
    assert 0.25 * wall <= seconds <= wall  # percent, this PID, over the block's interval only
    assert attributes[semconv.SPANLEDGER_ACCELERATOR_TYPE] == GPU_NAME
    assert attributes[semconv.SPANLEDGER_ACCELERATOR_COUNT] == 1
    assert attributes[semconv.SPANLEDGER_ACCELERATOR_CONCURRENCY] == 1
    assert attributes[semconv.SPANLEDGER_USAGE_OWNER] is True
    (point,) = capture.metrics()[semconv.METRIC_SPANLEDGER_ACCELERATOR_TIME.name]
    assert point.attributes == {semconv.SPANLEDGER_ACCELERATOR_TYPE: GPU_NAME}
    assert point.value == pytest.approx(seconds)


def test_a_block_that_only_waits_on_the_host_measures_about_zero(capture: Capture) -> None:
    time.sleep(QUIET_S)
    with spanledger.accelerator(device=0, name="idle"):
        time.sleep(1.0)
    span = ended(capture, "idle")
    seconds, wall = accelerator_s(span), wall_s(span)
    print(f"\nidle block: wall {wall:.3f} s, accelerator {seconds:.3f} s")
    assert seconds <= 0.05 * wall
    assert (span.attributes or {})[semconv.SPANLEDGER_ACCELERATOR_COUNT] == 1  # named, so counted


def _two_threads(with_blocks: bool) -> None:
    """Thread ``first`` keeps the GPU busy 2 s; ``second`` starts 0.5 s later and adds 1 s of work."""

    def work(name: str, delay: float, seconds: float) -> None:
        time.sleep(delay)
        if with_blocks:
            with spanledger.accelerator(device=0, name=name):
                keep_busy(seconds)
        else:
            keep_busy(seconds)

    threads = [threading.Thread(target=work, args=args) for args in (("first", 0, 2.0), ("second", 0.5, 1.0))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()


def test_overlapping_blocks_in_two_threads_share_the_busy_time_once(capture: Capture) -> None:
    time.sleep(QUIET_S)
    with spanledger.accelerator(device=0, name="whole"):
        _two_threads(with_blocks=False)
    whole = ended(capture, "whole")
    time.sleep(QUIET_S)
    _two_threads(with_blocks=True)
    first, second = ended(capture, "first"), ended(capture, "second")

    whole_s, first_s, second_s = accelerator_s(whole), accelerator_s(first), accelerator_s(second)
    assert first.start_time is not None and first.end_time is not None
    assert second.start_time is not None and second.end_time is not None
    union = (max(first.end_time, second.end_time) - min(first.start_time, second.start_time)) / 1e9
    overlap = (min(first.end_time, second.end_time) - max(first.start_time, second.start_time)) / 1e9
    print(
        f"\ntwo threads: first {first_s:.3f} s (wall {wall_s(first):.3f}), second {second_s:.3f} s "
        f"(wall {wall_s(second):.3f}), sum {first_s + second_s:.3f} s over {union:.3f} s; "
        f"one block around the same work: {whole_s:.3f} s over {wall_s(whole):.3f} s"
    )
    for span in (first, second):
        assert (span.attributes or {})[semconv.SPANLEDGER_ACCELERATOR_CONCURRENCY] == 2
    assert first_s > 0 and second_s > 0
    # Counted once: never more than the interval they cover (double counting gives ~1.5x), about one block's.
    assert first_s + second_s <= union + 1e-6
    assert first_s + second_s >= 0.25 * union
    assert first_s + second_s == pytest.approx(whole_s, rel=0.25)
    # While both ran, the second got half of each moment.
    assert second_s <= overlap / 2 + (wall_s(second) - overlap) + 1e-6


def test_device_by_uuid_or_default_and_the_span_waits_for_the_last_sample(capture: Capture) -> None:
    uuid = str(torch.cuda.get_device_properties(0).uuid)
    uuid = uuid if uuid.startswith("GPU-") else f"GPU-{uuid}"  # NVML's spelling
    time.sleep(QUIET_S)
    with spanledger.accelerator(device=uuid, name="by-uuid"):
        keep_busy(0.5)
    exited_ns = time.time_ns()
    waiting = [span.name for span in capture.spans()]
    by_uuid = ended(capture, "by-uuid")
    arrived_s = (time.time_ns() - exited_ns) / 1e9
    print(f"\nby uuid: accelerator {accelerator_s(by_uuid):.3f} s; span ended {arrived_s:.3f} s after the block")
    assert "by-uuid" not in waiting  # NVML had not sampled the end of the work yet
    assert by_uuid.end_time is not None and by_uuid.end_time <= exited_ns  # ends when the work ended
    assert accelerator_s(by_uuid) > 0
    assert arrived_s < 2 * QUIET_S

    time.sleep(QUIET_S)
    with spanledger.accelerator(name="default-busy"):
        keep_busy(0.5)
    time.sleep(QUIET_S)
    with spanledger.accelerator(name="default-idle"):
        time.sleep(0.5)
    busy, idle = ended(capture, "default-busy"), ended(capture, "default-idle")
    assert accelerator_s(busy) > 0
    assert (busy.attributes or {})[semconv.SPANLEDGER_ACCELERATOR_COUNT] == 1  # the device this process used
    assert (busy.attributes or {})[semconv.SPANLEDGER_ACCELERATOR_TYPE] == GPU_NAME
    assert (idle.attributes or {})[semconv.SPANLEDGER_ACCELERATOR_COUNT] == 0  # used none
