"""Added latency per OpenAI call: spanledger vs upstream genai-openai vs OpenLLMetry vs bare OTel emission.

The openai client talks to an ``httpx2.MockTransport`` that returns canned bytes, so no network is
measured. Every contestant is switched on and off inside this one process in blocks (off, on, on,
off) whose order is shuffled each round. A block's figure is its median per-call time; the figure
reported is the median over rounds of (on - off). "bare" is the floor: the same span (name, kind,
attributes, made current around the request) and the same metric points, written directly with the
OTel SDK around an uninstrumented call, with constant values and no extraction work at all. For
streams, the bare call asks for ``stream_options.include_usage`` itself: without the usage chunk there
are no token counts to write, so parsing that one extra chunk is part of the floor.

    .venv/bin/python benchmarks/bench_openai.py             # default run, about 1-2 minutes
    .venv/bin/python benchmarks/bench_openai.py --rounds 60 --calls 50 --clock wall

Times are this thread's CPU time by default (``--clock wall`` for elapsed time): the mock transport
never waits, so on an idle machine the two agree, and CPU time is not inflated when other processes
take the cores. Work on other threads (the batch span processor's export) is not latency the caller
sees and is not counted.

Targets (the issue's): spanledger <= 1.5x bare and <= 0.4x genai-openai, non-stream and stream.
"""

from __future__ import annotations

import argparse
import gc
import json
import random
import statistics
import time
from collections.abc import Callable, Iterator
from typing import Any

import httpx2
import openai
import spanledger
from opentelemetry.context import attach, detach
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter, SpanExportResult
from opentelemetry.trace import SpanKind, set_span_in_context
from spanledger import semconv
from spanledger._metrics import create_instrument

MODEL = "gpt-4o-mini"
RESPONSE_MODEL = "gpt-4o-mini-2024-07-18"
MESSAGES = [{"role": "user", "content": "Say hello"}]
USAGE = {
    "prompt_tokens": 12,
    "completion_tokens": 9,
    "total_tokens": 21,
    "prompt_tokens_details": {"cached_tokens": 4, "audio_tokens": 0},
    "completion_tokens_details": {"reasoning_tokens": 3, "audio_tokens": 0},
}
WORDS = ("Hello", " from", " the", " mock", " transport", ".")


class _DropExporter(SpanExporter):
    def export(self, spans: Any) -> SpanExportResult:
        return SpanExportResult.SUCCESS


def _canned_bodies() -> tuple[bytes, bytes, bytes]:
    completion = {
        "id": "chatcmpl-bench",
        "object": "chat.completion",
        "created": 1,
        "model": RESPONSE_MODEL,
        "system_fingerprint": "fp_bench",
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": "".join(WORDS)},
                "logprobs": None,
                "finish_reason": "stop",
            }
        ],
        "usage": USAGE,
    }

    def chunk(delta: dict[str, Any], finish_reason: str | None) -> dict[str, Any]:
        return {
            "id": "chatcmpl-bench",
            "object": "chat.completion.chunk",
            "created": 1,
            "model": RESPONSE_MODEL,
            "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish_reason}],
        }

    events = [chunk({"role": "assistant", "content": ""}, None)]
    events += [chunk({"content": word}, None) for word in WORDS]
    events.append(chunk({}, "stop"))
    stream = b"".join(f"data: {json.dumps(event)}\n\n".encode() for event in events)
    usage_chunk = {**chunk({}, None), "choices": [], "usage": USAGE}
    usage_event = f"data: {json.dumps(usage_chunk)}\n\n".encode()
    return json.dumps(completion).encode(), stream + b"data: [DONE]\n\n", stream + usage_event + b"data: [DONE]\n\n"


def make_client() -> openai.OpenAI:
    completion, stream, stream_with_usage = _canned_bodies()
    sse = {"content-type": "text/event-stream"}

    def handler(request: httpx2.Request) -> httpx2.Response:
        body = request.content
        if b'"stream":true' in body.replace(b" ", b""):
            return httpx2.Response(200, headers=sse, content=stream_with_usage if b"include_usage" in body else stream)
        return httpx2.Response(200, headers={"content-type": "application/json"}, content=completion)

    http_client = httpx2.Client(transport=httpx2.MockTransport(handler))
    return openai.OpenAI(api_key="sk-bench", base_url="http://bench.local/v1", http_client=http_client, max_retries=0)


