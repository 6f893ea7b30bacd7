"""Write the Grafana dashboards in this folder from the semconv registry.

    python dashboards/build.py            # (re)write dashboards/*.json
    python dashboards/build.py --check    # exit 1 if a committed JSON file is stale

Every metric and label name comes from ``spanledger.semconv`` through ``semconv/generated/prometheus-names.json``
(the Prometheus form of each registry metric), so a renamed metric breaks the build instead of a dashboard.
Plain dicts: the JSON files are the artifact users import; this script only keeps them consistent.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from spanledger import semconv
from spanledger.semconv import MetricSpec

HERE = Path(__file__).resolve().parent
PROMETHEUS_NAMES: dict[str, dict[str, Any]] = json.loads(
    (HERE.parent / "semconv" / "generated" / "prometheus-names.json").read_text()
)
SCHEMA_VERSION = 39
DATASOURCE = {"type": "prometheus", "uid": "${datasource}"}
# Labels Prometheus adds to every scraped series, and the histogram bucket label.
SCRAPE_LABELS = ("job", "instance")
BUCKET_LABEL = "le"


def label(attribute: str) -> str:
    """The Prometheus label of a registry attribute (``gen_ai.request.model`` -> ``gen_ai_request_model``)."""
    return semconv.PROMETHEUS_LABELS[attribute]


def series(spec: MetricSpec, suffix: str = "") -> str:
    """The exposed series name of a registry metric (``suffix`` picks ``_bucket``/``_sum``/``_count``)."""
    names: list[str] = [name for name in PROMETHEUS_NAMES[spec.name]["series"] if name.endswith(suffix)]
    if len(names) != 1:
        raise ValueError(f"{spec.name}: {suffix!r} matches {names}")
    return names[0]


def selector(spec: MetricSpec, suffix: str = "", *, extra: str = "", **filters: str) -> str:
    """``series{job=~"$job",instance=~"$instance",<label>=~"$<variable>",...}``.

    ``filters`` maps a label to the variable that filters it; a label the metric does not carry is an error
    (it would drop every series as soon as a user picks a value).
    """
    allowed = set(PROMETHEUS_NAMES[spec.name]["labels"])
    matchers = [f'{name}=~"${name}"' for name in SCRAPE_LABELS]
    for attribute_label, variable in filters.items():
        if attribute_label not in allowed:
            raise ValueError(f"{spec.name} has no label {attribute_label}")
        matchers.append(f'{attribute_label}=~"${variable}"')
    if extra:
        matchers.append(extra)
    return f"{series(spec, suffix)}{{{','.join(matchers)}}}"


MODEL = label(semconv.GEN_AI_REQUEST_MODEL)
PROVIDER = label(semconv.GEN_AI_PROVIDER_NAME)
TOKEN_TYPE = label(semconv.GEN_AI_TOKEN_TYPE)
ERROR_TYPE = label(semconv.ERROR_TYPE)
WORKFLOW = label(semconv.SPANLEDGER_WORKFLOW_NAME)
TENANT = label(semconv.SPANLEDGER_TENANT_ID)
SOURCE_KIND = label(semconv.SPANLEDGER_DATA_SOURCE_KIND)
ACCELERATOR_TYPE = label(semconv.SPANLEDGER_ACCELERATOR_TYPE)
BOUNDARY = label(semconv.SPANLEDGER_EGRESS_BOUNDARY)
DIRECTION = label(semconv.NETWORK_IO_DIRECTION)
PERIOD = label(semconv.SPANLEDGER_BILLING_PERIOD)
RESOURCE_TYPE = label(semconv.SPANLEDGER_RESOURCE_TYPE)
RECEIVER = label(semconv.RECEIVER)
TRANSPORT = label(semconv.TRANSPORT)
EXPORTER = label(semconv.EXPORTER)

DURATION = semconv.METRIC_GEN_AI_CLIENT_OPERATION_DURATION
FIRST_CHUNK = semconv.METRIC_GEN_AI_CLIENT_OPERATION_TIME_TO_FIRST_CHUNK
TOKENS = semconv.METRIC_GEN_AI_CLIENT_TOKEN_USAGE
COST = semconv.METRIC_SPANLEDGER_COST_ESTIMATE
GEN_AI_FILTERS = {MODEL: "model", PROVIDER: "provider"}
WORKFLOW_FILTER = {WORKFLOW: "workflow"}


def target(expr: str, legend: str = "", *, instant: bool = False, table: bool = False) -> dict[str, Any]:
    query: dict[str, Any] = {"datasource": DATASOURCE, "expr": expr, "legendFormat": legend or "__auto"}
    if instant:
        query.update(instant=True, range=False)
    if table:
        query["format"] = "table"
    return query


def panel(
    kind: str, title: str, description: str, unit: str, targets: list[dict[str, Any]], **options: Any
) -> dict[str, Any]:
    defaults: dict[str, Any] = {"unit": unit}
    if kind == "timeseries":
        defaults["custom"] = {"fillOpacity": 10, "showPoints": "never", "spanNulls": True}
    if kind in ("stat", "bargauge"):
        options = {"reduceOptions": {"calcs": ["lastNotNull"], "fields": "", "values": False}, **options}
    return {
        "type": kind,
        "title": title,
        "description": description,
        "datasource": DATASOURCE,
        "targets": [{**query, "refId": chr(ord("A") + n)} for n, query in enumerate(targets)],
        "fieldConfig": {"defaults": defaults, "overrides": []},
        "options": options,
    }


def top(k: int, expr: str) -> str:
    return f"topk({k}, {expr})"


def rate(selector_text: str) -> str:
    return f"rate({selector_text}[$__rate_interval])"


def over_range(selector_text: str) -> str:
    """``increase`` over the dashboard's time range: a period total, deliberately not ``$__rate_interval``."""
    return f"increase({selector_text}[$__range])"


