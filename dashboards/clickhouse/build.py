"""Write the Grafana dashboard for spanledger's tables in ClickHouse (``grafana-clickhouse-datasource``).

    python dashboards/clickhouse/build.py            # (re)write dashboards/clickhouse/*.json
    python dashboards/clickhouse/build.py --check    # exit 1 if a committed JSON file is stale

The panels read ``usage_facts_window`` (the facts that count in the dashboard's time range: on spanledger's
ClickHouse store a view over its tables without the replayed and retracted facts; over the OTel Collector's
``otel_traces`` the view ``spanledger clickhouse init`` makes, which resolves only the range's traces) and
``data_reads_window``, the allocation tables (empty until a billing import), and ``otel_traces`` for the trace
view. Meter values come from ``spanledger.semconv``. Plain
dicts, as in ``dashboards/build.py``: the JSON is the artifact users import.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from spanledger.semconv import SpanledgerMeterValues as Meter
from spanledger_collector._store._clickhouse_schema import WINDOW_VIEWS

HERE = Path(__file__).resolve().parent
SCHEMA_VERSION = 39
PLUGIN = "grafana-clickhouse-datasource"
DATASOURCE = {"type": PLUGIN, "uid": "${datasource}"}
# The plugin's query formats (pluginVersion 4): its Format enum.
TIME_SERIES, TABLE, TRACE = 0, 1, 3
DB = "${database}"
TOKEN_METERS = (Meter.LLM_INPUT_TOKENS, Meter.LLM_CACHE_READ_TOKENS, Meter.LLM_CACHE_WRITE_TOKENS,
                Meter.LLM_OUTPUT_TOKENS)  # fmt: skip
NONE = "(none)"
"""What a variable and a panel call a NULL or empty workflow, tenant or model (the plugin reads an empty value as
All, so '' could not be selected)."""


def labelled(column: str) -> str:
    return f"ifNull(nullIf({column}, ''), '{NONE}')"


FILTERS = " AND ".join(
    f"$__conditionalAll({labelled(column)} IN (${{{column}:singlequote}}), ${column})"
    for column in ("workflow", "tenant", "model")
)
# The windowed views over the dashboard's range: the plugin's own macros (expanded by its backend, alerting
# included), as the Unix seconds $__timeFilter compares with, which the views' parameters read.
RANGE = "(since=toString(toUnixTimestamp($__fromTime)), until=toString(toUnixTimestamp($__toTime)), trace='')"
FACTS = f"{DB}.{WINDOW_VIEWS[0]}{RANGE}"
READS = f"{DB}.{WINDOW_VIEWS[1]}{RANGE}"
FACTS_IN_RANGE = f"FROM {FACTS} WHERE $__timeFilter(start_time) AND {FILTERS}"


def _meters(meters: tuple[Meter, ...]) -> str:
    return "(" + ", ".join(f"'{meter.value}'" for meter in meters) + ")"


def _sum_of(meter: Meter, alias: str) -> str:
    return f"sumIf(quantity, meter = '{meter.value}') AS {alias}"


TRACE_VIEW_SQL = (
    "SELECT TraceId AS traceID, SpanId AS spanID, ParentSpanId AS parentSpanID, ServiceName AS serviceName, "
    "SpanName AS operationName, Timestamp AS startTime, multiply(Duration, 0.000001) AS duration, "
    "arrayMap(key -> map('key', key, 'value', SpanAttributes[key]), mapKeys(SpanAttributes)) AS tags, "
    "arrayMap(key -> map('key', key, 'value', ResourceAttributes[key]), mapKeys(ResourceAttributes)) AS serviceTags "
    f"FROM {DB}.${{traces_table}} WHERE TraceId = '${{__value.raw}}' ORDER BY startTime ASC"
)
"""The plugin's trace query over ``otel_traces`` (its trace view's column aliases)."""


def target(sql: str, kind: int) -> dict[str, Any]:
    query_type = {TIME_SERIES: "timeseries", TABLE: "table", TRACE: "traces"}[kind]
    return {"datasource": DATASOURCE, "editorType": "sql", "format": kind, "queryType": query_type, "rawSql": sql}


def panel(kind: str, title: str, description: str, unit: str, sql: str, fmt: int, **extra: Any) -> dict[str, Any]:
    defaults: dict[str, Any] = {"unit": unit}
    if kind == "timeseries":
        defaults["custom"] = {"fillOpacity": 10, "showPoints": "never", "spanNulls": True}
    options = {"reduceOptions": {"calcs": ["lastNotNull"], "fields": "", "values": False}} if kind == "stat" else {}
    return {
        "type": kind,
        "title": title,
        "description": description,
        "datasource": DATASOURCE,
        "targets": [{**target(sql, fmt), "refId": "A"}],
        "fieldConfig": {"defaults": defaults, "overrides": extra.pop("overrides", [])},
        "options": {**options, **extra},
    }


def trace_link(field: str) -> dict[str, Any]:
    """Rows link to the plugin's trace view of their trace (an internal link running the trace query)."""
    return {
        "matcher": {"id": "byName", "options": field},
        "properties": [
            {
                "id": "links",
                "value": [
                    {
                        "title": "Show trace ${__value.raw}",
                        "url": "",
                        "internal": {
                            "datasourceUid": "${datasource}",
                            "datasourceName": "${datasource}",
                            "query": {**target(TRACE_VIEW_SQL, TRACE), "refId": "A"},
                        },
                    }
                ],
            }
        ],
    }