class Contestant:
    name: str

    def on(self) -> None: ...

    def off(self) -> None: ...

    def wrap(self, call: Callable[[], None], stream: bool) -> Callable[[], None]:
        return call


class Spanledger(Contestant):
    name = "spanledger"

    def on(self) -> None:
        spanledger.instrument("openai")

    def off(self) -> None:
        spanledger.uninstrument("openai")


class _OTelInstrumentor(Contestant):
    def __init__(self, instrumentor: Any, handle: spanledger.SpanledgerHandle) -> None:
        self.instrumentor = instrumentor
        self.handle = handle
        self.saved = _snapshot_resources()

    def on(self) -> None:
        self.instrumentor.instrument(
            tracer_provider=self.handle.tracer_provider, meter_provider=self.handle.meter_provider
        )

    def off(self) -> None:
        self.instrumentor.uninstrument()
        # OpenLLMetry 0.62 leaves wrappers behind on uninstrument(); restore so off blocks are clean.
        _restore_resources(self.saved)


class Bare(Contestant):
    """The same span and metric points written directly with the OTel SDK, constants only."""

    name = "bare"

    def __init__(self, handle: spanledger.SpanledgerHandle) -> None:
        self.tracer = handle.tracer_provider.get_tracer("bare")
        meter = handle.meter_provider.get_meter("bare")
        self.duration = create_instrument(meter, semconv.METRIC_GEN_AI_CLIENT_OPERATION_DURATION)
        self.tokens = create_instrument(meter, semconv.METRIC_GEN_AI_CLIENT_TOKEN_USAGE)
        self.ttfc = create_instrument(meter, semconv.METRIC_GEN_AI_CLIENT_OPERATION_TIME_TO_FIRST_CHUNK)
        self.request = {
            semconv.GEN_AI_OPERATION_NAME: "chat",
            semconv.GEN_AI_PROVIDER_NAME: "openai",
            semconv.SPANLEDGER_USAGE_OWNER: True,
            semconv.GEN_AI_REQUEST_MODEL: MODEL,
            semconv.SERVER_ADDRESS: "bench.local",
            semconv.SERVER_PORT: 80,
        }
        self.response = {
            semconv.GEN_AI_RESPONSE_ID: "chatcmpl-bench",
            semconv.GEN_AI_RESPONSE_MODEL: RESPONSE_MODEL,
            semconv.GEN_AI_RESPONSE_FINISH_REASONS: ("stop",),
            semconv.GEN_AI_USAGE_INPUT_TOKENS: 12,
            semconv.GEN_AI_USAGE_OUTPUT_TOKENS: 9,
            semconv.GEN_AI_USAGE_CACHE_READ_INPUT_TOKENS: 4,
            semconv.GEN_AI_USAGE_REASONING_OUTPUT_TOKENS: 3,
        }
        self.metric = {
            semconv.GEN_AI_OPERATION_NAME: "chat",
            semconv.GEN_AI_PROVIDER_NAME: "openai",
            semconv.GEN_AI_REQUEST_MODEL: MODEL,
            semconv.GEN_AI_RESPONSE_MODEL: RESPONSE_MODEL,
            semconv.SERVER_ADDRESS: "bench.local",
            semconv.SERVER_PORT: 80,
        }
        self.metric_input = {**self.metric, semconv.GEN_AI_TOKEN_TYPE: "input"}
        self.metric_output = {**self.metric, semconv.GEN_AI_TOKEN_TYPE: "output"}

    streamed_with_usage: Callable[[], None] | None = None
    """Set by ``measure``: the stream call with ``include_usage`` (the usage chunk is part of the floor)."""

    def wrap(self, call: Callable[[], None], stream: bool) -> Callable[[], None]:
        if stream and self.streamed_with_usage is not None:
            call = self.streamed_with_usage

        def emitting() -> None:
            start = time.time_ns()
            span = self.tracer.start_span(
                f"chat {MODEL}", kind=SpanKind.CLIENT, attributes=self.request, start_time=start
            )
            token = attach(set_span_in_context(span))
            try:
                call()
            finally:
                detach(token)
            end = time.time_ns()
            attributes = dict(self.response)
            if stream:
                attributes[semconv.GEN_AI_RESPONSE_TIME_TO_FIRST_CHUNK] = 0.001
            span.set_attributes(attributes)
            self.duration.record((end - start) / 1e9, self.metric)
            if stream:
                self.ttfc.record(0.001, self.metric)
            self.tokens.record(12, self.metric_input)
            self.tokens.record(9, self.metric_output)
            span.end(end_time=end)

        return emitting


