"""The ClickHouse dashboard (``dashboards/clickhouse``): built by its builder, structurally sound, and every panel
query, variable query and the trace link's query answered with data by chdb (the real engine) after spans went
through ``otel_traces`` and the views ``spanledger clickhouse init`` installs, and a billing allocation exists."""

from __future__ import annotations

import importlib.util
import json
import random
import re
from collections.abc import Iterator
from datetime import datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from spanledger import semconv
from spanledger_collector._engine._ddl import Names
from spanledger_collector._engine._install import init
from spanledger_collector._store._location import StoreAddress
from spanledger_collector.billing._engine import sql_text
from test_clickhouse_views import OWN, _random_request, create_otel_traces, insert_spans
from test_collector_producers import DIALECT_SPANS, Node, _request

ROOT = Path(__file__).resolve().parents[1]
FOLDER = ROOT / "dashboards" / "clickhouse"
UNITS = {"short", "currencyUSD"}
MACRO = re.compile(r"\$__(\w+)\(")


def _load_builder() -> Any:
    spec = importlib.util.spec_from_file_location("dashboards_clickhouse_build", FOLDER / "build.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


BUILDER = _load_builder()


def _boards() -> dict[str, dict[str, Any]]:
    return {path.name: json.loads(path.read_text()) for path in sorted(FOLDER.glob("*.json"))}


def _panels(board: dict[str, Any]) -> Iterator[dict[str, Any]]:
    return (panel for panel in board["panels"] if panel["type"] != "row")


def _links(panel: dict[str, Any]) -> Iterator[dict[str, Any]]:
    for override in panel["fieldConfig"]["overrides"]:
        for prop in override["properties"]:
            if prop["id"] == "links":
                yield from prop["value"]


def _call_end(sql: str, start: int) -> int:
    """The index after the parenthesis closing the call opened at ``start`` (``sql[start] == '('``)."""
    depth = 0
    for index in range(start, len(sql)):
        depth += {"(": 1, ")": -1}.get(sql[index], 0)
        if depth == 0:
            return index + 1
    raise ValueError(f"unbalanced macro call in {sql!r}")


def substitute(sql: str, database: str, selected: dict[str, str] | None = None, trace_id: str = "") -> str:
    """Grafana's ClickHouse macros and the dashboard's variables, as the plugin expands them: a 24-hour-wide
    window of every time, 1-minute intervals, and each filter variable 'All' unless ``selected``."""
    selected = selected or {}
    while match := MACRO.search(sql):
        name, end = match.group(1), _call_end(sql, match.end() - 1)
        argument = sql[match.end() : end - 1]
        if name == "timeFilter":
            expanded = (f"{argument} >= toDateTime64('2000-01-01 00:00:00', 6) AND "
                        f"{argument} <= toDateTime64('2100-01-01 00:00:00', 6)")  # fmt: skip
        elif name == "timeInterval":
            expanded = f"toStartOfInterval({argument}, INTERVAL 60 second)"
        elif name == "conditionalAll":
            condition, variable = argument.rsplit(",", 1)
            expanded = condition if variable.strip().lstrip("$") in selected else "1 = 1"
        else:
            raise AssertionError(f"macro $__{name} is not expanded by this test")
        sql = sql[: match.start()] + expanded + sql[end:]
    for name, value in selected.items():
        sql = sql.replace(f"${{{name}:singlequote}}", "'" + value.replace("'", "\\'") + "'")
    sql = sql.replace("$__fromTime", "toDateTime(946684800)").replace("$__toTime", "toDateTime(4102444800)")
    sql = sql.replace("${database}", database).replace("${traces_table}", "otel_traces")
    sql = sql.replace("${__value.raw}", trace_id)
    assert "$" not in sql, f"unexpanded variable in {sql}"
    return sql


def test_json_is_what_the_builder_writes() -> None:
    assert set(BUILDER.dashboards()) == set(_boards())
    assert BUILDER.main(["--check"]) == 0, "run: python dashboards/clickhouse/build.py"


def test_structure() -> None:
    for name, board in _boards().items():
        assert name == f"{board['uid']}.json" and board["title"].startswith("spanledger — ")
        assert board["editable"] is False and board["schemaVersion"] >= 39
        ids = [panel["id"] for panel in board["panels"]]
        assert len(ids) == len(set(ids))
        for panel in board["panels"]:
            grid = panel["gridPos"]
            assert grid["x"] + grid["w"] <= 24 and grid["h"] > 0
        for panel in _panels(board):
            where = f"{name}: {panel['title']}"
            assert panel["description"], where
            assert panel["datasource"] == {"type": "grafana-clickhouse-datasource", "uid": "${datasource}"}, where
            assert panel["fieldConfig"]["defaults"]["unit"] in UNITS, where
            for target in panel["targets"]:
                assert target["editorType"] == "sql" and target["rawSql"].strip(), where
        lineage = next(panel for panel in _panels(board) if panel["title"].startswith("AI outputs:"))
        (link,) = _links(lineage)
        assert link["internal"]["query"]["queryType"] == "traces" and link["internal"]["query"]["format"] == 3


@pytest.fixture
def loaded(clickhouse_client: Any, clickhouse_address: StoreAddress) -> tuple[Any, str, str]:
    """Spans of every dialect (with workflows, tenants, data reads) through the views, and an allocation run."""
    client, database = clickhouse_client, clickhouse_address.database
    create_otel_traces(client, database)
    tagged = {**OWN, semconv.SPANLEDGER_WORKFLOW_NAME: "support", semconv.SPANLEDGER_TENANT_ID: "acme"}
    rng = random.Random(7)
    requests = [_request(Node("llm", tagged)), *(_request(Node(d, a)) for d, a in sorted(DIALECT_SPANS.items())),
                *(_random_request(rng, traces=5) for _ in range(20))]  # fmt: skip
    init(client, Names(database=database), catalog_models=False)
    insert_spans(client, database, requests)
    init(client, Names(database=database), catalog_models=False)  # prices the models seen
    # Two allocation runs in init's billing tables, the first superseded the way the allocation does it (a newer
    # revision of its row), with merges stopped: the old revision stays beside it, as until a merge.
    trace_id = client.query(f"SELECT trace_id FROM {database}.usage_facts WHERE tenant = 'acme' LIMIT 1").result_rows[
        0
    ][0]
    client.command(f"SYSTEM STOP MERGES {database}.allocation_runs")
    client.command(f"SYSTEM STOP MERGES {database}.allocations")
    runs = [(run_id, datetime(2026, 1, 1), datetime(2026, 1, 2), "s", "f", "4", "r", "USD", 1, 1)
            for run_id in (1, 2)]  # fmt: skip
    client.insert(f"{database}.allocation_runs", runs,
                  column_names=["run_id", "billing_period_start", "created_at", "snapshot_ids", "facts_fingerprint",
                                "method_version", "rules_digest", "billing_currency", "line_count",
                                "matched_fact_count"])  # fmt: skip
    client.command(sql_text("clickhouse", "allocation/supersede_run", {"run_id": 1, "new_run_id": 2}),
                   settings={"database": database})  # fmt: skip
    rows = [(run_id, "s", line_no, trace_id, [], Decimal(cost), Decimal(cost * 2), Decimal(cost * 3))
            for run_id, line_no, cost in ((1, 1, 9), (2, 1, 0.25), (2, 1, 0.25))]  # fmt: skip
    client.insert(f"{database}.allocations", rows,
                  column_names=["run_id", "snapshot_id", "line_no", "trace_id", "span_ids", "effective_cost",
                                "billed_cost", "list_cost"])  # fmt: skip
    return client, database, trace_id


@pytest.mark.timeout(600)  # two inits and ~30 queries on chdb; minutes on a loaded 2-core box
def test_every_query_answers_with_data_from_chdb(loaded: tuple[Any, str, str]) -> None:
    client, database, trace_id = loaded
    (board,) = _boards().values()
    for panel in _panels(board):
        for target in panel["targets"]:
            for selected in ({}, {"workflow": "support", "tenant": "acme"}):
                result = client.query(substitute(target["rawSql"], database, selected))
                assert result.result_rows, f"{panel['title']} ({selected or 'All'}) returned no rows"
        for link in _links(panel):
            spans = client.query(substitute(link["internal"]["query"]["rawSql"], database, trace_id=trace_id))
            assert spans.result_rows and "traceID" in spans.column_names
    for variable in board["templating"]["list"]:
        if variable["type"] == "query":
            assert client.query(substitute(variable["query"], database)).result_rows, variable["name"]


@pytest.mark.timeout(600)
def test_the_lineage_row_of_an_output(loaded: tuple[Any, str, str]) -> None:
    client, database, trace_id = loaded
    (board,) = _boards().values()
    lineage = next(panel for panel in _panels(board) if panel["title"].startswith("AI outputs:"))
    result = client.query(substitute(lineage["targets"][0]["rawSql"], database, {"tenant": "acme"}))
    (row,) = [dict(zip(result.column_names, values, strict=True)) for values in result.result_rows]
    assert row["trace_id"] == trace_id and row["workflow"] == "support"
    assert row["models"] == DIALECT_SPANS["otel-genai"][semconv.GEN_AI_RESPONSE_MODEL]
    assert row["tokens"] == 150 and row["estimated_cost"] > 0
    # The current run's EffectiveCost, its replayed row once; not the superseded run's (whose old revision is unmerged)
    assert row["allocated_cost"] == Decimal("0.25"), "only the current allocation run counts"


@pytest.mark.timeout(600)
def test_the_none_value_selects_the_facts_without_one(loaded: tuple[Any, str, str]) -> None:
    """A NULL tenant is '(none)' in the variable and the panels; selecting it filters (an empty value would be
    read by the plugin as All)."""
    client, database, _ = loaded
    (board,) = _boards().values()
    (tenant,) = [variable for variable in board["templating"]["list"] if variable["name"] == "tenant"]
    values = {row[0] for row in client.query(substitute(tenant["query"], database)).result_rows}
    assert {"(none)", "acme"} <= values and "" not in values
    outputs = next(panel for panel in _panels(board) if panel["title"] == "AI outputs in range")
    sql = outputs["targets"][0]["rawSql"]
    counts = {
        selection: client.query(substitute(sql, database, {"tenant": selection} if selection else {})).result_rows[0][0]
        for selection in ("", "(none)", "acme")
    }
    assert 0 < counts["(none)"] < counts[""] and counts["(none)"] + counts["acme"] <= counts[""]
