"""Allocation runs: split each billing line of a period over the usage facts that used it, in the store's engine.

Per billing line (see docs/billing.md):

* classify it by the rules (capacity, consumption, shared, none);
* match facts of the line's meters on the same resource (or model), account and overlapping charge
  period; a fact straddling periods is prorated by overlap (in microseconds);
* capacity: ``C`` = billed hours x accelerators (or instances) x 3600; busy ``U`` = min(sum of the facts,
  union of their intervals x accelerators) so concurrent requests are not counted twice; consumption:
  ``C`` = billed quantity, ``U`` = sum of the facts; ``D = max(C, U)`` (``U > C`` is flagged);
* the line's cost x ``U / D`` is allocated (rounded to 10^-12) and split over traces by their share of
  the usage with largest-remainder rounding; the rest is one unallocated row (idle | untracked |
  no_usage_model). All integer arithmetic, so allocated + unallocated = the line's cost exactly, for
  EffectiveCost, BilledCost and ListCost alike;
* shared lines (NAT, load balancers, support, ...) stay unallocated under ``shared_policy: none``; under
  ``proportional`` each one is split whole, with the same largest remainder, over the traces that got cost
  directly from capacity and consumption lines of its billing account (of the period when it has none),
  weighted by that directly allocated EffectiveCost.

The steps are SQL files per engine (``sql/duckdb/allocation/*.sql``, ``sql/clickhouse/allocation/*.sql``, the same
names); this driver runs them in order through an :class:`~._engine.Engine`. Both engines give identical rows:
integer arithmetic in 128 bits, rounding half away from zero, ties of the largest remainder to the smaller trace id,
a trace's dimensions from its first fact (by start time, span id, meter).
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from spanledger.semconv import SpanledgerMeterValues as Meter

from .._store import USAGE_FACTS
from ._engine import Engine, Window, engine_of
from ._errors import BillingError, CurrencyMixError
from ._rules import DUCKDB_RULES, RuleDialect, Rules, load_rules
from ._schema import MONEY_SCALE, QUANTITY_SCALE, ensure_billing_tables

__all__ = ["RunResult", "allocate", "parse_period"]

_UNIT_OF_METER = {
    Meter.ACCELERATOR_SECONDS.value: "s",
    Meter.ENDPOINT_SECONDS.value: "s",
    Meter.EGRESS_BYTES.value: "By",
    Meter.INGRESS_BYTES.value: "By",
}
_TOKEN_METERS = (
    Meter.LLM_INPUT_TOKENS,
    Meter.LLM_CACHE_READ_TOKENS,
    Meter.LLM_CACHE_WRITE_TOKENS,
    Meter.LLM_OUTPUT_TOKENS,
)
_TEMP_TABLES = (
    "al_rules", "al_rule_meters", "al_accelerators", "al_lines", "al_matches", "al_several", "al_traces",
    "al_line_usage", "al_split", "al_shares", "al_thresholds", "al_shared_weights", "al_split_shared", "al_no_facts",
)  # fmt: skip
_CLASS_COLUMNS = ("consumed_unit", "instance_type", "pricing_unit", "sku_price_details")
"""What lines.sql reads of a line besides the rules' columns to find its unit's seconds or number prefix and its
accelerators: with them, a line's class (worked out once per distinct combination)."""
_NULL_SAFE_EQUAL = {
    "duckdb": "c.{column} IS NOT DISTINCT FROM l.{column}",
    "clickhouse": "isNotDistinctFrom(c.{column}, l.{column})",
}
_RUN_COLUMNS = (
    "run_id", "billing_period_start", "created_at", "snapshot_ids", "facts_fingerprint", "method_version",
    "rules_digest", "billing_currency", "line_count", "matched_fact_count",
)  # fmt: skip


@dataclass(frozen=True)
class RunResult:
    billing_period: str
    run_id: int
    status: str
    """``allocated`` (a new run) or ``unchanged`` (inputs identical to the current run)."""
    line_count: int
    matched_fact_count: int


def parse_period(text: str) -> datetime:
    """``YYYY-MM`` (or a date/time inside the month's first day) -> the billing period start."""
    try:
        return datetime.strptime(text[:7], "%Y-%m")
    except ValueError as error:
        raise BillingError(f"period {text!r}: expected YYYY-MM") from error


