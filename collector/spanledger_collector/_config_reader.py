"""Strict reading of one mapping of the collector's YAML: every error names the full key.

Both the service configuration (receivers, processors, pipelines) and the exporter factories read their
sections through :class:`ConfigSection`, so a typo anywhere fails the same way, naming the key
(``exporters.otlphttp/datadog.headers``) rather than being silently ignored.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from ._component import ConfigError

__all__ = ["ConfigSection"]

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h)?\s*$")
_DURATION_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, None: 1.0}
_HEADER_NAME = re.compile(r"[A-Za-z0-9!#$%&'*+.^_`|~-]+")


class ConfigSection:
    """A mapping read key by key; :meth:`done` rejects the keys nobody asked for."""

    def __init__(self, value: Any, path: str) -> None:
        if value is None:
            value = {}
        if not isinstance(value, Mapping):
            raise ConfigError(f"{path}: expected a mapping, got {type(value).__name__} {value!r}")
        self.values: dict[str, Any] = dict(value)
        self.path = path
        self._read: set[str] = set()

    def key(self, name: str) -> str:
        return f"{self.path}.{name}" if self.path else name

    def has(self, name: str) -> bool:
        return name in self.values

    def get(self, name: str, default: Any = None) -> Any:
        self._read.add(name)
        value = self.values.get(name)
        return default if value is None else value

    def section(self, name: str) -> ConfigSection:
        return ConfigSection(self.get(name), self.key(name))

    def done(self) -> None:
        unknown = sorted(set(self.values) - self._read)
        if unknown:
            expected = ", ".join(sorted(self._read)) or "nothing"
            raise ConfigError(f"{self.key(str(unknown[0]))}: unknown key (expected one of: {expected})")

    def text(self, name: str, default: str | None = None) -> str | None:
        value = self.get(name, default)
        if value is None:
            return None
        if not isinstance(value, str) or not value:
            raise ConfigError(f"{self.key(name)}: expected a non-empty string, got {value!r}")
        return value

    def required_text(self, name: str) -> str:
        value = self.text(name)
        if value is None:
            raise ConfigError(f"{self.key(name)}: required")
        return value

    def choice(self, name: str, choices: tuple[str, ...], default: str) -> str:
        value = self.text(name, default)
        if value not in choices:
            raise ConfigError(f"{self.key(name)}: {value!r} is not one of {', '.join(choices)}")
        return value

    def boolean(self, name: str, default: bool) -> bool:
        value = self.get(name, default)
        if not isinstance(value, bool):
            raise ConfigError(f"{self.key(name)}: expected true or false, got {value!r}")
        return value

    def integer(self, name: str, default: int, minimum: int = 0) -> int:
        value = self.get(name, default)
        if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
            raise ConfigError(f"{self.key(name)}: expected an integer >= {minimum}, got {value!r}")
        return value

    def number(self, name: str, default: float, minimum: float = 0.0) -> float:
        value = self.get(name, default)
        if isinstance(value, bool) or not isinstance(value, (int, float)) or value < minimum:
            raise ConfigError(f"{self.key(name)}: expected a number >= {minimum}, got {value!r}")
        return float(value)

    def duration(self, name: str, default: str | float) -> float:
        """Seconds: a number of seconds, or a string such as ``300ms``, ``5s``, ``1m``."""
        value = self.get(name, default)
        if isinstance(value, (int, float)) and not isinstance(value, bool) and value >= 0:
            return float(value)
        match = _DURATION.match(value) if isinstance(value, str) else None
        if match is None:
            raise ConfigError(f"{self.key(name)}: expected a duration such as 200ms, 5s or 1m, got {value!r}")
        return float(match.group(1)) * _DURATION_UNITS[match.group(2)]

    def names(self, name: str) -> tuple[str, ...]:
        value = self.get(name, [])
        if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
            raise ConfigError(f"{self.key(name)}: expected a list of component ids, got {value!r}")
        return tuple(value)

    def headers(self, name: str) -> dict[str, str]:
        value = self.get(name, {})
        if not isinstance(value, Mapping):
            raise ConfigError(f"{self.key(name)}: expected a mapping of header names to values")
        headers: dict[str, str] = {}
        for header, header_value in value.items():
            if not isinstance(header, str) or not _HEADER_NAME.fullmatch(header):
                raise ConfigError(f"{self.key(name)}: {header!r} is not a valid header name")
            if not isinstance(header_value, (str, int)) or "\n" in str(header_value) or "\r" in str(header_value):
                raise ConfigError(f"{self.key(name)}.{header}: expected a single-line string")
            headers[header] = str(header_value)
        return headers
