"""spanledger demo: the whole product end to end on this machine, offline.

1. Starts the real collector (``spanledger collector`` on its embedded defaults: OTLP on 4317/4318, admin
   API on 9464; free ports from a small config when those are taken), storing in ``./spanledger-data/``.
2. Runs ``demo_app.py`` (``import spanledger.auto`` + ``spanledger.workflow(...)``) as its own process for
   two tenants, against a local OpenAI-compatible server, a local Bedrock/SageMaker runtime server and a
   local Anthropic/Gemini server (real ``openai``, ``boto3``, ``anthropic`` and ``google-genai`` clients,
   real OTLP export to the collector).
3. Writes a FOCUS billing file for what those requests used in the hour they ran, imports it with
   ``spanledger billing import`` and shows the answers: ``spanledger trace``, ``top`` and ``idle``.
4. Stops the collector with SIGTERM and says how to query the store again.

``python examples/demo.py [--data-dir DIR]``; exits non-zero with a clear message when a step fails.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path
from typing import Any

import aws_runtime_server
from demo_app import BEDROCK_MODEL, CLAUDE_MODEL, GEMINI_MODEL, LLM_MODEL, SAGEMAKER_ENDPOINT
from genai_wire_server import GEMINI_MODEL_SUFFIX, GenAIWireServer
from openai_compatible_server import RESPONSE_MODEL_SUFFIX, OpenAICompatibleServer

HERE = Path(__file__).resolve().parent
DEFAULT_PORTS = {"otlp.grpc": 4317, "otlp.http": 4318, "admin": 9464}
READY = re.compile(r"spanledger collector ready: (.*)$")
ACCOUNT = "123456789012"
REGION = "us-east-1"
ENDPOINT_ARN = f"arn:aws:sagemaker:{REGION}:{ACCOUNT}:endpoint/{SAGEMAKER_ENDPOINT}"
ENDPOINT_HOURLY_PRICE = Decimal("1.408")  # ml.g5.xlarge real-time inference, us-east-1 on-demand
WAIT_SECONDS = 30.0
DOCUMENTS = {  # name: (text, age)
    "refund-policy.md": ("Refunds are paid within 14 days of a return.", timedelta(hours=3)),
    "shipping-policy.md": ("Orders ship within 2 working days.", timedelta(days=9)),
}


class DemoError(Exception):
    """A step failed; the message says which and why."""


def heading(title: str, explanation: str) -> None:
    print(f"\n=== {title} ===\n{explanation}\n")


def spanledger_command() -> list[str]:
    script = Path(sys.executable).with_name("spanledger")
    if script.exists():
        return [str(script)]
    found = shutil.which("spanledger")
    if found is None:
        raise DemoError("the `spanledger` command is not installed; run: pip install -e '.[demo]'")
    return [found]


def port_is_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


@dataclass
class Collector:
    process: subprocess.Popen[bytes]
    log_path: Path
    addresses: dict[str, str] = field(default_factory=dict)
    ready: threading.Event = field(default_factory=threading.Event)

    @property
    def admin_url(self) -> str:
        return f"http://{self.addresses['admin']}"

    @property
    def otlp_http_endpoint(self) -> str:
        return f"http://{self.addresses['otlp.http']}"

    def log_tail(self) -> str:
        lines = self.log_path.read_text(errors="replace").splitlines() if self.log_path.exists() else []
        return "\n".join(lines[-20:])

    def get_json(self, path: str) -> Any:
        with urllib.request.urlopen(self.admin_url + path, timeout=5) as response:
            return json.load(response)

    def stop(self) -> int:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=WAIT_SECONDS)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
                raise DemoError(f"the collector did not stop within {WAIT_SECONDS:.0f} s of SIGTERM") from None
        return self.process.returncode


def free_ports_config(data_dir: Path) -> Path:
    """The embedded default configuration with every port chosen by the OS (same store, same pipeline)."""
    default_config = subprocess.run(
        [*spanledger_command(), "collector", "--print-default-config"],
        capture_output=True,
        text=True,
        timeout=WAIT_SECONDS,
        check=True,
    ).stdout
    config_path = data_dir / "collector.yaml"
    config_path.write_text(re.sub(r"localhost:\d+", "127.0.0.1:0", default_config))
    return config_path


def start_collector(data_dir: Path) -> Collector:
    busy = [port for port in DEFAULT_PORTS.values() if not port_is_free(port)]
    if not busy:
        print("demo: starting `spanledger collector` on its embedded defaults (no config file)")
        try:
            return launch_collector(data_dir, [])
        except DemoError as error:
            print(f"demo: the collector could not start on its default ports ({error}); trying free ports")
    else:
        print(f"demo: port(s) {', '.join(map(str, busy))} already in use; the collector listens on free ports")
    config_path = free_ports_config(data_dir)
    print(f"      instead ({config_path}: the embedded defaults with every port 0)")
    try:
        return launch_collector(data_dir, ["--config", str(config_path)])
    except DemoError as error:
        raise DemoError(f"the collector could not start: {error}") from None


def launch_collector(data_dir: Path, arguments: list[str]) -> Collector:
    """Start ``spanledger collector`` in ``data_dir`` and wait for its ready line and its /health."""
    log_path = data_dir / "collector.log"
    process = subprocess.Popen(
        [*spanledger_command(), "collector", *arguments],
        cwd=data_dir,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    collector = Collector(process, log_path)

    def pump() -> None:
        assert process.stderr is not None
        with log_path.open("w") as log:
            for raw in iter(process.stderr.readline, b""):
                line = raw.decode(errors="replace")
                log.write(line)
                log.flush()
                match = READY.search(line.rstrip())
                if match:
                    for pair in match.group(1).split():
                        name, _, address = pair.partition("=")
                        collector.addresses[name] = address
                    collector.ready.set()
        collector.ready.set()

    threading.Thread(target=pump, name="collector-log", daemon=True).start()
    if not collector.ready.wait(WAIT_SECONDS) or not collector.addresses:
        code = collector.process.poll()
        collector.stop()
        why = f"it exited with code {code}" if code is not None else f"it was not ready within {WAIT_SECONDS:.0f} s"
        raise DemoError(f"{why}; its log ({log_path}):\n{collector.log_tail()}")
    deadline = time.monotonic() + WAIT_SECONDS
    while True:
        try:
            with urllib.request.urlopen(collector.admin_url + "/health", timeout=2) as response:
                if response.status == 200:
                    break
        except OSError:
            pass
        if time.monotonic() > deadline or process.poll() is not None:
            collector.stop()
            raise DemoError(f"its /health did not answer 200 within {WAIT_SECONDS:.0f} s")
        time.sleep(0.1)
    print(
        f"demo: collector ready (pid {process.pid}): OTLP gRPC {collector.addresses['otlp.grpc']}, "
        f"OTLP HTTP {collector.addresses['otlp.http']}, admin {collector.admin_url} (/health answered 200)"
    )
    return collector


def write_documents(docs: Path) -> None:
    docs.mkdir(parents=True, exist_ok=True)
    now = time.time()
    for name, (text, age) in DOCUMENTS.items():
        path = docs / name
        path.write_text(text + "\n")
        os.utime(path, (now, now - age.total_seconds()))


def run_app(collector: Collector, docs: Path) -> dict[str, str]:
    """Run the instrumented app as its own process; returns its trace id per tenant."""
    aws = aws_runtime_server.start_server()
    try:
        with OpenAICompatibleServer() as llm, GenAIWireServer() as genai_wire:
            env = {
                **os.environ,
                "OPENAI_BASE_URL": llm.base_url,
                "OPENAI_API_KEY": "demo-key-never-recorded",
                "DEMO_AWS_ENDPOINT_URL": aws.url,
                "ANTHROPIC_BASE_URL": genai_wire.url,
                "ANTHROPIC_API_KEY": "demo-anthropic-key-never-recorded",
                "DEMO_GEMINI_BASE_URL": genai_wire.url,
                "GEMINI_API_KEY": "demo-gemini-key-never-recorded",
                "DEMO_DOCS_DIR": str(docs),
                "AWS_ACCESS_KEY_ID": "AKIADEMONEVERRECORDED",
                "AWS_SECRET_ACCESS_KEY": "demo-secret-never-recorded",
                "AWS_DEFAULT_REGION": REGION,
                "AWS_ACCOUNT_ID": ACCOUNT,
                "OTEL_SERVICE_NAME": "demo-app",
                "OTEL_EXPORTER_OTLP_ENDPOINT": collector.otlp_http_endpoint,
                "OTEL_EXPORTER_OTLP_PROTOCOL": "http/protobuf",
            }
            print(
                f"demo: local OpenAI-compatible server {llm.base_url}, local Bedrock/SageMaker runtime {aws.url}, "
                f"local Anthropic/Gemini server {genai_wire.url}"
            )
            try:
                app = subprocess.run(
                    [sys.executable, str(HERE / "demo_app.py")], env=env, capture_output=True, text=True, timeout=90
                )
            except subprocess.TimeoutExpired:
                raise DemoError("the app did not finish within 90 s") from None
    finally:
        aws.stop()
    print(app.stdout, end="")
    if app.returncode != 0:
        raise DemoError(f"the app failed (exit {app.returncode}):\n{app.stderr}")
    if app.stderr.strip():
        print(app.stderr, end="", file=sys.stderr)
    traces = dict(re.findall(r"^app: tenant=(\S+) trace=([0-9a-f]{32})", app.stdout, re.MULTILINE))
    if len(traces) != 2:
        raise DemoError(f"the app did not report its two traces:\n{app.stdout}")
    return traces


def span_count(tree: list[dict[str, Any]]) -> int:
    return sum(1 + span_count(node["children"]) for node in tree)


def stored_spans(collector: Collector, trace_id: str) -> int:
    try:
        return span_count(collector.get_json(f"/api/trace/{trace_id}")["tree"])
    except OSError:  # not stored yet (404), or the collector is busy: ask again
        return 0


def wait_until_stored(collector: Collector, traces: dict[str, str]) -> None:
    """The app flushed its spans at exit; wait until the collector's batch has reached the store."""
    deadline = time.monotonic() + WAIT_SECONDS
    previous: list[int] = []
    while True:
        counts = [stored_spans(collector, trace_id) for trace_id in traces.values()]
        if all(counts) and counts == previous:
            print(f"demo: the collector stored {sum(counts)} spans of {len(counts)} traces")
            return
        if time.monotonic() > deadline:
            raise DemoError(f"the app's spans did not reach the store within {WAIT_SECONDS:.0f} s (spans: {counts})")
        previous = counts
        time.sleep(0.5)


