"""Accelerator time on a real NVIDIA GPU: what spanledger measures against what the work was, plus raw NVML.

Needs a GPU, ``nvidia-ml-py`` and torch with CUDA. For each round: a block of back-to-back 4096² fp32
matmuls for ~2 s (wall, accelerator-seconds, fraction), a block that only sleeps 1 s, and the same
two-thread workload (``first`` busy 2 s, ``second`` busy 1 s starting 0.5 s later) measured once by one
block around both threads and once by one block per thread (each share, their sum). Before that it prints
what NVML itself reports for this process (PIDs it sees, sample period, sample timestamps against this
machine's clock), which is what the measurement rests on.

    python benchmarks/bench_accelerator_gpu.py [--rounds 3]
"""

from __future__ import annotations

import argparse
import itertools
import os
import threading
import time
from typing import Any

import pynvml
import spanledger
import torch
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from spanledger import semconv

QUIET_S = 1.0
_operand: list[Any] = []


def keep_busy(seconds: float) -> None:
    if not _operand:
        _operand.append(torch.randn(4096, 4096, device="cuda:0"))
    start = time.monotonic()
    while time.monotonic() - start < seconds:
        for _ in range(8):
            torch.mm(_operand[0], _operand[0])
        torch.cuda.synchronize(0)


def raw_nvml() -> None:
    pynvml.nvmlInit()
    handle = pynvml.nvmlDeviceGetHandleByIndex(0)
    print(f"driver {pynvml.nvmlSystemGetDriverVersion()}, NVML {pynvml.nvmlSystemGetNVMLVersion()}, "
          f"device 0 {pynvml.nvmlDeviceGetName(handle)} {pynvml.nvmlDeviceGetUUID(handle)}")
    print(f"os.getpid() = {os.getpid()}")
    running = pynvml.nvmlDeviceGetComputeRunningProcesses(handle)
    print(f"compute processes NVML sees: {[p.pid for p in running]}")
    since = time.time_ns() // 1000
    keep_busy(1.5)
    now = time.time_ns() // 1000
    try:
        samples = pynvml.nvmlDeviceGetProcessUtilization(handle, since)
    except pynvml.NVMLError as error:
        print(f"nvmlDeviceGetProcessUtilization: {error!r}")
        return
    print(f"process samples since the work began: {len(samples)}; PIDs in them: {sorted({s.pid for s in samples})}")
    mine = sorted((s for s in samples if s.pid == os.getpid()), key=lambda s: s.timeStamp)
    for s in mine[:12]:
        print(f"  t={s.timeStamp} ({(s.timeStamp - since) / 1e6:+.3f} s from start) sm={s.smUtil} mem={s.memUtil}")
    gaps = [(b.timeStamp - a.timeStamp) / 1e6 for a, b in itertools.pairwise(mine)]
    if gaps:
        print(f"sample period: min {min(gaps):.3f} s, max {max(gaps):.3f} s")
    if mine:
        print(f"newest sample {(now - mine[-1].timeStamp) / 1e6:.3f} s before the work ended "
              f"(negative: NVML's clock is ahead of time.time())")
    pynvml.nvmlShutdown()


def figures(rounds: int) -> None:
    exporter = InMemorySpanExporter()
    handle = spanledger.configure(export="none", additional_span_processors=[SimpleSpanProcessor(exporter)],
                                  metric_readers=[InMemoryMetricReader()])

    def ended(name: str) -> ReadableSpan:
        deadline = time.monotonic() + 3
        while time.monotonic() < deadline:
            found = [s for s in exporter.get_finished_spans() if s.name == name]
            if found:
                return found[-1]
            time.sleep(0.02)
        raise RuntimeError(f"span {name} never ended")

    def seconds(span: ReadableSpan) -> tuple[float, float]:
        attributes = span.attributes or {}
        assert span.start_time is not None and span.end_time is not None
        measured = attributes.get(semconv.SPANLEDGER_ACCELERATOR_TIME)
        if measured is None:
            raise RuntimeError(f"not measured: {dict(attributes)}")
        return (span.end_time - span.start_time) / 1e9, float(measured)  # type: ignore[arg-type]

    def two_threads(with_blocks: bool) -> None:
        def work(name: str, delay: float, busy: float) -> None:
            time.sleep(delay)
            if with_blocks:
                with spanledger.accelerator(device=0, name=name):
                    keep_busy(busy)
            else:
                keep_busy(busy)

        threads = [threading.Thread(target=work, args=a) for a in (("first", 0, 2.0), ("second", 0.5, 1.0))]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()

    keep_busy(0.3)
    for round_ in range(1, rounds + 1):
        exporter.clear()
        time.sleep(QUIET_S)
        with spanledger.accelerator(device=0, name="busy"):
            keep_busy(2.0)
        wall, busy = seconds(ended("busy"))
        time.sleep(QUIET_S)
        with spanledger.accelerator(device=0, name="idle"):
            time.sleep(1.0)
        idle_wall, idle = seconds(ended("idle"))
        time.sleep(QUIET_S)
        with spanledger.accelerator(device=0, name="whole"):
            two_threads(with_blocks=False)
        whole_wall, whole = seconds(ended("whole"))
        time.sleep(QUIET_S)
        two_threads(with_blocks=True)
        (first_wall, first), (second_wall, second) = seconds(ended("first")), seconds(ended("second"))
        print(f"round {round_}: busy block wall {wall:.3f} s accelerator {busy:.3f} s fraction {busy / wall:.3f} | "
              f"idle block wall {idle_wall:.3f} s accelerator {idle:.4f} s | two threads: first {first:.3f} s "
              f"(wall {first_wall:.3f}), second {second:.3f} s (wall {second_wall:.3f}), sum {first + second:.3f} s; "
              f"one block around the same work {whole:.3f} s (wall {whole_wall:.3f})")
    handle.shutdown()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    try:
        raw_nvml()
    except pynvml.NVMLError as error:  # the figures below say whether spanledger copes; print, go on
        print(f"raw NVML: {error!r}")
    figures(args.rounds)


if __name__ == "__main__":
    main()
