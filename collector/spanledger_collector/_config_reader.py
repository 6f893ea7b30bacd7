"""Strict reading of YAML mappings: every error names the file (when there is one) and the full key.

One reader for every configuration the collector reads: the service configuration (receivers, processors,
exporters, extensions, pipelines), the price catalog and its overrides (``_pricing/_cloud_catalog.py``)
and the billing rules (``billing/_rules.py``). A typo anywhere fails the same way, naming the key
(``exporters.otlphttp/datadog.headers``, ``overrides.yaml: instances.x.gpus``) rather than being ignored.
"""

from __future__ import annotations

import re
from collections.abc import Hashable, Iterator, Mapping
from dataclasses import dataclass
from datetime import date
from decimal import Decimal, InvalidOperation
from typing import Any

import yaml

from ._component import ConfigError

__all__ = ["ConfigSection", "EnvValue", "load_yaml"]

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h)?\s*$")
_DURATION_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, None: 1.0}
_HEADER_NAME = re.compile(r"[A-Za-z0-9!#$%&'*+.^_`|~-]+")


@dataclass(frozen=True)
class EnvValue:
    """A value that was one ``${env:VAR}`` reference, as otelcol keeps it: ``value`` is the type YAML gives the
    variable's text (a number, a boolean, a list...), ``text`` the text itself, which a string key reads, so a
    password or token of digits (``0x1F2E``, ``007``) or one spelled ``null`` stays what the variable holds."""

    value: Any
    text: str


def _plain(value: Any) -> Any:
    """``value`` with its :class:`EnvValue` (and those of its items, one level down) replaced by their values."""
    if isinstance(value, EnvValue):
        return value.value
    if isinstance(value, list) and any(isinstance(item, EnvValue) for item in value):
        return [item.value if isinstance(item, EnvValue) else item for item in value]
    if isinstance(value, dict) and any(isinstance(item, EnvValue) for item in value.values()):
        return {key: item.value if isinstance(item, EnvValue) else item for key, item in value.items()}
    return value


def _text_of(value: Any) -> Any:
    """A string key's value: an :class:`EnvValue`'s text, anything else as it is."""
    return value.text if isinstance(value, EnvValue) else value


class _StrictLoader(yaml.SafeLoader):
    """PyYAML's safe loader, refusing a key given twice in one mapping (PyYAML keeps the last one silently)."""


def _mapping(loader: _StrictLoader, node: yaml.MappingNode) -> dict[Any, Any]:
    seen: set[Hashable] = set()
    for key_node, _ in node.value:
        if key_node.tag == "tag:yaml.org,2002:merge":  # `<<: *anchor` may be overridden by the keys beside it
            continue
        key = loader.construct_object(key_node, deep=True)
        if isinstance(key, Hashable):
            if key in seen:
                raise yaml.constructor.ConstructorError(
                    "while reading a mapping", node.start_mark, f"found {key!r} twice", key_node.start_mark
                )
            seen.add(key)
    loader.flatten_mapping(node)
    return dict(loader.construct_pairs(node, deep=True))


_StrictLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _mapping)


def load_yaml(text: str) -> Any:
    """A YAML document, as ``yaml.safe_load`` reads it but refusing duplicate keys (``yaml.YAMLError``)."""
    return yaml.load(text, Loader=_StrictLoader)  # a SafeLoader: plain data only


