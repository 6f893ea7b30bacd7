"""spanledger demo: run an app instrumented with one import and print the spans it exported.

Starts a local OpenAI-compatible server and a local OTLP/HTTP receiver, runs ``demo_app.py`` (``import
spanledger.auto`` + ``spanledger.workflow(...)``) as its own process pointed at both, then prints the
spans that arrived over OTLP as a tree: model, tokens, workflow and tenant. No network needed.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections import defaultdict
from pathlib import Path

from openai_compatible_server import OpenAICompatibleServer
from otlp_receiver import OtlpHttpReceiver, ReceivedSpan
from spanledger import semconv

HERE = Path(__file__).resolve().parent

SHOWN = (
    ("model", semconv.GEN_AI_RESPONSE_MODEL),
    ("input tokens", semconv.GEN_AI_USAGE_INPUT_TOKENS),
    ("cache read", semconv.GEN_AI_USAGE_CACHE_READ_INPUT_TOKENS),
    ("output tokens", semconv.GEN_AI_USAGE_OUTPUT_TOKENS),
    ("reasoning", semconv.GEN_AI_USAGE_REASONING_OUTPUT_TOKENS),
    ("bytes out", semconv.SPANLEDGER_EGRESS_BYTES),
    ("bytes in", semconv.SPANLEDGER_INGRESS_BYTES),
    ("workflow", semconv.SPANLEDGER_WORKFLOW_NAME),
    ("tenant", semconv.SPANLEDGER_TENANT_ID),
)


def print_tree(spans: list[ReceivedSpan]) -> None:
    children: dict[str, list[ReceivedSpan]] = defaultdict(list)
    ids = {span.span_id for span in spans}
    for span in sorted(spans, key=lambda span: span.start_time_unix_nano):
        children[span.parent_span_id if span.parent_span_id in ids else ""].append(span)

    def show(span: ReceivedSpan, depth: int) -> None:
        millis = (span.end_time_unix_nano - span.start_time_unix_nano) / 1e6
        details = ", ".join(f"{label} {span.attributes[key]}" for label, key in SHOWN if key in span.attributes)
        print(f"{'  ' * depth}{span.name:<{44 - 2 * depth}} {millis:7.1f} ms  {details}")
        for child in children[span.span_id]:
            show(child, depth + 1)

    for root in children[""]:
        print(f"trace {root.trace_id}  service {root.resource.get(semconv.SERVICE_NAME)}")
        show(root, 1)


def main() -> int:
    with OpenAICompatibleServer() as llm, OtlpHttpReceiver() as receiver:
        env = {
            **os.environ,
            "OPENAI_BASE_URL": llm.base_url,
            "OPENAI_API_KEY": "demo-key-never-recorded",
            "OTEL_SERVICE_NAME": "demo-app",
            "OTEL_EXPORTER_OTLP_ENDPOINT": receiver.endpoint,
            "OTEL_EXPORTER_OTLP_PROTOCOL": "http/protobuf",
        }
        print(f"demo: OpenAI-compatible server at {llm.base_url}, OTLP receiver at {receiver.endpoint}")
        app = subprocess.run([sys.executable, str(HERE / "demo_app.py")], env=env, timeout=120)
        if app.returncode != 0:
            print(f"demo: the app failed (exit {app.returncode})", file=sys.stderr)
            return app.returncode
        # The app flushes its spans at exit; they are all here once it has exited.
        spans = receiver.received.spans()
    print(f"\ndemo: {len(spans)} spans received over OTLP/HTTP:\n")
    print_tree(spans)
    return 0 if spans else 1


if __name__ == "__main__":
    sys.exit(main())
