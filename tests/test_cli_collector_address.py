"""The answer commands never fall back to some other store when the collector the user named is silent."""

from __future__ import annotations

import socket
import subprocess
import sys
from pathlib import Path


def _closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def test_a_named_collector_that_does_not_answer_is_an_error(tmp_path) -> None:
    url = f"http://127.0.0.1:{_closed_port()}"
    result = subprocess.run(
        [str(Path(sys.executable).parent / "spanledger"), "top", "--collector", url],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode != 0
    assert f"no collector answers at {url}" in result.stderr
    assert not (tmp_path / "spanledger.duckdb").exists()
