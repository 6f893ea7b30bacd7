"""The core components' factories: the ``otlp`` receiver, the ``spanledger_store`` exporter, and the
``bearertokenauth`` and ``file_storage`` extensions (processors and onward exporters have theirs beside them).

Each factory reads its section of the configuration into a typed, frozen config (defaults filled in, every
value checked, errors naming the key) when the configuration is loaded; ``create`` builds the component at
start from that config alone.
"""

from __future__ import annotations

import ssl
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import timedelta
from pathlib import Path

from ._config import BatchSettings, LoadContext, ProtocolSettings, ReceiverSettings, read_endpoint
from ._config_reader import ConfigSection
from ._pipeline import Pipeline
from ._receivers import GrpcReceiver, HttpReceiver, OtlpSignals
from ._store import DuckDBStore, RequestLog, Store, StoreWriter

__all__ = [
    "BearerTokenAuthFactory",
    "BearerTokenSettings",
    "FileStorageFactory",
    "FileStorageSettings",
    "OpenStore",
    "OtlpReceiverFactory",
    "StoreExporterFactory",
    "StoreSettings",
]


# -- receivers -------------------------------------------------------------------------------------


def _tls(section: ConfigSection) -> tuple[Path | None, Path | None]:
    if section.get("tls") is None:
        return None, None
    tls = section.section("tls")
    cert, key = tls.text("cert_file"), tls.text("key_file")
    tls.done()
    if cert is None or key is None:
        raise tls.fail("", "both cert_file and key_file are required")
    for name, value in (("cert_file", cert), ("key_file", key)):
        if not Path(value).is_file():
            raise tls.fail(name, f"file {value} does not exist")
    try:
        ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER).load_cert_chain(cert, key)
    except ssl.SSLError as error:
        raise tls.fail(
            "", f"cert_file {cert} and key_file {key} are not a PEM certificate and its private key ({error})"
        ) from None
    return Path(cert), Path(key)


def _auth(section: ConfigSection, context: LoadContext) -> tuple[str, ...]:
    if section.get("auth") is None:
        return ()
    auth = section.section("auth")
    authenticator = auth.text("authenticator")
    auth.done()
    if authenticator is None or authenticator not in context.authenticators:
        known = ", ".join(sorted(context.authenticators)) or "none configured in extensions and service.extensions"
        raise auth.fail("authenticator", f"unknown authenticator {authenticator!r} (known: {known})")
    return context.authenticators[authenticator]


class OtlpReceiverFactory:
    """``otlp``: OTLP over gRPC and/or HTTP (protobuf and JSON), with optional TLS and bearer-token auth."""

    type = "otlp"

    def read(self, component_id: str, section: ConfigSection, context: LoadContext) -> ReceiverSettings:
        protocols = section.section("protocols")
        section.done()
        grpc = http = None
        if protocols.has("grpc"):
            settings = protocols.section("grpc")
            host, port = read_endpoint(settings, "endpoint", "localhost:4317")
            cert, key = _tls(settings)
            grpc = ProtocolSettings(
                host=host,
                port=port,
                max_request_bytes=settings.integer("max_recv_msg_size_mib", 4, minimum=1) * 1024 * 1024,
                bearer_tokens=_auth(settings, context),
                cert_file=cert,
                key_file=key,
                max_workers=settings.integer("max_workers", 128, minimum=1),
            )
            settings.done()
        if protocols.has("http"):
            settings = protocols.section("http")
            host, port = read_endpoint(settings, "endpoint", "localhost:4318")
            cert, key = _tls(settings)
            http = ProtocolSettings(
                host=host,
                port=port,
                max_request_bytes=settings.integer("max_request_body_size", 20 * 1024 * 1024, minimum=1),
                bearer_tokens=_auth(settings, context),
                cert_file=cert,
                key_file=key,
                listen_backlog=settings.integer("listen_backlog", 1024, minimum=1),
                max_connections=settings.integer("max_connections", 512, minimum=1),
            )
            settings.done()
        protocols.done()
        if grpc is None and http is None:
            raise protocols.fail("", "enable at least one of grpc, http")
        return ReceiverSettings(component_id, grpc, http)

    def create(
        self, component_id: str, config: ReceiverSettings, pipelines: Sequence[Pipeline]
    ) -> list[GrpcReceiver | HttpReceiver]:
        """One listener per protocol; not started (the service starts them once their pipelines are)."""
        signals = OtlpSignals(component_id, pipelines)
        receivers: list[GrpcReceiver | HttpReceiver] = []
        if config.grpc is not None:
            receivers.append(GrpcReceiver(signals, config.grpc))
        if config.http is not None:
            receivers.append(HttpReceiver(signals, config.http))
        return receivers


