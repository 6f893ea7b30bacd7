"""Validate the semconv registry and generate what is derived from it.

Reads every ``semconv/model/**/*.yaml`` file (OTel Weaver ``definition/2`` format) and writes:

* ``sdk/spanledger/semconv.py`` -- the Python constants every other module imports;
* ``semconv/README.md`` -- the docs table;
* ``semconv/generated/prometheus-names.json`` -- each metric's Prometheus series names, for the
  dashboard checks;
* from ``semconv/usage-sources.yaml`` (other producers' usage attributes, beside the registry):
  ``collector/spanledger_collector/_decode/_usage_sources.py`` and the table in ``docs/producers.md``.

Usage::

    python semconv/generate.py           # regenerate
    python semconv/generate.py --check   # exit 1 if the registry is invalid or outputs are stale

Weaver itself cannot be installed where this project is built (no Docker, no binary), so this
script implements the subset of ``weaver registry check`` / ``generate`` the project relies on.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parent.parent
MODEL_DIR = ROOT / "semconv" / "model"
PYTHON_OUT = ROOT / "sdk" / "spanledger" / "semconv.py"
DOCS_OUT = ROOT / "semconv" / "README.md"
PROMETHEUS_OUT = ROOT / "semconv" / "generated" / "prometheus-names.json"

SCALAR_TYPES = {"string", "int", "double", "boolean", "string[]", "int[]", "double[]", "boolean[]"}
STABILITIES = {"stable", "development", "alpha", "beta", "release_candidate", "deprecated"}
INSTRUMENTS = {"counter", "updowncounter", "gauge", "histogram"}
REQUIREMENT_LEVELS = {"required", "recommended", "opt_in"}
ATTRIBUTE_FIELDS = {"key", "type", "brief", "stability", "note", "examples", "deprecated", "annotations"}
METRIC_FIELDS = {"name", "instrument", "unit", "brief", "stability", "note", "attributes", "annotations"}
EVENT_FIELDS = {"name", "brief", "stability", "note", "attributes"}
FILE_SECTIONS = {"file_format", "attributes", "attribute_groups", "metrics", "events"}
# UCUM units to the Prometheus suffix the OTel translators append; braces-units get none.
UNIT_SUFFIXES = {"s": "seconds", "ms": "milliseconds", "By": "bytes", "h": "hours", "1": "ratio"}


class RegistryError(Exception):
    """The registry is invalid; the message names the file and the entry."""


@dataclass(frozen=True)
class Attribute:
    key: str
    type: str
    brief: str
    stability: str
    members: tuple[tuple[str, str, str], ...]
    renamed_to: str | None
    source: str


@dataclass(frozen=True)
class Metric:
    name: str
    instrument: str
    unit: str
    brief: str
    stability: str
    attributes: tuple[tuple[str, str], ...]
    buckets: tuple[float, ...] | None
    source: str


@dataclass(frozen=True)
class Event:
    name: str
    brief: str
    attributes: tuple[tuple[str, str], ...]
    source: str


@dataclass
class Registry:
    attributes: dict[str, Attribute] = field(default_factory=dict)
    metrics: dict[str, Metric] = field(default_factory=dict)
    events: dict[str, Event] = field(default_factory=dict)


def _require(condition: bool, where: str, message: str) -> None:
    if not condition:
        raise RegistryError(f"{where}: {message}")


def _check_fields(entry: dict[str, Any], allowed: set[str], where: str) -> None:
    unknown = sorted(set(entry) - allowed)
    _require(not unknown, where, f"unknown field(s) {', '.join(unknown)}")
    _require(bool(str(entry.get("brief", "")).strip()), where, "missing brief")
    _require(entry.get("stability") in STABILITIES, where, f"stability must be one of {sorted(STABILITIES)}")


def _requirement(ref: dict[str, Any], where: str) -> str:
    level = ref.get("requirement_level", "recommended")
    if isinstance(level, dict):
        _require(set(level) == {"conditionally_required"}, where, f"bad requirement_level {level!r}")
        return "conditionally_required"
    _require(level in REQUIREMENT_LEVELS, where, f"bad requirement_level {level!r}")
    return str(level)


def _parse_attribute(entry: dict[str, Any], where: str) -> Attribute:
    _check_fields(entry, ATTRIBUTE_FIELDS, where)
    key = entry.get("key")
    _require(isinstance(key, str) and bool(re.fullmatch(r"[a-z][a-z0-9_.]*", key)), where, f"bad key {key!r}")
    raw_type = entry.get("type")
    members: tuple[tuple[str, str, str], ...] = ()
    if isinstance(raw_type, dict):
        _require(set(raw_type) == {"members"} and bool(raw_type["members"]), where, "enum type needs members")
        parsed = []
        for member in raw_type["members"]:
            _require({"id", "value", "brief"} <= set(member), where, f"enum member {member!r} needs id, value, brief")
            parsed.append((str(member["id"]), str(member["value"]), str(member["brief"])))
        ids = [m[0] for m in parsed]
        _require(len(ids) == len(set(ids)), where, "duplicate enum member id")
        members = tuple(parsed)
        type_name = "enum"
    else:
        _require(raw_type in SCALAR_TYPES, where, f"unknown type {raw_type!r}")
        type_name = str(raw_type)
    deprecated = entry.get("deprecated")
    renamed_to = deprecated.get("renamed_to") if isinstance(deprecated, dict) else None
    return Attribute(key, type_name, str(entry["brief"]).strip(), entry["stability"], members, renamed_to, where)


def _parse_refs(
    refs: list[dict[str, Any]], groups: dict[str, list[tuple[str, str]]], where: str
) -> tuple[tuple[str, str], ...]:
    resolved: list[tuple[str, str]] = []
    for ref in refs or []:
        if "ref_group" in ref:
            _require(ref["ref_group"] in groups, where, f"unknown attribute group {ref['ref_group']!r}")
            resolved.extend(groups[ref["ref_group"]])
        else:
            _require("ref" in ref, where, f"attribute reference {ref!r} needs ref or ref_group")
            resolved.append((str(ref["ref"]), _requirement(ref, where)))
    return tuple(resolved)


def load_registry(model_dir: Path = MODEL_DIR) -> Registry:
    registry = Registry()
    documents = []
    for path in sorted(model_dir.rglob("*.yaml")):
        rel = path.relative_to(model_dir.parent).as_posix()
        try:
            document = yaml.safe_load(path.read_text()) or {}
        except yaml.YAMLError as exc:
            raise RegistryError(f"{rel}: not valid YAML: {exc}") from exc
        _require(document.get("file_format") == "definition/2", rel, "file_format must be definition/2")
        unknown = sorted(set(document) - FILE_SECTIONS)
        _require(not unknown, rel, f"unknown section(s) {', '.join(unknown)}")
        documents.append((rel, document))

    for rel, document in documents:
        for entry in document.get("attributes") or []:
            where = f"{rel}: attribute {entry.get('key')!r}"
            attribute = _parse_attribute(entry, where)
            _require(attribute.key not in registry.attributes, where, "duplicate attribute key")
            registry.attributes[attribute.key] = attribute

    groups: dict[str, list[tuple[str, str]]] = {}
    for rel, document in documents:
        for group in document.get("attribute_groups") or []:
            where = f"{rel}: attribute group {group.get('id')!r}"
            _require(group.get("id") not in groups, where, "duplicate attribute group id")
            groups[group["id"]] = list(_parse_refs(group.get("attributes"), groups, where))

    for rel, document in documents:
        for entry in document.get("metrics") or []:
            where = f"{rel}: metric {entry.get('name')!r}"
            _check_fields(entry, METRIC_FIELDS, where)
            name = entry.get("name")
            _require(isinstance(name, str) and name not in registry.metrics, where, "missing or duplicate metric name")
            _require(entry.get("instrument") in INSTRUMENTS, where, f"instrument must be one of {sorted(INSTRUMENTS)}")
            _require(isinstance(entry.get("unit"), str), where, "missing unit")
            buckets = (entry.get("annotations") or {}).get("buckets")
            if buckets is not None:
                _require(entry["instrument"] == "histogram", where, "buckets only apply to histograms")
                _require(list(buckets) == sorted(set(buckets)), where, "buckets must be strictly increasing")
            registry.metrics[name] = Metric(
                name,
                entry["instrument"],
                entry["unit"],
                str(entry["brief"]).strip(),
                entry["stability"],
                _parse_refs(entry.get("attributes"), groups, where),
                tuple(float(b) for b in buckets) if buckets else None,
                rel,
            )
        for entry in document.get("events") or []:
            where = f"{rel}: event {entry.get('name')!r}"
            _check_fields(entry, EVENT_FIELDS, where)
            name = entry.get("name")
            _require(isinstance(name, str) and name not in registry.events, where, "missing or duplicate event name")
            registry.events[name] = Event(
                name, str(entry["brief"]).strip(), _parse_refs(entry.get("attributes"), groups, where), rel
            )

    for signal in [*registry.metrics.values(), *registry.events.values()]:
        for key, _level in signal.attributes:
            _require(key in registry.attributes, signal.source, f"{signal.name} references unknown attribute {key!r}")
    for attribute in registry.attributes.values():
        if attribute.renamed_to:
            _require(attribute.renamed_to in registry.attributes, attribute.source, "renamed_to names no attribute")
    return registry


def constant_name(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9]+", "_", name).upper()


def enum_class_name(key: str) -> str:
    return "".join(part.capitalize() for part in re.split(r"[^A-Za-z0-9]+", key)) + "Values"


# The Prometheus naming rule, here only: the generated ``MetricSpec.prometheus_name``,
# ``PROMETHEUS_LABELS`` and prometheus-names.json carry its results to every other module.
def prometheus_label(key: str) -> str:
    """The Prometheus label of an attribute (``gen_ai.request.model`` -> ``gen_ai_request_model``)."""
    return re.sub(r"[^A-Za-z0-9_]", "_", key)


def prometheus_base_name(metric: Metric) -> str:
    """The exposition base name (without ``_total``/``_bucket``/...), as the OTel Prometheus translators name it."""
    base = prometheus_label(metric.name)
    suffix = UNIT_SUFFIXES.get(metric.unit)
    if suffix and not base.endswith("_" + suffix) and not (suffix == "ratio" and metric.instrument != "gauge"):
        base = f"{base}_{suffix}"
    return base


def prometheus_series(metric: Metric) -> list[str]:
    base = prometheus_base_name(metric)
    if metric.instrument == "counter":
        return [f"{base}_total"]
    if metric.instrument == "histogram":
        return [f"{base}_bucket", f"{base}_sum", f"{base}_count"]
    return [base]


_TYPE_HINTS = {"int": "int", "double": "float", "boolean": "bool", "string": "str"}


def render_python(registry: Registry) -> str:
    out = [
        "# ruff: noqa: E501",
        '"""Names of every attribute, event and metric spanledger emits.',
        "",
        "Generated by ``semconv/generate.py`` from ``semconv/model``; do not edit by hand.",
        '"""',
        "",
        "from __future__ import annotations",
        "",
        "from enum import Enum",
        "from typing import Final, NamedTuple",
        "",
        "",
        "class MetricSpec(NamedTuple):",
        '    """How a registry metric is created: instrument kind, unit, description and bucket advice."""',
        "",
        "    name: str",
        "    instrument: str",
        "    unit: str",
        "    description: str",
        "    buckets: tuple[float, ...] | None",
        "    prometheus_name: str",
        '    """The Prometheus exposition base name (without ``_total``, ``_bucket``, ...)."""',
        "",
        "",
        "# Attributes",
    ]
    for attribute in sorted(registry.attributes.values(), key=lambda a: a.key):
        out.append(f"{constant_name(attribute.key)}: Final = {attribute.key!r}")
        note = attribute.brief if not attribute.renamed_to else f"Deprecated: renamed to {attribute.renamed_to}."
        out.append(f'"""{note}"""')
    out += ["", "", "# Enum attribute values"]
    for attribute in sorted(registry.attributes.values(), key=lambda a: a.key):
        if not attribute.members:
            continue
        out += [
            "",
            "",
            f"class {enum_class_name(attribute.key)}(str, Enum):",
            f'    """Values of ``{attribute.key}``."""',
            "",
        ]
        for member_id, value, brief in attribute.members:
            out.append(f"    {constant_name(member_id)} = {value!r}")
            out.append(f'    """{brief}"""')
    out += ["", "", "# Events"]
    for event in sorted(registry.events.values(), key=lambda e: e.name):
        out.append(f"EVENT_{constant_name(event.name)}: Final = {event.name!r}")
        out.append(f'"""{event.brief}"""')
    out += ["", "# Metrics"]
    for metric in sorted(registry.metrics.values(), key=lambda m: m.name):
        buckets = f"({', '.join(repr(b) for b in metric.buckets)},)" if metric.buckets else "None"
        out.append(
            f"METRIC_{constant_name(metric.name)}: Final = MetricSpec("
            f"{metric.name!r}, {metric.instrument!r}, {metric.unit!r}, {metric.brief!r}, {buckets}, "
            f"{prometheus_base_name(metric)!r})"
        )
    out += [
        "",
        "PROMETHEUS_LABELS: Final[dict[str, str]] = {",
        *(f"    {key!r}: {prometheus_label(key)!r}," for key in sorted(registry.attributes)),
        "}",
        '"""Each attribute\'s Prometheus label name."""',
    ]
    renames = {a.key: a.renamed_to for a in registry.attributes.values() if a.renamed_to}
    out += [
        "",
        "RENAMED_ATTRIBUTES: Final[dict[str, str]] = {",
        *(f"    {old!r}: {new!r}," for old, new in sorted(renames.items())),
        "}",
        '"""Deprecated attribute name -> its replacement, for dual emission during a rename."""',
        "",
    ]
    return "\n".join(out)