LINEAGE_SQL = f"""WITH
  outputs AS (
    SELECT trace_id,
      any(workflow) AS output_workflow, any(tenant) AS output_tenant,
      groupUniqArrayIf(model, model IS NOT NULL) AS models,
      sumIf(quantity, meter IN {_meters(TOKEN_METERS)}) AS tokens,
      sumIf(quantity, meter = '{Meter.ACCELERATOR_SECONDS.value}') AS accelerator_seconds,
      sum(estimated_cost) AS output_cost,
      min(start_time) AS started
    {FACTS_IN_RANGE}
    GROUP BY trace_id
  ),
  reads AS (
    SELECT trace_id, groupUniqArrayIf(source, source IS NOT NULL) AS data_sources, max(age_seconds) AS max_data_age
    FROM {READS}
    WHERE trace_id IN (SELECT trace_id FROM outputs)
    GROUP BY trace_id
  ),
  allocated AS (
    SELECT trace_id, sum(effective_cost) AS allocated_cost
    FROM {DB}.allocations FINAL
    WHERE trace_id IN (SELECT trace_id FROM outputs)
      AND run_id IN (SELECT run_id FROM {DB}.allocation_runs FINAL WHERE superseded_by IS NULL)
    GROUP BY trace_id
  )
SELECT o.started AS time, o.trace_id AS trace_id, o.output_workflow AS workflow, o.output_tenant AS tenant,
  arrayStringConcat(o.models, ', ') AS models, o.tokens AS tokens,
  arrayStringConcat(r.data_sources, ', ') AS data_sources,
  r.max_data_age AS max_data_age_seconds, o.accelerator_seconds AS accelerator_seconds,
  o.output_cost AS estimated_cost, a.allocated_cost AS allocated_cost
FROM outputs AS o
LEFT JOIN reads AS r ON r.trace_id = o.trace_id
LEFT JOIN allocated AS a ON a.trace_id = o.trace_id
ORDER BY time DESC
LIMIT 500"""


def rows() -> list[tuple[str, list[dict[str, Any]]]]:
    cost, tokens = "sum(estimated_cost) AS cost", f"sumIf(quantity, meter IN {_meters(TOKEN_METERS)}) AS tokens"
    return [
        (
            "Cost and tokens",
            [
                panel("stat", "Estimated cost in range",
                      "Sum of usage_facts.estimated_cost (priced at ingest, or by the engine's price table).",
                      "currencyUSD", f"SELECT {cost} {FACTS_IN_RANGE}", TABLE),
                panel("stat", "Tokens in range", "Input, cache and output tokens in the selected range.", "short",
                      f"SELECT {tokens} {FACTS_IN_RANGE}", TABLE),
                panel("stat", "Unpriced facts in range",
                      "Usage facts without an estimate (unpriced_reason set): unknown models, missing prices.",
                      "short", f"SELECT countIf(estimated_cost IS NULL) AS unpriced {FACTS_IN_RANGE}", TABLE),
                panel("stat", "AI outputs in range", "Traces with usage in the selected range.", "short",
                      f"SELECT uniqExact(trace_id) AS outputs {FACTS_IN_RANGE}", TABLE),
                panel("timeseries", "Estimated cost by workflow",
                      "Estimated cost per interval, one series per workflow.", "currencyUSD",
                      f"SELECT $__timeInterval(start_time) AS time, {labelled('workflow')} AS workflow, {cost} "
                      f"{FACTS_IN_RANGE} GROUP BY time, workflow ORDER BY time", TIME_SERIES),
                panel("timeseries", "Tokens by model", "Tokens per interval, one series per model.", "short",
                      f"SELECT $__timeInterval(start_time) AS time, {labelled('model')} AS model, {tokens} "
                      f"{FACTS_IN_RANGE} GROUP BY time, model ORDER BY time", TIME_SERIES),
                panel("table", "Cost and tokens by model",
                      "Per model and provider: tokens by meter and the estimated cost over the range.", "short",
                      f"SELECT {labelled('model')} AS model, {labelled('provider')} AS provider, "
                      f"{_sum_of(Meter.LLM_INPUT_TOKENS, 'input_tokens')}, "
                      f"{_sum_of(Meter.LLM_CACHE_READ_TOKENS, 'cache_read_tokens')}, "
                      f"{_sum_of(Meter.LLM_CACHE_WRITE_TOKENS, 'cache_write_tokens')}, "
                      f"{_sum_of(Meter.LLM_OUTPUT_TOKENS, 'output_tokens')}, {cost} "
                      f"{FACTS_IN_RANGE} GROUP BY model, provider ORDER BY cost DESC NULLS LAST", TABLE),
                panel("table", "Cost and tokens by tenant",
                      "Per tenant and workflow: tokens and estimated cost over the range (top 50 by cost).", "short",
                      f"SELECT {labelled('tenant')} AS tenant, {labelled('workflow')} AS workflow, {tokens}, "
                      f"{cost} {FACTS_IN_RANGE} GROUP BY tenant, workflow ORDER BY cost DESC NULLS LAST LIMIT 50",
                      TABLE),
            ],
        ),
        (
            "Lineage",
            [
                panel("table", "AI outputs: lineage and cost",
                      "Per trace (one AI output): its models, tokens, the data sources it read in the range and "
                      "their largest age, accelerator-seconds, estimated cost and the EffectiveCost allocated from the "
                      "bill by the current allocation run. Click a trace id for the trace view.",
                      "short", LINEAGE_SQL, TABLE, overrides=[trace_link("trace_id")]),
            ],
        ),
    ]  # fmt: skip


