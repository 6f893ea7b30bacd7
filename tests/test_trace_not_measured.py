"""An accelerator block that could not be measured reads as "not measured" in the trace answer, not as zero."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
import spanledger
from collector_fixtures import start_collector
from opentelemetry import trace
from spanledger_collector._cli import main


@pytest.mark.slow
def test_unmeasured_accelerator_time_is_shown_as_not_measured(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    with start_collector(tmp_path) as collector:
        monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", collector.http_endpoint)
        handle = spanledger.configure(service_name="reranker")
        with spanledger.workflow("answer-question", tenant="acme"):
            trace_id = format(trace.get_current_span().get_span_context().trace_id, "032x")
            with spanledger.accelerator():  # no GPU and no NVML on this machine
                pass
        handle.shutdown()  # the accelerator span ends on a background thread; shutdown flushes it

        remote = ("--collector", collector.admin_url, "--json")
        deadline = time.monotonic() + 30
        while True:
            code = main(["trace", trace_id, *remote])
            output = capsys.readouterr().out
            answer = json.loads(output) if code == 0 else {}
            if answer.get("totals", {}).get("not_measured") or time.monotonic() > deadline:
                break
            time.sleep(0.2)
        [not_measured] = answer["totals"]["not_measured"]
        assert not_measured["span"] == "accelerator"
        assert not_measured["reason"].startswith("accelerator: nvml_unavailable")
        assert answer["totals"]["accelerator_seconds"] == "0"

        assert main(["trace", trace_id, "--collector", collector.admin_url]) == 0
        text = capsys.readouterr().out
        assert "not measured (accelerator: nvml_unavailable" in text
        assert "(+ 1 span(s) not measured)" in text
