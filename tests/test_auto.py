"""Zero-code set-up, in real subprocesses: ``import spanledger.auto``, ``spanledger-run``,
``opentelemetry-instrument``; and no network at import or configure time."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from otlp_receiver import OtlpHttpReceiver
from spanledger import semconv

APPS = Path(__file__).resolve().parent / "apps"
BIN = Path(sys.executable).parent

pytestmark = pytest.mark.timeout(120)


@pytest.fixture
def receiver() -> Iterator[OtlpHttpReceiver]:
    with OtlpHttpReceiver() as running:
        yield running


def _env(receiver: OtlpHttpReceiver, **extra: str) -> dict[str, str]:
    clean = {key: value for key, value in os.environ.items() if not key.startswith(("OTEL_", "SPANLEDGER_"))}
    return {**clean, "OTEL_EXPORTER_OTLP_ENDPOINT": receiver.endpoint, "SPANLEDGER_METRICS": "false", **extra}


def _run(command: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(command, env=env, capture_output=True, text=True, timeout=100, cwd=APPS)
    assert result.returncode == 0, result.stderr
    return result


def test_import_auto_configures_from_the_environment(receiver: OtlpHttpReceiver) -> None:
    result = _run([sys.executable, "auto_app.py"], _env(receiver, OTEL_SERVICE_NAME="auto-app"))
    assert "app ran" in result.stdout
    spans = {span.name: span for span in receiver.received.spans()}  # the app flushed at exit
    assert set(spans) == {"invoke_workflow auto-app", "work"}
    assert spans["work"].resource[semconv.SERVICE_NAME] == "auto-app"
    assert spans["work"].attributes[semconv.SPANLEDGER_TENANT_ID] == "acme"


def test_bad_environment_never_stops_the_app(receiver: OtlpHttpReceiver) -> None:
    env = _env(receiver, SPANLEDGER_METRICS="maybe", SPANLEDGER_EXPORT="carrier-pigeon")
    result = _run([sys.executable, "auto_app.py"], env)
    assert "app ran" in result.stdout
    assert "SPANLEDGER_METRICS='maybe'" in result.stderr and "SPANLEDGER_EXPORT='carrier-pigeon'" in result.stderr
    assert len(receiver.received.spans()) == 2  # defaults used: OTLP export


def test_spanledger_run_instruments_the_program_and_its_children(receiver: OtlpHttpReceiver) -> None:
    env = _env(receiver, SPANLEDGER_SERVICE_NAME="run-app")
    result = _run([str(BIN / "spanledger-run"), sys.executable, "plain_app.py", "--spawn"], env)
    assert result.stdout.splitlines() == ["child ran", "parent ran"]
    spans = {span.name: span for span in receiver.received.spans()}
    assert set(spans) == {"parent-work", "child-work"}
    assert spans["child-work"].resource[semconv.SERVICE_NAME] == "run-app"
    assert spans["child-work"].trace_id != spans["parent-work"].trace_id  # subprocess.run carries no context


def test_spanledger_run_accepts_a_script_and_reports_bad_commands(receiver: OtlpHttpReceiver) -> None:
    _run([str(BIN / "spanledger-run"), "plain_app.py"], _env(receiver))
    assert [span.name for span in receiver.received.spans()] == ["parent-work"]
    missing = subprocess.run([str(BIN / "spanledger-run"), "no-such-command-xyz"], capture_output=True, text=True)
    assert missing.returncode == 127 and "command not found: no-such-command-xyz" in missing.stderr
    usage = subprocess.run([str(BIN / "spanledger-run")], capture_output=True, text=True)
    assert usage.returncode == 2 and "usage: spanledger-run" in usage.stderr


def test_opentelemetry_instrument_picks_spanledger_up(receiver: OtlpHttpReceiver) -> None:
    env = _env(receiver, SPANLEDGER_SERVICE_NAME="otel-instrumented")
    result = _run([str(BIN / "opentelemetry-instrument"), sys.executable, "plain_app.py"], env)
    assert "parent ran" in result.stdout
    (span,) = receiver.received.spans()
    assert span.name == "parent-work"
    assert span.resource[semconv.SERVICE_NAME] == "otel-instrumented"


NO_NETWORK_PROBE = """
import json, socket, sys
attempts = []
def refuse(*args, **kwargs):
    attempts.append(repr(args[:2]))
    raise OSError("network disabled by the test")
socket.socket.connect = refuse
socket.socket.connect_ex = refuse
socket.create_connection = refuse
socket.getaddrinfo = refuse
import spanledger
handle = spanledger.configure(export=sys.argv[1], metrics=True)
import httpx, openai  # post-import hooks instrument them now
print(json.dumps({"attempts": attempts, "instrumented": sorted(spanledger._manager.manager.active)}), flush=True)
import os
os._exit(0)  # skip the exit-time flush, which would (rightly) try to export
"""


@pytest.mark.parametrize("export", ["none", "otlp", "console"])
def test_no_network_at_import_or_configure(export: str) -> None:
    env = {key: value for key, value in os.environ.items() if not key.startswith(("OTEL_", "SPANLEDGER_"))}
    result = subprocess.run(
        [sys.executable, "-c", NO_NETWORK_PROBE, export], env=env, capture_output=True, text=True, timeout=100
    )
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout.splitlines()[-1])
    assert report["attempts"] == []
    assert {"httpx", "openai"} <= set(report["instrumented"])


def test_propagators_without_baggage_are_reported() -> None:
    env = {key: value for key, value in os.environ.items() if not key.startswith(("OTEL_", "SPANLEDGER_"))}
    probe = "import spanledger; spanledger.configure(export='none', instrument=False)"
    result = subprocess.run(
        [sys.executable, "-c", probe], env={**env, "OTEL_PROPAGATORS": "tracecontext"}, capture_output=True, text=True
    )
    assert result.returncode == 0 and "do not include W3C baggage" in result.stderr


OTHER_OPENAI_INSTRUMENTORS_PROBE = """
import openai
import spanledger._manager
from opentelemetry.instrumentation.genai.openai import OpenAIInstrumentor as GenAI
from opentelemetry.instrumentation.openai import OpenAIInstrumentor as OpenLLMetry
print(GenAI().is_instrumented_by_opentelemetry, OpenLLMetry().is_instrumented_by_opentelemetry,
      "openai" in spanledger._manager.manager.active)
"""


def test_opentelemetry_instrument_skips_other_openai_instrumentors(receiver: OtlpHttpReceiver) -> None:
    command = [str(BIN / "opentelemetry-instrument"), sys.executable, "-c", OTHER_OPENAI_INSTRUMENTORS_PROBE]
    assert _run(command, _env(receiver)).stdout.split() == ["False", "False", "True"]
    disabled = _env(receiver, SPANLEDGER_DISABLED_INSTRUMENTATIONS="openai")
    assert _run(command, disabled).stdout.split()[2] == "False"