def charge_period(start: datetime, length: timedelta) -> dict[str, str]:
    """The charge period's columns and those of the billing period (month) it falls in."""
    month = start.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    return {
        "BillingPeriodStart": month.isoformat(),
        "BillingPeriodEnd": (month + timedelta(days=32)).replace(day=1).isoformat(),
        "ChargePeriodStart": start.isoformat(),
        "ChargePeriodEnd": (start + length).isoformat(),
    }


def focus_rows(start: datetime, end: datetime) -> list[dict[str, str]]:
    """FOCUS 1.2 lines for what the demo used: SageMaker endpoint hours and LLM tokens, that hour and day."""
    day = start.replace(hour=0, minute=0, second=0, microsecond=0)
    common = {
        "ChargeCategory": "Usage",
        "ChargeClass": "",
        "BillingCurrency": "USD",
        "PricingCategory": "Standard",
    }
    aws = {**common, "BillingAccountId": ACCOUNT, "SubAccountId": ACCOUNT, "ProviderName": "AWS", "RegionId": REGION}
    rows = []
    hour = start.replace(minute=0, second=0, microsecond=0)
    while hour < end:
        rows.append(
            {
                **aws,
                **charge_period(hour, timedelta(hours=1)),
                "ChargeDescription": "$1.408 per Hosting ml.g5.xlarge hour in US East (N. Virginia)",
                "ServiceName": "Amazon SageMaker",
                "ServiceCategory": "AI and Machine Learning",
                "ResourceId": ENDPOINT_ARN,
                "ResourceName": SAGEMAKER_ENDPOINT,
                "ResourceType": "Endpoint",
                "SkuMeter": "Hosting",
                "SkuPriceDetails": json.dumps({"InstanceType": "ml.g5.xlarge"}),
                "x_UsageType": "USE1-Host:ml.g5.xlarge",
                "PricingQuantity": "1",
                "PricingUnit": "Hours",
                "ConsumedQuantity": "1",
                "ConsumedUnit": "Hours",
                "BilledCost": str(ENDPOINT_HOURLY_PRICE),
                "EffectiveCost": str(ENDPOINT_HOURLY_PRICE),
                "ListCost": str(ENDPOINT_HOURLY_PRICE),
            }
        )
        hour += timedelta(hours=1)
    # The day's token lines cover more than the demo used: other traffic on the same keys is "untracked".
    # (meter, cache action, tokens billed, USD per million tokens) per model; list prices of 2025.
    token_lines = {
        ("OpenAI", "", "", "OpenAI API", LLM_MODEL + RESPONSE_MODEL_SUFFIX, "gpt-4o-mini"): (
            ("Input", "", 20_000, "0.15"),
            ("Input", "Read", 8_000, "0.075"),
            ("Output", "", 5_000, "0.60"),
        ),
        ("AWS", ACCOUNT, REGION, "Amazon Bedrock", BEDROCK_MODEL, "USE1-Claude3Haiku"): (
            ("Input", "", 20_000, "0.25"),
            ("Input", "Read", 8_000, "0.03"),
            ("Input", "Write", 8_000, "0.30"),
            ("Output", "", 5_000, "1.25"),
        ),
        ("Anthropic", "", "", "Claude API", CLAUDE_MODEL, "claude-haiku-4-5"): (
            ("Input", "", 20_000, "1.00"),
            ("Input", "Read", 8_000, "0.10"),
            ("Input", "Write", 8_000, "1.25"),
            ("Output", "", 5_000, "5.00"),
        ),
        ("Google", "", "", "Gemini API", GEMINI_MODEL + GEMINI_MODEL_SUFFIX, "gemini-2.5-flash"): (
            ("Input", "", 20_000, "0.30"),
            ("Input", "Read", 8_000, "0.03"),
            ("Output", "", 5_000, "2.50"),
        ),
    }
    for (provider, account, region, service, model, usage_prefix), lines in token_lines.items():
        for direction, cache_action, quantity, price in lines:
            meter = f"cache-{cache_action.lower()}-input" if cache_action else direction.lower()
            cost = Decimal(price) * quantity / 1_000_000
            details = {
                "ModelId": model,
                "TokenDirection": direction,
                **({"TokenCacheAction": cache_action} if cache_action else {}),
            }
            rows.append(
                {
                    **common,
                    "BillingAccountId": account,
                    "SubAccountId": account,
                    "ProviderName": provider,
                    "RegionId": region,
                    **charge_period(day, timedelta(days=1)),
                    "ChargeDescription": f"{model} {meter.replace('-', ' ')} tokens",
                    "ServiceName": service,
                    "ServiceCategory": "AI and Machine Learning",
                    "ResourceId": "",
                    "ResourceName": "",
                    "ResourceType": "",
                    "SkuMeter": f"{meter.replace('-', ' ')} tokens".capitalize(),
                    "SkuPriceDetails": json.dumps(details),
                    "x_UsageType": f"{usage_prefix}-{meter}-tokens",
                    "PricingQuantity": str(quantity),
                    "PricingUnit": "Tokens",
                    "ConsumedQuantity": str(quantity),
                    "ConsumedUnit": "Tokens",
                    "BilledCost": str(cost),
                    "EffectiveCost": str(cost),
                    "ListCost": str(cost),
                }
            )
    return rows


