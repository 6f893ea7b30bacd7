"""Human-readable renderings of the answers (the ``--json`` output is the answer itself)."""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

__all__ = ["money", "render_allocations", "render_idle", "render_import", "render_runs", "render_top", "render_trace"]

_MICRO = Decimal("0.000001")


def money(value: Any, currency: str | None = None) -> str:
    """Exact decimal string -> 6 decimals for reading (the JSON keeps every digit)."""
    if value is None:
        return "-"
    rounded = Decimal(str(value)).quantize(_MICRO, rounding=ROUND_HALF_UP)
    text = str(abs(rounded) if rounded.is_zero() else rounded)  # never "-0.000000"
    return f"{text} {currency}" if currency else text


def _number(value: Any) -> str:
    if value is None:
        return "-"
    number = Decimal(str(value))
    return f"{number.normalize():,f}" if number == number.to_integral_value() else f"{number:,.3f}"


def _table(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    cells = [[str(h) for h in headers]] + [["" if c is None else str(c) for c in row] for row in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(headers))]
    lines = ["  ".join(cell.ljust(widths[i]) for i, cell in enumerate(row)).rstrip() for row in cells]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def render_runs(runs: Sequence[dict[str, Any]]) -> str:
    return "\n".join(
        f"allocation {run['billing_period']}: run {run['run_id']} {run['status']} "
        f"({run['line_count']} billing lines, {run['matched_fact_count']} usage facts matched)"
        for run in runs
    )


def render_import(result: dict[str, Any]) -> str:
    lines = [f"read {len(result['files'])} file(s)"]
    for snapshot in result["snapshots"]:
        lines.append(
            f"  {snapshot['billing_period']} {snapshot['scope'].rsplit('|', 1)[0]}: {snapshot['row_count']} lines, "
            f"{snapshot['status']} (snapshot {snapshot['snapshot_id'][:12]})"
        )
    if result["runs"]:
        lines.append(render_runs(result["runs"]))
    return "\n".join(lines)


def _tree_lines(nodes: Sequence[dict[str, Any]], prefix: str, currency: str | None) -> list[str]:
    lines = []
    for index, node in enumerate(nodes):
        last = index == len(nodes) - 1
        branch, child_prefix = ("└─ ", "   ") if last else ("├─ ", "│  ")
        lines.append(f"{prefix}{branch}{node.get('name') or 'span'} [{node['span_id']}]")
        inner = prefix + child_prefix
        if node.get("unmeasured"):
            lines.append(f"{inner}• not measured ({node['unmeasured']}): no figure is shown rather than a made-up one")
        for usage in node["usage"]:
            where = usage.get("model") or usage.get("resource_id") or ""
            boundary = f" ({usage['boundary']})" if usage.get("boundary") else ""
            lines.append(
                f"{inner}• {usage['meter']} {_number(usage['quantity'])} {usage['unit']}{boundary} {where} "
                f"est {money(usage.get('estimated_cost'), currency)}"
            )
        for read in node["data_reads"]:
            lines.append(
                f"{inner}• read {read.get('source')} ({read.get('source_kind') or 'data'}), "
                f"age {_number(read.get('age_seconds'))} s, {_number(read.get('bytes'))} bytes"
            )
        lines.extend(_tree_lines(node["children"], inner, currency))
    return lines


def render_trace(answer: dict[str, Any]) -> str:
    totals = answer["totals"]
    currency = totals["currency"]
    head = f"trace {answer['trace_id']}"
    for key in ("workflow", "tenant", "service"):
        if answer.get(key):
            head += f"  {key}={answer[key]}"
    lines = [head, *_tree_lines(answer["tree"], "", currency)]
    if answer["model_calls"]:
        lines.append("model calls:")
        for call in answer["model_calls"]:
            tokens = ", ".join(f"{k} {_number(v)}" for k, v in call["tokens"].items())
            lines.append(
                f"  {call['model']} [{call['span_id']}]: {tokens} tokens, est {money(call['estimated_cost'], currency)}"
            )
    if answer["data_reads"]:
        lines.append("data read:")
        for read in answer["data_reads"]:
            lines.append(
                f"  {read.get('source')}: age {_number(read.get('age_seconds'))} s, {_number(read.get('bytes'))} bytes"
            )
    if answer["resources"]:
        lines.append("resources on the bill:")
        for row in answer["resources"]:
            kind = ", ".join(filter(None, (row["resource_type"], row["meter_rule"])))
            lines.append(
                f"  {row['billing_period']} {row['resource']} ({kind}) "
                f"{row['charge_period_start']}..{row['charge_period_end']}: {_number(row['usage_quantity'])} "
                f"{row['usage_unit']}, allocated {money(row['effective_cost'], currency)} "
                f"(billed {money(row['billed_cost'])}, est {money(row['estimated_cost'])})"
            )
    tokens = ", ".join(f"{k} {_number(v)}" for k, v in totals["tokens"].items() if Decimal(v))
    egress = ", ".join(f"{k} {_number(v)}" for k, v in totals["egress_bytes"].items())
    lines.append("totals:")
    lines.append(f"  tokens: {tokens or '0'}")
    not_measured = totals.get("not_measured") or []
    unmeasured = f" (+ {len(not_measured)} span(s) not measured)" if not_measured else ""
    lines.append(
        f"  accelerator-seconds: {_number(totals['accelerator_seconds'])}{unmeasured}, "
        f"endpoint-seconds: {_number(totals['endpoint_seconds'])}"
    )
    lines.append(
        f"  egress bytes: {egress or '0'}; data read: {_number(totals['data_read_bytes'])} bytes, "
        f"oldest {_number(totals['oldest_data_age_seconds'])} s"
    )
    lines.append(
        f"  estimated {money(totals['estimated_cost'], currency)}, allocated from the bill "
        f"{money(totals['allocated_cost'], currency)} "
        f"(estimate of that usage {money(totals['estimate_of_allocated_usage'])}, "
        f"variance {money(totals['variance'])})"
    )
    return "\n".join(lines)


