"""The admin server's security model, through real sockets: read and write permissions (bearer tokens from
``bearertokenauth``), TLS, billing imports only from ``import_directories`` or uploaded content, the body
limit, scrapes that never commit the store, typed parameters (``limit=-1`` is 400), the bound address."""

from __future__ import annotations

import json
import os
import socket
import ssl
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from collector_fixtures import collector_config, self_signed_certificate, start_collector
from fixtures.usage_store import add_usage, open_usage_store
from prometheus_client import CollectorRegistry
from spanledger_collector._admin import AdminServer, AdminSettings, parse_admin_settings
from spanledger_collector._admin._server import SCRAPE_FLUSH_INTERVAL_S
from spanledger_collector._cli import main
from spanledger_collector._component import ConfigError
from spanledger_collector._config_reader import ConfigSection
from spanledger_collector._graph import parse_settings
from spanledger_collector._store import DuckDBStore
from spanledger_collector.billing.metrics import create_collector
from test_billing_shared import HEADER, _gpu_facts, _line

READ, WRITE = "read-token-1", "write-token-1"
AUTHENTICATORS = {"bearertokenauth/readers": (READ,), "bearertokenauth/admins": (WRITE,)}
SECURED = {
    "auth": {"authenticator": "bearertokenauth/readers"},
    "write_auth": {"authenticator": "bearertokenauth/admins"},
}


def admin_settings(**section: Any) -> AdminSettings:
    return parse_admin_settings(
        ConfigSection({"address": "127.0.0.1:0", **section}, "service.telemetry.metrics"),
        authenticators=AUTHENTICATORS,
    )


@dataclass
class Admin:
    server: AdminServer
    store: DuckDBStore
    flushes: list[int]

    @property
    def url(self) -> str:
        return f"{self.server.scheme}://{self.server.address}"

    def client(self, token: str | None = None, **kwargs: Any) -> httpx.Client:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        return httpx.Client(base_url=self.url, headers=headers, timeout=30, **kwargs)


@contextmanager
def running_admin(tmp_path: Path, settings: AdminSettings) -> Iterator[Admin]:
    store = open_usage_store(tmp_path / "store.duckdb")
    add_usage(store, [_gpu_facts(1, "i-0aaa", 1800), _gpu_facts(2, "i-0aaa", 600)])
    registry = CollectorRegistry()
    registry.register(create_collector(store))
    flushes: list[int] = []
    server = AdminServer(settings, registry, store, lambda: (True, "ok"), flush=lambda: flushes.append(1))
    server.start()
    try:
        yield Admin(server, store, flushes)
    finally:
        server.shutdown()
        store.close()


def export_csv(directory: Path, name: str = "export.csv") -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / name
    path.write_text(HEADER + _line("gpu", account="payer-1", resource="i-0aaa", effective="4"), encoding="utf-8")
    return path


def test_reads_and_writes_need_their_own_tokens(tmp_path: Path) -> None:
    export = export_csv(tmp_path)
    upload = {"file": ("export.csv", export.read_bytes(), "text/csv")}
    with running_admin(tmp_path, admin_settings(**SECURED)) as admin:
        with admin.client() as anonymous:
            assert anonymous.get("/health").status_code == 200  # liveness probes send no token
            for path in ("/metrics", "/api/top", "/api/idle"):
                response = anonymous.get(path)
                assert response.status_code == 401 and response.headers["WWW-Authenticate"] == "Bearer"
            assert anonymous.post("/api/billing/import", files=upload).status_code == 401
        with admin.client("wrong") as wrong:
            assert wrong.get("/metrics").status_code == 401
        with admin.client(READ) as reader:
            assert reader.get("/metrics").status_code == 200
            assert reader.get("/api/top").status_code == 400  # allowed, but nothing imported yet
            response = reader.post("/api/billing/import", files=upload)
            assert response.status_code == 401 and "write_auth" in response.json()["error"]
        with admin.client(WRITE) as writer:
            response = writer.post("/api/billing/import", files=upload)
            assert response.status_code == 200, response.text
            assert response.json()["files"] == ["upload:export.csv"]
            assert writer.get("/api/allocations").status_code == 200  # a writer also reads