def quantile(q: float, spec: MetricSpec, by: str, **filters: str) -> str:
    return f"histogram_quantile({q}, sum by ({BUCKET_LABEL}, {by}) ({rate(selector(spec, '_bucket', **filters))}))"


BARS = {"displayMode": "gradient", "orientation": "horizontal", "showUnfilled": True}
LEGEND = {"legend": {"displayMode": "table", "placement": "right", "calcs": ["mean", "max"]}}


def genai_operations() -> tuple[dict[str, Any], list[tuple[str, list[dict[str, Any]]]]]:
    count = selector(DURATION, "_count", **GEN_AI_FILTERS)
    errors = selector(DURATION, "_count", extra=f'{ERROR_TYPE}!=""', **GEN_AI_FILTERS)
    token_sum = selector(TOKENS, "_sum", **GEN_AI_FILTERS)
    accelerator = selector(semconv.METRIC_SPANLEDGER_ACCELERATOR_TIME, **WORKFLOW_FILTER)
    return (
        {"uid": "spanledger-genai-ops", "title": "spanledger — GenAI operations"},
        [
            (
                "Model calls",
                [
                    panel(
                        "timeseries",
                        "Request rate by model",
                        "GenAI operations per second, from the count of gen_ai.client.operation.duration.",
                        "reqps",
                        [target(f"sum by ({MODEL}) ({rate(count)})", f"{{{{{MODEL}}}}}")],
                        **LEGEND,
                    ),
                    panel(
                        "timeseries",
                        "Error rate by error.type",
                        "Failed GenAI operations per second, split by the error.type attribute.",
                        "reqps",
                        [target(f"sum by ({ERROR_TYPE}) ({rate(errors)})", f"{{{{{ERROR_TYPE}}}}}")],
                        **LEGEND,
                    ),
                    panel(
                        "stat",
                        "Error ratio",
                        "Share of GenAI operations that failed over the selected range.",
                        "percentunit",
                        [target(f"sum({over_range(errors)}) / sum({over_range(count)})", "errors", instant=True)],
                    ),
                    panel(
                        "timeseries",
                        "Latency p50 / p95 by model",
                        "Quantiles of gen_ai.client.operation.duration, per requested model.",
                        "s",
                        [
                            target(quantile(0.5, DURATION, MODEL, **GEN_AI_FILTERS), f"p50 {{{{{MODEL}}}}}"),
                            target(quantile(0.95, DURATION, MODEL, **GEN_AI_FILTERS), f"p95 {{{{{MODEL}}}}}"),
                        ],
                        **LEGEND,
                    ),
                    panel(
                        "timeseries",
                        "Time to first chunk p50 / p95 by model",
                        "Streamed calls only: quantiles of gen_ai.client.operation.time_to_first_chunk.",
                        "s",
                        [
                            target(quantile(0.5, FIRST_CHUNK, MODEL, **GEN_AI_FILTERS), f"p50 {{{{{MODEL}}}}}"),
                            target(quantile(0.95, FIRST_CHUNK, MODEL, **GEN_AI_FILTERS), f"p95 {{{{{MODEL}}}}}"),
                        ],
                        **LEGEND,
                    ),
                ],
            ),
            (
                "Tokens",
                [
                    panel(
                        "timeseries",
                        "Tokens per second by type",
                        "Input and output tokens per second (sum of gen_ai.client.token.usage).",
                        "short",
                        [target(f"sum by ({TOKEN_TYPE}) ({rate(token_sum)})", f"{{{{{TOKEN_TYPE}}}}}")],
                        **LEGEND,
                    ),
                    panel(
                        "timeseries",
                        "Tokens per second by model and type",
                        "Tokens per second per requested model and token type.",
                        "short",
                        [
                            target(
                                f"sum by ({MODEL}, {TOKEN_TYPE}) ({rate(token_sum)})",
                                f"{{{{{MODEL}}}}} {{{{{TOKEN_TYPE}}}}}",
                            )
                        ],
                        **LEGEND,
                    ),
                ],
            ),
            (
                "Data, accelerators and network",
                [
                    panel(
                        "timeseries",
                        "Data age p95 by source kind",
                        "95th percentile of how old data was when an AI output read it (spanledger.data.age).",
                        "s",
                        [
                            target(
                                quantile(0.95, semconv.METRIC_SPANLEDGER_DATA_AGE, SOURCE_KIND),
                                f"{{{{{SOURCE_KIND}}}}}",
                            )
                        ],
                        **LEGEND,
                    ),
                    panel(
                        "timeseries",
                        "Accelerators busy by type",
                        "Accelerator-seconds per second used by instrumented work (the number of accelerators "
                        "kept busy), by accelerator type.",
                        "short",
                        [target(f"sum by ({ACCELERATOR_TYPE}) ({rate(accelerator)})", f"{{{{{ACCELERATOR_TYPE}}}}}")],
                        **LEGEND,
                    ),
                    panel(
                        "stat",
                        "Accelerator-hours in range",
                        "Accelerator-hours used by instrumented work over the selected range.",
                        "h",
                        [target(f"sum({over_range(accelerator)}) / 3600", "hours", instant=True)],
                    ),
                    panel(
                        "timeseries",
                        "Network bytes by boundary",
                        "Bytes per second across billed network boundaries (transmit = egress).",
                        "Bps",
                        [
                            target(
                                f"sum by ({BOUNDARY}, {DIRECTION}) "
                                f"({rate(selector(semconv.METRIC_SPANLEDGER_EGRESS_BYTES))})",
                                f"{{{{{BOUNDARY}}}}} {{{{{DIRECTION}}}}}",
                            )
                        ],
                        **LEGEND,
                    ),
                ],
            ),
        ],
    )