def allocate(
    store: Any,
    periods: Sequence[str] | None = None,
    *,
    force: bool = False,
    rules_path: Path | None = None,
) -> list[RunResult]:
    """Run the allocation for ``periods`` (``YYYY-MM``; default: every period with billing lines).

    ``store``: a DuckDB connection, a clickhouse-connect client or an :class:`~._engine.Engine`. A period whose
    current snapshots and matching facts are unchanged since its current run is skipped unless ``force``. Each
    new run is kept; the previous run of the period is marked superseded.
    """
    engine = engine_of(store)
    ensure_billing_tables(engine)
    rules = load_rules(rules_path)
    if periods is None:
        starts = [_naive(row[0]) for row in engine.rows(engine.sql("allocation/periods"))]
    else:
        starts = [parse_period(p) for p in periods]
    return [_allocate_in_transaction(engine, start, rules, force) for start in starts]


def _naive(moment: datetime) -> datetime:
    return moment.replace(tzinfo=None) if moment.tzinfo else moment


def _allocate_in_transaction(engine: Engine, start: datetime, rules: Rules, force: bool) -> RunResult:
    try:
        with engine.transaction():
            return _allocate_period(engine, start, rules, force)
    finally:
        engine.drop_temporary(_TEMP_TABLES)


def _usage_unit(meters: Sequence[str]) -> str | None:
    if not meters:
        return None
    meter = meters[0]
    return _UNIT_OF_METER.get(meter, "{token}" if meter in {m.value for m in _TOKEN_METERS} else "1")


def _load_rule_tables(engine: Engine, rules: Rules) -> None:
    engine.execute(engine.sql("allocation/rule_tables"))
    engine.insert(
        "al_rules",
        ("rule_id", "kind", "rule_resource_type", "match_on", "boundary", "unit_seconds", "capacity_per",
         "unit_factor", "usage_unit"),
        [
            (r.id, r.kind, r.resource_type, r.match_on, r.boundary, r.unit_seconds, r.capacity_per, r.unit_factor,
             _usage_unit(r.fact_meters))
            for r in rules.rules
        ],
    )  # fmt: skip
    engine.insert(
        "al_rule_meters", ("rule_id", "meter"), [(r.id, meter) for r in rules.rules for meter in r.fact_meters]
    )
    engine.insert("al_accelerators", ("instance_type", "accelerators"), list(rules.accelerators.items()))