def test_the_cli_sends_the_token_and_uploads_the_files_it_names(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    export = export_csv(tmp_path / "here")
    with running_admin(tmp_path, admin_settings(**SECURED)) as admin:
        remote = ("--collector", admin.url, "--json")
        assert main(["billing", "import", str(export), *remote]) == 1
        assert "set SPANLEDGER_COLLECTOR_TOKEN" in capsys.readouterr().err
        monkeypatch.setenv("SPANLEDGER_COLLECTOR_TOKEN", WRITE)
        assert main(["billing", "import", str(export.parent), *remote]) == 0  # a directory: each file uploaded
        assert json.loads(capsys.readouterr().out)["files"] == ["upload:export.csv"]
        monkeypatch.setenv("SPANLEDGER_COLLECTOR_TOKEN", READ)
        assert main(["allocations", "--format", "json", "--collector", admin.url]) == 0
        assert json.loads(capsys.readouterr().out)["rows"]


def _non_loopback_address() -> str | None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        try:
            probe.connect(("192.0.2.1", 9))  # no packet is sent; this only picks the outgoing interface
            address = str(probe.getsockname()[0])
        except OSError:
            return None
    return None if address.startswith("127.") or address == "0.0.0.0" else address


def test_without_write_auth_writes_come_from_this_host_only(tmp_path: Path) -> None:
    address = _non_loopback_address()
    if address is None:
        pytest.skip("this machine has no non-loopback address to connect from")
    export = export_csv(tmp_path)
    upload = {"file": ("export.csv", export.read_bytes(), "text/csv")}
    with running_admin(tmp_path, admin_settings(address="0.0.0.0:0")) as admin:
        port = admin.server.port
        with httpx.Client(base_url=f"http://{address}:{port}", timeout=30) as other_host:
            assert other_host.get("/api/top").status_code == 400  # reads are open without auth
            response = other_host.post("/api/billing/import", files=upload)
            assert response.status_code == 403 and "write_auth" in response.json()["error"]
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=30) as local:
            assert local.post("/api/billing/import", files=upload).status_code == 200


def test_imports_read_only_inside_the_import_directories_and_say_nothing_about_other_paths(tmp_path: Path) -> None:
    allowed = tmp_path / "billing"
    inside = export_csv(allowed)
    outside = export_csv(tmp_path / "elsewhere")
    (allowed / "link.csv").symlink_to(outside)
    (allowed / "linked-dir").symlink_to(outside.parent, target_is_directory=True)
    with running_admin(tmp_path / "closed", admin_settings()) as admin, admin.client() as client:
        for path in (inside, outside, tmp_path / "missing.csv"):
            response = client.post("/api/billing/import", json={"paths": [str(path)]})
            assert response.status_code == 403
            assert response.json()["error"] == (
                f"{path}: not inside the directories this collector imports from "
                "(service.telemetry.metrics.import_directories); upload the file instead"
            )
    with (
        running_admin(tmp_path / "open", admin_settings(import_directories=[str(allowed)])) as admin,
        admin.client() as client,
    ):
        refused = [
            outside,
            tmp_path / "missing.csv",
            allowed / ".." / "elsewhere" / "export.csv",
            allowed / "link.csv",
            allowed / "linked-dir",
            Path("/etc/passwd"),
        ]
        for path in refused:
            response = client.post("/api/billing/import", json={"paths": [str(path)]})
            assert response.status_code == 403, (path, response.text)
            assert "not inside the directories" in response.json()["error"]
        response = client.post("/api/billing/import", json={"paths": [str(inside)], "rules": str(outside)})
        assert response.status_code == 403 and str(outside) in response.json()["error"]  # rules files too
        response = client.post("/api/billing/import", json={"paths": [str(inside)]})
        assert response.status_code == 200, response.text
        assert response.json()["files"] == [str(inside)]
        missing = client.post("/api/billing/import", json={"paths": [str(allowed / "nothing.csv")]})
        assert missing.status_code == 400 and "no such file" in missing.json()["error"]


def _raw_request(admin: Admin, head: str) -> bytes:
    with socket.create_connection(("127.0.0.1", admin.server.port), timeout=10) as connection:
        connection.sendall(head.encode("latin-1"))  # as HTTP/1.1 reads a head
        answer = b""
        while chunk := connection.recv(65536):
            answer += chunk
    return answer


def test_a_body_over_the_limit_is_refused_unread(tmp_path: Path) -> None:
    with running_admin(tmp_path, admin_settings(max_request_body_size=4096)) as admin:
        # Only the head is sent: a server that tried to read 600 MB would wait until the socket times out.
        answer = _raw_request(
            admin,
            "POST /api/billing/import HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            "Content-Length: 600000000\r\n\r\n",
        )
        assert answer.startswith(b"HTTP/1.1 413 ") and b"max_request_body_size (4096 bytes)" in answer
        chunked = _raw_request(
            admin, "POST /api/billing/import HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
        )
        assert chunked.startswith(b"HTTP/1.1 411 ")
        # "²" (byte 0xB2 in the head) is a digit to str.isdigit(), not to int()
        squared = _raw_request(admin, "POST /api/billing/import HTTP/1.1\r\nHost: x\r\nContent-Length: ²\r\n\r\n")
        assert squared.startswith(b"HTTP/1.1 400 ") and b"is not a number" in squared
        with admin.client() as client:
            assert client.post("/api/billing/import", content=b"x" * 5000).status_code == 413
            assert client.get("/health").status_code == 200