def cost() -> tuple[dict[str, Any], list[tuple[str, list[dict[str, Any]]]]]:
    estimate = selector(COST, **{MODEL: "model", WORKFLOW: "workflow", TENANT: "tenant"})
    billing = {PERIOD: "period"}
    billed = selector(
        semconv.METRIC_SPANLEDGER_BILLING_COST, **billing, **{MODEL: "model", WORKFLOW: "workflow", TENANT: "tenant"}
    )
    idle_cost = selector(semconv.METRIC_SPANLEDGER_BILLING_IDLE_COST, **billing)
    idle_hours = selector(semconv.METRIC_SPANLEDGER_BILLING_IDLE_ACCELERATOR_TIME, **billing)
    variance = selector(semconv.METRIC_SPANLEDGER_BILLING_ESTIMATE_VARIANCE, **billing)
    top_estimate = "Top 10 by cost the collector estimated at ingest (catalog prices) over the selected range"
    return (
        {"uid": "spanledger-cost", "title": "spanledger — cost"},
        [
            (
                "Estimated cost (priced at ingest)",
                [
                    panel(
                        "stat",
                        "Estimated cost in range",
                        "Cost the collector estimated from catalog prices over the selected range (USD only).",
                        "currencyUSD",
                        [target(f"sum({over_range(estimate)})", "USD", instant=True)],
                    ),
                    panel(
                        "timeseries",
                        "Estimated spend per hour by workflow",
                        "Estimated USD per hour, by workflow (rate of spanledger.cost.estimate x 3600).",
                        "currencyUSD",
                        [target(f"sum by ({WORKFLOW}) ({rate(estimate)}) * 3600", f"{{{{{WORKFLOW}}}}}")],
                        **LEGEND,
                    ),
                    panel(
                        "bargauge",
                        "Estimated cost by model (top 10)",
                        f"{top_estimate}, by requested model.",
                        "currencyUSD",
                        [
                            target(
                                top(10, f"sum by ({MODEL}) ({over_range(estimate)})"), f"{{{{{MODEL}}}}}", instant=True
                            )
                        ],
                        **BARS,
                    ),
                    panel(
                        "bargauge",
                        "Estimated cost by workflow (top 10)",
                        f"{top_estimate}, by workflow.",
                        "currencyUSD",
                        [
                            target(
                                top(10, f"sum by ({WORKFLOW}) ({over_range(estimate)})"),
                                f"{{{{{WORKFLOW}}}}}",
                                instant=True,
                            )
                        ],
                        **BARS,
                    ),
                    panel(
                        "bargauge",
                        "Estimated cost by tenant (top 10)",
                        f"{top_estimate}, by tenant. The collector caps the tenant label; the rest is 'other'.",
                        "currencyUSD",
                        [
                            target(
                                top(10, f"sum by ({TENANT}) ({over_range(estimate)})"),
                                f"{{{{{TENANT}}}}}",
                                instant=True,
                            )
                        ],
                        **BARS,
                    ),
                ],
            ),
            (
                "Billed cost (latest allocation run)",
                [
                    panel(
                        "table",
                        "Billed cost by workflow and model",
                        "Cost from the imported cloud bill allocated to traces by the current allocation run "
                        "of each billing period.",
                        "currencyUSD",
                        [target(f"sum by ({PERIOD}, {WORKFLOW}, {MODEL}) ({billed})", instant=True, table=True)],
                        showHeader=True,
                        cellHeight="sm",
                    ),
                    panel(
                        "bargauge",
                        "Billed cost by tenant (top 10)",
                        "Allocated billed cost per tenant in the current allocation runs (capped label).",
                        "currencyUSD",
                        [target(top(10, f"sum by ({TENANT}) ({billed})"), f"{{{{{TENANT}}}}}", instant=True)],
                        **BARS,
                    ),
                    panel(
                        "stat",
                        "Bill minus estimate",
                        "Billed minus estimated cost of the traces the current allocation run matched, per "
                        "billing period. Positive: the bill was higher than the estimate.",
                        "currencyUSD",
                        [target(f"sum by ({PERIOD}) ({variance})", f"{{{{{PERIOD}}}}}", instant=True)],
                    ),
                ],
            ),
            (
                "Idle capacity",
                [
                    panel(
                        "bargauge",
                        "Idle cost by resource type",
                        "Cost of billed capacity that no request used, per resource type (current runs).",
                        "currencyUSD",
                        [target(f"sum by ({RESOURCE_TYPE}) ({idle_cost})", f"{{{{{RESOURCE_TYPE}}}}}", instant=True)],
                        **BARS,
                    ),
                    panel(
                        "bargauge",
                        "Idle accelerator-hours by resource type",
                        "Billed accelerator-hours that no request used, per resource type (current runs).",
                        "h",
                        [target(f"sum by ({RESOURCE_TYPE}) ({idle_hours})", f"{{{{{RESOURCE_TYPE}}}}}", instant=True)],
                        **BARS,
                    ),
                ],
            ),
        ],
    )


