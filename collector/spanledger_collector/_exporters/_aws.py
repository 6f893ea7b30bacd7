"""SigV4 signing for the CloudWatch / X-Ray OTLP endpoints, with botocore's credential chain."""

from __future__ import annotations

import botocore.session
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest

from .._component import PermanentError, RetryableError
from ._signals import Signal

__all__ = ["AWS_SIGNING_SERVICES", "SigV4Signer", "default_aws_endpoint"]

# The SigV4 service name and endpoint host prefix of each signal's OTLP endpoint.
AWS_SIGNING_SERVICES: dict[Signal, str] = {"traces": "xray", "logs": "logs", "metrics": "monitoring"}


def default_aws_endpoint(signal: Signal, region: str) -> str:
    return f"https://{AWS_SIGNING_SERVICES[signal]}.{region}.amazonaws.com/v1/{signal}"


class SigV4Signer:
    """Signs each request (every retry too: the signature is bound to its time) over the exact bytes sent."""

    def __init__(self, session: botocore.session.Session, region: str, missing_logs_headers: str | None) -> None:
        self._session = session
        self._region = region
        self._missing_logs_headers = missing_logs_headers

    def __call__(self, signal: Signal, url: str, headers: dict[str, str], body: bytes) -> dict[str, str]:
        if signal == "logs" and self._missing_logs_headers is not None:
            raise PermanentError(
                f"CloudWatch Logs needs a log group and stream: set {self._missing_logs_headers}.log_group and "
                f"{self._missing_logs_headers}.log_stream"
            )
        credentials = self._session.get_credentials()
        if credentials is None:
            raise RetryableError("no AWS credentials found by botocore's credential chain", retry_after=30.0)
        request = AWSRequest(method="POST", url=url, data=body, headers=headers)
        SigV4Auth(credentials.get_frozen_credentials(), AWS_SIGNING_SERVICES[signal], self._region).add_auth(request)
        return dict(request.headers.items())