def write_focus_file(path: Path, start: datetime, end: datetime) -> None:
    rows = focus_rows(start, end)
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="") as output:
        writer = csv.DictWriter(output, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)


def cli(arguments: list[str], collector: Collector, store: Path) -> str:
    """Run ``spanledger ARGUMENTS`` through the running collector, as a user would; return what it printed."""
    # --store too: should the CLI not reach the collector, it fails on the store's lock instead of
    # falling back to ./spanledger.duckdb in the current directory.
    try:
        result = subprocess.run(
            [*spanledger_command(), *arguments, "--collector", collector.admin_url, "--store", str(store)],
            capture_output=True,
            text=True,
            timeout=WAIT_SECONDS * 2,
        )
    except subprocess.TimeoutExpired:
        raise DemoError(f"`spanledger {' '.join(arguments)}` did not finish within {WAIT_SECONDS * 2:.0f} s") from None
    if result.returncode != 0:
        raise DemoError(f"`spanledger {' '.join(arguments)}` failed (exit {result.returncode}):\n{result.stderr}")
    return result.stdout.rstrip()


def show(arguments: list[str], collector: Collector, store: Path, title: str, explanation: str) -> str:
    heading(title, explanation + f"\n$ spanledger {' '.join(arguments)}")
    output = cli(arguments, collector, store)
    print(output)
    return output


