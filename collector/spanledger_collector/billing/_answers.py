"""The answers: one trace's lineage and cost, rankings, idle capacity, and the allocation rows.

Every answer is a JSON-ready dict (money as exact decimal strings) so that the CLI, the HTTP API and
tests see the same thing. Answers read the current allocation run of each billing period.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from decimal import Decimal
from typing import Any

import duckdb
from spanledger.semconv import SpanledgerMeterValues as Meter

from ._allocation import parse_period
from ._errors import BillingError, NotFoundError
from ._schema import has_table

__all__ = [
    "ALLOCATION_COLUMNS",
    "GROUPS",
    "RANKINGS",
    "allocation_rows",
    "idle_capacity",
    "top",
    "trace_lineage",
]

GROUPS = ("workflow", "tenant", "model", "service")
RANKINGS = ("cost", "tokens", "age")
_TOKEN_METERS = tuple(
    m.value
    for m in (
        Meter.LLM_INPUT_TOKENS,
        Meter.LLM_CACHE_READ_TOKENS,
        Meter.LLM_CACHE_WRITE_TOKENS,
        Meter.LLM_OUTPUT_TOKENS,
    )
)
_NONE = "(none)"


def _json_value(value: Any) -> Any:
    if isinstance(value, Decimal):
        # Exact, without exponent or trailing zeros: 1200, 0.00036.
        return str(value.quantize(Decimal(1))) if value == value.to_integral_value() else format(value.normalize(), "f")
    if isinstance(value, datetime):
        return value.strftime("%Y-%m-%dT%H:%M:%S.%fZ") if value.microsecond else value.strftime("%Y-%m-%dT%H:%M:%SZ")
    if isinstance(value, list):
        return [_json_value(item) for item in value]
    if isinstance(value, dict):
        return {key: _json_value(item) for key, item in value.items()}
    return value


def _records(cursor: duckdb.DuckDBPyConnection) -> list[dict[str, Any]]:
    names = [column[0] for column in cursor.description or []]
    return [{name: _json_value(value) for name, value in zip(names, row, strict=True)} for row in cursor.fetchall()]


def _require_runs(connection: duckdb.DuckDBPyConnection) -> None:
    if not has_table(connection, "allocation_runs"):
        raise BillingError("no billing imported yet: run `spanledger billing import PATH`")


def _current_run(connection: duckdb.DuckDBPyConnection, period: str | None) -> tuple[int, str, str | None]:
    """The current run of ``period``; by default of the latest period whose run allocated cost to traces."""
    _require_runs(connection)
    if period is None:
        row = connection.execute(
            """SELECT run_id, strftime(billing_period_start, '%Y-%m'), billing_currency FROM allocation_runs r
               WHERE superseded_by IS NULL
               ORDER BY EXISTS (SELECT 1 FROM allocations a WHERE a.run_id = r.run_id AND a.trace_id IS NOT NULL) DESC,
                        billing_period_start DESC
               LIMIT 1"""
        ).fetchone()
    else:
        row = connection.execute(
            """SELECT run_id, strftime(billing_period_start, '%Y-%m'), billing_currency FROM allocation_runs
               WHERE superseded_by IS NULL AND billing_period_start = ?""",
            [parse_period(period)],
        ).fetchone()
    if row is None:
        raise BillingError(
            f"no allocation run for billing period {period}"
            if period
            else "no allocation run yet: import billing first"
        )
    return int(row[0]), str(row[1]), row[2]


def trace_lineage(connection: duckdb.DuckDBPyConnection, trace_id: str) -> dict[str, Any]:
    """The lineage of one AI output: spans, model calls, data read, resources used, and their cost."""
    trace_id = trace_id.strip().lower()
    has_facts = has_table(connection, "usage_facts")
    facts = (
        _records(
            connection.execute(
                """SELECT span_id, meter, quantity, unit, start_time, end_time, resource_id, resource_type, model,
                          boundary, accelerator_type, workflow, tenant, service, estimated_cost, currency,
                          unpriced_reason
                   FROM usage_facts WHERE trace_id = ? ORDER BY start_time, span_id, meter""",
                [trace_id],
            )
        )
        if has_facts
        else []
    )
    reads = (
        _records(
            connection.execute(
                """SELECT span_id, read_time, source, source_kind, last_modified, age_seconds, bytes, staleness_method
                   FROM data_reads WHERE trace_id = ? ORDER BY read_time, span_id, seq""",
                [trace_id],
            )
        )
        if has_table(connection, "data_reads")
        else []
    )
    spans = (
        _records(
            connection.execute(
                """SELECT span_id, parent_span_id, name, service, start_time, end_time, unmeasured FROM spans
                   WHERE trace_id = ? ORDER BY start_time, span_id""",
                [trace_id],
            )
        )
        if has_table(connection, "spans")
        else []
    )
    resources: list[dict[str, Any]] = []
    if has_table(connection, "allocation_runs"):
        resources = _records(
            connection.execute(
                """SELECT strftime(r.billing_period_start, '%Y-%m') AS billing_period, a.run_id,
                          coalesce(l.resource_id, l.model, al.rule_id) AS resource, al.resource_type,
                          al.rule_id AS meter_rule,
                          l.charge_period_start, l.charge_period_end, l.charge_description, a.span_ids,
                          a.usage_quantity, a.usage_unit, a.allocated_ratio, a.effective_cost, a.billed_cost,
                          a.list_cost, a.estimated_cost, l.billing_currency AS currency
                   FROM allocations a JOIN allocation_runs r USING (run_id)
                   JOIN billing_lines l USING (snapshot_id, line_no)
                   JOIN allocation_lines al USING (run_id, snapshot_id, line_no)
                   WHERE a.trace_id = ? AND r.superseded_by IS NULL
                   ORDER BY l.charge_period_start, resource""",
                [trace_id],
            )
        )
    if not facts and not spans and not resources:
        raise NotFoundError(f"trace {trace_id}: not found in the store")
    return {
        "trace_id": trace_id,
        "workflow": _first(facts, "workflow"),
        "tenant": _first(facts, "tenant"),
        "service": _first(facts, "service") or _first(spans, "service"),
        "tree": _tree(spans, facts, reads),
        "model_calls": _model_calls(facts),
        "data_reads": reads,
        "resources": resources,
        "totals": {
            **_totals(facts, reads, resources),
            "not_measured": [{"span": s["name"], "reason": s["unmeasured"]} for s in spans if s.get("unmeasured")],
        },
    }


def _first(rows: Sequence[dict[str, Any]], key: str) -> Any:
    return next((row[key] for row in rows if row.get(key)), None)


def _model_calls(facts: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    calls: dict[str, dict[str, Any]] = {}
    for fact in facts:
        if fact["meter"] not in _TOKEN_METERS:
            continue
        call = calls.setdefault(
            fact["span_id"],
            {
                "span_id": fact["span_id"],
                "model": fact["model"],
                "tokens": {},
                "estimated_cost": None,
                "currency": fact["currency"],
            },
        )
        call["tokens"][fact["meter"].removeprefix("llm.")] = fact["quantity"]
        if fact["estimated_cost"] is not None:
            call["estimated_cost"] = str(Decimal(call["estimated_cost"] or "0") + Decimal(fact["estimated_cost"]))
    return list(calls.values())


def _tree(
    spans: Sequence[dict[str, Any]], facts: Sequence[dict[str, Any]], reads: Sequence[dict[str, Any]]
) -> list[dict[str, Any]]:
    nodes: dict[str, dict[str, Any]] = {
        span["span_id"]: {**span, "usage": [], "data_reads": [], "children": []} for span in spans
    }
    for fact in facts:
        nodes.setdefault(
            fact["span_id"],
            {
                "span_id": fact["span_id"],
                "parent_span_id": None,
                "name": None,
                "usage": [],
                "data_reads": [],
                "children": [],
            },
        )["usage"].append(
            {k: fact[k] for k in ("meter", "quantity", "unit", "resource_id", "model", "boundary", "estimated_cost")}
        )
    for read in reads:
        node = nodes.get(read["span_id"])
        if node is not None:
            node["data_reads"].append({k: v for k, v in read.items() if k != "span_id"})
    roots: list[dict[str, Any]] = []
    for node in nodes.values():
        parent = nodes.get(node.get("parent_span_id") or "")
        (parent["children"] if parent is not None else roots).append(node)
    return roots


def _totals(
    facts: Sequence[dict[str, Any]], reads: Sequence[dict[str, Any]], resources: Sequence[dict[str, Any]]
) -> dict[str, Any]:
    def total(rows: Sequence[dict[str, Any]], key: str) -> Decimal:
        return sum((Decimal(row[key]) for row in rows if row.get(key) is not None), Decimal(0))

    tokens = {m.removeprefix("llm."): total([f for f in facts if f["meter"] == m], "quantity") for m in _TOKEN_METERS}
    egress: dict[str, Decimal] = {}
    for fact in facts:
        if fact["meter"] == Meter.EGRESS_BYTES.value:
            boundary = fact["boundary"] or "unknown"
            egress[boundary] = egress.get(boundary, Decimal(0)) + Decimal(fact["quantity"])
    allocated = total(resources, "effective_cost")
    estimated_matched = total(resources, "estimated_cost")
    currencies = sorted({row["currency"] for row in [*facts, *resources] if row.get("currency")})
    if len(currencies) > 1:
        raise BillingError(f"this trace mixes currencies {' and '.join(currencies)}; totals cannot add them")
    return {
        "currency": currencies[0] if currencies else None,
        "tokens": {k: str(v) for k, v in tokens.items()},
        "accelerator_seconds": str(
            total([f for f in facts if f["meter"] == Meter.ACCELERATOR_SECONDS.value], "quantity")
        ),
        "endpoint_seconds": str(total([f for f in facts if f["meter"] == Meter.ENDPOINT_SECONDS.value], "quantity")),
        "egress_bytes": {k: str(v) for k, v in sorted(egress.items())},
        "data_read_bytes": str(total(reads, "bytes")),
        "oldest_data_age_seconds": max(
            (r["age_seconds"] for r in reads if r.get("age_seconds") is not None), default=None
        ),
        "estimated_cost": str(total(facts, "estimated_cost")),
        "allocated_cost": str(allocated),
        "billed_cost": str(total(resources, "billed_cost")),
        "list_cost": str(total(resources, "list_cost")),
        "estimate_of_allocated_usage": str(estimated_matched),
        "variance": str(allocated - estimated_matched),
    }


def top(
    connection: duckdb.DuckDBPyConnection, *, by: str, group: str, period: str | None, limit: int = 20
) -> dict[str, Any]:
    """The ranking of workflows / tenants / models / services by allocated cost, tokens or data age."""
    if by not in RANKINGS:
        raise BillingError(f"--by must be one of {', '.join(RANKINGS)}, not {by!r}")
    if group not in GROUPS:
        raise BillingError(f"--group must be one of {', '.join(GROUPS)}, not {group!r}")
    if by == "cost":
        run_id, resolved_period, currency = _current_run(connection, period)
        rows = _records(
            connection.execute(
                f"""SELECT coalesce({group}, '{_NONE}') AS {group}, sum(effective_cost) AS cost,
                           sum(billed_cost) AS billed_cost, sum(estimated_cost) AS estimated_cost,
                           sum(effective_cost) - sum(estimated_cost) AS variance, count(DISTINCT trace_id) AS traces
                    FROM allocations WHERE run_id = ? AND trace_id IS NOT NULL
                    GROUP BY 1 ORDER BY cost DESC, 1 LIMIT ?""",
                [run_id, limit],
            )
        )
        return {"by": by, "group": group, "period": resolved_period, "currency": currency, "rows": rows}
    bounds, where = _period_filter(period, "start_time")
    if by == "tokens":
        if not has_table(connection, "usage_facts"):
            raise BillingError("the store has no usage facts yet")
        meters = ", ".join(f"'{m}'" for m in _TOKEN_METERS)
        rows = _records(
            connection.execute(
                f"""SELECT coalesce({group}, '{_NONE}') AS {group}, sum(quantity) AS tokens,
                           {
                    ", ".join(
                        f"sum(quantity) FILTER (WHERE meter = '{m}') AS {m.removeprefix('llm.')}" for m in _TOKEN_METERS
                    )
                },
                           count(DISTINCT trace_id) AS traces
                    FROM usage_facts WHERE meter IN ({meters}) {where}
                    GROUP BY 1 ORDER BY tokens DESC, 1 LIMIT ?""",
                [*bounds, limit],
            )
        )
        return {"by": by, "group": group, "period": period, "rows": rows}
    if not has_table(connection, "data_reads"):
        raise BillingError("the store has no data reads yet")
    read_bounds, read_where = _period_filter(period, "r.read_time")
    key = (
        "(SELECT any_value(f.model) FROM usage_facts f WHERE f.trace_id = r.trace_id AND f.model IS NOT NULL)"
        if group == "model"
        else f"r.{group}"
    )
    rows = _records(
        connection.execute(
            f"""SELECT coalesce({key}, '{_NONE}') AS {group}, max(r.age_seconds) AS oldest_age_seconds,
                       avg(r.age_seconds) AS mean_age_seconds, count(*) AS reads, count(DISTINCT r.trace_id) AS traces
                FROM data_reads r WHERE true {read_where}
                GROUP BY 1 ORDER BY oldest_age_seconds DESC NULLS LAST, 1 LIMIT ?""",
            [*read_bounds, limit],
        )
    )
    return {"by": by, "group": group, "period": period, "rows": rows}


def _period_filter(period: str | None, column: str) -> tuple[list[datetime], str]:
    if period is None:
        return [], ""
    start = parse_period(period)
    end = start.replace(year=start.year + 1, month=1) if start.month == 12 else start.replace(month=start.month + 1)
    return [start, end], f"AND {column} >= ? AND {column} < ?"


def idle_capacity(connection: duckdb.DuckDBPyConnection, *, period: str | None) -> dict[str, Any]:
    """Empty capacity per resource and charge period: billed and busy hours, idle cost and why."""
    run_id, resolved_period, currency = _current_run(connection, period)
    rows = _records(
        connection.execute(
            """SELECT l.resource_id AS resource, al.resource_type, l.instance_type, al.accelerators,
                      l.charge_period_start, l.charge_period_end,
                      (al.capacity_seconds / 3600)::DECIMAL(38, 6) AS billed_hours,
                      (al.busy_seconds / 3600)::DECIMAL(38, 6) AS busy_hours,
                      ((al.capacity_seconds - least(al.busy_seconds, al.capacity_seconds)) / 3600)::DECIMAL(38, 6)
                        AS idle_hours,
                      al.effective_cost - al.allocated_effective_cost AS idle_cost,
                      al.effective_cost AS cost, al.trace_count AS traces,
                      CASE WHEN al.busy_seconds = 0 THEN 'no_spans' WHEN al.busy_seconds < al.capacity_seconds
                           THEN 'partial' ELSE 'busy' END AS reason,
                      al.flags
               FROM allocation_lines al JOIN billing_lines l USING (snapshot_id, line_no)
               WHERE al.run_id = ? AND al.kind = 'capacity'
               ORDER BY idle_cost DESC, l.charge_period_start, resource""",
            [run_id],
        )
    )
    total_idle = sum((Decimal(row["idle_cost"]) for row in rows), Decimal(0))
    idle_hours = sum((Decimal(row["idle_hours"]) for row in rows), Decimal(0))
    return {
        "period": resolved_period,
        "currency": currency,
        "run_id": run_id,
        "idle_cost": str(total_idle),
        "idle_accelerator_hours": str(idle_hours),
        "rows": rows,
    }


ALLOCATION_COLUMNS = (
    "BillingAccountId",
    "SubAccountId",
    "ProviderName",
    "BillingPeriodStart",
    "BillingPeriodEnd",
    "ChargePeriodStart",
    "ChargePeriodEnd",
    "ChargeCategory",
    "ChargeClass",
    "ChargeDescription",
    "ServiceName",
    "ResourceId",
    "ResourceType",
    "RegionId",
    "SkuId",
    "SkuPriceId",
    "PricingQuantity",
    "PricingUnit",
    "ConsumedQuantity",
    "ConsumedUnit",
    "BillingCurrency",
    "BilledCost",
    "EffectiveCost",
    "ListCost",
    "Tags",
    "AllocatedMethodId",
    "AllocatedMethodDetails",
    "AllocatedResourceId",
    "AllocatedTags",
    "x_TraceId",
    "x_SpanIds",
    "x_EstimatedCost",
    "x_UnallocatedReason",
    "x_AllocationRunId",
    "x_Flags",
)


def allocation_rows(connection: duckdb.DuckDBPyConnection, *, period: str | None) -> dict[str, Any]:
    """The current run's rows in FOCUS 1.3 split-cost-allocation form (unallocated rows have no resource)."""
    run_id, resolved_period, currency = _current_run(connection, period)
    method = connection.execute("SELECT method_version FROM allocation_runs WHERE run_id = ?", [run_id]).fetchone()
    assert method is not None
    cursor = connection.execute(
        """SELECT l.billing_account_id AS BillingAccountId, l.sub_account_id AS SubAccountId,
                  l.provider_name AS ProviderName, l.billing_period_start AS BillingPeriodStart,
                  l.billing_period_end AS BillingPeriodEnd, l.charge_period_start AS ChargePeriodStart,
                  l.charge_period_end AS ChargePeriodEnd, l.charge_category AS ChargeCategory,
                  l.charge_class AS ChargeClass, l.charge_description AS ChargeDescription,
                  l.service_name AS ServiceName, l.resource_id AS ResourceId, l.resource_type AS ResourceType,
                  l.region_id AS RegionId, l.sku_id AS SkuId, l.sku_price_id AS SkuPriceId,
                  l.pricing_quantity AS PricingQuantity, l.pricing_unit AS PricingUnit,
                  l.consumed_quantity AS ConsumedQuantity, l.consumed_unit AS ConsumedUnit,
                  l.billing_currency AS BillingCurrency, a.billed_cost AS BilledCost,
                  a.effective_cost AS EffectiveCost, a.list_cost AS ListCost, l.tags AS Tags,
                  ? || '.' || CASE WHEN proportional THEN 'proportional_to_allocated_cost' ELSE al.kind END
                    AS AllocatedMethodId,
                  json_merge_patch(
                    json_object('Elements', [json_object('AllocatedRatio', a.allocated_ratio,
                                                         'UsageUnit', a.usage_unit,
                                                         'UsageQuantity', a.usage_quantity)],
                                'x_Rule', al.rule_id),
                    CASE WHEN proportional THEN json_object(
                      'x_SharedPolicy', 'proportional',
                      'x_Basis', 'EffectiveCost allocated directly to each trace in the same billing period and '
                                 || 'billing account (UsageQuantity, in BillingCurrency)') ELSE '{}' END
                  )::VARCHAR AS AllocatedMethodDetails,
                  a.trace_id AS AllocatedResourceId,
                  CASE WHEN a.trace_id IS NOT NULL THEN json_object('workflow', a.workflow, 'tenant', a.tenant,
                       'service', a.service, 'model', a.model)::VARCHAR END AS AllocatedTags,
                  a.trace_id AS x_TraceId, array_to_string(a.span_ids, ',') AS x_SpanIds,
                  a.estimated_cost AS x_EstimatedCost, a.unallocated_reason AS x_UnallocatedReason,
                  a.run_id AS x_AllocationRunId, al.flags AS x_Flags
           FROM allocations a JOIN billing_lines l USING (snapshot_id, line_no)
           JOIN (SELECT *, kind = 'shared' AND list_contains(string_split(coalesce(flags, ''), ','),
                                                           'shared_policy_proportional') AS proportional
                 FROM allocation_lines) al USING (run_id, snapshot_id, line_no)
           WHERE a.run_id = ?
           ORDER BY l.snapshot_id, l.line_no, a.trace_id NULLS LAST""",
        [method[0], run_id],
    )
    return {
        "period": resolved_period,
        "currency": currency,
        "run_id": run_id,
        "columns": list(ALLOCATION_COLUMNS),
        "rows": _records(cursor),
    }
