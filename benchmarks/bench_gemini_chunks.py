"""CPU time spanledger spends on one Gemini stream, client and transport left out: open the call, observe
each ``GenerateContentResponse`` chunk (each repeating the running ``usage_metadata``, as Gemini sends them),
end it. Isolates the per-chunk work that ``bench_providers.py`` measures inside a whole client call, where
the machine's noise is larger than the difference.

    .venv/bin/python benchmarks/bench_gemini_chunks.py
    PYTHONPATH=/path/to/other/checkout/sdk .venv/bin/python benchmarks/bench_gemini_chunks.py   # another build

Figures are this thread's CPU time, the median over blocks of the mean per stream.
"""

from __future__ import annotations

import argparse
import statistics
import time

import spanledger
from google.genai import types
from spanledger._genai import GenAIRecorder, new_key, open_call
from spanledger._google_genai import _responses

WORDS = ("Hello", " from", " the", " mock", " transport", ".")
USAGE = {
    "promptTokenCount": 30,
    "cachedContentTokenCount": 12,
    "thoughtsTokenCount": 7,
    "toolUsePromptTokenCount": 5,
    "totalTokenCount": 48,
}


def _chunks(count: int) -> list[types.GenerateContentResponse]:
    chunks = []
    for number in range(count):
        candidate: dict[str, object] = {
            "content": {"role": "model", "parts": [{"text": WORDS[number % len(WORDS)]}]},
            "index": 0,
        }
        if number == count - 1:
            candidate["finishReason"] = "STOP"
        body = {
            "candidates": [candidate],
            "usageMetadata": {**USAGE, "candidatesTokenCount": number + 1},
            "modelVersion": "gemini-2.5-flash-001",
            "responseId": "resp-bench",
        }
        chunks.append(types.GenerateContentResponse.model_validate(body))
    return chunks


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", 1)[0])
    parser.add_argument("--chunks", type=int, default=len(WORDS), help="chunks per stream (default 6)")
    parser.add_argument("--blocks", type=int, default=30)
    parser.add_argument("--streams", type=int, default=200, help="streams per block")
    args = parser.parse_args()

    handle = spanledger.configure(export="none", instrument=False)
    recorder = GenAIRecorder(handle.telemetry)
    chunks = _chunks(args.chunks)
    key = new_key("generate_content", "gcp.gemini", "gemini-2.5-flash", "localhost", 443)
    settle = getattr(_responses, "settle_stream", None)  # absent in builds that convert every chunk

    def one_stream() -> None:
        call = open_call(recorder, key, {}, stream=True)
        call.observe = _responses.generate_chunk
        if settle is not None:
            call.settle = settle
        for chunk in chunks:
            call.chunk(chunk)
        call.end()

    for _ in range(500):
        one_stream()
    samples = []
    for _ in range(args.blocks):
        started = time.thread_time_ns()
        for _ in range(args.streams):
            one_stream()
        samples.append((time.thread_time_ns() - started) / args.streams / 1000)
    print(f"{args.chunks} chunks: {statistics.median(samples):.1f} us per stream (CPU, median of {args.blocks} blocks)")
    handle.shutdown()


if __name__ == "__main__":
    main()