def collector_health() -> tuple[dict[str, Any], list[tuple[str, list[dict[str, Any]]]]]:
    accepted = selector(semconv.METRIC_OTELCOL_RECEIVER_ACCEPTED_SPANS)
    refused = selector(semconv.METRIC_OTELCOL_RECEIVER_REFUSED_SPANS)
    sent = selector(semconv.METRIC_OTELCOL_EXPORTER_SENT_SPANS, **{EXPORTER: "exporter"})
    failed = selector(semconv.METRIC_OTELCOL_EXPORTER_SEND_FAILED_SPANS, **{EXPORTER: "exporter"})
    size = selector(semconv.METRIC_OTELCOL_EXPORTER_QUEUE_SIZE, **{EXPORTER: "exporter"})
    capacity = selector(semconv.METRIC_OTELCOL_EXPORTER_QUEUE_CAPACITY, **{EXPORTER: "exporter"})
    by_receiver = f"{{{{{RECEIVER}}}}} {{{{{TRANSPORT}}}}}"
    return (
        {"uid": "spanledger-collector", "title": "spanledger — collector health"},
        [
            (
                "Receivers",
                [
                    panel(
                        "timeseries",
                        "Accepted spans per second",
                        "Spans pushed into the pipeline by receiver and transport (otelcol_receiver_accepted_spans).",
                        "short",
                        [target(f"sum by ({RECEIVER}, {TRANSPORT}) ({rate(accepted)})", by_receiver)],
                        **LEGEND,
                    ),
                    panel(
                        "timeseries",
                        "Refused spans per second",
                        "Spans the receivers could not push into the pipeline (bad ids, overload, errors).",
                        "short",
                        [target(f"sum by ({RECEIVER}, {TRANSPORT}) ({rate(refused)})", by_receiver)],
                        **LEGEND,
                    ),
                    panel(
                        "stat",
                        "Refused share in range",
                        "Refused spans as a share of all spans received over the selected range.",
                        "percentunit",
                        [
                            target(
                                f"sum({over_range(refused)}) / "
                                f"(sum({over_range(refused)}) + sum({over_range(accepted)}))",
                                "refused",
                                instant=True,
                            )
                        ],
                    ),
                ],
            ),
            (
                "Exporters",
                [
                    panel(
                        "timeseries",
                        "Sent spans per second by exporter",
                        "Spans delivered to each destination (otelcol_exporter_sent_spans).",
                        "short",
                        [target(f"sum by ({EXPORTER}) ({rate(sent)})", f"{{{{{EXPORTER}}}}}")],
                        **LEGEND,
                    ),
                    panel(
                        "timeseries",
                        "Failed spans per second by exporter",
                        "Spans dropped after retries or on permanent errors (otelcol_exporter_send_failed_spans).",
                        "short",
                        [target(f"sum by ({EXPORTER}) ({rate(failed)})", f"{{{{{EXPORTER}}}}}")],
                        **LEGEND,
                    ),
                    panel(
                        "timeseries",
                        "Retry queue size vs capacity",
                        "Requests waiting in each exporter's retry queue, against its fixed capacity.",
                        "short",
                        [
                            target(f"max by ({EXPORTER}) ({size})", f"size {{{{{EXPORTER}}}}}"),
                            target(f"max by ({EXPORTER}) ({capacity})", f"capacity {{{{{EXPORTER}}}}}"),
                        ],
                        **LEGEND,
                    ),
                    panel(
                        "timeseries",
                        "Retry queue fill",
                        "Queue size as a share of capacity; near 1 the exporter starts dropping data.",
                        "percentunit",
                        [target(f"max by ({EXPORTER}) ({size} / ({capacity} > 0))", f"{{{{{EXPORTER}}}}}")],
                        **LEGEND,
                    ),
                ],
            ),
        ],
    )


