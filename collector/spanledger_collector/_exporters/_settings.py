"""Exporter configuration: a strict reader of the YAML mapping and the settings every exporter shares."""

from __future__ import annotations

import random
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from .._component import ConfigError
from .._config_reader import ConfigSection

__all__ = ["QueueSettings", "RetrySettings", "read_queue_settings", "read_retry_settings"]


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


def read_retry_settings(config: ConfigSection) -> RetrySettings:
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
        raise ConfigError(f"{section.path}.randomization_factor: expected a number between 0 and 1")
    section.done()
    return settings


def read_queue_settings(config: ConfigSection, data_dir: Path, component_id: str) -> QueueSettings:
    section = config.section("sending_queue")
    if not section.boolean("enabled", True):
        raise ConfigError(
            f"{section.path}.enabled: the persistent sending queue cannot be disabled (it is what makes "
            "acknowledged data survive a restart or an outage)"
        )
    queue_size = section.integer("queue_size", 10_000, minimum=1)
    directory = section.text("directory")
    section.done()
    safe_name = re.sub(r"[^A-Za-z0-9_.-]", "_", component_id)
    base = Path(directory) if directory is not None else data_dir / "exporter-queues"
    return QueueSettings(queue_size, base / f"{safe_name}.sqlite")
