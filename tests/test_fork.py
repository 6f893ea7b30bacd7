"""Forked workers (``multiprocessing`` with the fork start method) export their own telemetry, once."""

from __future__ import annotations

import os
import subprocess
import sys
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest
from openai_compatible_server import OpenAICompatibleServer
from otlp_receiver import OtlpHttpReceiver
from spanledger import semconv

APPS = Path(__file__).resolve().parent / "apps"

pytestmark = [pytest.mark.timeout(120), pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork")]


@pytest.fixture
def server() -> Iterator[OpenAICompatibleServer]:
    with OpenAICompatibleServer() as running:
        yield running


def test_forked_workers_export_their_spans_and_no_metric_twice(server: OpenAICompatibleServer) -> None:
    with OtlpHttpReceiver() as receiver:
        env = {key: value for key, value in os.environ.items() if not key.startswith(("OTEL_", "SPANLEDGER_"))}
        env.update(OTEL_EXPORTER_OTLP_ENDPOINT=receiver.endpoint, OTEL_SERVICE_NAME="fork-app")
        result = subprocess.run(
            [sys.executable, str(APPS / "fork_app.py"), server.base_url],
            env=env, capture_output=True, text=True, timeout=100,
        )
        assert result.returncode == 0, result.stderr
        assert "app ran" in result.stdout

        models = Counter(
            span.attributes[semconv.GEN_AI_REQUEST_MODEL]
            for span in receiver.received.spans()
            if semconv.GEN_AI_OPERATION_NAME in span.attributes
        )
        # Each worker flushed its spans when it ended; none was exported twice.
        assert models == {"parent-model": 1, "process-model": 1, "pool-model-1": 1, "pool-model-2": 1}

        # One duration point per call across every process's export: the parent's pre-fork point is not
        # exported again by its children. Cumulative temporality: the last export of each process counts.
        last: dict[tuple[int, str], int] = {}
        for request in receiver.received.metric_requests:
            for resource_metrics in request.resource_metrics:
                # A child's series carry its pid; the parent's none.
                pid = next(
                    (kv.value.int_value for kv in resource_metrics.resource.attributes if kv.key == "process.pid"), 0
                )
                for scope_metrics in resource_metrics.scope_metrics:
                    for metric in scope_metrics.metrics:
                        if metric.name != semconv.METRIC_GEN_AI_CLIENT_OPERATION_DURATION.name:
                            continue
                        for point in metric.histogram.data_points:
                            model = next(
                                kv.value.string_value
                                for kv in point.attributes
                                if kv.key == semconv.GEN_AI_REQUEST_MODEL
                            )
                            last[(pid, model)] = point.count
        per_model = Counter[str]()
        for (_, model), count in last.items():
            per_model[model] += count
        assert per_model == {"parent-model": 1, "process-model": 1, "pool-model-1": 1, "pool-model-2": 1}
