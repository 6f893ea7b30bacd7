"""The answers: one trace's lineage and cost, rankings, idle capacity, and the allocation rows.

Every answer is a JSON-ready dict (money as exact decimal strings) so that the CLI, the HTTP API and
tests see the same thing. Answers read the current allocation run of each billing period. The queries are SQL
files per engine (``sql/<engine>/answers/*.sql``); usage facts are read through :meth:`Engine.facts_within` (the
answer's window or trace) or :attr:`Engine.facts`, data reads through :meth:`Engine.reads_within`.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import datetime
from decimal import Decimal
from typing import Any

from spanledger import semconv
from spanledger.semconv import SpanledgerMeterValues as Meter

from ._allocation import parse_period
from ._engine import Engine, Window, engine_of
from ._errors import BillingError, NotFoundError

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


def _records(engine: Engine, name: str, **params: object) -> list[dict[str, Any]]:
    names, rows = engine.query(engine.sql(f"answers/{name}", **params))
    return [{name: _json_value(value) for name, value in zip(names, row, strict=True)} for row in rows]


def _require_runs(engine: Engine) -> None:
    if not engine.has_table("allocation_runs"):
        raise BillingError("no billing imported yet: run `spanledger billing import PATH`")


def _current_run(engine: Engine, period: str | None) -> tuple[int, str, str | None]:
    """The current run of ``period``; by default of the latest period whose run allocated cost to traces."""
    _require_runs(engine)
    if period is None:
        rows = engine.rows(engine.sql("answers/latest_run"))
    else:
        rows = engine.rows(engine.sql("answers/period_run", period_start=engine.literal(parse_period(period))))
    row = rows[0] if rows else None
    if row is None:
        raise BillingError(
            f"no allocation run for billing period {period}"
            if period
            else "no allocation run yet: import billing first"
        )
    return int(row[0]), str(row[1]), row[2]


def trace_lineage(store: Any, trace_id: str) -> dict[str, Any]:
    """The lineage of one AI output: spans, model calls, data read, resources used, and their cost.

    ``store``: a DuckDB connection, a clickhouse-connect client or an :class:`~._engine.Engine`; in ClickHouse
    the spans are read from the exporter's table (:attr:`~._engine.Engine.spans`, ``otel_traces`` by default).
    """
    engine = engine_of(store)
    trace_id = trace_id.strip().lower()
    trace = engine.literal(trace_id)
    window = Window(trace_id=trace_id)
    facts = (
        _records(engine, "trace_facts", facts=engine.facts_within(window), trace_id=trace)
        if engine.has_table("usage_facts")
        else []
    )
    reads = (
        _records(engine, "trace_reads", reads=engine.reads_within(window), trace_id=trace)
        if engine.has_table("data_reads")
        else []
    )
    spans = (
        _records(
            engine,
            "trace_spans",
            trace_id=trace,
            **engine.spans_relations(),
            not_measured_reason=engine.literal(semconv.SPANLEDGER_ACCELERATOR_NOT_MEASURED_REASON),
        )
        if engine.has_table(engine.spans)
        else []
    )
    resources = _records(engine, "trace_resources", trace_id=trace) if engine.has_table("allocation_runs") else []
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


def top(store: Any, *, by: str, group: str, period: str | None, limit: int = 20) -> dict[str, Any]:
    """The ranking of workflows / tenants / models / services by allocated cost, tokens or data age."""
    if by not in RANKINGS:
        raise BillingError(f"--by must be one of {', '.join(RANKINGS)}, not {by!r}")
    if group not in GROUPS:
        raise BillingError(f"--group must be one of {', '.join(GROUPS)}, not {group!r}")
    engine = engine_of(store)
    if by == "cost":
        run_id, resolved_period, currency = _current_run(engine, period)
        rows = _records(engine, "top_cost", group=group, run_id=run_id, limit=limit)
        return {"by": by, "group": group, "period": resolved_period, "currency": currency, "rows": rows}
    if by == "tokens":
        if not engine.has_table("usage_facts"):
            raise BillingError("the store has no usage facts yet")
        meters = {f"{m.removeprefix('llm.').removesuffix('_tokens')}_meter": engine.literal(m) for m in _TOKEN_METERS}
        rows = _records(
            engine,
            "top_tokens",
            group=group,
            facts=engine.facts_within(_period_window(period)),
            token_meters=", ".join(meters.values()),
            period=_period_filter(engine, period, "start_time"),
            limit=limit,
            **meters,
        )
        return {"by": by, "group": group, "period": period, "rows": rows}
    if not engine.has_table("data_reads"):
        raise BillingError("the store has no data reads yet")
    reads = engine.reads_within(_period_window(period))
    period_filter = _period_filter(engine, period, "r.read_time")
    if group == "model":
        rows = _records(engine, "top_age_by_model", facts=engine.facts, reads=reads, period=period_filter, limit=limit)
    else:
        rows = _records(engine, "top_age", group=group, reads=reads, period=period_filter, limit=limit)
    return {"by": by, "group": group, "period": period, "rows": rows}


def _period_bounds(period: str) -> tuple[datetime, datetime]:
    """The billing period's first instant and the next period's (``YYYY-MM``)."""
    start = parse_period(period)
    end = start.replace(year=start.year + 1, month=1) if start.month == 12 else start.replace(month=start.month + 1)
    return start, end


def _period_filter(engine: Engine, period: str | None, column: str) -> str:
    if period is None:
        return "TRUE"
    start, end = _period_bounds(period)
    return f"{column} >= {engine.literal(start)} AND {column} < {engine.literal(end)}"


def _period_window(period: str | None) -> Window:
    """The rows :func:`_period_filter` keeps, and those at the period's end (a window includes its bounds)."""
    return Window() if period is None else Window(*_period_bounds(period))


def idle_capacity(store: Any, *, period: str | None) -> dict[str, Any]:
    """Empty capacity per resource and charge period: billed and busy hours, idle cost and why."""
    engine = engine_of(store)
    run_id, resolved_period, currency = _current_run(engine, period)
    rows = _records(engine, "idle", run_id=run_id)
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


def allocation_rows(store: Any, *, period: str | None) -> dict[str, Any]:
    """The current run's rows in FOCUS 1.3 split-cost-allocation form (unallocated rows have no resource)."""
    engine = engine_of(store)
    run_id, resolved_period, currency = _current_run(engine, period)
    method = engine.rows(engine.sql("answers/method_version", run_id=run_id))[0][0]
    rows = _records(engine, "allocation_rows", run_id=run_id, method_version=engine.literal(method))
    for row in rows:
        for column in _JSON_COLUMNS:
            if row[column] is not None:
                row[column] = _canonical_json(row[column])
    return {
        "period": resolved_period,
        "currency": currency,
        "run_id": run_id,
        "columns": list(ALLOCATION_COLUMNS),
        "rows": rows,
    }


_JSON_COLUMNS = ("AllocatedMethodDetails", "AllocatedTags")
"""Columns whose value is a JSON document, written by the engine's own JSON functions."""


def _json_number(text: str) -> int | float:
    value = Decimal(text)
    return int(value) if value == value.to_integral_value() else float(value)


def _canonical_json(text: str) -> str:
    """One spelling of an engine's JSON text: DuckDB writes ``1.0`` and ClickHouse ``1`` for the same number, and
    they escape text differently. Numbers are written as Python does (a whole number without ``.0``; a fraction
    as its shortest float, which is what both engines put in: doubles, and quantities of DuckDB's json_object)."""
    document = json.loads(text, parse_float=_json_number, parse_int=_json_number)
    return json.dumps(document, ensure_ascii=False, separators=(",", ":"))