def _allocate_period(engine: Engine, period_start: datetime, rules: Rules, force: bool) -> RunResult:
    period = period_start.strftime("%Y-%m")
    period_literal = engine.literal(period_start)
    snapshots = engine.rows(engine.sql("allocation/period_snapshots", period_start=period_literal))
    if not snapshots or not snapshots[0][0]:
        raise BillingError(f"billing period {period}: no billing lines imported")
    snapshot_ids, currencies = list(snapshots[0][0]), list(snapshots[0][1])
    if len(currencies) > 1:
        raise CurrencyMixError(
            f"billing period {period} mixes currencies {' and '.join(currencies)} across its snapshots; "
            "one allocation uses one currency"
        )
    currency = currencies[0]
    engine.execute(engine.sql("allocation/macros"))
    _load_rule_tables(engine, rules)
    has_facts = engine.has_table("usage_facts")
    if not has_facts:
        engine.execute(engine.sql("allocation/no_facts", columns=_fact_columns(engine)))
    scales = {"quantity_scale": QUANTITY_SCALE, "money_scale": MONEY_SCALE}
    dialect = _rule_dialect(engine)
    class_columns = sorted({*rules.line_columns(dialect), *_CLASS_COLUMNS})
    engine.execute(
        engine.sql(
            "allocation/lines",
            period_start=period_literal,
            rule_case=rules.case_sql(dialect),
            class_columns=", ".join(f"l.{column} AS {column}" for column in class_columns),
            class_join=" AND ".join(_NULL_SAFE_EQUAL[engine.dialect].format(column=c) for c in class_columns),
            **scales,
        )
    )
    scope, window = _fact_scope(engine, rules)
    facts = engine.facts_within(window) if has_facts else "al_no_facts"
    fingerprint_row = engine.rows(engine.sql("allocation/fingerprint", facts=facts, scope=scope))[0]
    snapshot_key = ",".join(snapshot_ids)
    fingerprint = hashlib.sha256(f"{snapshot_key}|{fingerprint_row[0]}|{rules.digest}".encode()).hexdigest()[:32]
    current = engine.rows(engine.sql("allocation/current_run", period_start=period_literal))
    if current and current[0][1] == fingerprint and not force:
        run_id, _, line_count, fact_count = current[0]
        return RunResult(period, int(run_id), "unchanged", int(line_count), int(fact_count))

    token_meters = ", ".join(engine.literal(m.value) for m in _TOKEN_METERS)
    engine.execute(
        engine.sql(
            "allocation/matches",
            facts=facts,
            scope=scope,
            currency=engine.literal(currency),
            token_meters=token_meters,
            **scales,
        )
    )
    first_key = engine.sql("allocation/first_key")
    pairs = engine.sql("allocation/pairs", first_key=first_key)
    engine.execute(engine.sql("allocation/traces", first_key=first_key))
    engine.execute(engine.sql("allocation/line_usage", pairs=pairs))
    engine.execute(engine.sql("allocation/split", **scales))
    engine.execute(engine.sql("allocation/shares_table", pairs=pairs))
    _shares(engine, pairs, "al_split", "TRUE")
    split = "al_split"
    if rules.shared_policy == "proportional":
        for step in ("shared_weights", "shared_traces", "shared_split"):
            engine.execute(engine.sql(f"allocation/{step}", pairs=pairs))
        split = "al_split_shared"
        _shares(engine, pairs, split, "l.kind = 'shared'")
    run_id = int(engine.rows(engine.sql("allocation/next_run_id"))[0][0])
    line_count, matched_fact_count = (int(n) for n in engine.rows(engine.sql("allocation/counts"))[0])
    params = {"run_id": run_id, "pairs": pairs, "split": split, "shared_policy": rules.shared_policy}
    for step in ("write_lines", "write_trace_rows", "write_unallocated_rows"):
        engine.execute(engine.sql(f"allocation/{step}", **params))
    # The run row last: in an engine without transactions, rows of a run no run row names are never read.
    engine.check_lock()
    engine.insert(
        "allocation_runs",
        _RUN_COLUMNS,
        [
            (run_id, period_start, datetime.now(timezone.utc).replace(tzinfo=None), snapshot_key, fingerprint,
             rules.method_version, rules.digest, currency, line_count, matched_fact_count)
        ],
    )  # fmt: skip
    if current:
        engine.execute(engine.sql("allocation/supersede_run", run_id=int(current[0][0]), new_run_id=run_id))
    return RunResult(period, run_id, "allocated", line_count, matched_fact_count)


def _rule_dialect(engine: Engine) -> RuleDialect:
    if engine.dialect == "duckdb":
        return DUCKDB_RULES
    return RuleDialect("match", "JSONExtractString(coalesce(l.sku_price_details, ''), '{key}')", engine.literal)


def _fact_columns(engine: Engine) -> str:
    if engine.dialect == "duckdb":
        return USAGE_FACTS.column_definitions(constraints=False)
    return USAGE_FACTS.clickhouse_column_definitions()


def _shares(engine: Engine, pairs: str, split: str, lines: str) -> None:
    """The largest-remainder shares of each cost over the (line, trace) ``pairs`` of the lines of ``split`` where
    ``lines``.

    BilledCost and ListCost are split on their own only on lines where they differ from EffectiveCost (the same
    amount splits the same).
    """
    for metric in ("effective", "billed", "list"):
        condition = lines if metric == "effective" else f"{lines} AND l.{metric}_allocated <> l.effective_allocated"
        floors = engine.sql("allocation/share_floors", metric=metric, pairs=pairs, split=split, lines=condition)
        engine.execute(engine.sql("allocation/shares", metric=metric, floors=floors))


def _fact_scope(engine: Engine, rules: Rules) -> tuple[str, Window]:
    """SQL condition on facts ``f`` that can match a line of the period (constants: no join per fact), and the
    time window it keeps."""
    meters = sorted({meter for rule in rules.rules for meter in rule.fact_meters})
    first, last = engine.rows(engine.sql("allocation/line_bounds"))[0]
    scope = engine.sql(
        "allocation/fact_scope",
        meters=", ".join(engine.literal(meter) for meter in meters) or "NULL",
        first=engine.literal(first),
        last=engine.literal(last),
    )
    # DuckDB's bounds are text (for its literal)
    since, until = (datetime.fromisoformat(bound) if isinstance(bound, str) else bound for bound in (first, last))
    return scope, Window(since, until)
