"""Run the real collector (``spanledger collector --config ...``) as a subprocess for tests.

Usage from any test module::

    from collector_fixtures import collector_config, start_collector

    def test_something(tmp_path):
        with start_collector(tmp_path) as collector:       # ephemeral ports, store in tmp_path
            ...send OTLP to collector.grpc_endpoint / collector.http_endpoint...
        rows = collector.query("SELECT count(*) FROM spans")  # after stop (DuckDB is single-process)

``collector_config(tmp_path)`` returns the default test config as a dict to modify before passing it as
``config=``. The collector prints ``spanledger collector ready: otlp.grpc=HOST:PORT ...`` once it
listens; the fixture waits for that line and for ``/health`` to answer 200.
"""

from __future__ import annotations

import datetime
import os
import re
import signal
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

READY = re.compile(r"spanledger collector ready: (.*)$")
SPANLEDGER = Path(sys.executable).with_name("spanledger")


def collector_config(tmp_path: Path, *, store: bool = True) -> dict[str, Any]:
    """The embedded defaults with every port ephemeral and the store under ``tmp_path``."""
    config: dict[str, Any] = {
        "receivers": {
            "otlp": {
                "protocols": {
                    "grpc": {"endpoint": "127.0.0.1:0"},
                    "http": {"endpoint": "127.0.0.1:0"},
                }
            }
        },
        "processors": {
            "memory_limiter": {"check_interval": "100ms", "limit_mib": 2048},
            "batch": {},
            "spanledger_usage": {},
        },
        "exporters": {},
        "service": {
            "pipelines": {
                "traces": {
                    "receivers": ["otlp"],
                    "processors": ["memory_limiter", "batch", "spanledger_usage"],
                    "exporters": [],
                },
                "metrics": {"receivers": ["otlp"], "processors": [], "exporters": []},
                "logs": {"receivers": ["otlp"], "processors": [], "exporters": []},
            },
            "telemetry": {"metrics": {"address": "127.0.0.1:0"}},
        },
    }
    if store:
        config["exporters"]["spanledger_store"] = {"path": str(tmp_path / "spanledger.duckdb")}
        config["service"]["pipelines"]["traces"]["exporters"].append("spanledger_store")
    return config


@dataclass
class RunningCollector:
    process: subprocess.Popen[bytes]
    config_path: Path
    store_path: Path | None
    addresses: dict[str, str] = field(default_factory=dict)
    log_lines: list[str] = field(default_factory=list)

    @property
    def grpc_endpoint(self) -> str:
        """``host:port`` of the first OTLP/gRPC receiver."""
        return next(value for key, value in self.addresses.items() if key.endswith(".grpc"))

    @property
    def http_endpoint(self) -> str:
        """``http(s)://host:port`` of the first OTLP/HTTP receiver (https when TLS is configured)."""
        config = yaml.safe_load(self.config_path.read_text())
        receiver = next(iter(config["receivers"].values()))
        scheme = "https" if receiver["protocols"].get("http", {}).get("tls") else "http"
        return f"{scheme}://" + next(value for key, value in self.addresses.items() if key.endswith(".http"))

    @property
    def admin_url(self) -> str:
        return f"http://{self.addresses['admin']}"

    @property
    def log(self) -> str:
        return "\n".join(self.log_lines)

    def get(self, path: str, timeout: float = 10) -> tuple[int, bytes]:
        try:
            with urllib.request.urlopen(self.admin_url + path, timeout=timeout) as response:
                return response.status, response.read()
        except urllib.error.HTTPError as error:
            return error.code, error.read()

    def scrape(self) -> str:
        status, body = self.get("/metrics")
        assert status == 200, body
        return body.decode()

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 60) -> int:
        if self.process.poll() is None:
            self.process.send_signal(sig)
            try:
                self.process.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
                raise AssertionError(f"the collector did not stop within {timeout}s:\n{self.log}") from None
        return self.process.returncode

    def query(self, sql: str, *params: Any) -> list[tuple[Any, ...]]:
        """Rows from the store; the collector must be stopped (DuckDB allows one process)."""
        import duckdb

        assert self.store_path is not None
        assert self.process.poll() is not None, "stop the collector before opening its store"
        with duckdb.connect(str(self.store_path), read_only=True) as connection:
            return connection.execute(sql, list(params)).fetchall()


def _pump(stream: Any, lines: list[str], ready: threading.Event, addresses: dict[str, str]) -> None:
    for raw in iter(stream.readline, b""):
        line = raw.decode(errors="replace").rstrip()
        lines.append(line)
        match = READY.search(line)
        if match:
            for pair in match.group(1).split():
                name, _, address = pair.partition("=")
                addresses[name] = address
            ready.set()
    ready.set()


def launch(
    tmp_path: Path,
    config: dict[str, Any] | str | None = None,
    *,
    env: dict[str, str] | None = None,
    args: tuple[str, ...] = (),
    timeout: float = 60,
) -> RunningCollector:
    """Start a collector and wait until it is ready (or has exited, e.g. on a config error)."""
    if config is None:
        config = collector_config(tmp_path)
    config_path = tmp_path / f"collector-{time.monotonic_ns()}.yaml"
    config_path.write_text(config if isinstance(config, str) else yaml.safe_dump(config))
    store_path = None
    if isinstance(config, dict):
        store = config.get("exporters", {}).get("spanledger_store")
        store_path = Path(store["path"]) if store else None
    process = subprocess.Popen(
        [str(SPANLEDGER), "collector", "--config", str(config_path), *args],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        cwd=tmp_path,
        env={**os.environ, **(env or {})},
    )
    collector = RunningCollector(process, config_path, store_path)
    ready = threading.Event()
    threading.Thread(
        target=_pump, args=(process.stderr, collector.log_lines, ready, collector.addresses), daemon=True
    ).start()
    if not ready.wait(timeout):
        process.kill()
        raise AssertionError(f"the collector did not become ready within {timeout}s:\n{collector.log}")
    if collector.addresses:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                if collector.get("/health", timeout=2)[0] == 200:
                    break
            except OSError:
                pass
            time.sleep(0.05)
        else:
            raise AssertionError(f"/health never answered 200:\n{collector.log}")
    return collector


@contextmanager
def start_collector(
    tmp_path: Path, config: dict[str, Any] | str | None = None, **kwargs: Any
) -> Iterator[RunningCollector]:
    """``launch`` the collector and SIGTERM it on exit (asserting a clean exit 0)."""
    collector = launch(tmp_path, config, **kwargs)
    if not collector.addresses:
        raise AssertionError(f"the collector exited with {collector.process.wait()}:\n{collector.log}")
    try:
        yield collector
    finally:
        returncode = collector.stop()
        assert returncode == 0, f"the collector exited with {returncode}:\n{collector.log}"


def self_signed_certificate(tmp_path: Path) -> tuple[Path, Path]:
    """A self-signed certificate for ``localhost`` and its key, as PEM files (cert, key)."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = datetime.datetime.now(datetime.timezone.utc)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName("localhost")]), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_file, key_file = tmp_path / "cert.pem", tmp_path / "key.pem"
    cert_file.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    return cert_file, key_file
