"""The collector configuration and price overrides shown in the README are accepted as written."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from collector_fixtures import self_signed_certificate, start_collector

README = Path(__file__).resolve().parent.parent / "README.md"


def _yaml_blocks() -> list[str]:
    return re.findall(r"```yaml\n(.*?)```", README.read_text(), re.S)


@pytest.mark.slow
def test_the_readme_collector_config_starts(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    config, overrides, _ = _yaml_blocks()
    cert_file, key_file = self_signed_certificate(tmp_path)
    overrides_file = tmp_path / "negotiated-rates.yaml"
    overrides_file.write_text(overrides)
    # Only what cannot be true on a test machine changes: file locations and fixed public ports.
    config = (
        config.replace("/etc/spanledger/tls.crt", str(cert_file))
        .replace("/etc/spanledger/tls.key", str(key_file))
        .replace("/etc/spanledger/negotiated-rates.yaml", str(overrides_file))
        .replace("/var/lib/spanledger", str(tmp_path / "var"))
        .replace('"0.0.0.0:4317"', '"127.0.0.1:0"')
        .replace('"0.0.0.0:4318"', '"127.0.0.1:0"')
        .replace('"0.0.0.0:9464"', '"127.0.0.1:0"')
    )
    (tmp_path / "var" / "billing").mkdir(parents=True)
    env = {"DD_API_KEY": "test-key", "SPANLEDGER_TOKEN": "test-token", "SPANLEDGER_ADMIN_TOKEN": "admin-token",
           "AWS_ACCESS_KEY_ID": "AKIDEXAMPLE", "AWS_SECRET_ACCESS_KEY": "secret", "AWS_DEFAULT_REGION": "us-east-1"}
    with start_collector(tmp_path, config, env=env) as collector:
        assert collector.get("/health")[0] == 200
        assert collector.get("/metrics")[0] == 401  # reads need a token of bearertokenauth
    assert (tmp_path / "var" / "spanledger.duckdb").exists()


def test_the_readme_clickhouse_config_is_accepted(monkeypatch: pytest.MonkeyPatch) -> None:
    """The ClickHouse block, over the embedded defaults' receivers and processors (it shows only its part)."""
    from spanledger_collector._config import DEFAULT_CONFIG
    from spanledger_collector._config_reader import load_yaml
    from spanledger_collector._graph import parse_settings

    monkeypatch.setenv("CLICKHOUSE_PASSWORD", "test-password")
    *_, clickhouse = _yaml_blocks()
    document, block = load_yaml(DEFAULT_CONFIG), load_yaml(clickhouse)
    document["exporters"] = block["exporters"]
    document["service"]["pipelines"]["traces"] = block["service"]["pipelines"]["traces"]
    settings = parse_settings(document).exporters["clickhouse"]
    assert str(settings.address) == "clickhouse+https://spanledger@clickhouse.internal:8443/spanledger"
    assert settings.password == "test-password"
