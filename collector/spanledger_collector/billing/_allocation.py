"""Allocation runs: split each billing line of a period over the usage facts that used it, in DuckDB SQL.

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
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

import duckdb
from spanledger.semconv import SpanledgerMeterValues as Meter

from .._store import USAGE_FACTS
from ._errors import BillingError, CurrencyMixError
from ._rules import Rules, load_rules
from ._schema import MONEY_SCALE, QUANTITY_SCALE, ensure_billing_tables, has_table

__all__ = ["RunResult", "allocate", "parse_period"]

_METRICS = ("effective", "billed", "list")
_FACT_COLUMNS = USAGE_FACTS.column_definitions(constraints=False)
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


def _canonical_resource(sql: str) -> str:
    # An EC2 instance ARN and the bare instance id are the same resource; ids compare case-insensitively.
    return (
        f"lower(CASE WHEN {sql} LIKE 'arn:%:instance/%' "
        f"THEN regexp_replace({sql}, '^arn:[^:]*:ec2:[^:]*:[^:]*:instance/', '') ELSE {sql} END)"
    )


def _money(units_sql: str) -> str:
    """Whole 10^-12 units (HUGEINT) -> DECIMAL(38, 12), exactly."""
    return f"(({units_sql})::DECIMAL(38, 0) * 0.000000000001::DECIMAL(13, 12))::DECIMAL(38, 12)"


def _scaled_units(decimal_sql: str, scale: int) -> str:
    """``round(decimal x scale)`` as a HUGEINT, exactly (half away from zero).

    DuckDB rounds a DECIMAL(38, s) with 128-bit division (slow); the double estimate is taken when the exact
    difference shows it is the nearest integer (|difference| < 1/2), which leaves only ties and huge values
    to the exact rounding.
    """
    exact = f"CAST(round({decimal_sql} * {scale}) AS HUGEINT)"
    estimate = f"CAST(round({decimal_sql}::DOUBLE * {scale}) AS HUGEINT)"
    return (
        f"(CASE WHEN abs({decimal_sql}) >= 1000000000000 THEN {exact} "
        f"WHEN abs({decimal_sql} * {scale} - {estimate}) < 0.5 THEN {estimate} ELSE {exact} END)"
    )


def _quantity(units_sql: str) -> str:
    return f"(({units_sql})::DECIMAL(38, 0) * 0.000001::DECIMAL(7, 6))::DECIMAL(38, 6)"


def allocate(
    connection: duckdb.DuckDBPyConnection,
    periods: Sequence[str] | None = None,
    *,
    force: bool = False,
    rules_path: Path | None = None,
) -> list[RunResult]:
    """Run the allocation for ``periods`` (``YYYY-MM``; default: every period with billing lines).

    A period whose current snapshots and matching facts are unchanged since its current run is skipped
    unless ``force``. Each new run is kept; the previous run of the period is marked superseded.
    """
    ensure_billing_tables(connection)
    rules = load_rules(rules_path)
    if periods is None:
        starts = [
            row[0]
            for row in connection.execute(
                "SELECT DISTINCT billing_period_start FROM billing_snapshots WHERE superseded_by IS NULL ORDER BY 1"
            ).fetchall()
        ]
    else:
        starts = [parse_period(p) for p in periods]
    return [_allocate_in_transaction(connection, start, rules, force) for start in starts]


_TEMP_TABLES = (
    "al_rules", "al_rule_meters", "al_accelerators", "al_lines", "al_matches", "al_line_usage",
    "al_traces", "al_shares", "al_no_facts", "al_shared_weights",
)  # fmt: skip


def _allocate_in_transaction(
    connection: duckdb.DuckDBPyConnection, start: datetime, rules: Rules, force: bool
) -> RunResult:
    connection.execute("BEGIN TRANSACTION")
    try:
        result = _allocate_period(connection, start, rules, force)
        connection.execute("COMMIT")
    except BaseException:
        connection.execute("ROLLBACK")
        raise
    finally:
        for table in _TEMP_TABLES:
            connection.execute(f"DROP TABLE IF EXISTS {table}")
    return result


def _usage_unit(meters: Sequence[str]) -> str | None:
    if not meters:
        return None
    meter = meters[0]
    return _UNIT_OF_METER.get(meter, "{token}" if meter in {m.value for m in _TOKEN_METERS} else "1")


def _load_rule_tables(connection: duckdb.DuckDBPyConnection, rules: Rules) -> None:
    connection.execute(
        "CREATE OR REPLACE TEMP TABLE al_rules (rule_id VARCHAR, kind VARCHAR, rule_resource_type VARCHAR, "
        "match_on VARCHAR, boundary VARCHAR, unit_seconds BIGINT, capacity_per VARCHAR, unit_factor HUGEINT, "
        "usage_unit VARCHAR)"
    )
    connection.executemany(
        "INSERT INTO al_rules VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
        [
            [
                r.id,
                r.kind,
                r.resource_type,
                r.match_on,
                r.boundary,
                r.unit_seconds,
                r.capacity_per,
                r.unit_factor,
                _usage_unit(r.fact_meters),
            ]
            for r in rules.rules
        ],
    )
    connection.execute("CREATE OR REPLACE TEMP TABLE al_rule_meters (rule_id VARCHAR, meter VARCHAR)")
    pairs = [[r.id, meter] for r in rules.rules for meter in r.fact_meters]
    if pairs:
        connection.executemany("INSERT INTO al_rule_meters VALUES (?, ?)", pairs)
    connection.execute("CREATE OR REPLACE TEMP TABLE al_accelerators (instance_type VARCHAR, accelerators INTEGER)")
    if rules.accelerators:
        connection.executemany("INSERT INTO al_accelerators VALUES (?, ?)", list(rules.accelerators.items()))


def _facts_source(connection: duckdb.DuckDBPyConnection) -> str:
    if has_table(connection, "usage_facts"):
        return "usage_facts"
    connection.execute(f"CREATE OR REPLACE TEMP TABLE al_no_facts ({_FACT_COLUMNS})")
    return "al_no_facts"


def _allocate_period(
    connection: duckdb.DuckDBPyConnection, period_start: datetime, rules: Rules, force: bool
) -> RunResult:
    period = period_start.strftime("%Y-%m")
    snapshots = connection.execute(
        """SELECT list(snapshot_id ORDER BY snapshot_id), list(DISTINCT billing_currency ORDER BY billing_currency)
           FROM billing_snapshots WHERE superseded_by IS NULL AND billing_period_start = ?""",
        [period_start],
    ).fetchone()
    if snapshots is None or not snapshots[0]:
        raise BillingError(f"billing period {period}: no billing lines imported")
    snapshot_ids, currencies = snapshots
    if len(currencies) > 1:
        raise CurrencyMixError(
            f"billing period {period} mixes currencies {' and '.join(currencies)} across its snapshots; "
            "one allocation uses one currency"
        )
    _load_rule_tables(connection, rules)
    facts = _facts_source(connection)
    connection.execute(
        f"""CREATE OR REPLACE TEMP TABLE al_lines AS
        SELECT *, CASE
          WHEN kind = 'capacity' THEN CAST(round(coalesce(pricing_quantity, consumed_quantity)
               * (CASE WHEN lower(coalesce(pricing_unit, consumed_unit, '')) IN ('hours', 'hour', 'hrs', 'hr', 'h')
                       THEN 3600
                       WHEN lower(coalesce(pricing_unit, consumed_unit, '')) IN ('seconds', 'second', 's', 'secs')
                       THEN 1
                       ELSE unit_seconds END)
               * (CASE capacity_per WHEN 'accelerator' THEN accelerators ELSE 1 END) * {QUANTITY_SCALE}) AS HUGEINT)
          WHEN kind = 'consumption' THEN CAST(round(coalesce(
                 consumed_quantity * {_unit_prefix("consumed_unit")}, pricing_quantity * {_unit_prefix("pricing_unit")})
               * unit_factor * {QUANTITY_SCALE}) AS HUGEINT)
        END AS capacity_units
        FROM (
          SELECT row_number() OVER (ORDER BY l.snapshot_id, l.line_no) AS line_id,
                 l.snapshot_id, l.line_no, l.charge_period_start, l.charge_period_end, l.billing_account_id,
                 l.sub_account_id, l.region_id, l.billing_currency, l.effective_cost, l.billed_cost, l.list_cost,
                 l.pricing_quantity, l.pricing_unit, l.consumed_quantity, l.consumed_unit, r.*,
                 CASE r.match_on WHEN 'model' THEN lower(l.model) ELSE {_canonical_resource("l.resource_id")} END
                   AS line_key,
                 coalesce(try_cast(json_extract_string(l.sku_price_details, '$.GpuCount') AS INTEGER),
                          a.accelerators, 1) AS accelerators
          FROM billing_lines l JOIN billing_snapshots s USING (snapshot_id)
          LEFT JOIN al_rules r ON r.rule_id = ({rules.case_sql()})
          LEFT JOIN al_accelerators a ON a.instance_type = lower(regexp_replace(l.instance_type, '^ml\\.', ''))
          WHERE s.superseded_by IS NULL AND s.billing_period_start = ?)""",
        [period_start],
    )
    scope = _fact_scope(connection, rules, currencies[0])
    fingerprint_row = connection.execute(
        f"""SELECT count(*)::VARCHAR || ':' || coalesce(bit_xor(hash(f.trace_id, f.span_id, f.meter, f.quantity,
                   f.start_time, f.end_time, f.resource_id, f.model, f.account_id, f.estimated_cost)), 0)::VARCHAR
            FROM {facts} f
            WHERE {scope}"""
    ).fetchone()
    assert fingerprint_row is not None
    snapshot_key = ",".join(snapshot_ids)
    fingerprint = hashlib.sha256(f"{snapshot_key}|{fingerprint_row[0]}|{rules.digest}".encode()).hexdigest()[:32]
    current = connection.execute(
        """SELECT run_id, facts_fingerprint, line_count, matched_fact_count FROM allocation_runs
           WHERE billing_period_start = ? AND superseded_by IS NULL""",
        [period_start],
    ).fetchone()
    if current and current[1] == fingerprint and not force:
        return RunResult(period, current[0], "unchanged", current[2], current[3])

    _match_facts(connection, facts, scope, currencies[0])
    _split(connection)
    if rules.shared_policy == "proportional":
        _split_shared(connection)
    run_row = connection.execute("SELECT coalesce(max(run_id), 0) + 1 FROM allocation_runs").fetchone()
    assert run_row is not None
    run_id = int(run_row[0])
    counts = connection.execute("SELECT (SELECT count(*) FROM al_lines), (SELECT count(*) FROM al_matches)").fetchone()
    assert counts is not None
    connection.execute(
        "INSERT INTO allocation_runs VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, NULL)",
        [
            run_id,
            period_start,
            datetime.now(timezone.utc).replace(tzinfo=None),
            snapshot_key,
            fingerprint,
            rules.method_version,
            rules.digest,
            currencies[0],
            counts[0],
            counts[1],
        ],
    )
    if current:
        connection.execute("UPDATE allocation_runs SET superseded_by = ? WHERE run_id = ?", [run_id, current[0]])
    _write_rows(connection, run_id, facts, rules.shared_policy)
    return RunResult(period, run_id, "allocated", int(counts[0]), int(counts[1]))


def _unit_prefix(unit_sql: str) -> str:
    # "1000000 Tokens" -> 1000000, "1K tokens" -> 1000; a unit without a number prefix counts 1.
    number = f"try_cast(regexp_extract({unit_sql}, '^\\s*([0-9]+)', 1) AS HUGEINT)"
    scale = (
        f"(CASE upper(regexp_extract({unit_sql}, '^\\s*[0-9]+\\s*([KMB])\\b', 1)) "
        "WHEN 'K' THEN 1000 WHEN 'M' THEN 1000000 WHEN 'B' THEN 1000000000 ELSE 1 END)"
    )
    return f"coalesce({number} * {scale}, 1)"


def _fact_scope(connection: duckdb.DuckDBPyConnection, rules: Rules, currency: str) -> str:
    """SQL condition on facts ``f`` that can match a line of the period (constants: no join per fact)."""
    meters = sorted({meter for rule in rules.rules for meter in rule.fact_meters})
    bounds = connection.execute(
        "SELECT strftime(min(charge_period_start), '%Y-%m-%d %H:%M:%S.%f'), "
        "strftime(max(charge_period_end), '%Y-%m-%d %H:%M:%S.%f') FROM al_lines"
    ).fetchone()
    assert bounds is not None
    meter_list = ", ".join(_literal(meter) for meter in meters) or "NULL"
    return (
        f"f.meter IN ({meter_list}) AND f.end_time >= TIMESTAMP {_literal(bounds[0])} "
        f"AND f.start_time <= TIMESTAMP {_literal(bounds[1])}"
    )


def _literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def _match_facts(connection: duckdb.DuckDBPyConnection, facts: str, scope: str, currency: str) -> None:
    # Lines and facts are expanded to the UTC hours they touch and joined on (meter, key, hour); a pair is
    # kept only in the first hour both touch, so a long fact or a daily line is matched once. Most facts lie
    # within one hour and are not expanded at all.
    last = "CASE WHEN {e} > {s} THEN {e} - INTERVAL 1 MICROSECOND ELSE {s} END"
    hours = "unnest(generate_series(date_trunc('hour', {s}), date_trunc('hour', " + last + "), INTERVAL 1 HOUR))"
    one_hour = "date_trunc('hour', {s}) = date_trunc('hour', " + last + ")"
    token_meters = ", ".join(_literal(m.value) for m in _TOKEN_METERS)
    columns = f"""f.rowid AS fact_id, f.trace_id, f.span_id, f.meter, f.start_time, f.end_time, f.account_id,
               f.region, f.resource_type, f.boundary,
               CASE WHEN f.meter IN ({token_meters}) THEN lower(f.model) ELSE {_canonical_resource("f.resource_id")} END
                 AS fact_key,
               {_scaled_units("f.quantity", QUANTITY_SCALE)} AS quantity_units,
               CASE WHEN f.currency IS NULL OR upper(f.currency) = {_literal(currency)}
                    THEN {_scaled_units("f.estimated_cost", MONEY_SCALE)} END AS estimate_units"""
    in_scope = f"""FROM {facts} f
        WHERE f.quantity > 0 AND {scope}"""
    fact_times = {"s": "f.start_time", "e": "f.end_time"}
    fact_rows = f"""SELECT {columns}, date_trunc('hour', f.start_time) AS hour {in_scope}
          AND {one_hour.format(**fact_times)}
        UNION ALL
        SELECT {columns}, {hours.format(**fact_times)} AS hour {in_scope} AND NOT {one_hour.format(**fact_times)}"""
    line_times = {"s": "l.charge_period_start", "e": "l.charge_period_end"}
    connection.execute(
        f"""CREATE OR REPLACE TEMP TABLE al_matches AS
        WITH al_facts AS ({fact_rows}),
        line_hours AS (
          SELECT l.line_id, l.line_key, m.meter, l.charge_period_start, l.charge_period_end, l.sub_account_id,
                 l.region_id, l.rule_resource_type, l.boundary, {hours.format(**line_times)} AS hour
          FROM al_lines l JOIN al_rule_meters m USING (rule_id)
          WHERE l.kind IN ('capacity', 'consumption') AND l.line_key IS NOT NULL
        ), pairs AS (
          SELECT lh.line_id, f.fact_id, f.trace_id, f.span_id, f.quantity_units, f.estimate_units,
                 epoch_us(f.end_time) - epoch_us(f.start_time) AS duration_us,
                 epoch_us(greatest(f.start_time, lh.charge_period_start)) AS clipped_start_us,
                 epoch_us(least(f.end_time, lh.charge_period_end)) AS clipped_end_us
          FROM line_hours lh JOIN al_facts f
            ON f.hour = lh.hour AND f.fact_key = lh.line_key AND f.meter = lh.meter
          WHERE lh.hour = greatest(date_trunc('hour', f.start_time), date_trunc('hour', lh.charge_period_start))
            AND (lh.boundary IS NULL OR f.boundary = lh.boundary)
            AND (f.account_id = lh.sub_account_id OR lh.sub_account_id IS NULL
                 OR (f.account_id IS NULL AND (f.region IS NULL OR lh.region_id IS NULL OR f.region = lh.region_id)
                     AND (f.resource_type IS NULL OR f.resource_type = lh.rule_resource_type)))
            AND ((f.end_time > f.start_time AND f.start_time < lh.charge_period_end
                  AND f.end_time > lh.charge_period_start)
                 OR (f.end_time = f.start_time AND f.start_time >= lh.charge_period_start
                     AND f.start_time < lh.charge_period_end))
        )
        SELECT line_id, fact_id, trace_id, span_id, clipped_start_us, clipped_end_us,
               CASE WHEN duration_us = 0 OR clipped_end_us - clipped_start_us = duration_us THEN quantity_units
                    ELSE quantity_units * (clipped_end_us - clipped_start_us) // duration_us END AS weight,
               CASE WHEN duration_us = 0 OR clipped_end_us - clipped_start_us = duration_us THEN estimate_units
                    ELSE estimate_units * (clipped_end_us - clipped_start_us) // duration_us END AS estimate_units
        FROM pairs"""
    )


def _split(connection: duckdb.DuckDBPyConnection) -> None:
    # Per (line, trace) first: the line's totals come from these groups rather than from every match again.
    connection.execute(
        """CREATE OR REPLACE TEMP TABLE al_traces AS
        SELECT line_id, trace_id, sum(weight) AS weight, sum(estimate_units) AS estimate_units, count(*) AS fact_count,
               min(fact_id) AS first_fact_id, list(span_id) AS span_ids
        FROM al_matches GROUP BY line_id, trace_id"""
    )
    # Weights are scaled down on lines with huge totals (>= 2 x 10^15) so that allocated x weight fits a HUGEINT;
    # total_weight is the sum of the (scaled) weights. The busy-time union is needed for capacity lines only.
    connection.execute(
        """CREATE OR REPLACE TEMP TABLE al_line_usage AS
        WITH per_line AS (
          SELECT line_id, sum(weight) AS used_units, sum(fact_count) AS fact_count, count(trace_id) AS trace_count,
                 sum(estimate_units) AS estimate_units
          FROM al_traces GROUP BY line_id),
        scaled_totals AS (
          SELECT t.line_id, sum(t.weight // (p.used_units // 1000000000000000)) AS total_weight
          FROM al_traces t JOIN per_line p USING (line_id) WHERE p.used_units >= 2000000000000000
          GROUP BY t.line_id),
        unions AS (
          SELECT line_id, sum(greatest(0, clipped_end_us
                                          - greatest(clipped_start_us, coalesce(previous_end_us, clipped_start_us))))
                   AS union_us
          FROM (SELECT m.line_id, m.clipped_start_us, m.clipped_end_us,
                       max(m.clipped_end_us) OVER (PARTITION BY m.line_id ORDER BY m.clipped_start_us, m.clipped_end_us
                         ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING) AS previous_end_us
                FROM al_matches m SEMI JOIN al_lines l ON l.line_id = m.line_id AND l.kind = 'capacity')
          GROUP BY line_id)
        SELECT per_line.*, coalesce(scaled_totals.total_weight, per_line.used_units) AS total_weight, unions.union_us
        FROM per_line LEFT JOIN scaled_totals USING (line_id) LEFT JOIN unions USING (line_id)"""
    )
    # Stage 1 (per line): allocated part = cost x U / D, rounded half away from zero to 10^-12.
    # U and D are scaled down together when large so that cost x U fits a HUGEINT.
    cost_units = ", ".join(f"{_scaled_units(f'l.{m}_cost', MONEY_SCALE)} AS {m}_units" for m in _METRICS)
    busy = (
        "CASE WHEN l.kind = 'capacity' THEN least(u.used_units, u.union_us * "
        "(CASE l.capacity_per WHEN 'accelerator' THEN l.accelerators ELSE 1 END)) "
        "WHEN l.kind = 'consumption' THEN u.used_units END"
    )
    rounded = {m: _floor_div(f"abs({m}_units) * 2 * scaled_busy + scaled_denominator", "2 * scaled_denominator")
               for m in _METRICS}  # fmt: skip
    allocated = ", ".join(
        f"""CASE WHEN coalesce(busy_units, 0) = 0 OR denominator_units = 0 THEN 0::HUGEINT
                 ELSE sign({m}_units) * {rounded[m]} END AS {m}_allocated"""
        for m in _METRICS
    )
    scale = "greatest(1, denominator_units // 1000000000000000)"
    connection.execute(
        f"""CREATE OR REPLACE TEMP TABLE al_lines AS
        SELECT * EXCLUDE (scaled_busy, scaled_denominator), {allocated}
        FROM (SELECT *, busy_units // {scale} AS scaled_busy, denominator_units // {scale} AS scaled_denominator
              FROM (SELECT *, greatest(coalesce(busy_units, 0),
                                       CASE WHEN kind = 'consumption' AND coalesce(capacity_units, 0) = 0
                                            THEN coalesce(busy_units, 0) ELSE coalesce(capacity_units, 0) END)
                                AS denominator_units
                    FROM (SELECT l.*, u.used_units, u.total_weight, u.union_us, u.fact_count, u.trace_count,
                                 u.estimate_units, {busy} AS busy_units, {cost_units}
                          FROM al_lines l LEFT JOIN al_line_usage u USING (line_id))))"""
    )
    # Stage 2 (per trace on a line): largest remainder of allocated x scaled weight / total weight. BilledCost
    # and ListCost are split on their own only on lines where they differ from EffectiveCost (the same amount
    # splits the same).
    connection.execute("CREATE OR REPLACE TEMP TABLE al_shares (metric VARCHAR, trace_row BIGINT, share HUGEINT)")
    connection.execute(f"INSERT INTO al_shares {_shares_select('effective', 'TRUE')}")
    for metric in ("billed", "list"):
        connection.execute(
            f"INSERT INTO al_shares {_shares_select(metric, f'l.{metric}_allocated <> l.effective_allocated')}"
        )


def _split_shared(connection: duckdb.DuckDBPyConnection) -> None:
    """Shared lines, ``proportional`` policy: each line's whole cost over the traces of its scope.

    A trace's weight is the EffectiveCost it got directly (the effective shares of capacity and consumption lines)
    in the line's billing account, or in the whole period for a line without one; traces whose net direct cost is
    not positive get nothing. The line then goes through the same largest-remainder split as a direct line.
    """
    connection.execute(
        """CREATE OR REPLACE TEMP TABLE al_shared_weights AS
        WITH direct AS (
          SELECT l.billing_account_id, t.trace_id, sum(e.share) AS units, min(t.first_fact_id) AS first_fact_id
          FROM al_shares e JOIN al_traces t ON e.metric = 'effective' AND e.trace_row = t.rowid
          JOIN al_lines l USING (line_id)
          GROUP BY l.billing_account_id, t.trace_id),
        in_period AS (
          SELECT trace_id, sum(units) AS units, min(first_fact_id) AS first_fact_id FROM direct GROUP BY trace_id),
        shared AS (SELECT line_id, billing_account_id FROM al_lines WHERE kind = 'shared')
        SELECT s.line_id, d.trace_id, d.units AS weight, d.first_fact_id
        FROM shared s JOIN direct d ON d.billing_account_id = s.billing_account_id
        WHERE d.units > 0
        UNION ALL
        SELECT s.line_id, p.trace_id, p.units, p.first_fact_id
        FROM shared s CROSS JOIN in_period p
        WHERE s.billing_account_id IS NULL AND p.units > 0"""
    )
    connection.execute(
        """INSERT INTO al_traces (line_id, trace_id, weight, fact_count, first_fact_id, span_ids)
        SELECT line_id, trace_id, weight, 0, first_fact_id, []::VARCHAR[] FROM al_shared_weights"""
    )
    # The same weight scaling as direct lines (see al_line_usage); the whole cost is allocated.
    connection.execute(
        """UPDATE al_lines SET used_units = w.used_units, total_weight = w.total_weight, busy_units = w.used_units,
               denominator_units = w.used_units, fact_count = 0, trace_count = w.trace_count,
               usage_unit = al_lines.billing_currency, effective_allocated = al_lines.effective_units,
               billed_allocated = al_lines.billed_units, list_allocated = al_lines.list_units
        FROM (SELECT p.line_id, p.used_units, p.trace_count,
                     CASE WHEN p.used_units >= 2000000000000000
                          THEN sum(s.weight // greatest(1, p.used_units // 1000000000000000))
                          ELSE p.used_units END AS total_weight
              FROM (SELECT line_id, sum(weight) AS used_units, count(*) AS trace_count
                    FROM al_shared_weights GROUP BY line_id) p
              JOIN al_shared_weights s USING (line_id)
              GROUP BY p.line_id, p.used_units, p.trace_count) w
        WHERE al_lines.line_id = w.line_id"""
    )
    shared = "l.kind = 'shared'"
    connection.execute(f"INSERT INTO al_shares {_shares_select('effective', shared)}")
    for metric in ("billed", "list"):
        lines = f"{shared} AND l.{metric}_allocated <> l.effective_allocated"
        connection.execute(f"INSERT INTO al_shares {_shares_select(metric, lines)}")


def _floor_div(numerator: str, divisor: str) -> str:
    """Exact ``numerator // divisor`` for HUGEINT ``numerator >= 0`` and ``divisor > 0``.

    DuckDB divides 128-bit integers bit by bit (about 1 µs each); a double estimate refined once with exact
    128-bit multiplication lands on the quotient almost always, and is checked, so the slow division runs
    only when the check fails.
    """
    estimate = f"CAST(floor(({numerator})::DOUBLE / ({divisor})::DOUBLE) AS HUGEINT)"
    refined = (
        f"({estimate} + CAST(floor((({numerator}) - {estimate} * ({divisor}))::DOUBLE / ({divisor})::DOUBLE) "
        "AS HUGEINT))"
    )
    remainder = f"(({numerator}) - {refined} * ({divisor}))"
    return (
        f"(CASE WHEN {remainder} >= 0 AND {remainder} < ({divisor}) THEN {refined} "
        f"ELSE ({numerator}) // ({divisor}) END)"
    )


def _shares_select(metric: str, lines: str) -> str:
    """Largest-remainder shares of the allocated ``metric`` over the traces of each line ``l`` where ``lines``."""
    return f"""SELECT '{metric}', trace_row,
               sign * (share_floor + CASE WHEN row_number() OVER by_remainder
                                              <= amount - sum(share_floor) OVER (by_remainder ROWS BETWEEN UNBOUNDED
                                                                                 PRECEDING AND UNBOUNDED FOLLOWING)
                                          THEN 1 ELSE 0 END)
        FROM (SELECT *, product - share_floor * total_weight AS remainder
              FROM (SELECT *, {_floor_div("product", "total_weight")} AS share_floor
                    FROM (SELECT t.rowid AS trace_row, t.line_id, hash(t.trace_id) AS tie, l.total_weight,
                                 sign(l.{metric}_allocated) AS sign, abs(l.{metric}_allocated) AS amount,
                                 abs(l.{metric}_allocated) * (t.weight // greatest(1, l.used_units // 1000000000000000))
                                   AS product
                          FROM al_traces t JOIN al_lines l USING (line_id) WHERE l.busy_units > 0 AND {lines})))
        WINDOW by_remainder AS (PARTITION BY line_id ORDER BY remainder DESC, tie)"""


def _write_rows(connection: duckdb.DuckDBPyConnection, run_id: int, facts: str, shared_policy: str) -> None:
    reason = (
        "CASE WHEN l.kind = 'capacity' THEN 'idle' WHEN l.kind = 'consumption' THEN 'untracked' "
        "ELSE 'no_usage_model' END"
    )
    flags = (
        "nullif(concat_ws(',', "
        "CASE WHEN l.kind = 'capacity' AND l.busy_units > l.capacity_units THEN 'oversubscribed' END, "
        "CASE WHEN l.kind = 'consumption' AND l.capacity_units > 0 AND l.busy_units > l.capacity_units "
        "THEN 'overcount' END, "
        "CASE WHEN l.kind = 'consumption' AND coalesce(l.capacity_units, 0) = 0 THEN 'billed_quantity_unknown' END, "
        f"CASE WHEN l.kind = 'shared' THEN 'shared_policy_{shared_policy}' END), '')"
    )
    connection.execute(
        f"""INSERT INTO allocation_lines
        SELECT {run_id}, l.snapshot_id, l.line_no, l.rule_id, coalesce(l.kind, 'none'), l.rule_resource_type,
               l.line_key, l.accelerators,
               CASE WHEN l.kind = 'capacity' THEN {_quantity("l.capacity_units")} END,
               CASE WHEN l.kind = 'capacity' THEN {_quantity("coalesce(l.busy_units, 0)")} END,
               CASE WHEN l.kind = 'consumption' THEN {_quantity("l.capacity_units")} END,
               CASE WHEN l.kind = 'consumption' THEN {_quantity("coalesce(l.busy_units, 0)")} END,
               coalesce(l.fact_count, 0), coalesce(l.trace_count, 0),
               l.effective_cost, l.billed_cost, l.list_cost,
               {_money("l.effective_allocated")}, {_money("l.billed_allocated")}, {_money("l.list_allocated")},
               {_money("l.estimate_units")},
               CASE WHEN l.effective_units <> l.effective_allocated OR l.billed_units <> l.billed_allocated
                         OR l.list_units <> l.list_allocated OR coalesce(l.trace_count, 0) = 0 THEN {reason} END,
               {flags}
        FROM al_lines l"""
    )
    connection.execute(
        f"""INSERT INTO allocations
        SELECT {run_id}, l.snapshot_id, l.line_no, t.trace_id,
               CASE WHEN len(t.span_ids) > 1 THEN list_sort(list_distinct(t.span_ids)) ELSE t.span_ids END,
               CASE WHEN l.kind = 'shared' THEN {_money("t.weight")}::DECIMAL(38, 6) ELSE {_quantity("t.weight")} END,
               l.usage_unit,
               CAST(t.weight AS DOUBLE) / l.used_units * CAST(l.busy_units AS DOUBLE) / l.denominator_units,
               {_money("e.share")}, {_money("coalesce(b.share, e.share)")}, {_money("coalesce(p.share, e.share)")},
               {_money("t.estimate_units")}, f.workflow, f.tenant, f.service, f.model, NULL
        FROM al_traces t
        JOIN al_lines l USING (line_id)
        JOIN al_shares e ON e.metric = 'effective' AND e.trace_row = t.rowid
        LEFT JOIN al_shares b ON b.metric = 'billed' AND b.trace_row = t.rowid
        LEFT JOIN al_shares p ON p.metric = 'list' AND p.trace_row = t.rowid
        JOIN {facts} f ON f.rowid = t.first_fact_id"""
    )
    connection.execute(
        f"""INSERT INTO allocations
        SELECT {run_id}, l.snapshot_id, l.line_no, NULL, NULL,
               CASE WHEN l.kind IN ('capacity', 'consumption')
                    THEN {_quantity("greatest(0, coalesce(l.capacity_units, 0) - coalesce(l.busy_units, 0))")} END,
               l.usage_unit,
               CASE WHEN l.denominator_units > 0
                    THEN 1 - CAST(coalesce(l.busy_units, 0) AS DOUBLE) / l.denominator_units ELSE 1 END,
               {_money("l.effective_units - l.effective_allocated")}, {_money("l.billed_units - l.billed_allocated")},
               {_money("l.list_units - l.list_allocated")}, NULL, NULL, NULL, NULL, NULL, {reason}
        FROM al_lines l
        WHERE l.effective_units <> l.effective_allocated OR l.billed_units <> l.billed_allocated
              OR l.list_units <> l.list_allocated OR coalesce(l.trace_count, 0) = 0"""
    )
