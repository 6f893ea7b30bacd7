"""``service.telemetry.metrics``: where the admin server listens and who may read and write through it.

::

    service:
      telemetry:
        metrics:
          address: "localhost:9464"
          auth: {authenticator: bearertokenauth/readers}        # reads: /metrics, GET /api/...
          write_auth: {authenticator: bearertokenauth/admins}   # writes: POST /api/billing/...
          tls: {cert_file: cert.pem, key_file: key.pem}
          import_directories: [/var/lib/billing, s3://bucket/exports]
          max_request_body_size: 67108864

Without ``auth`` anyone who reaches the port may read; without ``write_auth`` writes are accepted only
from a loopback peer (and with the read token when ``auth`` is set). A write token also reads.
"""

from __future__ import annotations

import os
import ssl
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from .._component import ConfigError
from .._config_reader import ConfigSection

__all__ = ["DEFAULT_MAX_REQUEST_BODY_SIZE", "AdminSettings", "parse_admin_settings"]

DEFAULT_MAX_REQUEST_BODY_SIZE = 64 * 1024 * 1024


@dataclass(frozen=True)
class AdminSettings:
    host: str = "localhost"
    port: int = 9464
    read_tokens: tuple[str, ...] = ()
    """Bearer tokens that may read (``auth``); empty: reads need none."""
    write_tokens: tuple[str, ...] = ()
    """Bearer tokens that may write, and read (``write_auth``); empty: writes only from a loopback peer."""
    cert_file: Path | None = None
    key_file: Path | None = None
    import_directories: tuple[str, ...] = ()
    """The only places a billing import may name paths in (resolved directories, ``s3://bucket/prefix``);
    empty: imports take uploaded files only."""
    max_request_body_size: int = DEFAULT_MAX_REQUEST_BODY_SIZE


def _address(section: ConfigSection) -> tuple[str, int]:
    value = section.get("address", "localhost:9464")
    where = section.key("address")
    if not isinstance(value, str) or ":" not in value:
        raise ConfigError(f"{where}: expected host:port, got {value!r}")
    host, _, port_text = value.rpartition(":")
    if not (port_text.isascii() and port_text.isdigit()) or not 0 <= int(port_text) <= 65535:
        raise ConfigError(f"{where}: {port_text!r} is not a port number (0-65535; 0 picks a free port)")
    return host.strip("[]") or "0.0.0.0", int(port_text)


def _tokens(section: ConfigSection, name: str, authenticators: Mapping[str, tuple[str, ...]]) -> tuple[str, ...]:
    if section.get(name) is None:
        return ()
    auth = section.section(name)
    authenticator = auth.text("authenticator")
    auth.done()
    if authenticator is None or authenticator not in authenticators:
        known = ", ".join(sorted(authenticators)) or "none configured in extensions and service.extensions"
        raise ConfigError(f"{auth.key('authenticator')}: unknown authenticator {authenticator!r} (known: {known})")
    return authenticators[authenticator]


def _tls(section: ConfigSection) -> tuple[Path | None, Path | None]:
    if section.get("tls") is None:
        return None, None
    tls = section.section("tls")
    cert, key = tls.required_text("cert_file"), tls.required_text("key_file")
    tls.done()
    try:
        ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER).load_cert_chain(cert, key)
    except FileNotFoundError as error:
        raise ConfigError(f"{tls.path}: file {error.filename or cert} does not exist") from None
    except (ssl.SSLError, OSError) as error:
        raise ConfigError(
            f"{tls.path}: cert_file {cert} and key_file {key} are not a PEM certificate and its private key ({error})"
        ) from None
    return Path(cert), Path(key)


def _import_directories(section: ConfigSection) -> tuple[str, ...]:
    value = section.get("import_directories", [])
    where = section.key("import_directories")
    if not isinstance(value, list) or not all(isinstance(item, str) and item for item in value):
        raise ConfigError(f"{where}: expected a list of directories or s3://bucket/prefix, got {value!r}")
    directories = []
    for index, item in enumerate(value):
        if item.startswith("s3://"):
            if not item[len("s3://") :].partition("/")[0]:
                raise ConfigError(f"{where}[{index}]: {item!r} names no bucket")
            directories.append(item)
        elif not Path(item).is_dir():
            raise ConfigError(f"{where}[{index}]: {item} is not a directory")
        else:
            directories.append(os.path.realpath(item))
    return tuple(directories)


def parse_admin_settings(section: ConfigSection, *, authenticators: Mapping[str, tuple[str, ...]]) -> AdminSettings:
    """Read ``service.telemetry.metrics``; ``authenticators``: the enabled ``bearertokenauth`` ids -> tokens."""
    host, port = _address(section)
    cert_file, key_file = _tls(section)
    settings = AdminSettings(
        host=host,
        port=port,
        read_tokens=_tokens(section, "auth", authenticators),
        write_tokens=_tokens(section, "write_auth", authenticators),
        cert_file=cert_file,
        key_file=key_file,
        import_directories=_import_directories(section),
        max_request_body_size=section.integer("max_request_body_size", DEFAULT_MAX_REQUEST_BODY_SIZE, minimum=1),
    )
    section.done()
    return settings
