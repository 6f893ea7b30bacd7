"""Added latency per Anthropic and Google Gen AI call: spanledger vs the upstream / OpenLLMetry instrumentations
vs bare OTel emission, A/B in one process (the method of ``bench_openai.py``, whose block machinery it uses).

The real ``anthropic`` and ``google-genai`` clients talk to an ``httpx2.MockTransport`` that returns canned
Anthropic JSON / SSE events and Gemini JSON / ``alt=sse`` chunks, so no network is measured. The anthropic
client's own OpenTelemetry tracing is switched off (``open_telemetry=False``) so every contestant is measured
on the same uninstrumented client. "bare" writes the same span (name, kind, attributes, made current around
the request) and the same metric points directly with the OTel SDK, constants only.

    .venv/bin/python benchmarks/bench_providers.py              # default run, a few minutes
    .venv/bin/python benchmarks/bench_providers.py --rounds 30 --only spanledger,bare --providers anthropic

Targets (issue 18, the same as openai's): spanledger <= 1.5x bare and <= 0.4x the upstream instrumentation's
added latency, non-stream and stream.
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import time
from collections.abc import Callable
from typing import Any

import anthropic
import bench_openai
import httpx2
import spanledger
from bench_openai import BLOCK_STATISTICS, CLOCKS, Contestant, _block
from google import genai
from opentelemetry.context import attach, detach
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace.export import BatchSpanProcessor
from opentelemetry.trace import SpanKind, set_span_in_context
from spanledger import semconv
from spanledger._metrics import create_instrument

WORDS = ("Hello", " from", " the", " mock", " transport", ".")
CLAUDE = "claude-sonnet-4-5"
GEMINI = "gemini-2.5-flash"


# --- canned wire bodies -----------------------------------------------------------------------------


def _anthropic_bodies() -> tuple[bytes, bytes]:
    usage = {"input_tokens": 12, "cache_read_input_tokens": 100, "cache_creation_input_tokens": 20, "output_tokens": 6}
    message = {
        "id": "msg_bench",
        "type": "message",
        "role": "assistant",
        "model": CLAUDE,
        "content": [{"type": "text", "text": "".join(WORDS)}],
        "stop_reason": "end_turn",
        "stop_sequence": None,
        "usage": usage,
    }
    events: list[tuple[str, dict[str, Any]]] = [
        ("message_start", {"type": "message_start", "message": {**message, "content": [], "stop_reason": None}}),
        (
            "content_block_start",
            {"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}},
        ),
    ]
    events += [
        ("content_block_delta", {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": w}})
        for w in WORDS
    ]
    events += [
        ("content_block_stop", {"type": "content_block_stop", "index": 0}),
        (
            "message_delta",
            {"type": "message_delta", "delta": {"stop_reason": "end_turn"}, "usage": {"output_tokens": 6}},
        ),
        ("message_stop", {"type": "message_stop"}),
    ]
    stream = b"".join(f"event: {name}\ndata: {json.dumps(data)}\n\n".encode() for name, data in events)
    return json.dumps(message).encode(), stream


def _gemini_bodies() -> tuple[bytes, bytes]:
    usage = {
        "promptTokenCount": 30,
        "cachedContentTokenCount": 12,
        "candidatesTokenCount": 6,
        "thoughtsTokenCount": 7,
        "totalTokenCount": 43,
    }

    def response(text: str, finish: str | None) -> dict[str, Any]:
        candidate: dict[str, Any] = {"content": {"role": "model", "parts": [{"text": text}]}, "index": 0}
        if finish:
            candidate["finishReason"] = finish
        return {"candidates": [candidate], "usageMetadata": usage, "modelVersion": GEMINI, "responseId": "resp-bench"}

    chunks = [response(word, "STOP" if i == len(WORDS) - 1 else None) for i, word in enumerate(WORDS)]
    stream = b"".join(f"data: {json.dumps(chunk)}\r\n\r\n".encode() for chunk in chunks)
    return json.dumps(response("".join(WORDS), "STOP")).encode(), stream


def _transport(json_body: bytes, sse_body: bytes, is_stream: Callable[[httpx2.Request], bool]) -> httpx2.MockTransport:
    def handler(request: httpx2.Request) -> httpx2.Response:
        if is_stream(request):
            return httpx2.Response(200, headers={"content-type": "text/event-stream"}, content=sse_body)
        return httpx2.Response(200, headers={"content-type": "application/json"}, content=json_body)

    return httpx2.MockTransport(handler)


class Provider:
    """One library under test: its client, its two calls, and what a bare emitter writes for them."""

    def __init__(self, name: str) -> None:
        self.name = name
        if name == "anthropic":
            message, stream = _anthropic_bodies()
            transport = _transport(message, stream, lambda r: b'"stream":true' in r.content.replace(b" ", b""))
            client = anthropic.Anthropic(
                api_key="sk-bench",
                base_url="http://bench.local",
                http_client=httpx2.Client(transport=transport),
                max_retries=0,
                open_telemetry=False,
            )
            messages: Any = [{"role": "user", "content": "Say hello"}]

            def plain() -> None:
                client.messages.create(model=CLAUDE, max_tokens=64, messages=messages)

            def streamed() -> None:
                for _ in client.messages.create(model=CLAUDE, max_tokens=64, messages=messages, stream=True):
                    pass

            self.operation, self.model, self.provider = "chat", CLAUDE, "anthropic"
            self.usage = {
                semconv.GEN_AI_USAGE_INPUT_TOKENS: 132,
                semconv.GEN_AI_USAGE_OUTPUT_TOKENS: 6,
                semconv.GEN_AI_USAGE_CACHE_READ_INPUT_TOKENS: 100,
                semconv.GEN_AI_USAGE_CACHE_CREATION_INPUT_TOKENS: 20,
            }
        else:
            response, stream = _gemini_bodies()
            transport = _transport(response, stream, lambda r: "alt=sse" in str(r.url))
            gemini = genai.Client(
                api_key="bench-key",
                http_options={"base_url": "http://bench.local", "httpx_client": httpx2.Client(transport=transport)},
            )
            self._keep = gemini  # the client closes its transport when collected

            def plain() -> None:
                gemini.models.generate_content(model=GEMINI, contents="Say hello")

            def streamed() -> None:
                for _ in gemini.models.generate_content_stream(model=GEMINI, contents="Say hello"):
                    pass

            self.operation, self.model, self.provider = "generate_content", GEMINI, "gcp.gemini"
            self.usage = {
                semconv.GEN_AI_USAGE_INPUT_TOKENS: 30,
                semconv.GEN_AI_USAGE_OUTPUT_TOKENS: 13,
                semconv.GEN_AI_USAGE_CACHE_READ_INPUT_TOKENS: 12,
                semconv.GEN_AI_USAGE_REASONING_OUTPUT_TOKENS: 7,
            }
        self.modes: dict[str, Callable[[], None]] = {"non-stream": plain, "stream": streamed}


# --- contestants --------------------------------------------------------------------------------------


class Spanledger(Contestant):
    name = "spanledger"

    def __init__(self, provider: Provider) -> None:
        self.instrumentation = "anthropic" if provider.name == "anthropic" else "google-genai"

    def on(self) -> None:
        spanledger.instrument(self.instrumentation)

    def off(self) -> None:
        spanledger.uninstrument(self.instrumentation)


class Unsupported(Exception):
    """The instrumentation does not support the installed library version."""


class Instrumentor(Contestant):
    """An OTel ``BaseInstrumentor``; the patched classes are restored after ``uninstrument()`` (OpenLLMetry
    leaves wrappers behind), so off blocks are clean."""

    def __init__(self, name: str, instrumentor: Any, handle: spanledger.SpanledgerHandle, classes: list[type]) -> None:
        from opentelemetry.instrumentation.dependencies import get_dependency_conflicts

        conflict = get_dependency_conflicts(instrumentor.instrumentation_dependencies())
        if conflict is not None:
            raise Unsupported(f"{name} ({type(instrumentor).__module__}) skipped: {conflict}")
        self.name = name
        self.instrumentor = instrumentor
        self.handle = handle
        self.saved = [(cls, dict(vars(cls))) for cls in classes]

    def on(self) -> None:
        self.instrumentor.instrument(
            tracer_provider=self.handle.tracer_provider, meter_provider=self.handle.meter_provider
        )

    def off(self) -> None:
        self.instrumentor.uninstrument()
        for cls, attributes in self.saved:
            for name, value in attributes.items():
                if vars(cls).get(name) is not value:
                    setattr(cls, name, value)


class Bare(Contestant):
    name = "bare"

    def __init__(self, handle: spanledger.SpanledgerHandle, provider: Provider) -> None:
        self.tracer = handle.tracer_provider.get_tracer("bare")
        meter = handle.meter_provider.get_meter("bare")  # type: ignore[union-attr]
        self.duration = create_instrument(meter, semconv.METRIC_GEN_AI_CLIENT_OPERATION_DURATION)
        self.tokens = create_instrument(meter, semconv.METRIC_GEN_AI_CLIENT_TOKEN_USAGE)
        self.ttfc = create_instrument(meter, semconv.METRIC_GEN_AI_CLIENT_OPERATION_TIME_TO_FIRST_CHUNK)
        self.span_name = f"{provider.operation} {provider.model}"
        self.request = {
            semconv.GEN_AI_OPERATION_NAME: provider.operation,
            semconv.GEN_AI_PROVIDER_NAME: provider.provider,
            semconv.SPANLEDGER_USAGE_OWNER: True,
            semconv.GEN_AI_REQUEST_MODEL: provider.model,
            semconv.SERVER_ADDRESS: "bench.local",
            semconv.SERVER_PORT: 80,
        }
        self.response = {
            semconv.GEN_AI_RESPONSE_ID: "bench",
            semconv.GEN_AI_RESPONSE_MODEL: provider.model,
            semconv.GEN_AI_RESPONSE_FINISH_REASONS: ("stop",),
            **provider.usage,
        }
        self.metric = {
            semconv.GEN_AI_OPERATION_NAME: provider.operation,
            semconv.GEN_AI_PROVIDER_NAME: provider.provider,
            semconv.GEN_AI_REQUEST_MODEL: provider.model,
            semconv.GEN_AI_RESPONSE_MODEL: provider.model,
            semconv.SERVER_ADDRESS: "bench.local",
            semconv.SERVER_PORT: 80,
        }
        self.metric_input = {**self.metric, semconv.GEN_AI_TOKEN_TYPE: "input"}
        self.metric_output = {**self.metric, semconv.GEN_AI_TOKEN_TYPE: "output"}

    def wrap(self, call: Callable[[], None], stream: bool) -> Callable[[], None]:
        def emitting() -> None:
            start = time.time_ns()
            span = self.tracer.start_span(
                self.span_name, kind=SpanKind.CLIENT, attributes=self.request, start_time=start
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


def contestants_for(provider: Provider, handle: spanledger.SpanledgerHandle, names: list[str]) -> list[Contestant]:
    found: list[Contestant] = []
    for name in names:
        try:
            found.extend(_contestant(provider, handle, name))
        except Unsupported as skipped:
            print(f"{provider.name}: {skipped}")
    return found


def _contestant(provider: Provider, handle: spanledger.SpanledgerHandle, name: str) -> list[Contestant]:
    if name == "spanledger":
        return [Spanledger(provider)]
    if name == "bare":
        return [Bare(handle, provider)]
    if name == "upstream" and provider.name == "anthropic":
        from anthropic.resources.messages import AsyncMessages, Messages
        from opentelemetry.instrumentation.genai.anthropic import AnthropicInstrumentor

        return [Instrumentor("upstream", AnthropicInstrumentor(), handle, [Messages, AsyncMessages])]
    if name == "upstream":
        from google.genai.models import AsyncModels, Models
        from opentelemetry.instrumentation.google_genai import GoogleGenAiSdkInstrumentor

        return [Instrumentor("upstream", GoogleGenAiSdkInstrumentor(), handle, [Models, AsyncModels])]
    if name == "openllmetry" and provider.name == "anthropic":
        from anthropic.resources.messages import AsyncMessages, Messages
        from opentelemetry.instrumentation.anthropic import AnthropicInstrumentor as OpenLLMetry

        return [Instrumentor("openllmetry", OpenLLMetry(), handle, [Messages, AsyncMessages])]
    return []


def measure(provider: Provider, contestants: list[Contestant], rounds: int, calls: int) -> dict[tuple[str, str], float]:
    modes = provider.modes
    for call in modes.values():  # warm up every path once
        for contestant in contestants:
            contestant.on()
            _block(contestant.wrap(call, call is modes["stream"]), 20)
            contestant.off()
    differences: dict[tuple[str, str], list[float]] = {(c.name, m): [] for c in contestants for m in modes}
    for _ in range(rounds):
        order = [(contestant, mode) for contestant in contestants for mode in modes]
        random.shuffle(order)
        for contestant, mode in order:
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
    return {key: statistics.median(values) * 1e6 for key, values in differences.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", 1)[0])
    parser.add_argument("--rounds", type=int, default=15, help="alternating on/off rounds (default 15)")
    parser.add_argument("--calls", type=int, default=30, help="calls per block (default 30)")
    parser.add_argument("--providers", default="anthropic,google-genai")
    parser.add_argument("--only", default="spanledger,bare,upstream,openllmetry", help="comma-separated contestants")
    parser.add_argument("--clock", choices=sorted(CLOCKS), default="cpu")
    parser.add_argument("--block-statistic", choices=sorted(BLOCK_STATISTICS), default="median")
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    random.seed(args.seed)
    bench_openai._clock = CLOCKS[args.clock]
    bench_openai._block_statistic = BLOCK_STATISTICS[args.block_statistic]

    handle = spanledger.configure(
        export="none",
        additional_span_processors=[BatchSpanProcessor(bench_openai._DropExporter())],
        metric_readers=[InMemoryMetricReader()],
        instrument=False,
    )
    print(f"anthropic {anthropic.__version__}, google-genai {genai.__version__}; clock {args.clock}")
    print(f"{args.rounds} rounds x 4 blocks x {args.calls} calls; added latency (us/call, median)")
    for name in args.providers.split(","):
        provider = Provider(name)
        contestants = contestants_for(provider, handle, args.only.split(","))
        medians = measure(provider, contestants, args.rounds, args.calls)
        print(f"\n{name:34} {'non-stream':>11} {'stream':>11}")
        for contestant in contestants:
            row = [medians[(contestant.name, mode)] for mode in ("non-stream", "stream")]
            print(f"{contestant.name:34} {row[0]:11.1f} {row[1]:11.1f}")
        names = {contestant.name for contestant in contestants}
        for mode in ("non-stream", "stream"):
            ours = medians.get(("spanledger", mode))
            if ours is None:
                continue
            for other, target in (("bare", 1.5), ("upstream", 0.4)):
                if other in names:
                    ratio = ours / medians[(other, mode)]
                    verdict = "OK" if ratio <= target else "MISSED"
                    print(f"{name} {mode}: spanledger / {other} = {ratio:.2f} (target <= {target}) {verdict}")
    handle.shutdown()


if __name__ == "__main__":
    main()