class ConfigSection:
    """A mapping read key by key; :meth:`done` rejects the keys nobody asked for.

    ``source`` (a file name) prefixes every message; ``error`` is the exception raised (``ConfigError``, or
    e.g. ``BillingError`` for the billing rules). Both carry over to the sections read from this one.
    """

    def __init__(self, value: Any, path: str, *, source: str = "", error: type[Exception] = ConfigError) -> None:
        self.path = path
        self.source = source
        self.error = error
        if isinstance(value, EnvValue):  # a whole mapping from one variable
            value = value.value
        if value is None:
            value = {}
        if not isinstance(value, Mapping) or not all(isinstance(key, str) for key in value):
            raise self._fail(path, f"expected a mapping, got {type(value).__name__} {value!r}")
        self.values: dict[str, Any] = dict(value)
        self._read: set[str] = set()

    def _fail(self, key: str, message: str) -> Exception:
        where = f"{self.source}: {key}" if self.source and key else (key or self.source)
        return self.error(f"{where}: {message}")

    def fail(self, name: str, message: str) -> Exception:
        """The error to raise for the value of ``name`` (``name=""``: this section itself)."""
        return self._fail(self.key(name) if name else self.path, message)

    def key(self, name: str) -> str:
        return f"{self.path}.{name}" if self.path else name

    def has(self, name: str) -> bool:
        return name in self.values

    def get(self, name: str, default: Any = None) -> Any:
        self._read.add(name)
        value = _plain(self.values.get(name))
        return default if value is None else value

    def section(self, name: str) -> ConfigSection:
        # the mapping as it is: its own readers take its references' values or texts
        self._read.add(name)
        return ConfigSection(self.values.get(name), self.key(name), source=self.source, error=self.error)

    def sections(self) -> Iterator[tuple[str, ConfigSection]]:
        """Every entry of a mapping of named entries (``instances: {NAME: {...}}``), each read as a section."""
        for name in list(self.values):
            yield name, self.section(name)

    def rest(self) -> dict[str, Any]:
        """The entries nobody asked for (a mapping whose other keys are data, e.g. regions); marks them read."""
        rest = {name: _plain(value) for name, value in self.values.items() if name not in self._read}
        self._read.update(rest)
        return rest

    def section_list(self, name: str) -> list[ConfigSection]:
        """A list of mappings, each read as a section keyed ``name[index]``."""
        return [
            ConfigSection(item, f"{self.key(name)}[{index}]", source=self.source, error=self.error)
            for index, item in enumerate(self.sequence(name))
        ]

    def sequence(self, name: str) -> list[Any]:
        value = self.get(name, [])
        if not isinstance(value, list):
            raise self.fail(name, f"expected a list, got {value!r}")
        return value

    def done(self) -> None:
        unknown = sorted(set(self.values) - self._read)
        if unknown:
            expected = ", ".join(sorted(self._read)) or "nothing"
            raise self.fail(str(unknown[0]), f"unknown key (expected one of: {expected})")

    def _raw(self, name: str, default: Any) -> Any:
        """The value of ``name`` as a string key reads it (an ``${env:…}`` reference's text)."""
        self._read.add(name)
        value = _text_of(self.values.get(name))
        return default if value is None else value

    def text(self, name: str, default: str | None = None) -> str | None:
        value = self._raw(name, default)
        if value is None:
            return None
        if not isinstance(value, str) or not value:
            raise self.fail(name, f"expected a non-empty string, got {value!r}")
        return value

    def secret(self, name: str) -> str | None:
        """A password or token: as :meth:`text`, but no message ever shows the value."""
        value = self._raw(name, None)
        if value is not None and (not isinstance(value, str) or not value):
            raise self.fail(name, f"expected a non-empty string (quote it in YAML), got a {type(value).__name__}")
        return value

    def secrets(self, name: str) -> tuple[str, ...]:
        """A list of passwords or tokens (:meth:`secret`'s rules, item by item)."""
        self._read.add(name)
        value = self.values.get(name)
        if isinstance(value, EnvValue):  # the whole list from one variable: YAML's reading of it
            value = value.value
        if value is None:
            return ()
        if not isinstance(value, list):
            raise self.fail(name, "expected a list")
        items = [_text_of(item) for item in value]
        for index, item in enumerate(items):
            if not isinstance(item, str) or not item:
                raise self.fail(f"{name}[{index}]", "expected a non-empty string (quote it in YAML)")
        return tuple(items)

    def required_text(self, name: str) -> str:
        value = self.text(name)
        if value is None:
            raise self.fail(name, "required")
        return value

    def choice(self, name: str, choices: tuple[str, ...], default: str) -> str:
        value = self.text(name, default)
        if value not in choices:
            raise self.fail(name, f"must be one of {list(choices)}, not {value!r}")
        return value

    def boolean(self, name: str, default: bool) -> bool:
        value = self.get(name, default)
        if not isinstance(value, bool):
            raise self.fail(name, f"expected true or false, got {value!r}")
        return value

    def integer(self, name: str, default: int, minimum: int = 0) -> int:
        value = self.get(name, default)
        if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
            raise self.fail(name, f"expected an integer >= {minimum}, got {value!r}")
        return value

    def number(self, name: str, default: float, minimum: float = 0.0) -> float:
        value = self.get(name, default)
        if isinstance(value, bool) or not isinstance(value, (int, float)) or value < minimum:
            raise self.fail(name, f"expected a number >= {minimum}, got {value!r}")
        return float(value)

    def decimal(self, name: str, default: Decimal | None = None) -> Decimal:
        """A non-negative exact amount, written as a string (``"1.25"``) or an integer (never a float)."""
        value = self.get(name, default)
        if isinstance(value, Decimal):
            return value
        if isinstance(value, bool) or not isinstance(value, (str, int)):
            raise self.fail(name, 'expected a price as a string ("1.25") or an integer')
        try:
            number = Decimal(str(value))
        except InvalidOperation:
            raise self.fail(name, f"{value!r} is not a number") from None
        if not number.is_finite() or number < 0:
            raise self.fail(name, f"{value!r} must be a non-negative number")
        return number

    def day(self, name: str) -> date:
        value = self.get(name)
        if isinstance(value, str):
            try:
                value = date.fromisoformat(value)
            except ValueError:
                value = None
        if not isinstance(value, date):
            raise self.fail(name, "expected a date (YYYY-MM-DD)")
        return value

    def pattern(self, name: str, flags: int = 0) -> re.Pattern[str]:
        text = self.required_text(name)
        try:
            return re.compile(text, flags)
        except re.error as error:
            raise self.fail(name, f"not a regular expression ({error})") from None

    def duration(self, name: str, default: str | float) -> float:
        """Seconds: a number of seconds, or a string such as ``300ms``, ``5s``, ``1m``."""
        value = self.get(name, default)
        if isinstance(value, (int, float)) and not isinstance(value, bool) and value >= 0:
            return float(value)
        match = _DURATION.match(value) if isinstance(value, str) else None
        if match is None:
            raise self.fail(name, f"expected a duration such as 200ms, 5s or 1m, got {value!r}")
        return float(match.group(1)) * _DURATION_UNITS[match.group(2)]

    def names(self, name: str) -> tuple[str, ...]:
        value = self.get(name, [])
        if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
            raise self.fail(name, f"expected a list of component ids, got {value!r}")
        return tuple(value)

    def strings(self, name: str) -> tuple[str, ...]:
        value = self._raw(name, [])
        if isinstance(value, list):
            value = [_text_of(item) for item in value]
        if not isinstance(value, list) or not all(isinstance(item, str) and item for item in value):
            raise self.fail(name, f"expected a list of strings, got {value!r}")
        return tuple(value)

    def headers(self, name: str) -> dict[str, str]:
        value = self._raw(name, {})
        if not isinstance(value, Mapping):
            raise self.fail(name, "expected a mapping of header names to values")
        headers: dict[str, str] = {}
        for header, raw_value in value.items():
            header_value = _text_of(raw_value)
            if not isinstance(header, str) or not _HEADER_NAME.fullmatch(header):
                raise self.fail(name, f"{header!r} is not a valid header name")
            if not isinstance(header_value, (str, int)) or "\n" in str(header_value) or "\r" in str(header_value):
                raise self.fail(f"{name}.{header}", "expected a single-line string")
            headers[header] = str(header_value)
        return headers
