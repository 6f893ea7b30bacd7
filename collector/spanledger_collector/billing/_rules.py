"""The classification rules (``rules.yaml``): which meter a billing line belongs to, compiled to SQL."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import yaml

from .._config_reader import ConfigSection, load_yaml
from ._errors import BillingError

__all__ = ["DUCKDB_RULES", "LINE_FIELDS", "SHARED_POLICIES", "Rule", "RuleDialect", "Rules", "load_rules"]

# Rule field -> SQL over a billing_lines row aliased ``l``; ``{json:Key}`` is the text of SkuPriceDetails' key,
# written in the engine's dialect (RuleDialect).
LINE_FIELDS: dict[str, str] = {
    "usage_type": "l.usage_type",
    "charge_description": "l.charge_description",
    "sku_meter": "l.sku_meter",
    "service_name": "l.service_name",
    "pricing_unit": "l.pricing_unit",
    "consumed_unit": "l.consumed_unit",
    "charge_category": "l.charge_category",
    "token_direction": "{json:TokenDirection}",
    "token_cache_action": "{json:TokenCacheAction}",
    "model": "l.model",
}
_KINDS = {"capacity", "consumption", "shared", "none"}
_MATCH_ON = ("resource", "model")
_CAPACITY_PER = ("accelerator", "instance")
SHARED_POLICIES = ("none", "proportional")
"""How shared lines are split: ``none`` (wholly unallocated) or ``proportional`` (over the traces in their billing
account and period, by the EffectiveCost allocated to them directly)."""


@dataclass(frozen=True)
class Rule:
    id: str
    kind: str
    fact_meters: tuple[str, ...]
    resource_type: str | None
    match_on: str
    boundary: str | None
    unit_seconds: int
    capacity_per: str
    unit_factor: int
    when: tuple[tuple[tuple[str, str], ...], ...]


@dataclass(frozen=True)
class Rules:
    rules: tuple[Rule, ...]
    accelerators: dict[str, int]
    method_version: str
    shared_policy: str
    digest: str

    def case_sql(self, dialect: RuleDialect | None = None) -> str:
        """``CASE`` yielding the id of the first rule a billing line (alias ``l``) matches, else NULL."""
        dialect = dialect or DUCKDB_RULES
        literal = dialect.literal
        branches = []
        for rule in self.rules:
            alternatives = []
            for alternative in rule.when:
                terms = []
                for field, pattern in alternative:
                    negate = field.startswith("not_")
                    column = _JSON_KEY.sub(
                        lambda m: dialect.json_text.format(key=m.group(1)), LINE_FIELDS[field.removeprefix("not_")]
                    )
                    test = f"{dialect.matches}(coalesce({column}, ''), {literal(pattern)})"
                    terms.append(f"NOT {test}" if negate else test)
                alternatives.append("(" + " AND ".join(terms) + ")")
            branches.append(f"WHEN {' OR '.join(alternatives)} THEN {literal(rule.id)}")
        return "CASE " + " ".join(branches) + " END"

    def line_columns(self, dialect: RuleDialect | None = None) -> tuple[str, ...]:
        """The ``billing_lines`` columns the rules' tests read (sorted): a line's rule depends on these alone."""
        dialect = dialect or DUCKDB_RULES
        fields = {field.removeprefix("not_") for rule in self.rules for terms in rule.when for field, _ in terms}
        sql = " ".join(
            _JSON_KEY.sub(lambda m: dialect.json_text.format(key=m.group(1)), LINE_FIELDS[field]) for field in fields
        )
        return tuple(sorted(set(_COLUMN.findall(sql))))


def _literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


_JSON_KEY = re.compile(r"\{json:(\w+)\}")
_COLUMN = re.compile(r"\bl\.(\w+)")


@dataclass(frozen=True)
class RuleDialect:
    """How an engine writes the rules' tests: its RE2 match function, JSON key text and string literal."""

    matches: str
    json_text: str
    """``{key}``: the key of ``l.sku_price_details``."""
    literal: Callable[[str], str]


DUCKDB_RULES = RuleDialect("regexp_matches", "json_extract_string(l.sku_price_details, '$.{key}')", _literal)


def _rule(section: ConfigSection) -> Rule:
    kind = section.required_text("kind")
    if kind not in _KINDS:
        raise section.fail("kind", f"must be one of {sorted(_KINDS)}, not {kind!r}")
    when = []
    for alternative in section.section_list("when"):
        terms = []
        for field, pattern in alternative.rest().items():
            if field.removeprefix("not_") not in LINE_FIELDS:
                raise alternative.fail(field, f"unknown field (known: {sorted(LINE_FIELDS)})")
            if not isinstance(pattern, str):
                raise alternative.fail(field, f"expected a regular expression, got {pattern!r}")
            terms.append((field, pattern))
        when.append(tuple(terms))
    rule = Rule(
        id=section.required_text("id"),
        kind=kind,
        fact_meters=section.strings("fact_meters"),
        resource_type=section.text("resource_type"),
        match_on=section.choice("match_on", _MATCH_ON, "resource"),
        boundary=section.text("boundary"),
        unit_seconds=section.integer("unit_seconds", 3600, minimum=1),
        capacity_per=section.choice("capacity_per", _CAPACITY_PER, "accelerator"),
        unit_factor=section.integer("unit_factor", 1, minimum=1),
        when=tuple(when),
    )
    section.done()
    return rule


def load_rules(path: Path | None = None) -> Rules:
    """The packaged rules, or the rules file at ``path``.

    Read with the collector's strict config reader: a ``BillingError`` names the file and key
    (``rules.yaml: rules[3].when[0].usage_typ: unknown field``).
    """
    if path is None:
        text = resources.files("spanledger_collector.billing").joinpath("rules.yaml").read_text(encoding="utf-8")
        name = "rules.yaml"
    else:
        try:
            text = path.read_text(encoding="utf-8")
        except OSError as error:
            raise BillingError(f"{path}: cannot read the rules file ({error.strerror})") from None
        name = str(path)
    try:
        document = load_yaml(text)
    except yaml.YAMLError as error:
        raise BillingError(f"{name}: not valid YAML ({error})") from None
    root = ConfigSection(document, "", source=name, error=BillingError)
    root.integer("version", 1, minimum=1)
    if not root.has("rules"):
        raise root.fail("rules", "required")
    rules = tuple(_rule(section) for section in root.section_list("rules"))
    shared_policy = root.text("shared_policy", "none")
    if shared_policy not in SHARED_POLICIES:
        # Worded as the billing answers have always said it (the API and CLI show it as is).
        raise BillingError(f"{name}: shared_policy must be one of {list(SHARED_POLICIES)}, not {shared_policy!r}")
    accelerators = root.section("accelerators")
    counts = {instance.lower(): accelerators.integer(instance, 1, minimum=1) for instance in list(accelerators.values)}
    accelerators.done()
    method_version = root.text("method_version", "spanledger.allocation.v2") or "spanledger.allocation.v2"
    root.done()
    return Rules(
        rules=rules,
        accelerators=counts,
        method_version=method_version,
        shared_policy=shared_policy,
        digest=hashlib.sha256(text.encode()).hexdigest()[:16],
    )
