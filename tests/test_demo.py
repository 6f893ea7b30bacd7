"""The README's first command runs ``examples/demo.py``: it must work offline and exit 0."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.timeout(150)
def test_demo_runs_and_prints_the_apps_spans() -> None:
    env = {key: value for key, value in os.environ.items() if not key.startswith(("OTEL_", "SPANLEDGER_", "OPENAI_"))}
    result = subprocess.run(
        [sys.executable, "examples/demo.py"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=140
    )
    assert result.returncode == 0, result.stdout + result.stderr
    out = result.stdout
    assert "service demo-app" in out
    assert "invoke_workflow answer-question" in out
    chat_lines = [line for line in out.splitlines() if line.strip().startswith("chat gpt-4o-mini")]
    assert len(chat_lines) == 2  # the plain and the streamed completion
    for line in chat_lines:
        assert "model gpt-4o-mini" in line and "input tokens" in line and "output tokens" in line
        assert "workflow answer-question" in line and "tenant acme" in line
    assert "demo-key-never-recorded" not in out + result.stderr
    assert "internal error" not in result.stderr