def variables() -> list[dict[str, Any]]:
    def values(name: str, label: str, column: str) -> dict[str, Any]:
        query = (f"SELECT DISTINCT {labelled(column)} FROM {FACTS} "
                 f"WHERE $__timeFilter(start_time) ORDER BY 1")  # fmt: skip
        return {"type": "query", "name": name, "label": label, "datasource": DATASOURCE, "definition": query,
                "query": query, "refresh": 2, "includeAll": True, "multi": True, "allValue": "",
                "current": {"selected": True, "text": ["All"], "value": ["$__all"]}, "sort": 1, "hide": 0,
                "regex": "", "options": []}  # fmt: skip

    def text(name: str, label: str, value: str) -> dict[str, Any]:
        return {"type": "textbox", "name": name, "label": label, "query": value, "hide": 0,
                "current": {"text": value, "value": value}, "options": []}  # fmt: skip

    return [
        {"type": "datasource", "name": "datasource", "label": "Data Source", "query": PLUGIN, "current": {},
         "hide": 0, "refresh": 1, "regex": "", "options": []},
        text("database", "Database", "default"),
        text("traces_table", "Traces table", "otel_traces"),
        values("workflow", "Workflow", "workflow"),
        values("tenant", "Tenant", "tenant"),
        values("model", "Model", "model"),
    ]  # fmt: skip


WIDTHS = {"timeseries": 12, "table": 24, "stat": 6}
HEIGHTS = {"timeseries": 8, "table": 10, "stat": 4}


def _layout(sections: list[tuple[str, list[dict[str, Any]]]]) -> list[dict[str, Any]]:
    placed: list[dict[str, Any]] = []
    y, ids = 0, iter(range(1, 1000))
    for title, panels in sections:
        placed.append({"type": "row", "id": next(ids), "title": title, "collapsed": False, "panels": [],
                       "gridPos": {"h": 1, "w": 24, "x": 0, "y": y}})  # fmt: skip
        y, x, height = y + 1, 0, 0
        for item in panels:
            width = WIDTHS[item["type"]]
            if x + width > 24:
                y, x, height = y + height, 0, 0
            placed.append({"id": next(ids), "gridPos": {"h": HEIGHTS[item["type"]], "w": width, "x": x, "y": y},
                           **item})  # fmt: skip
            x, height = x + width, max(height, HEIGHTS[item["type"]])
        y += height
    return placed


def dashboard() -> dict[str, Any]:
    return {
        "uid": "spanledger-clickhouse",
        "title": "spanledger — cost and lineage (ClickHouse)",
        "description": "Built by dashboards/clickhouse/build.py; do not edit by hand.",
        "tags": ["spanledger", "clickhouse"],
        "schemaVersion": SCHEMA_VERSION,
        "version": 1,
        "editable": False,
        "graphTooltip": 1,
        "timezone": "browser",
        "time": {"from": "now-24h", "to": "now"},
        "refresh": "5m",
        "annotations": {"list": []},
        "links": [],
        "templating": {"list": variables()},
        "panels": _layout(rows()),
    }


def dashboards() -> dict[str, dict[str, Any]]:
    board = dashboard()
    return {f"{board['uid']}.json": board}


def render(board: dict[str, Any]) -> str:
    return json.dumps(board, indent=2, ensure_ascii=False) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--check", action="store_true", help="fail if a JSON file differs from what would be built")
    args = parser.parse_args(argv)
    stale = []
    for name, board in dashboards().items():
        path = HERE / name
        text = render(board)
        if args.check:
            if not path.exists() or path.read_text() != text:
                stale.append(name)
        else:
            path.write_text(text)
    if stale:
        print(f"stale dashboards (run python dashboards/clickhouse/build.py): {', '.join(stale)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
