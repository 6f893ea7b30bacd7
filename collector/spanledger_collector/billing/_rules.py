"""The classification rules (``rules.yaml``): which meter a billing line belongs to, compiled to SQL."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

from ._errors import BillingError

__all__ = ["LINE_FIELDS", "SHARED_POLICIES", "Rule", "Rules", "load_rules"]

# Rule field -> SQL over a billing_lines row aliased ``l``.
LINE_FIELDS: dict[str, str] = {
    "usage_type": "l.usage_type",
    "charge_description": "l.charge_description",
    "sku_meter": "l.sku_meter",
    "service_name": "l.service_name",
    "pricing_unit": "l.pricing_unit",
    "consumed_unit": "l.consumed_unit",
    "charge_category": "l.charge_category",
    "token_direction": "json_extract_string(l.sku_price_details, '$.TokenDirection')",
    "token_cache_action": "json_extract_string(l.sku_price_details, '$.TokenCacheAction')",
    "model": "l.model",
}
_KINDS = {"capacity", "consumption", "shared", "none"}
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

    def case_sql(self) -> str:
        """``CASE`` yielding the id of the first rule a billing line (alias ``l``) matches, else NULL."""
        branches = []
        for rule in self.rules:
            alternatives = []
            for alternative in rule.when:
                terms = []
                for field, pattern in alternative:
                    negate = field.startswith("not_")
                    column = LINE_FIELDS[field.removeprefix("not_")]
                    test = f"regexp_matches(coalesce({column}, ''), {_literal(pattern)})"
                    terms.append(f"NOT {test}" if negate else test)
                alternatives.append("(" + " AND ".join(terms) + ")")
            branches.append(f"WHEN {' OR '.join(alternatives)} THEN {_literal(rule.id)}")
        return "CASE " + " ".join(branches) + " END"


def _literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def _rule(raw: dict[str, Any], where: str) -> Rule:
    try:
        kind = raw["kind"]
        if kind not in _KINDS:
            raise BillingError(f"{where}: kind must be one of {sorted(_KINDS)}, not {kind!r}")
        when = tuple(tuple((str(k), str(v)) for k, v in alternative.items()) for alternative in raw["when"])
        for alternative in when:
            for field, _ in alternative:
                if field.removeprefix("not_") not in LINE_FIELDS:
                    raise BillingError(f"{where}: unknown field {field!r} (known: {sorted(LINE_FIELDS)})")
        return Rule(
            id=str(raw["id"]),
            kind=kind,
            fact_meters=tuple(raw.get("fact_meters", ())),
            resource_type=raw.get("resource_type"),
            match_on=raw.get("match_on", "resource"),
            boundary=raw.get("boundary"),
            unit_seconds=int(raw.get("unit_seconds", 3600)),
            capacity_per=raw.get("capacity_per", "accelerator"),
            unit_factor=int(raw.get("unit_factor", 1)),
            when=when,
        )
    except (KeyError, TypeError, ValueError, AttributeError) as error:
        raise BillingError(f"{where}: invalid rule: {error}") from error


def load_rules(path: Path | None = None) -> Rules:
    """The packaged rules, or the rules file at ``path``."""
    if path is None:
        text = resources.files("spanledger_collector.billing").joinpath("rules.yaml").read_text(encoding="utf-8")
        name = "rules.yaml"
    else:
        text, name = path.read_text(encoding="utf-8"), str(path)
    document = yaml.safe_load(text)
    rules = tuple(_rule(raw, f"{name}: rule {index + 1}") for index, raw in enumerate(document["rules"]))
    shared_policy = str(document.get("shared_policy", "none"))
    if shared_policy not in SHARED_POLICIES:
        raise BillingError(f"{name}: shared_policy must be one of {list(SHARED_POLICIES)}, not {shared_policy!r}")
    return Rules(
        rules=rules,
        accelerators={str(k).lower(): int(v) for k, v in document.get("accelerators", {}).items()},
        method_version=str(document.get("method_version", "spanledger.allocation.v1")),
        shared_policy=shared_policy,
        digest=hashlib.sha256(text.encode()).hexdigest()[:16],
    )
