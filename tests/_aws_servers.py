"""Fixtures for the AWS tests: moto in server mode and the local Bedrock/SageMaker runtime server.

Both are real HTTP servers on ephemeral ports; boto3 signs every request as it would against AWS.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from aws_runtime_server import AwsRuntimeServer, start_server
from moto.server import ThreadedMotoServer

REGION = "us-east-1"
ACCESS_KEY = "AKIASPANLEDGERTEST01"
SECRET_KEY = "spanledger-test-secret-never-recorded"
SESSION_TOKEN = "spanledger-test-session-token-never-recorded"


@pytest.fixture(scope="module")
def moto_url() -> Iterator[str]:
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    yield f"http://{host}:{port}"
    server.stop()


@pytest.fixture(scope="module")
def runtime_server() -> Iterator[AwsRuntimeServer]:
    server = start_server()
    yield server
    server.stop()


def make_client(service: str, endpoint_url: str, region: str = REGION, **config: Any) -> Any:
    return boto3.client(
        service,
        region_name=region,
        endpoint_url=endpoint_url,
        aws_access_key_id=ACCESS_KEY,
        aws_secret_access_key=SECRET_KEY,
        aws_session_token=SESSION_TOKEN,
        **config,
    )


def assert_no_secrets(attributes: Any) -> None:
    """No credential, token or Authorization header anywhere in a span's attributes."""
    text = repr(dict(attributes)).lower()
    for secret in (ACCESS_KEY.lower(), SECRET_KEY, SESSION_TOKEN, "authorization", "x-amz-security-token"):
        assert secret not in text
