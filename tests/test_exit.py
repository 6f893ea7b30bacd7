"""A program's exit is not held up by an unreachable collector: the flush at exit is bounded and logged once."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from openai_compatible_server import OpenAICompatibleServer

APPS = Path(__file__).resolve().parent / "apps"

pytestmark = pytest.mark.timeout(120)


@pytest.fixture(scope="module")
def server() -> Iterator[OpenAICompatibleServer]:
    with OpenAICompatibleServer() as running:
        yield running


def _closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture
def silent_listener() -> Iterator[int]:
    """A port that accepts connections (the kernel completes the handshake) and never answers."""
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(64)
        yield int(listener.getsockname()[1])


def _timed_run(
    server: OpenAICompatibleServer, endpoint: str, **extra: str
) -> tuple[float, subprocess.CompletedProcess[str]]:
    """Run the app; seconds from its last line to its end (its exit alone, not start-up and imports)."""
    env = {key: value for key, value in os.environ.items() if not key.startswith(("OTEL_", "SPANLEDGER_"))}
    env.update(OTEL_EXPORTER_OTLP_ENDPOINT=endpoint, **extra)
    result = subprocess.run(
        [sys.executable, str(APPS / "one_call_app.py"), server.base_url],
        env=env, capture_output=True, text=True, timeout=100,
    )
    ended = time.monotonic()
    assert result.returncode == 0, result.stderr
    last = [line for line in result.stdout.splitlines() if line.startswith("app ran ")]
    assert last, result.stdout
    return ended - float(last[-1].split()[-1]), result


# Without the bound the exit took 12-14 s (closed port) and 20 s (silent listener); the default bound is
# 2 s. The assertion leaves room for a loaded machine.
BOUND_S = 8.0


def test_exit_with_the_collector_port_closed(server: OpenAICompatibleServer) -> None:
    elapsed, result = _timed_run(server, f"http://127.0.0.1:{_closed_port()}")
    assert elapsed < BOUND_S, (elapsed, result.stderr)
    assert result.stderr.count("spanledger: telemetry not exported at exit") == 1, result.stderr


def test_exit_with_a_silent_collector(server: OpenAICompatibleServer, silent_listener: int) -> None:
    elapsed, result = _timed_run(server, f"http://127.0.0.1:{silent_listener}")
    assert elapsed < BOUND_S, (elapsed, result.stderr)
    assert result.stderr.count("spanledger: telemetry not exported at exit") == 1, result.stderr


def test_exit_timeout_is_configurable(server: OpenAICompatibleServer, silent_listener: int) -> None:
    elapsed, result = _timed_run(
        server, f"http://127.0.0.1:{silent_listener}", SPANLEDGER_EXIT_TIMEOUT="0.2", OTEL_EXPORTER_OTLP_PROTOCOL="grpc"
    )
    assert elapsed < BOUND_S, (elapsed, result.stderr)
    assert "within 0.2 s" in result.stderr