def render_docs(registry: Registry) -> str:
    out = [
        "# spanledger semantic conventions",
        "",
        "The single source of every attribute, event and metric name spanledger emits, in",
        "[OTel Weaver](https://github.com/open-telemetry/weaver)'s `definition/2` registry format.",
        "`gen_ai.*`, `cloud.*`, `aws.*` and other OTel names are restated from upstream (see each file's header);",
        "spanledger's own names live under `spanledger.`.",
        "",
        "Edit `model/`, then run `python semconv/generate.py` to regenerate `sdk/spanledger/semconv.py`,",
        "this table and `generated/prometheus-names.json`. The test suite fails when they are stale.",
        "",
        "<!-- Generated by semconv/generate.py; do not edit by hand. -->",
        "",
        "## Attributes",
        "",
        "| Key | Type | Stability | Description |",
        "| --- | --- | --- | --- |",
    ]
    for attribute in sorted(registry.attributes.values(), key=lambda a: a.key):
        type_text = attribute.type
        if attribute.members:
            type_text = "enum: " + ", ".join(f"`{m[1]}`" for m in attribute.members)
        brief = attribute.brief if not attribute.renamed_to else f"Deprecated: renamed to `{attribute.renamed_to}`."
        out.append(f"| `{attribute.key}` | {type_text} | {attribute.stability} | {brief} |")
    out += ["", "## Events", "", "| Name | Attributes | Description |", "| --- | --- | --- |"]
    for event in sorted(registry.events.values(), key=lambda e: e.name):
        attrs = ", ".join(f"`{k}`" for k, _ in event.attributes)
        out.append(f"| `{event.name}` | {attrs} | {event.brief} |")
    out += [
        "",
        "## Metrics",
        "",
        "| Name | Instrument | Unit | Prometheus series | Attributes | Description |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    for metric in sorted(registry.metrics.values(), key=lambda m: m.name):
        attrs = ", ".join(f"`{k}` ({level})" for k, level in metric.attributes)
        series = ", ".join(f"`{s}`" for s in prometheus_series(metric))
        out.append(f"| `{metric.name}` | {metric.instrument} | `{metric.unit}` | {series} | {attrs} | {metric.brief} |")
    return "\n".join(out) + "\n"


def render_prometheus(registry: Registry) -> str:
    names = {
        metric.name: {
            "instrument": metric.instrument,
            "unit": metric.unit,
            "series": prometheus_series(metric),
            "labels": sorted(prometheus_label(key) for key, _ in metric.attributes),
        }
        for metric in sorted(registry.metrics.values(), key=lambda m: m.name)
    }
    return json.dumps(names, indent=2, sort_keys=True) + "\n"


def outputs(registry: Registry) -> dict[Path, str]:
    return {
        PYTHON_OUT: render_python(registry),
        DOCS_OUT: render_docs(registry),
        PROMETHEUS_OUT: render_prometheus(registry),
        **usage_source_outputs(registry),
    }


# --- Usage sources (issue 15): other producers' attributes that carry usage, beside the registry. ---

USAGE_SOURCES_FILE = ROOT / "semconv" / "usage-sources.yaml"
USAGE_SOURCES_PYTHON_OUT = ROOT / "collector" / "spanledger_collector" / "_decode" / "_usage_sources.py"
USAGE_SOURCES_DOCS_OUT = ROOT / "docs" / "producers.md"
USAGE_SOURCES_DOCS_BEGIN = "<!-- usage-sources: generated by semconv/generate.py from semconv/usage-sources.yaml -->"
USAGE_SOURCES_DOCS_END = "<!-- usage-sources: end -->"
USAGE_SOURCE_FIELDS = {"name", "dialect", "field", "source"}
PROVIDER_VALUE_FIELDS = {"value", "provider", "dialect", "source"}


@dataclass(frozen=True)
class UsageSource:
    name: str
    dialect: str
    field: str
    source: str


@dataclass(frozen=True)
class ProviderValue:
    value: str
    provider: str
    dialect: str
    source: str


@dataclass
class UsageSources:
    rows: list[UsageSource]
    provider_values: list[ProviderValue]


def load_usage_sources(registry: Registry, path: Path = USAGE_SOURCES_FILE) -> UsageSources:
    """``usage-sources.yaml``, validated: known dialects and fields, one row per name and value, a source each,
    provider values that are ``gen_ai.provider.name`` members."""
    rel = path.name
    try:
        document = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as exc:
        raise RegistryError(f"{rel}: not valid YAML: {exc}") from exc
    _require(document.get("file_format") == "usage-sources/1", rel, "file_format must be usage-sources/1")
    unknown = sorted(set(document) - {"file_format", "dialects", "fields", "sources", "provider_values"})
    _require(not unknown, rel, f"unknown section(s) {', '.join(unknown)}")
    dialects = document.get("dialects") or {}
    fields = document.get("fields") or {}
    rows: list[UsageSource] = []
    for index, entry in enumerate(document.get("sources") or []):
        where = f"{rel}: source {index + 1} ({entry.get('name')!r})"
        unknown = sorted(set(entry) - USAGE_SOURCE_FIELDS)
        _require(not unknown, where, f"unknown field(s) {', '.join(unknown)}")
        _require(isinstance(entry.get("name"), str) and entry["name"], where, "missing name")
        _require(entry.get("dialect") in dialects, where, f"dialect must be one of {sorted(dialects)}")
        _require(entry.get("field") in fields, where, f"field must be one of {sorted(fields)}")
        _require(isinstance(entry.get("source"), str) and entry["source"], where, "missing source (its defining file)")
        _require(all(row.name != entry["name"] for row in rows), where, "duplicate name")
        rows.append(UsageSource(entry["name"], entry["dialect"], entry["field"], entry["source"]))
    unused = sorted(set(fields) - {row.field for row in rows})
    _require(not unused, rel, f"field(s) without a source: {', '.join(unused)}")
    providers = registry.attributes.get("gen_ai.provider.name")
    members = {value for _id, value, _brief in providers.members} if providers else set()
    values: list[ProviderValue] = []
    for index, entry in enumerate(document.get("provider_values") or []):
        where = f"{rel}: provider value {index + 1} ({entry.get('value')!r})"
        unknown = sorted(set(entry) - PROVIDER_VALUE_FIELDS)
        _require(not unknown, where, f"unknown field(s) {', '.join(unknown)}")
        _require(
            isinstance(entry.get("value"), str) and entry["value"] not in members,
            where,
            "missing value, or one that is a gen_ai.provider.name member already",
        )
        _require(entry.get("provider") in members, where, "provider must be a gen_ai.provider.name member")
        _require(entry.get("dialect") in dialects, where, f"dialect must be one of {sorted(dialects)}")
        _require(isinstance(entry.get("source"), str) and entry["source"], where, "missing source")
        _require(all(value.value != entry["value"] for value in values), where, "duplicate value")
        values.append(ProviderValue(entry["value"], entry["provider"], entry["dialect"], entry["source"]))
    return UsageSources(rows, values)


def render_usage_sources_python(sources: UsageSources, registry: Registry) -> str:
    """A module of the rows; a name in the registry is spelled through its ``semconv`` constant."""
    rows = sources.rows

    def name(row: UsageSource) -> str:
        return f"semconv.{constant_name(row.name)}" if row.name in registry.attributes else json.dumps(row.name)

    out = [
        '"""Span attributes other producers report usage in, by usage field, in precedence order.',
        "",
        "Generated by ``semconv/generate.py`` from ``semconv/usage-sources.yaml``; do not edit by hand.",
        '"""',
        "",
        "from __future__ import annotations",
        "",
        "from typing import Final, NamedTuple",
        "",
        "from spanledger import semconv",
        "",
        '__all__ = ["PROVIDER_VALUES", "USAGE_SOURCES", "UsageSource"]',
        "",
        "",
        "class UsageSource(NamedTuple):",
        '    """One source attribute: its name, the producer dialect that writes it and the usage field it fills."""',
        "",
        "    name: str",
        "    dialect: str",
        "    field: str",
        "",
        "",
        "USAGE_SOURCES: Final[tuple[UsageSource, ...]] = (",
        *(f"    UsageSource({name(row)}, {json.dumps(row.dialect)}, {json.dumps(row.field)})," for row in rows),
        ")",
        "",
        '# Other dialects\' provider values -> gen_ai.provider.name (a value also covers "<value>.<api>").',
        "PROVIDER_VALUES: Final[dict[str, str]] = {",
        *(f"    {json.dumps(value.value)}: {json.dumps(value.provider)}," for value in sources.provider_values),
        "}",
        "",
    ]
    return "\n".join(out)


def render_usage_sources_table(sources: UsageSources) -> str:
    out = ["| Attribute | Dialect | Field | Defined in |", "| --- | --- | --- | --- |"]
    out += [f"| `{row.name}` | {row.dialect} | {row.field} | {row.source} |" for row in sources.rows]
    out += [
        "",
        "Provider values read as `gen_ai.provider.name` values: a value or its longest dotted prefix that is a",
        "member is kept (`openai.chat` is `openai`), else mapped by its longest dotted prefix below:",
        "",
    ]
    out += ["| Value | Provider | Dialect | Defined in |", "| --- | --- | --- | --- |"]
    out += [f"| `{v.value}` | `{v.provider}` | {v.dialect} | {v.source} |" for v in sources.provider_values]
    return "\n".join(out)


def usage_source_outputs(registry: Registry) -> dict[Path, str]:
    """The generated module, and docs/producers.md with its table (between the markers) regenerated."""
    sources = load_usage_sources(registry)
    docs = USAGE_SOURCES_DOCS_OUT.read_text() if USAGE_SOURCES_DOCS_OUT.exists() else ""
    where = USAGE_SOURCES_DOCS_OUT.relative_to(ROOT).as_posix()
    begin, end = docs.find(USAGE_SOURCES_DOCS_BEGIN), docs.find(USAGE_SOURCES_DOCS_END)
    _require(0 <= begin < end, where, f"lacks the markers {USAGE_SOURCES_DOCS_BEGIN} and {USAGE_SOURCES_DOCS_END}")
    table = render_usage_sources_table(sources)
    docs = f"{docs[: begin + len(USAGE_SOURCES_DOCS_BEGIN)]}\n\n{table}\n\n{docs[end:]}"
    return {USAGE_SOURCES_PYTHON_OUT: render_usage_sources_python(sources, registry), USAGE_SOURCES_DOCS_OUT: docs}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="fail if the registry is invalid or outputs are stale")
    args = parser.parse_args(argv)
    try:
        registry = load_registry()
        generated = outputs(registry)
    except RegistryError as exc:
        print(f"semconv registry invalid: {exc}", file=sys.stderr)
        return 1
    stale = []
    for path, text in generated.items():
        current = path.read_text() if path.exists() else None
        if current == text:
            continue
        if args.check:
            stale.append(path.relative_to(ROOT).as_posix())
        else:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text)
    if stale:
        print(f"generated files are stale: {', '.join(stale)}; run python semconv/generate.py", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
