"""Onward exporter factories: ``read`` checks an ``exporters:`` entry into a typed config when the
configuration is loaded (so a bad setting is refused before any port is opened); ``create`` builds the
exporter at start from that config."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from .._component import ConfigError
from .._config import LoadContext
from .._config_reader import ConfigSection
from ._grpc import OtlpGrpcTransport
from ._http import OtlpHttpTransport
from ._queued import QueuedExporter
from ._settings import QueueSettings, RetrySettings, read_queue_settings, read_retry_settings
from ._signals import SIGNALS, Signal
from ._transport import Transport

__all__ = [
    "AwsOtlpExporterFactory",
    "ExporterFactory",
    "OtlpGrpcExporterFactory",
    "OtlpHttpExporterFactory",
    "QueuedExporterConfig",
]

_COMPRESSIONS = ("gzip", "none")
_DEFAULT_MAX_REQUEST_BYTES = 4 * 1024 * 1024  # grpc-go's and grpcio's default receive limit
_DEFAULT_MAX_REQUEST_ITEMS = 1_000_000
# Datadog's OTLP intake refuses trace payloads over 3.2 MB (HTTP 413).
_DATADOG_MAX_REQUEST_BYTES = 3_200_000
_DATADOG_HOST_SUFFIXES = (".datadoghq.com", ".datadoghq.eu", ".ddog-gov.com", ".datad0g.com")
# CloudWatch / X-Ray OTLP: 5 MB uncompressed and 10,000 spans per request.
_AWS_MAX_REQUEST_BYTES = 5_000_000
_AWS_MAX_REQUEST_ITEMS = 10_000


@dataclass(frozen=True)
class QueuedExporterConfig:
    """What every onward exporter is built from: its transport (made at start), queue, retries and limits."""

    transport: Callable[[], Transport]
    queue: QueueSettings
    retry: RetrySettings
    timeout: float
    max_request_bytes: int
    max_request_items: int


class ExporterFactory(ABC):
    """The base of the onward exporter factories: subclasses implement :meth:`read`."""

    @abstractmethod
    def read(self, component_id: str, section: ConfigSection, context: LoadContext) -> QueuedExporterConfig: ...

    def create(self, component_id: str, config: QueuedExporterConfig) -> QueuedExporter:
        return QueuedExporter(
            component_id,
            config.transport(),
            queue=config.queue,
            retry=config.retry,
            timeout=config.timeout,
            max_request_bytes=config.max_request_bytes,
            max_request_items=config.max_request_items,
        )

    def from_mapping(self, component_id: str, config: Mapping[str, Any], data_dir: Path) -> QueuedExporter:
        """Read and create in one step (an exporter used on its own, outside a collector's configuration)."""
        section = ConfigSection(config, f"exporters.{component_id}")
        return self.create(component_id, self.read(component_id, section, LoadContext(data_dir=data_dir)))


def _read(
    component_id: str,
    reader: ConfigSection,
    context: LoadContext,
    transport_factory: Callable[[], Transport],
    default_max_bytes: int,
    default_max_items: int,
    hard_max_bytes: int | None = None,
    hard_max_items: int | None = None,
) -> QueuedExporterConfig:
    timeout = reader.duration("timeout", 5.0)
    if timeout <= 0:
        raise ConfigError(f"{reader.path}.timeout: must be positive")
    max_bytes = reader.integer("max_request_size", default_max_bytes, minimum=1024)
    max_items = reader.integer("max_request_items", default_max_items, minimum=1)
    if hard_max_bytes is not None and max_bytes > hard_max_bytes:
        raise ConfigError(f"{reader.path}.max_request_size: the destination accepts at most {hard_max_bytes} bytes")
    if hard_max_items is not None and max_items > hard_max_items:
        raise ConfigError(f"{reader.path}.max_request_items: the destination accepts at most {hard_max_items} items")
    queue = read_queue_settings(reader, context.data_dir, component_id)
    retry = read_retry_settings(reader)
    reader.done()
    return QueuedExporterConfig(transport_factory, queue, retry, timeout, max_bytes, max_items)


def _http_url(reader: ConfigSection, key: str) -> str | None:
    url = reader.text(key)
    if url is not None:
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise ConfigError(f"{reader.path}.{key}: expected an http:// or https:// URL, got {url!r}")
    return url


def _is_datadog(url: str) -> bool:
    host = urlsplit(url).hostname or ""
    return any(host.endswith(suffix) for suffix in _DATADOG_HOST_SUFFIXES)


class OtlpGrpcExporterFactory(ExporterFactory):
    """``otlp`` (also ``otlp_grpc``): OTLP/gRPC to ``endpoint`` (``host:port``, or a URL)."""

    def read(self, component_id: str, reader: ConfigSection, context: LoadContext) -> QueuedExporterConfig:
        endpoint = reader.required_text("endpoint")
        parts = urlsplit(endpoint if "://" in endpoint else f"//{endpoint}")
        if parts.scheme not in ("", "http", "https") or not parts.hostname or parts.port is None:
            raise ConfigError(f"{reader.path}.endpoint: expected host:port (or http(s)://host:port), got {endpoint!r}")
        tls = reader.section("tls")
        insecure = tls.boolean("insecure", parts.scheme == "http")
        ca_file = tls.text("ca_file")
        tls.done()
        headers = reader.headers("headers")
        compression = reader.choice("compression", _COMPRESSIONS, "gzip")
        host = parts.hostname if ":" not in parts.hostname else f"[{parts.hostname}]"
        target = f"{host}:{parts.port}"
        return _read(
            component_id,
            reader,
            context,
            lambda: OtlpGrpcTransport(
                target, insecure=insecure, headers=headers, compression=compression, ca_file=ca_file
            ),
            _DEFAULT_MAX_REQUEST_BYTES,
            _DEFAULT_MAX_REQUEST_ITEMS,
        )


class OtlpHttpExporterFactory(ExporterFactory):
    """``otlphttp``: OTLP/HTTP protobuf to ``endpoint`` + ``/v1/<signal>`` or to per-signal URLs."""

    def read(self, component_id: str, reader: ConfigSection, context: LoadContext) -> QueuedExporterConfig:
        base = _http_url(reader, "endpoint")
        endpoints: dict[Signal, str] = {}
        for signal, spec in SIGNALS.items():
            url = _http_url(reader, f"{signal}_endpoint")
            if url is None and base is not None:
                url = base.rstrip("/") + spec.http_path
            if url is not None:
                endpoints[signal] = url
        if not endpoints:
            raise ConfigError(
                f"{reader.path}.endpoint: required (or traces_endpoint / metrics_endpoint / logs_endpoint)"
            )
        tls = reader.section("tls")
        ca_file = tls.text("ca_file")
        tls.done()
        headers = reader.headers("headers")
        compression = reader.choice("compression", _COMPRESSIONS, "gzip")
        datadog = any(_is_datadog(url) for url in endpoints.values())
        missing = {signal: f"{reader.path}.{signal}_endpoint" for signal in SIGNALS if signal not in endpoints}
        return _read(
            component_id,
            reader,
            context,
            lambda: OtlpHttpTransport(
                endpoints, headers=headers, compression=compression, ca_file=ca_file, missing_endpoints=missing
            ),
            _DATADOG_MAX_REQUEST_BYTES if datadog else _DEFAULT_MAX_REQUEST_BYTES,
            _DEFAULT_MAX_REQUEST_ITEMS,
        )


class AwsOtlpExporterFactory(ExporterFactory):
    """``awsotlp``: the CloudWatch / X-Ray OTLP endpoints, SigV4-signed (botocore's credential chain)."""

    def read(self, component_id: str, reader: ConfigSection, context: LoadContext) -> QueuedExporterConfig:
        # Imported here: botocore costs ~0.3 s and several MiB, and most collectors have no AWS exporter.
        try:
            import botocore.exceptions
            import botocore.session
        except ImportError:
            raise ConfigError(
                f"{reader.path}: the awsotlp exporter needs botocore: pip install 'spanledger[aws]'"
            ) from None

        from ._aws import SigV4Signer, default_aws_endpoint

        profile = reader.text("profile")
        try:
            session = botocore.session.Session(profile=profile)
            session_region = session.get_config_variable("region")
        except botocore.exceptions.ProfileNotFound as exc:
            raise ConfigError(f"{reader.path}.profile: {exc}") from None
        region = reader.text("region", session_region)
        if not region:
            raise ConfigError(f"{reader.path}.region: required (or set AWS_REGION)")
        endpoints: dict[Signal, str] = {
            signal: _http_url(reader, f"{signal}_endpoint") or default_aws_endpoint(signal, region)
            for signal in SIGNALS
        }
        log_group = reader.text("log_group")
        log_stream = reader.text("log_stream")
        if (log_group is None) != (log_stream is None):
            missing_key = "log_stream" if log_stream is None else "log_group"
            raise ConfigError(f"{reader.path}.{missing_key}: log_group and log_stream go together")
        signal_headers: dict[Signal, dict[str, str]] = {}
        if log_group is not None and log_stream is not None:
            signal_headers["logs"] = {"x-aws-log-group": log_group, "x-aws-log-stream": log_stream}
        compression = reader.choice("compression", _COMPRESSIONS, "gzip")
        signer = SigV4Signer(session, region, None if signal_headers else reader.path)
        return _read(
            component_id,
            reader,
            context,
            lambda: OtlpHttpTransport(
                endpoints, headers={}, signal_headers=signal_headers, compression=compression, signer=signer
            ),
            _AWS_MAX_REQUEST_BYTES,
            _AWS_MAX_REQUEST_ITEMS,
            hard_max_bytes=_AWS_MAX_REQUEST_BYTES,
            hard_max_items=_AWS_MAX_REQUEST_ITEMS,
        )