# -- the store -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class StoreSettings:
    """``spanledger_store``: the DuckDB store and the request log beside it."""

    path: str = "./spanledger.duckdb"
    threads: int = 1
    memory_limit_mib: int = 32
    retention_s: float = 0.0
    """Spans, data reads and usage facts older than this are deleted; 0 keeps them."""
    commit_interval_s: float = 10.0


@dataclass
class OpenStore:
    """An opened store with its request log and writer (not started: the writer needs the pipelines)."""

    store: Store
    writer: StoreWriter
    log_directory: tempfile.TemporaryDirectory[str] | None

    def close(self) -> None:
        self.store.close()
        if self.log_directory is not None:
            self.log_directory.cleanup()


class StoreExporterFactory:
    """``spanledger_store`` (at most one): the pipelines' spans, usage facts and data reads, stored.

    Unlike an onward exporter it is not a ``Consumer``: pipelines hand their rows to its one
    :class:`StoreWriter`, and each request waits in the request log (acknowledged) until committed.
    """

    type = "spanledger_store"

    def read(self, component_id: str, section: ConfigSection, context: LoadContext) -> StoreSettings:
        defaults = StoreSettings()
        return StoreSettings(
            path=section.text("path", defaults.path) or defaults.path,
            threads=section.integer("threads", defaults.threads, minimum=1),
            memory_limit_mib=section.integer("memory_limit_mib", defaults.memory_limit_mib, minimum=16),
            retention_s=section.duration("retention", defaults.retention_s),
            commit_interval_s=section.duration("commit_interval", "10s"),
        )

    def create(self, component_id: str, config: StoreSettings, batch: BatchSettings) -> OpenStore:
        """Open the store and its request log; ``batch``: the writer's batch settings (see ``_processors._batch``)."""
        store = DuckDBStore(
            config.path,
            threads=config.threads,
            memory_limit_mib=config.memory_limit_mib,
            retention=timedelta(seconds=config.retention_s) if config.retention_s else None,
        )
        directory, temporary = _request_log_directory(config.path)
        log = RequestLog(directory, committed_seq=store.committed_log_position())
        writer = StoreWriter(store, log, batch, commit_interval_s=config.commit_interval_s)
        return OpenStore(store, writer, temporary)


def _request_log_directory(store_path: str) -> tuple[Path, tempfile.TemporaryDirectory[str] | None]:
    """Beside the store (``spanledger.duckdb.requests``), as DuckDB keeps its ``.wal``; a temporary one in memory."""
    if store_path == ":memory:":
        temporary = tempfile.TemporaryDirectory(prefix="spanledger-requests-")
        return Path(temporary.name), temporary
    return Path(f"{store_path}.requests"), None


# -- extensions ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class BearerTokenSettings:
    tokens: tuple[str, ...]


class BearerTokenAuthFactory:
    """``bearertokenauth``: the tokens a receiver protocol accepts (``auth: {authenticator: ID}``)."""

    type = "bearertokenauth"

    def read(self, component_id: str, section: ConfigSection, context: LoadContext) -> BearerTokenSettings:
        token = section.secret("token")
        values = ((token,) if token is not None else ()) + section.secrets("tokens")
        if not values:
            raise section.fail("token", "expected a non-empty token (or a tokens list)")
        for value in values:
            # A client's header is read stripped (RFC 9110 trims field values), so such a token never matches.
            if value != value.strip():
                key = "token" if token is not None and value is token else "tokens"
                raise section.fail(
                    key, "a token has leading or trailing whitespace (a secret file's last newline?): remove it"
                )
        return BearerTokenSettings(values)

    def extend(
        self, context: LoadContext, component_id: str, config: BearerTokenSettings, *, enabled: bool
    ) -> LoadContext:
        """Receivers may name it as their authenticator once ``service.extensions`` enables it."""
        if not enabled:
            return context
        return replace(context, authenticators={**context.authenticators, component_id: config.tokens})


@dataclass(frozen=True)
class FileStorageSettings:
    directory: Path = Path("spanledger-data")


class FileStorageFactory:
    """``file_storage``: the directory exporters keep their persistent sending queues in."""

    type = "file_storage"

    def read(self, component_id: str, section: ConfigSection, context: LoadContext) -> FileStorageSettings:
        return FileStorageSettings(Path(section.text("directory", str(FileStorageSettings.directory)) or "."))

    def extend(
        self, context: LoadContext, component_id: str, config: FileStorageSettings, *, enabled: bool
    ) -> LoadContext:
        return replace(context, data_dir=config.directory)