def variable(name: str, label_text: str, spec: MetricSpec, label_name: str, suffix: str = "") -> dict[str, Any]:
    """A multi-value query variable, narrowed by the scrape-label variables before it (job, then instance)."""
    narrowing = SCRAPE_LABELS[: SCRAPE_LABELS.index(label_name)] if label_name in SCRAPE_LABELS else SCRAPE_LABELS
    scope = [f'{scrape}=~"${scrape}"' for scrape in narrowing]
    selector_text = series(spec, suffix) + (f"{{{','.join(scope)}}}" if scope else "")
    query = f"label_values({selector_text}, {label_name})"
    return {
        "type": "query",
        "name": name,
        "label": label_text,
        "datasource": DATASOURCE,
        "definition": query,
        "query": {"qryType": 1, "query": query, "refId": "PrometheusVariableQueryEditor-VariableQuery"},
        "refresh": 2,
        "includeAll": True,
        "multi": True,
        "allValue": ".*",
        "current": {"selected": True, "text": ["All"], "value": ["$__all"]},
        "sort": 1,
        "hide": 0,
        "regex": "",
        "options": [],
    }


def variables(uid: str) -> list[dict[str, Any]]:
    anchor = semconv.METRIC_OTELCOL_RECEIVER_ACCEPTED_SPANS
    common = [
        {"type": "datasource", "name": "datasource", "label": "Data Source", "query": "prometheus",
         "current": {}, "hide": 0, "refresh": 1, "regex": "", "options": []},
        variable("job", "Job", anchor, "job"),
        variable("instance", "Instance", anchor, "instance"),
    ]  # fmt: skip
    if uid == "spanledger-genai-ops":
        return [*common,
                variable("provider", "Provider", DURATION, PROVIDER, "_count"),
                variable("model", "Model", DURATION, MODEL, "_count"),
                variable("workflow", "Workflow", semconv.METRIC_SPANLEDGER_ACCELERATOR_TIME, WORKFLOW)]  # fmt: skip
    if uid == "spanledger-cost":
        return [*common,
                variable("model", "Model", COST, MODEL),
                variable("workflow", "Workflow", COST, WORKFLOW),
                variable("tenant", "Tenant", COST, TENANT),
                variable("period", "Billing period", semconv.METRIC_SPANLEDGER_BILLING_COST, PERIOD)]  # fmt: skip
    return [*common, variable("exporter", "Exporter", semconv.METRIC_OTELCOL_EXPORTER_SENT_SPANS, EXPORTER)]