def _snapshot_resources() -> list[tuple[type, dict[str, Any]]]:
    import openai.resources.chat.completions as chat
    import openai.resources.embeddings as embeddings
    import openai.resources.responses as responses

    classes = [chat.Completions, chat.AsyncCompletions, embeddings.Embeddings, embeddings.AsyncEmbeddings]
    classes += [responses.Responses, responses.AsyncResponses]
    return [(cls, dict(vars(cls))) for cls in classes]


def _restore_resources(saved: list[tuple[type, dict[str, Any]]]) -> None:
    for cls, attributes in saved:
        for name, value in attributes.items():
            if vars(cls).get(name) is not value:
                setattr(cls, name, value)


CLOCKS: dict[str, Callable[[], float]] = {"cpu": time.thread_time, "wall": time.perf_counter}
_clock = time.thread_time


_block_statistic: Callable[[list[float]], float] = statistics.median
BLOCK_STATISTICS: dict[str, Callable[[list[float]], float]] = {
    "median": statistics.median,
    "mean": statistics.fmean,
    "min": min,
}


def _block(call: Callable[[], None], calls: int) -> float:
    """One call's time over a block of ``calls`` calls: median by default (robust to a stray interruption)."""
    gc.collect()
    clock = _clock
    times = []
    for _ in range(calls):
        start = clock()
        call()
        times.append(clock() - start)
    return _block_statistic(times)


def measure(contestants: list[Contestant], rounds: int, calls: int) -> tuple[dict[tuple[str, str], list[float]], float]:
    client = make_client()

    def plain() -> None:
        client.chat.completions.create(model=MODEL, messages=MESSAGES)  # type: ignore[arg-type]

    def streamed() -> None:
        for _ in client.chat.completions.create(model=MODEL, messages=MESSAGES, stream=True):  # type: ignore[arg-type]
            pass

    def streamed_with_usage() -> None:
        # What a direct emitter must call to have the stream's token counts for its span.
        for _ in client.chat.completions.create(
            model=MODEL,
            messages=MESSAGES,  # type: ignore[arg-type]
            stream=True,
            stream_options={"include_usage": True},
        ):
            pass

    modes = {"non-stream": plain, "stream": streamed}
    for call in modes.values():  # warm up every path once
        for contestant in contestants:
            contestant.on()
            _block(contestant.wrap(call, call is streamed), 20)
            contestant.off()
    if any(isinstance(contestant, Bare) for contestant in contestants):
        Bare.streamed_with_usage = staticmethod(streamed_with_usage)
    differences: dict[tuple[str, str], list[float]] = {(c.name, m): [] for c in contestants for m in modes}
    baseline: list[float] = []
    for _ in range(rounds):
        order = [(contestant, mode) for contestant in contestants for mode in modes]
        random.shuffle(order)
        for contestant, mode in order:
            # off, on, on, off: a linear drift in machine speed cancels out of the difference.
            call = modes[mode]
            off = _block(call, calls)
            contestant.on()
            try:
                wrapped = contestant.wrap(call, mode == "stream")
                on = _block(wrapped, calls) + _block(wrapped, calls)
            finally:
                contestant.off()
            off += _block(call, calls)
            differences[(contestant.name, mode)].append((on - off) / 2)
            if mode == "non-stream":
                baseline.append(off / 2)
    return differences, statistics.median(baseline)


def _deferred_metric_cost(reader: InMemoryMetricReader, calls: int = 500) -> float:
    """CPU time per call that spanledger's collection hook spends recording queued metric points."""
    client = make_client()
    reader.get_metrics_data()
    spanledger.instrument("openai")
    try:
        for _ in range(calls):
            client.chat.completions.create(model=MODEL, messages=MESSAGES)  # type: ignore[arg-type]
    finally:
        spanledger.uninstrument("openai")
    reader.get_metrics_data()  # an empty collection, to subtract the reader's own cost
    start = _clock()
    reader.get_metrics_data()
    empty = _clock() - start
    spanledger.instrument("openai")
    try:
        for _ in range(calls):
            client.chat.completions.create(model=MODEL, messages=MESSAGES)  # type: ignore[arg-type]
    finally:
        spanledger.uninstrument("openai")
    start = _clock()
    reader.get_metrics_data()
    return (_clock() - start - empty) / calls * 1e6