def test_scrapes_commit_at_most_once_a_second_whatever_their_rate_and_answers_always(tmp_path: Path) -> None:
    with running_admin(tmp_path, admin_settings()) as admin, admin.client() as client:
        started = time.monotonic()
        for _ in range(40):
            assert client.get("/metrics").status_code == 200
        elapsed = time.monotonic() - started
        assert 1 <= len(admin.flushes) <= 1 + int(elapsed / SCRAPE_FLUSH_INTERVAL_S)  # not one per scrape
        before = len(admin.flushes)
        client.get("/api/top")
        client.get("/api/idle")
        assert len(admin.flushes) == before + 2  # answers see every acknowledged span


def test_a_bad_parameter_is_400_on_the_api_and_a_clear_error_in_the_cli(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    message = "limit must be an integer from 1 to 10000, not -1"
    with running_admin(tmp_path, admin_settings()) as admin, admin.client() as client:
        response = client.get("/api/top", params={"limit": "-1"})
        assert response.status_code == 400 and response.json()["error"] == message
        assert client.get("/api/top", params={"limit": "many"}).status_code == 400
        assert client.get("/api/idle", params={"period": "2025-13"}).status_code == 400
        assert client.get("/api/trace/not-a-trace-id").status_code == 400
        assert main(["top", "--limit", "-1", "--collector", admin.url]) == 1
        assert capsys.readouterr().err == f"spanledger: {message}\n"
    assert main(["top", "--limit", "-1", "--store", str(tmp_path / "store.duckdb"), "--collector", "none"]) == 1
    assert capsys.readouterr().err == f"spanledger: {message}\n"


def test_tls_like_the_receivers(tmp_path: Path) -> None:
    cert, key = self_signed_certificate(tmp_path)
    settings = admin_settings(address="localhost:0", tls={"cert_file": str(cert), "key_file": str(key)})
    with running_admin(tmp_path, settings) as admin:
        assert admin.url.startswith("https://")
        with httpx.Client(verify=ssl.create_default_context(cafile=str(cert)), timeout=10) as client:
            assert client.get(f"https://localhost:{admin.server.port}/metrics").status_code == 200
        with pytest.raises(httpx.HTTPError):
            httpx.get(f"http://localhost:{admin.server.port}/metrics", timeout=5)


def test_admin_settings_are_validated_naming_the_key(tmp_path: Path) -> None:
    cases = [
        ({"write_auth": {"authenticator": "bearertokenauth/nobody"}}, "service.telemetry.metrics.write_auth"),
        ({"import_directories": [str(tmp_path / "missing")]}, "service.telemetry.metrics.import_directories[0]"),
        ({"import_directories": "/tmp"}, "service.telemetry.metrics.import_directories"),
        ({"tls": {"cert_file": str(tmp_path / "c.pem"), "key_file": "k"}}, "service.telemetry.metrics.tls"),
        ({"max_request_body_size": 0}, "service.telemetry.metrics.max_request_body_size"),
        ({"body_limit": 5}, "service.telemetry.metrics.body_limit"),
    ]
    for section, key in cases:
        with pytest.raises(ConfigError, match=key.replace("[", r"\[").replace("]", r"\]")):
            admin_settings(**section)
    defaults = admin_settings()
    assert (defaults.read_tokens, defaults.write_tokens, defaults.import_directories) == ((), (), ())
    assert defaults.max_request_body_size == 64 * 1024 * 1024


@pytest.mark.slow
def test_the_collector_reads_the_admin_section_and_logs_what_is_bound(tmp_path: Path) -> None:
    config = collector_config(tmp_path)
    config["receivers"]["otlp"]["protocols"]["grpc"]["endpoint"] = "0.0.0.0:0"
    config["receivers"]["otlp"]["protocols"]["http"]["endpoint"] = "0.0.0.0:0"
    config["extensions"] = {"bearertokenauth/admins": {"token": WRITE}}
    config["service"]["extensions"] = ["bearertokenauth/admins"]
    config["service"]["telemetry"]["metrics"] = {
        "address": "0.0.0.0:0",
        "write_auth": {"authenticator": "bearertokenauth/admins"},
        "import_directories": [str(tmp_path)],
    }
    settings = parse_settings(yaml.safe_load(yaml.safe_dump(config)))
    assert settings.admin.write_tokens == (WRITE,)
    assert settings.admin.import_directories == (os.path.realpath(tmp_path),)
    with start_collector(tmp_path, config) as collector:
        assert all(address.startswith("0.0.0.0:") for address in collector.addresses.values()), collector.log
        port = collector.addresses["admin"].rpartition(":")[2]
        response = httpx.post(f"http://127.0.0.1:{port}/api/billing/allocate", json={}, timeout=30)
        assert response.status_code == 401
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", headers={"Authorization": f"Bearer {WRITE}"}) as admin:
            assert admin.post("/api/billing/allocate", json={}, timeout=30).status_code == 200
