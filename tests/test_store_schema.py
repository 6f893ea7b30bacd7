"""Each stored record is defined once, by its field table, and the rest is derived from it (issue 14)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import duckdb
import pytest
from spanledger import semconv
from spanledger_collector._store import DATA_READS, SPANS, USAGE_FACTS, DataRead, DuckDBStore, Kind, Table, UsageFact
from spanledger_collector._telemetry import label_name, prometheus_name

ROOT = Path(__file__).resolve().parents[1]
COLLECTOR = ROOT / "collector" / "spanledger_collector"
TABLES = [USAGE_FACTS, SPANS, DATA_READS]


@pytest.mark.parametrize("table", TABLES, ids=lambda table: table.name)
def test_the_store_creates_each_table_as_its_field_table_says(table: Table) -> None:
    store = DuckDBStore(":memory:")
    with store.cursor() as cursor:
        described = cursor.execute(f"DESCRIBE {table.name}").fetchall()
    store.close()
    assert [(name, kind, null) for name, kind, null, *_ in described] == [
        (field.name, field.kind.duckdb_type.replace(", ", ","), "YES" if field.nullable else "NO")
        for field in table.fields
    ]


def test_the_field_tables_follow_the_record_types() -> None:
    assert USAGE_FACTS.attributes == UsageFact._fields
    assert DATA_READS.attributes == DataRead._fields
    assert USAGE_FACTS.kinds == "sssttqsssssssssssscsss"
    quantity = USAGE_FACTS.fields[UsageFact._fields.index("quantity")]
    assert (quantity.kind, quantity.nullable) == (Kind.QUANTITY, False)
    assert [field.name for field in SPANS.fields if field.attribute != field.name] == ["start_time", "end_time"]


def test_a_store_from_an_earlier_release_gains_the_columns_appended_since(tmp_path: Path) -> None:
    path = tmp_path / "old.duckdb"
    with duckdb.connect(str(path)) as connection:
        older = ", ".join(f"{field.name} {field.kind.duckdb_type}" for field in SPANS.fields[:-1])
        connection.execute(f"CREATE TABLE spans ({older})")
    DuckDBStore(path).close()
    with duckdb.connect(str(path)) as connection:
        columns = [row[0] for row in connection.execute("DESCRIBE spans").fetchall()]
    assert tuple(columns) == SPANS.column_names


def test_a_store_whose_columns_differ_from_the_field_table_is_refused_naming_them(tmp_path: Path) -> None:
    path = tmp_path / "other.duckdb"
    with duckdb.connect(str(path)) as connection:
        connection.execute("CREATE TABLE data_reads (span_id VARCHAR, trace_id VARCHAR)")
    with pytest.raises(RuntimeError, match=r"table data_reads has the columns span_id, trace_id; .*trace_id, span_id"):
        DuckDBStore(path)


def _sources() -> dict[Path, str]:
    return {path: path.read_text() for path in COLLECTOR.rglob("*.py")}


def test_no_module_builds_a_usage_fact_positionally_but_the_one_helper() -> None:
    for path, text in _sources().items():
        if path.name != "_facts.py":
            assert not re.search(r"(tuple\.__new__|new_tuple)\(\s*UsageFact", text), path


def test_no_module_spells_a_stored_table_s_columns_again() -> None:
    """The DDL of the row tables exists only as derived from the field tables."""
    for path, text in _sources().items():
        assert not re.search(r"\bquantity DECIMAL\(38, 9\)", text), path
        assert not re.search(r"\bsource_kind VARCHAR", text), path
        assert not re.search(r"\bstatus_code TINYINT", text), path


def test_the_prometheus_naming_rule_is_written_once_in_the_semconv_generator() -> None:
    names = json.loads((ROOT / "semconv" / "generated" / "prometheus-names.json").read_text())
    specs = [value for name, value in vars(semconv).items() if name.startswith("METRIC_")]
    for spec in specs:
        assert prometheus_name(spec) in {
            re.sub(r"_(total|bucket|sum|count)$", "", s) for s in names[spec.name]["series"]
        }
        for label in names[spec.name]["labels"]:
            assert label in semconv.PROMETHEUS_LABELS.values()
    assert label_name(semconv.GEN_AI_REQUEST_MODEL) == "gen_ai_request_model"
    rule = re.compile(r"\[\^A-Za-z0-9_\]")
    spelled = [
        path
        for path in [*COLLECTOR.rglob("*.py"), ROOT / "dashboards" / "build.py", ROOT / "semconv" / "generate.py"]
        if rule.search(path.read_text())
    ]
    assert spelled == [ROOT / "semconv" / "generate.py"]
