"""Exporter configuration: a strict reader of the YAML mapping and the settings every exporter shares."""

from __future__ import annotations

import random
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .._component import ConfigError

__all__ = ["ConfigReader", "QueueSettings", "RetrySettings", "read_queue_settings", "read_retry_settings"]

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h)?\s*$")
_DURATION_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, None: 1.0}


class ConfigReader:
    """Reads one mapping of the config; every error names the full key (``exporters.otlp/dd.timeout``)."""

    def __init__(self, where: str, raw: object) -> None:
        if raw is None:
            raw = {}
        if not isinstance(raw, dict):
            raise ConfigError(f"{where}: expected a mapping, got {type(raw).__name__}")
        self.where = where
        self._raw: dict[str, Any] = raw
        self._read: set[str] = set()

    def _key(self, key: str) -> str:
        return f"{self.where}.{key}"

    def _take(self, key: str) -> Any:
        self._read.add(key)
        return self._raw.get(key)

    def has(self, key: str) -> bool:
        return key in self._raw

    def string(self, key: str, default: str | None = None) -> str | None:
        value = self._take(key)
        if value is None:
            return default
        if not isinstance(value, str) or not value:
            raise ConfigError(f"{self._key(key)}: expected a non-empty string")
        return value

    def required_string(self, key: str) -> str:
        value = self.string(key)
        if value is None:
            raise ConfigError(f"{self._key(key)}: required")
        return value

    def choice(self, key: str, choices: tuple[str, ...], default: str) -> str:
        value = self.string(key, default)
        if value not in choices:
            raise ConfigError(f"{self._key(key)}: {value!r} is not one of {', '.join(choices)}")
        return value

    def boolean(self, key: str, default: bool) -> bool:
        value = self._take(key)
        if value is None:
            return default
        if not isinstance(value, bool):
            raise ConfigError(f"{self._key(key)}: expected true or false")
        return value

    def integer(self, key: str, default: int, minimum: int = 0) -> int:
        value = self._take(key)
        if value is None:
            return default
        if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
            raise ConfigError(f"{self._key(key)}: expected an integer >= {minimum}")
        return value

    def number(self, key: str, default: float, minimum: float = 0.0) -> float:
        value = self._take(key)
        if value is None:
            return default
        if isinstance(value, bool) or not isinstance(value, (int, float)) or value < minimum:
            raise ConfigError(f"{self._key(key)}: expected a number >= {minimum}")
        return float(value)

    def duration(self, key: str, default: float) -> float:
        """Seconds; the value is a number of seconds or a string like ``300ms``, ``5s``, ``1m``."""
        value = self._take(key)
        if value is None:
            return default
        if isinstance(value, (int, float)) and not isinstance(value, bool) and value >= 0:
            return float(value)
        match = _DURATION.match(value) if isinstance(value, str) else None
        if match is None:
            raise ConfigError(f"{self._key(key)}: expected a duration such as 5s, 300ms or 1m, got {value!r}")
        return float(match.group(1)) * _DURATION_UNITS[match.group(2)]

    def headers(self, key: str) -> dict[str, str]:
        value = self._take(key)
        if value is None:
            return {}
        if not isinstance(value, dict):
            raise ConfigError(f"{self._key(key)}: expected a mapping of header names to values")
        headers: dict[str, str] = {}
        for name, header_value in value.items():
            if not isinstance(name, str) or not re.fullmatch(r"[A-Za-z0-9!#$%&'*+.^_`|~-]+", name):
                raise ConfigError(f"{self._key(key)}: {name!r} is not a valid header name")
            if not isinstance(header_value, (str, int)) or "\n" in str(header_value) or "\r" in str(header_value):
                raise ConfigError(f"{self._key(key)}.{name}: expected a single-line string")
            headers[name] = str(header_value)
        return headers

    def section(self, key: str) -> ConfigReader:
        return ConfigReader(self._key(key), self._take(key))

    def finish(self) -> None:
        """Fail on the first key nothing read (a typo must not be silently ignored)."""
        unknown = sorted(set(self._raw) - self._read)
        if unknown:
            raise ConfigError(f"{self._key(unknown[0])}: unknown key")


@dataclass(frozen=True)
class RetrySettings:
    """``retry_on_failure``: exponential backoff with jitter, the OTel Collector's defaults."""

    enabled: bool = True
    initial_interval: float = 5.0
    max_interval: float = 30.0
    max_elapsed_time: float = 300.0  # 0: retry until delivered
    multiplier: float = 1.5
    randomization_factor: float = 0.5

    def delays(self) -> Iterator[float]:
        """Successive waits: each interval randomized by +-``randomization_factor``, capped growth."""
        interval = self.initial_interval
        while True:
            spread = interval * self.randomization_factor
            yield random.uniform(interval - spread, interval + spread)
            interval = min(interval * self.multiplier, self.max_interval)


@dataclass(frozen=True)
class QueueSettings:
    """``sending_queue``: the persistent queue's capacity in requests and its SQLite file."""

    queue_size: int
    path: Path


def read_retry_settings(config: ConfigReader) -> RetrySettings:
    section = config.section("retry_on_failure")
    defaults = RetrySettings()
    settings = RetrySettings(
        enabled=section.boolean("enabled", defaults.enabled),
        initial_interval=section.duration("initial_interval", defaults.initial_interval),
        max_interval=section.duration("max_interval", defaults.max_interval),
        max_elapsed_time=section.duration("max_elapsed_time", defaults.max_elapsed_time),
        multiplier=section.number("multiplier", defaults.multiplier, minimum=1.0),
        randomization_factor=section.number("randomization_factor", defaults.randomization_factor),
    )
    if settings.randomization_factor > 1:
        raise ConfigError(f"{section.where}.randomization_factor: expected a number between 0 and 1")
    section.finish()
    return settings


def read_queue_settings(config: ConfigReader, data_dir: Path, component_id: str) -> QueueSettings:
    section = config.section("sending_queue")
    if not section.boolean("enabled", True):
        raise ConfigError(
            f"{section.where}.enabled: the persistent sending queue cannot be disabled (it is what makes "
            "acknowledged data survive a restart or an outage)"
        )
    queue_size = section.integer("queue_size", 10_000, minimum=1)
    directory = section.string("directory")
    section.finish()
    safe_name = re.sub(r"[^A-Za-z0-9_.-]", "_", component_id)
    base = Path(directory) if directory is not None else data_dir / "exporter-queues"
    return QueueSettings(queue_size, base / f"{safe_name}.sqlite")