def render_top(answer: dict[str, Any]) -> str:
    rows = answer["rows"]
    group = answer["group"]
    title = f"top {group}s by {answer['by']}" + (f", billing period {answer['period']}" if answer.get("period") else "")
    if not rows:
        return title + ": nothing yet"
    if answer["by"] == "cost":
        currency = answer.get("currency")
        body = _table(
            [group, f"cost ({currency})", "billed", "estimated", "variance", "traces"],
            [
                [
                    r[group],
                    money(r["cost"]),
                    money(r["billed_cost"]),
                    money(r["estimated_cost"]),
                    money(r["variance"]),
                    r["traces"],
                ]
                for r in rows
            ],
        )
    elif answer["by"] == "tokens":
        body = _table(
            [group, "tokens", "input", "cache read", "cache write", "output", "traces"],
            [
                [
                    r[group],
                    _number(r["tokens"]),
                    _number(r["input_tokens"]),
                    _number(r["cache_read_tokens"]),
                    _number(r["cache_write_tokens"]),
                    _number(r["output_tokens"]),
                    r["traces"],
                ]
                for r in rows
            ],
        )
    else:
        body = _table(
            [group, "oldest age (s)", "mean age (s)", "reads", "traces"],
            [
                [r[group], _number(r["oldest_age_seconds"]), _number(r["mean_age_seconds"]), r["reads"], r["traces"]]
                for r in rows
            ],
        )
    return f"{title}\n{body}"


def render_idle(answer: dict[str, Any]) -> str:
    currency = answer.get("currency")
    title = (
        f"empty capacity, billing period {answer['period']}: {money(answer['idle_cost'], currency)} for "
        f"{_number(answer['idle_accelerator_hours'])} idle hours"
    )
    if not answer["rows"]:
        return title
    body = _table(
        ["resource", "type", "charge period", "billed h", "busy h", "idle h", "idle cost", "reason"],
        [
            [
                r["resource"],
                r["instance_type"] or r["resource_type"],
                f"{r['charge_period_start']}..{r['charge_period_end']}",
                r["billed_hours"],
                r["busy_hours"],
                r["idle_hours"],
                money(r["idle_cost"]),
                r["reason"],
            ]
            for r in answer["rows"]
        ],
    )
    return f"{title}\n{body}"


_SNAKE = {
    "AllocatedMethodId": "method",
    "AllocatedResourceId": "trace_id",
    "x_SpanIds": "span_ids",
    "x_UnallocatedReason": "unallocated_reason",
    "x_EstimatedCost": "estimated_cost",
}


def render_allocations(answer: dict[str, Any], file_format: str) -> str:
    """``focus``: FOCUS 1.3 columns as CSV; ``csv``: a compact CSV; ``json`` is the answer itself."""
    output = io.StringIO()
    writer = csv.writer(output, lineterminator="\n")
    if file_format == "focus":
        columns = answer["columns"]
        writer.writerow(columns)
        for row in answer["rows"]:
            writer.writerow(["" if row[c] is None else row[c] for c in columns])
    else:
        columns = [
            "ChargePeriodStart",
            "ResourceId",
            "ServiceName",
            "AllocatedResourceId",
            "x_SpanIds",
            "EffectiveCost",
            "BilledCost",
            "ListCost",
            "x_EstimatedCost",
            "x_UnallocatedReason",
            "AllocatedMethodId",
        ]
        writer.writerow(
            [_SNAKE.get(c, "".join("_" + ch.lower() if ch.isupper() else ch for ch in c).lstrip("_")) for c in columns]
        )
        for row in answer["rows"]:
            writer.writerow(["" if row[c] is None else row[c] for c in columns])
    return output.getvalue()