def _contestants(handle: spanledger.SpanledgerHandle, names: list[str]) -> Iterator[Contestant]:
    for name in names:
        if name == "spanledger":
            yield Spanledger()
        elif name == "bare":
            yield Bare(handle)
        elif name == "genai-openai":
            from opentelemetry.instrumentation.genai.openai import OpenAIInstrumentor as Upstream

            contestant = _OTelInstrumentor(Upstream(), handle)
            contestant.name = name
            yield contestant
        elif name == "openllmetry":
            from opentelemetry.instrumentation.openai import OpenAIInstrumentor as OpenLLMetry

            contestant = _OTelInstrumentor(OpenLLMetry(), handle)
            contestant.name = name
            yield contestant
        else:
            raise SystemExit(f"unknown contestant {name!r}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", 1)[0])
    parser.add_argument("--rounds", type=int, default=15, help="alternating on/off rounds (default 15)")
    parser.add_argument("--calls", type=int, default=30, help="calls per block (default 30)")
    parser.add_argument(
        "--only", default="spanledger,bare,genai-openai,openllmetry", help="comma-separated contestants"
    )
    parser.add_argument(
        "--clock",
        choices=sorted(CLOCKS),
        default="cpu",
        help="cpu: this thread's CPU time (robust on a shared machine; the default), wall: elapsed time",
    )
    parser.add_argument(
        "--block-statistic",
        choices=sorted(BLOCK_STATISTICS),
        default="median",
        help="per-call figure of a block: median (default), mean (counts every GC pause in the block) or min "
        "(the least disturbed call: on a loaded shared machine the steadiest figure)",
    )
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    random.seed(args.seed)
    global _clock, _block_statistic
    _clock = CLOCKS[args.clock]
    _block_statistic = BLOCK_STATISTICS[args.block_statistic]

    reader = InMemoryMetricReader()
    handle = spanledger.configure(
        export="none",
        additional_span_processors=[BatchSpanProcessor(_DropExporter())],
        metric_readers=[reader],
        instrument=False,
    )
    contestants = list(_contestants(handle, args.only.split(",")))
    started = time.perf_counter()
    differences, baseline = measure(contestants, args.rounds, args.calls)
    elapsed = time.perf_counter() - started
    deferred = _deferred_metric_cost(reader) if any(c.name == "spanledger" for c in contestants) else None
    handle.shutdown()

    medians = {key: statistics.median(values) * 1e6 for key, values in differences.items()}
    print(f"openai {openai.__version__}; client alone (non-stream): {baseline * 1e6:.0f} us/call")
    print(
        f"{args.rounds} rounds x 4 blocks x {args.calls} calls, clock {args.clock}, "
        f"block {args.block_statistic}, {elapsed:.0f} s"
    )
    print(f"{'added latency (us/call, median)':34} {'non-stream':>11} {'stream':>11}")
    for contestant in contestants:
        row = [medians[(contestant.name, mode)] for mode in ("non-stream", "stream")]
        print(f"{contestant.name:34} {row[0]:11.1f} {row[1]:11.1f}")
    if deferred is not None:
        print(f"spanledger metric points recorded at collection, off the caller's thread: {deferred:.1f} us/call")
    names = {contestant.name for contestant in contestants}
    for mode in ("non-stream", "stream"):
        ours = medians.get(("spanledger", mode))
        if ours is None:
            continue
        if "bare" in names:
            ratio = ours / medians[("bare", mode)]
            print(f"{mode}: spanledger / bare = {ratio:.2f} (target <= 1.5) {'OK' if ratio <= 1.5 else 'MISSED'}")
        if "genai-openai" in names:
            ratio = ours / medians[("genai-openai", mode)]
            verdict = "OK" if ratio <= 0.4 else "MISSED"
            print(f"{mode}: spanledger / genai-openai = {ratio:.2f} (target <= 0.4) {verdict}")


if __name__ == "__main__":
    main()
