"""The README's first command runs ``examples/demo.py``: the whole product offline, exiting 0.

The demo starts the real collector, runs the instrumented app against local model servers, imports a FOCUS
file and prints ``spanledger trace``, ``top`` and ``idle``; these tests run it as a user would and read
what it printed.
"""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SPANLEDGER = Path(sys.executable).with_name("spanledger")
SECRETS = (
    "demo-key-never-recorded",
    "AKIADEMONEVERRECORDED",
    "demo-secret-never-recorded",
    "demo-anthropic-key-never-recorded",
    "demo-gemini-key-never-recorded",
)


def run_demo(data_dir: Path) -> subprocess.CompletedProcess[str]:
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("OTEL_", "SPANLEDGER_", "OPENAI_", "AWS_"))
    }
    return subprocess.run(
        [sys.executable, "examples/demo.py", "--data-dir", str(data_dir)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=170,
    )


def section(out: str, title: str) -> str:
    """The text printed under the heading ``=== {title}``, up to the next heading."""
    match = re.search(rf"^=== {re.escape(title)}.*?===\n(.*?)(?=^=== |\Z)", out, re.MULTILINE | re.DOTALL)
    assert match, f"no section {title!r} in:\n{out}"
    return match.group(1)


@pytest.fixture
def port_9464_busy() -> Iterator[None]:
    """Something else listens on the collector's default admin port (skipped if that cannot be arranged)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as holder:
        try:
            holder.bind(("127.0.0.1", 9464))
        except OSError:
            pass  # already busy: just as good
        else:
            holder.listen()
        yield


@pytest.mark.slow
@pytest.mark.timeout(180)
def test_demo_runs_the_whole_product_and_exits_0(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    result = run_demo(data_dir)
    out, err = result.stdout, result.stderr
    assert result.returncode == 0, out + err

    assert "demo: collector ready" in out and "/health answered 200" in out
    app_lines = re.findall(r"^app: tenant=(\S+) trace=([0-9a-f]{32}) .* accelerator=(.*)$", out, re.MULTILINE)
    assert {tenant for tenant, _, _ in app_lines} == {"acme", "globex"}
    for _, _, accelerator in app_lines:
        assert accelerator.startswith("not_measured (")  # no GPU here: honest, never a number
    traces = {tenant: trace_id for tenant, trace_id, _ in app_lines}

    imported = section(out, "3. the bill")
    assert "imported (snapshot" in imported and "allocation" in imported and "usage facts matched" in imported
    assert "Anthropic|: 4 lines, imported" in imported and "Google|: 3 lines, imported" in imported

    answer = section(out, "4. where did acme's answer come from")
    assert f"trace {traces['acme']}  workflow=answer-question  tenant=acme  service=demo-app" in answer
    assert "chat gpt-4o-mini" in answer and "SageMaker Runtime.InvokeEndpoint" in answer and "rerank" in answer
    # all four providers: the anthropic client's own span (enriched, not doubled) and the Gemini span
    assert "anthropic.messages.create" in answer and "generate_content gemini-2.5-flash" in answer
    for model in ("claude-haiku-4-5", "gemini-2.5-flash-001", "anthropic.claude-3-haiku-20240307-v1:0"):
        name = re.escape(model)
        assert re.search(rf"{name} \[[0-9a-f]{{16}}\]: .*input_tokens \d+, output_tokens \d+ tokens", answer)
        assert re.search(rf"{name} \(llm_model, llm.output_tokens\) .*allocated 0\.\d+ USD \(billed", answer)
    assert re.search(r"gpt-4o-mini-2024-07-18 \[[0-9a-f]{16}\]: .*input_tokens \d+, output_tokens \d+ tokens", answer)
    assert re.search(r"read file://\S+/refund-policy\.md \(file\), age 10,8\d\d\.\d+ s, \d+ bytes", answer)
    billed = [Decimal(amount) for amount in re.findall(r"\(billed (\d+\.\d+), est", answer)]
    assert billed and sum(billed) > 0
    assert "endpoint/demo-answer-scorer (sagemaker_endpoint, aws.sagemaker.endpoint_hosting)" in answer
    assert "not measured (accelerator: nvml_unavailable" in answer and "(+ 1 span(s) not measured)" in answer
    allocated = re.search(r"allocated from the bill (\d+\.\d+) USD", answer)
    assert allocated and Decimal(allocated.group(1)) > 0

    ranking = section(out, "5. which tenant costs what?")
    assert re.search(r"^acme\s+0\.\d+", ranking, re.MULTILINE) and re.search(r"^globex\s+0\.\d+", ranking, re.MULTILINE)

    idle = section(out, "6. what was paid for and not used?")
    idle_cost = re.search(r"empty capacity, billing period \d{4}-\d\d: (\d+\.\d+) USD", idle)
    assert idle_cost and Decimal(idle_cost.group(1)) > 1  # most of a $1.408 endpoint hour
    assert "endpoint/demo-answer-scorer  ml.g5.xlarge" in idle

    store = data_dir / "spanledger.duckdb"
    assert "collector stopped cleanly (exit 0)" in out and f"The store is {store}." in out
    assert store.exists()
    for secret in SECRETS:
        assert secret not in out + err
    assert "internal error" not in err

    # What the demo says to run next works: the store answers without a collector.
    again = subprocess.run(
        [str(SPANLEDGER), "trace", traces["globex"], "--store", str(store), "--collector", "none"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert again.returncode == 0, again.stderr
    assert "tenant=globex" in again.stdout and "shipping-policy.md" in again.stdout


@pytest.mark.slow
@pytest.mark.timeout(180)
@pytest.mark.usefixtures("port_9464_busy")
def test_demo_moves_to_free_ports_when_the_defaults_are_taken(tmp_path: Path) -> None:
    result = run_demo(tmp_path / "data")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "already in use; the collector listens on free ports" in result.stdout
    assert "admin http://127.0.0.1:9464" not in result.stdout
    assert "empty capacity, billing period" in result.stdout
