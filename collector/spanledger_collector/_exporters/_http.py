"""OTLP/HTTP (binary protobuf) with urllib3: gzip, headers, Retry-After, partial success, a signing hook."""

from __future__ import annotations

import email.utils
import gzip
import time
from collections.abc import Callable, Mapping

import urllib3
from google.protobuf.message import DecodeError
from google.rpc import status_pb2

from .._component import PermanentError, RetryableError
from ._signals import Signal
from ._transport import PartialSuccess, parse_partial_success

__all__ = ["OtlpHttpTransport", "RequestSigner", "parse_retry_after"]

# (signal, url, headers, body) -> headers to send; used for SigV4.
RequestSigner = Callable[[Signal, str, dict[str, str], bytes], dict[str, str]]

_RETRYABLE_STATUS = frozenset({429, 502, 503, 504})
_USER_AGENT = "spanledger-collector"


def parse_retry_after(value: str | None) -> float | None:
    """``Retry-After`` as seconds from now: delta-seconds or an HTTP-date."""
    if not value:
        return None
    value = value.strip()
    if value.isascii() and value.isdigit():  # "²".isdigit(), and float() refuses it
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())


def _error_text(body: bytes, content_type: str) -> str:
    if "protobuf" in content_type:
        try:
            status = status_pb2.Status.FromString(body)
        except DecodeError:
            status = None
        if status is not None and status.message:
            return str(status.message)
    return body[:300].decode("utf-8", "replace").strip()


class OtlpHttpTransport:
    def __init__(
        self,
        endpoints: Mapping[Signal, str],
        *,
        headers: Mapping[str, str],
        signal_headers: Mapping[Signal, Mapping[str, str]] | None = None,
        compression: str,
        ca_file: str | None = None,
        signer: RequestSigner | None = None,
        missing_endpoints: Mapping[Signal, str] | None = None,
    ) -> None:
        self._endpoints = dict(endpoints)
        self._missing_endpoints = missing_endpoints or {}
        self._headers = {"Content-Type": "application/x-protobuf", "User-Agent": _USER_AGENT, **headers}
        if compression == "gzip":
            self._headers["Content-Encoding"] = "gzip"
        self._signal_headers = signal_headers or {}
        self._gzip = compression == "gzip"
        self._signer = signer
        self._pool = urllib3.PoolManager(num_pools=4, maxsize=2, ca_certs=ca_file)

    def send(self, signal: Signal, payload: bytes, timeout: float) -> PartialSuccess | None:
        url = self._endpoints.get(signal)
        if url is None:
            raise PermanentError(f"no {signal} endpoint is configured: set {self._missing_endpoints.get(signal)}")
        body = gzip.compress(payload, compresslevel=6) if self._gzip else payload
        headers = {**self._headers, **self._signal_headers.get(signal, {})}
        if self._signer is not None:
            headers = self._signer(signal, url, headers, body)
        try:
            response = self._pool.request(
                "POST", url, body=body, headers=headers, timeout=urllib3.Timeout(total=timeout), retries=False
            )
        except urllib3.exceptions.HTTPError as exc:
            raise RetryableError(f"POST {url}: {exc}") from None
        content_type = response.headers.get("Content-Type", "")
        if 200 <= response.status < 300:
            return parse_partial_success(signal, response.data, content_type)
        text = _error_text(response.data, content_type)
        message = f"POST {url}: HTTP {response.status}{': ' + text if text else ''}"
        if response.status in _RETRYABLE_STATUS:
            raise RetryableError(message, retry_after=parse_retry_after(response.headers.get("Retry-After")))
        raise PermanentError(message)

    def close(self) -> None:
        self._pool.clear()