WIDTHS = {"timeseries": 12, "table": 12, "bargauge": 8, "stat": 6}
HEIGHT = 8


def _layout(rows: list[tuple[str, list[dict[str, Any]]]]) -> Iterator[dict[str, Any]]:
    ids = iter(range(1, 1000))
    y = 0
    for title, panels in rows:
        yield {"type": "row", "id": next(ids), "title": title, "collapsed": False, "panels": [],
               "gridPos": {"h": 1, "w": 24, "x": 0, "y": y}}  # fmt: skip
        y, x = y + 1, 0
        for item in panels:
            width = WIDTHS[item["type"]]
            if x + width > 24:
                y, x = y + HEIGHT, 0
            yield {"id": next(ids), "gridPos": {"h": HEIGHT, "w": width, "x": x, "y": y}, **item}
            x += width
        y += HEIGHT


def dashboard(header: dict[str, Any], rows: list[tuple[str, list[dict[str, Any]]]]) -> dict[str, Any]:
    return {
        **header,
        "description": "Built by dashboards/build.py from the spanledger semconv registry; do not edit by hand.",
        "tags": ["spanledger"],
        "schemaVersion": SCHEMA_VERSION,
        "version": 1,
        "editable": False,
        "graphTooltip": 1,
        "timezone": "browser",
        "time": {"from": "now-6h", "to": "now"},
        "refresh": "1m",
        "annotations": {"list": []},
        "links": [
            {
                "type": "dashboards",
                "tags": ["spanledger"],
                "title": "spanledger",
                "asDropdown": False,
                "includeVars": True,
                "keepTime": True,
            }
        ],
        "templating": {"list": variables(header["uid"])},
        "panels": list(_layout(rows)),
    }


def dashboards() -> dict[str, dict[str, Any]]:
    """File name -> dashboard."""
    built = [dashboard(*build()) for build in (genai_operations, cost, collector_health)]
    return {f"{board['uid']}.json": board for board in built}


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
        print(f"stale dashboards (run python dashboards/build.py): {', '.join(stale)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
