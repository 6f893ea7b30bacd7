"""Fuzz the admin server through its socket: any method, path, query, token, content type and body.

Every answer must be a deliberate one (200, 400, 401, 403, 404, 411, 413), never a 500 (an unhandled
error), and the server must still answer /health and a good request afterwards. A path the fuzzer names
is never read outside the import directory.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_admin_api import READ, SECURED, WRITE, Admin, admin_settings, export_csv, running_admin
from test_collector_fuzz import json_values, mutations_of

FUZZ = settings(
    max_examples=80, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow]
)
DELIBERATE = {200, 400, 401, 403, 404, 411, 413}
ROUTES = ["/api/billing/import", "/api/billing/allocate", "/api/trace/" + "a" * 32, "/api/top", "/api/idle",
          "/api/allocations", "/metrics", "/health", "/api/trace/", "/api/", "/"]  # fmt: skip
PARAMETERS = ["by", "group", "period", "limit", "paths", "x"]


@pytest.fixture(scope="module")
def admin(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Admin]:
    tmp_path: Path = tmp_path_factory.mktemp("admin-fuzz")
    imports = tmp_path / "imports"
    export_csv(imports)
    with running_admin(tmp_path, admin_settings(**SECURED, import_directories=[str(imports)])) as running:
        yield running


paths = st.one_of(
    st.sampled_from(ROUTES),
    st.builds(lambda route, tail: route + tail, st.sampled_from(ROUTES), st.text(max_size=12)),
)
queries = st.dictionaries(st.sampled_from(PARAMETERS), st.text(max_size=12) | st.integers().map(str), max_size=4)
documents = st.fixed_dictionaries(
    {},
    optional={
        "paths": st.lists(st.sampled_from(["/etc/passwd", "../imports/export.csv", "", "s3://b/k"]) | st.text()),
        "currency": json_values,
        "allocate": json_values,
        "periods": json_values,
        "force": json_values,
        "rules": json_values,
    },
)
MULTIPART = b'--b\r\nContent-Disposition: form-data; name="file"; filename="e.csv"\r\n\r\nBilledCost\r\n1\r\n--b--\r\n'
bodies = st.one_of(
    st.binary(max_size=256),
    documents.map(lambda document: json.dumps(document).encode()),
    json_values.map(lambda value: json.dumps(value).encode()),
    mutations_of(st.just(MULTIPART)),
)
content_types = st.sampled_from(
    ["application/json", "multipart/form-data; boundary=b", "multipart/form-data", "text/csv", ""]
)
tokens = st.sampled_from([None, READ, WRITE, "x" * 40])


@pytest.mark.slow
@FUZZ
@given(
    method=st.sampled_from(["GET", "POST", "PUT", "DELETE"]),
    path=paths,
    query=queries,
    body=bodies,
    content_type=content_types,
    token=tokens,
)
def test_every_request_gets_a_deliberate_answer(
    admin: Admin, method: str, path: str, query: dict[str, str], body: bytes, content_type: str, token: str | None
) -> None:
    headers = {"Content-Type": content_type} if content_type else {}
    if token is not None:
        headers["Authorization"] = f"Bearer {token}"
    with httpx.Client(base_url=admin.url, timeout=30) as client:
        try:
            response = client.request(method, path, params=query, content=body, headers=headers)
        except (httpx.InvalidURL, httpx.LocalProtocolError):
            return  # not a request a client can send
        assert response.status_code in DELIBERATE, (response.status_code, response.text)
        if response.status_code == 200 and path.startswith("/api/billing/import"):
            assert all(not name.startswith("/etc") for name in response.json()["files"])


@pytest.mark.slow
def test_still_serving_after_the_fuzz(admin: Admin, tmp_path: Path) -> None:
    upload = {"file": ("export.csv", export_csv(tmp_path).read_bytes())}
    with admin.client(WRITE) as client:
        assert client.get("/health").status_code == 200
        assert client.get("/metrics").status_code == 200
        response = client.post("/api/billing/import", files=upload)
        assert response.status_code == 200, response.text