def run_demo(data_dir: Path) -> None:
    data_dir.mkdir(parents=True, exist_ok=True)
    store = data_dir / "spanledger.duckdb"
    for old in (store, store.with_name(store.name + ".wal")):
        old.unlink(missing_ok=True)  # each demo run starts from an empty store
    shutil.rmtree(store.with_name(store.name + ".requests"), ignore_errors=True)  # and no earlier run's request log
    print(f"demo: data directory {data_dir} (store {store.name}, collector.log, docs/, billing/)")
    heading("1. collector", "The real collector: receives OTLP, extracts usage facts, prices them, stores them.")
    collector = start_collector(data_dir)
    try:
        heading(
            "2. instrumented app",
            "demo_app.py runs the `answer-question` workflow for tenants acme and globex: it reads a policy\n"
            "document (recording its age), calls gpt-4o-mini through openai, Bedrock Converse and a SageMaker\n"
            "endpoint through boto3, Claude through anthropic and Gemini through google-genai, and runs a\n"
            "step in `spanledger.accelerator()`. No GPU here, so that step is recorded as not measured rather\n"
            "than given a number.",
        )
        docs = data_dir / "docs"
        write_documents(docs)
        started = datetime.now(timezone.utc).replace(tzinfo=None)
        traces = run_app(collector, docs)
        finished = datetime.now(timezone.utc).replace(tzinfo=None)
        wait_until_stored(collector, traces)

        focus_file = data_dir / "billing" / f"focus-{started:%Y-%m}.csv"
        write_focus_file(focus_file, started, finished + timedelta(seconds=1))
        show(
            ["billing", "import", str(focus_file)],
            collector,
            store,
            "3. the bill",
            f"A FOCUS 1.2 billing file written for this run ({focus_file.name}): the SageMaker endpoint's\n"
            "hosting hour(s) and the day's gpt-4o-mini, Claude 3 Haiku (Bedrock), Claude Haiku 4.5 and\n"
            "Gemini 2.5 Flash token lines. Importing it splits every billed line over the usage that consumed it.",
        )
        show(
            ["trace", traces["acme"]],
            collector,
            store,
            "4. where did acme's answer come from, and what did it cost?",
            "The lineage tree of acme's trace: every span with its usage (tokens, endpoint-seconds, bytes)\n"
            "and estimated cost, the document it read and how old it was, then the resources on the bill\n"
            "with the cost allocated from the real billing lines next to the estimate. The `rerank` span's\n"
            "accelerator time is shown as not measured (no GPU here), never as a made-up number.",
        )
        show(
            ["top", "--by", "cost", "--group", "tenant"],
            collector,
            store,
            "5. which tenant costs what?",
            "Billed cost allocated to each tenant's traces, next to the estimate made at ingest.",
        )
        show(
            ["idle"],
            collector,
            store,
            "6. what was paid for and not used?",
            "Capacity billed by the hour that no request used: the endpoint was busy for a few\n"
            "milliseconds of its hosting hour, the rest is idle cost.",
        )
    finally:
        heading("7. shutdown", "SIGTERM to the collector: it drains its pipeline, closes the store and exits 0.")
        code = collector.stop()
    if code != 0:
        raise DemoError(f"the collector exited {code}; its log:\n{collector.log_tail()}")
    print(f"demo: collector stopped cleanly (exit 0); log {collector.log_path}")
    command = full_command = spanledger_command()[0]
    if Path(command).is_relative_to(Path.cwd()):
        command = str(Path(command).relative_to(Path.cwd()))
    print(
        f"\nThe store is {store}. Ask it again, without a collector running:\n"
        f"  {command} trace {traces['acme']} --store {store} --collector none\n"
        f"  {command} top --by cost --group workflow --store {store} --collector none\n"
        f"  {command} idle --store {store} --collector none\n"
        f"or run the collector on it again (`cd {data_dir} && {full_command} collector`) and use the same\n"
        f"commands without --store and --collector."
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--data-dir",
        type=Path,
        default=Path("spanledger-data"),
        help="where the store and files go (default: %(default)s)",
    )
    args = parser.parse_args()
    try:
        run_demo(args.data_dir.resolve())
    except (DemoError, OSError) as error:
        print(f"\ndemo: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
