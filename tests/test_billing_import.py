"""``spanledger billing import``: formats, snapshots, all-or-nothing errors naming file/row/column, S3."""

from __future__ import annotations

import gzip
import io
import json
import shutil
from collections.abc import Iterator, Mapping
from decimal import Context, Decimal
from pathlib import Path
from typing import Any

import boto3
import duckdb
import pytest
from moto.server import ThreadedMotoServer
from spanledger_collector._cli import main
from spanledger_collector.billing import BillingImportError, CurrencyMixError, import_and_allocate, import_billing
from spanledger_collector.billing._sources import billing_files

BILLING_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "billing"
SAMPLE = BILLING_DATA / "focus_sample_1000.csv"
needs_sample = pytest.mark.skipif(
    not SAMPLE.exists(), reason=f"FOCUS sample data not found at {BILLING_DATA} (clone shared/ beside the repo)"
)

FOCUS_HEADER = (
    "BilledCost,EffectiveCost,ListCost,BillingCurrency,BillingAccountId,ProviderName,BillingPeriodStart,"
    "BillingPeriodEnd,ChargePeriodStart,ChargePeriodEnd,ChargeCategory,ResourceId,Tags,x_UsageType\n"
)


def _focus_row(cost: str = "1.5", *, currency: str = "USD", start: str = "2025-01-01T00:00:00Z", tags: str = "") -> str:
    return (
        f"{cost},{cost},{cost},{currency},acct-1,Acme Cloud,2025-01-01T00:00:00Z,2025-02-01T00:00:00Z,{start},"
        f"2025-01-01T01:00:00Z,Usage,vm-1,{tags},BoxUsage:g5.xlarge\n"
    )


@pytest.fixture
def db() -> Iterator[duckdb.DuckDBPyConnection]:
    connection = duckdb.connect()
    yield connection
    connection.close()


def _count(db: duckdb.DuckDBPyConnection, sql: str) -> int:
    row = db.execute(sql).fetchone()
    assert row is not None
    return int(row[0])


@needs_sample
def test_sample_imports_as_one_snapshot_per_provider_account_and_period(db: duckdb.DuckDBPyConnection) -> None:
    result = import_billing(db, [str(SAMPLE)])
    assert sorted((s.scope.split("|")[0], s.billing_period, s.row_count) for s in result.snapshots) == [
        ("AWS", "2024-09", 942),
        ("Microsoft", "2024-09", 51),
        ("Oracle", "2024-09", 6),
        ("Oracle", "2024-10", 1),
    ]
    assert {s.status for s in result.snapshots} == {"imported"}
    assert _count(db, "SELECT count(*) FROM billing_lines") == 1000
    # Decimal end to end: the column sums of the file, exactly.
    row = db.execute("SELECT sum(billed_cost), sum(list_cost) FROM billing_lines").fetchone()
    assert row is not None and str(row[0]).startswith("20.52") and str(row[1]).startswith("20.39")
    # Provider columns are kept: the sample's non-FOCUS "Id" column and the AvailabilityZone.
    kept = db.execute(
        "SELECT provider_columns FROM billing_lines WHERE resource_id = 'i-09ba12e1l5743720b' "
        "AND charge_period_start = '2024-09-21 01:00:00'"
    ).fetchone()
    assert kept is not None and json.loads(kept[0])["Id"] == "2313096"


@needs_sample
def test_importing_the_same_snapshot_twice_changes_nothing_even_as_gzip_or_parquet(
    db: duckdb.DuckDBPyConnection, tmp_path: Path
) -> None:
    import_billing(db, [str(SAMPLE)])
    before = db.execute("SELECT count(*), sum(billed_cost) FROM billing_lines").fetchall()
    gzipped = tmp_path / "focus.csv.gz"
    with SAMPLE.open("rb") as source, gzip.open(gzipped, "wb") as target:
        shutil.copyfileobj(source, target)
    parquet = tmp_path / "focus.parquet"
    db.execute(
        f"COPY (SELECT * FROM read_csv('{SAMPLE}', all_varchar = true, nullstr = 'NULL')) TO '{parquet}' "
        "(FORMAT parquet)"
    )
    for again in (SAMPLE, gzipped, parquet):
        result = import_billing(db, [str(again)])
        assert {s.status for s in result.snapshots} == {"unchanged"}
        assert result.changed_periods == ()
    assert db.execute("SELECT count(*), sum(billed_cost) FROM billing_lines").fetchall() == before
    assert _count(db, "SELECT count(*) FROM billing_snapshots") == 4


# Decimal text as a CSV carries it; as a Parquet DOUBLE or FLOAT, the nearest binary value. 2202955.8 and 444912.62
# as floats print exactly (2202955.75, 444912.625) and 7.168e+25 as a double 7.1680000000000004e+25 in DuckDB.
_DOUBLES = ("0.1", "1.23456789", "0.0000004", "1e-05", "0.30000000000000004", "2202955.8", "3.9e+10", "2")
_FLOATS = ("0.1", "1.5", "0.0000004", "2202955.8", "444912.62", "3.93", "2.5e-05", "16777216")
_MONEY = {
    "focus": ("BilledCost", "EffectiveCost", "ListCost", "PricingQuantity"),
    "cur2": ("line_item_unblended_cost", "pricing_public_on_demand_cost", "line_item_usage_amount"),
}


def _money_export(directory: Path, file_format: str, values: tuple[str, ...]) -> Path:
    """One line a value, in every money and quantity column; an integer ConsumedQuantity in FOCUS."""
    hours = [(f"2025-01-01T{hour:02d}:00:00Z", f"2025-01-01T{hour + 1:02d}:00:00Z") for hour in range(len(values))]
    if file_format == "focus":
        header = ",".join(_MONEY["focus"]) + ",ConsumedQuantity," + FOCUS_HEADER.split(",", 3)[3]
        rows = [
            f"{value},{value},{value},{value},{index},USD,acct-1,Acme Cloud,2025-01-01T00:00:00Z,2025-02-01T00:00:00Z,"
            f"{start},{end},Usage,vm-{index},,BoxUsage:g5.xlarge\n"
            for index, (value, (start, end)) in enumerate(zip(values, hours, strict=True))
        ]
    else:
        header = ",".join(_MONEY["cur2"]) + (
            ",line_item_currency_code,bill_payer_account_id,bill_billing_period_start_date,"
            "bill_billing_period_end_date,line_item_usage_start_date,line_item_usage_end_date,line_item_line_item_type\n"
        )
        # Every CUR 2.0 column is kept as text (provider_columns): the CSV's is the double's shortest, as Python
        # writes it (2.0, 1e-05).
        rows = [
            f"{value},{value},{value},USD,payer,2025-01-01T00:00:00Z,2025-02-01T00:00:00Z,{start},{end},Usage\n"
            for value, (start, end) in zip((repr(float(v)) for v in values), hours, strict=True)
        ]
    path = directory / f"{file_format}.csv"
    path.write_text(header + "".join(rows))
    return path


def _as_parquet(csv_path: Path, kinds: Mapping[str, str]) -> Path:
    parquet = csv_path.with_suffix(".parquet")
    casts = ", ".join(f"{column}::{kind} AS {column}" for column, kind in kinds.items())
    with duckdb.connect() as connection:
        connection.execute(
            f"COPY (SELECT * REPLACE ({casts}) FROM read_csv('{csv_path}', all_varchar = true)) TO '{parquet}' "
            "(FORMAT parquet)"
        )
        described = dict(connection.execute(f"SELECT name, type FROM parquet_schema('{parquet}')").fetchall())
    physical = {"DOUBLE": "DOUBLE", "FLOAT": "FLOAT", "BIGINT": "INT64"}
    assert [described[column] for column in kinds] == [physical[kind] for kind in kinds.values()]
    return parquet


_LINES = "SELECT * EXCLUDE (snapshot_id, source_file) FROM billing_lines ORDER BY line_no"


@pytest.mark.parametrize(
    ("file_format", "kind", "values"),
    [("focus", "DOUBLE", _DOUBLES), ("focus", "FLOAT", _FLOATS), ("cur2", "DOUBLE", _DOUBLES)],
)
def test_a_parquet_export_of_doubles_or_floats_is_the_snapshot_of_its_csv(
    db: duckdb.DuckDBPyConnection, tmp_path: Path, file_format: str, kind: str, values: tuple[str, ...]
) -> None:
    """A DOUBLE (FLOAT) is read as the shortest decimal that is that double (float): the text the exporter had."""
    csv_path = _money_export(tmp_path, file_format, values)
    integers = {"ConsumedQuantity": "BIGINT"} if file_format == "focus" else {}
    parquet = _as_parquet(csv_path, {**dict.fromkeys(_MONEY[file_format], kind), **integers})
    from_csv = import_billing(db, [str(csv_path)]).snapshots
    lines = db.execute(_LINES).fetchall()
    with duckdb.connect() as other:
        from_parquet = import_billing(other, [str(parquet)]).snapshots
        assert other.execute(_LINES).fetchall() == lines
    assert [s.snapshot_id for s in from_parquet] == [s.snapshot_id for s in from_csv]
    assert import_billing(db, [str(parquet)]).snapshots[0].status == "unchanged"
    billed = [str(row[0]) for row in db.execute("SELECT billed_cost FROM billing_lines ORDER BY line_no").fetchall()]
    assert billed == [str(Decimal(value).quantize(Decimal("1e-12"), context=Context(prec=38))) for value in values]


@pytest.mark.parametrize(
    ("kind", "column", "value"),
    [("DOUBLE", "BilledCost", "nan"), ("DOUBLE", "PricingQuantity", "-inf"), ("FLOAT", "ListCost", "inf")],
)
def test_a_nan_or_infinite_parquet_number_names_its_file_row_and_column(
    db: duckdb.DuckDBPyConnection, tmp_path: Path, kind: str, column: str, value: str
) -> None:
    csv_path = _money_export(tmp_path, "focus", ("1.5", "2.5", "3.5"))
    header, first, second, third = csv_path.read_text().splitlines(keepends=True)
    fields = second.split(",")
    fields[header.split(",").index(column)] = value
    csv_path.write_text(header + first + ",".join(fields) + third)
    parquet = _as_parquet(csv_path, dict.fromkeys(_MONEY["focus"], kind))
    with pytest.raises(
        BillingImportError, match=rf'focus\.parquet: row 2, column {column}: "{value}" is not a decimal'
    ):
        import_billing(db, [str(parquet)])
    assert _count(db, "SELECT count(*) FROM billing_snapshots") == 0


def test_a_newer_snapshot_replaces_the_older_and_keeps_it_for_audit(
    db: duckdb.DuckDBPyConnection, tmp_path: Path
) -> None:
    first, second = tmp_path / "day1.csv", tmp_path / "day2.csv"
    first.write_text(FOCUS_HEADER + _focus_row("1.5"))
    # The next delivery restates the row and adds a late one.
    second.write_text(FOCUS_HEADER + _focus_row("1.25") + _focus_row("0.5", start="2025-01-01T00:30:00Z"))
    old = import_billing(db, [str(first)]).snapshots[0]
    new = import_billing(db, [str(second)]).snapshots[0]
    assert (new.status, new.replaced_snapshot_id) == ("replaced", old.snapshot_id)
    snapshots = db.execute("SELECT snapshot_id, superseded_by FROM billing_snapshots ORDER BY seq").fetchall()
    assert snapshots == [(old.snapshot_id, new.snapshot_id), (new.snapshot_id, None)]
    current = db.execute(
        """SELECT sum(billed_cost) FROM billing_lines JOIN billing_snapshots USING (snapshot_id)
           WHERE superseded_by IS NULL"""
    ).fetchone()
    assert current is not None and str(current[0]) == "1.750000000000"
    assert _count(db, "SELECT count(*) FROM billing_lines") == 3  # the old run's line is still there
    # Re-importing the older delivery does not bring it back.
    assert import_billing(db, [str(first)]).snapshots[0].status == "unchanged"


@pytest.mark.parametrize(
    ("rows", "message"),
    [
        (_focus_row() + _focus_row('"1,5"'), r"bad\.csv: row 2, column BilledCost: \"1,5\" is not a decimal number"),
        (
            _focus_row() + _focus_row("1e26"),
            r"bad\.csv: row 2, column BilledCost: \"1e26\" is not a decimal number below",
        ),
        (_focus_row() + "1.5,2\n", r"bad\.csv: cannot read the file: row 2 has 2 fields, the header \d+"),
        (_focus_row(start="yesterday"), r"bad\.csv: row 1, column ChargePeriodStart: \"yesterday\" is not a date-time"),
        (_focus_row(tags='"{not json"'), r"bad\.csv: row 1, column Tags: \"\{not json\" is not JSON"),
        (
            _focus_row(start="2025-01-01T02:00:00Z"),
            r"bad\.csv: row 1, column ChargePeriodEnd: .* ends before it starts",
        ),
        (_focus_row(currency=""), r"bad\.csv: row 1, column BillingCurrency: value is missing"),
    ],
)
def test_a_bad_row_fails_the_whole_import_naming_file_row_and_column(
    db: duckdb.DuckDBPyConnection, tmp_path: Path, rows: str, message: str
) -> None:
    good, bad = tmp_path / "good.csv", tmp_path / "bad.csv"
    good.write_text(FOCUS_HEADER + _focus_row())
    bad.write_text(FOCUS_HEADER + rows)
    with pytest.raises(BillingImportError, match=message):
        import_billing(db, [str(good), str(bad)])
    assert _count(db, "SELECT count(*) FROM billing_lines") == 0  # all or nothing
    assert _count(db, "SELECT count(*) FROM billing_snapshots") == 0


def test_bad_files_are_named(db: duckdb.DuckDBPyConnection, tmp_path: Path) -> None:
    unknown = tmp_path / "costs.csv"
    unknown.write_text("amount,when\n1,today\n")
    with pytest.raises(BillingImportError, match=r"costs\.csv: unrecognised billing format"):
        import_billing(db, [str(unknown)])
    no_currency = tmp_path / "nocurrency.csv"
    no_currency.write_text(FOCUS_HEADER.replace("BillingCurrency,", "") + _focus_row().replace("USD,", ""))
    with pytest.raises(BillingImportError, match=r"nocurrency\.csv: missing required column BillingCurrency"):
        import_billing(db, [str(no_currency)])
    assert import_billing(db, [str(no_currency)], currency="usd").snapshots[0].row_count == 1
    with pytest.raises(BillingImportError, match="no such file or directory"):
        import_billing(db, [str(tmp_path / "missing.csv")])
    page = tmp_path / "page.json"
    page.write_text(json.dumps({"object": "list", "data": []}))
    with pytest.raises(BillingImportError, match=r"page\.json: page 1 is not an OpenAI Costs API page"):
        import_billing(db, [str(page)])


@pytest.mark.parametrize(
    ("bucket", "message"),
    [
        ({"start_time": 1735689600, "end_time": 1735776000, "results": None}, "invalid start_time/end_time/results"),
        ({"start_time": 10**20, "end_time": 10**20, "results": []}, "invalid start_time/end_time/results"),
        ({"start_time": -(10**13), "end_time": 0, "results": []}, "invalid start_time/end_time/results"),
        (None, "nested too deeply"),
    ],
)
def test_openai_pages_out_of_shape_are_named_errors(
    db: duckdb.DuckDBPyConnection, tmp_path: Path, bucket: Any, message: str
) -> None:
    """(Failed before: TypeError, OverflowError, ValueError, RecursionError tracebacks.)"""
    page = tmp_path / "costs.json"
    if bucket is None:
        page.write_text("[" * 100_000 + "]" * 100_000)
    else:
        page.write_text(json.dumps({"object": "page", "data": [bucket]}))
    with pytest.raises(BillingImportError, match=rf"costs\.json: .*{message}"):
        import_billing(db, [str(page)])


@pytest.mark.parametrize(
    ("start", "utc"),
    [("2025-01-01 01:00:00 CET", "2025-01-01 00:00:00"), ("2025-01-01T01:00:00 Europe/Berlin", "2025-01-01 00:00:00"),
     ("2025-01-01 01:00:00 +01:00", "2025-01-01 00:00:00"), ("2024-12-31T19:30:00-05:00", "2025-01-01 00:30:00"),
     ("2025-01-01 00:30:00 UTC", "2025-01-01 00:30:00")],
)  # fmt: skip
def test_a_time_with_a_zone_name_is_read_in_that_zone(
    db: duckdb.DuckDBPyConnection, tmp_path: Path, start: str, utc: str
) -> None:
    """(Failed before: a zone name was dropped, an hour's shift for CET; a blank before an offset was refused.)"""
    path = tmp_path / "zoned.csv"
    path.write_text(FOCUS_HEADER + _focus_row(start=start))
    import_billing(db, [str(path)])
    assert [str(row[0]) for row in db.execute("SELECT charge_period_start FROM billing_lines").fetchall()] == [utc]


@pytest.mark.parametrize("cost", ["40000000000", "-1e14", "100000000000000000000000"])
def test_an_amount_the_allocation_cannot_split_exactly_is_refused(
    db: duckdb.DuckDBPyConnection, tmp_path: Path, cost: str
) -> None:
    """(Failed before: accepted below 10^26, then DuckDB's allocation stopped with an overflow traceback and
    ClickHouse's Int128 wrapped silently: shares that did not add up to the line.)"""
    path = tmp_path / "big.csv"
    path.write_text(FOCUS_HEADER + _focus_row("1") + _focus_row(cost))
    with pytest.raises(BillingImportError, match=r"big\.csv: row 2, column BilledCost: .* is beyond what the alloc"):
        import_billing(db, [str(path)])
    path.write_text(FOCUS_HEADER + _focus_row("39999999999.999999999999"))
    assert [s.status for s in import_billing(db, [str(path)]).snapshots] == ["imported"]


@pytest.mark.parametrize("second", ["BilledCost", "billedcost"])
def test_a_column_given_twice_is_refused(db: duckdb.DuckDBPyConnection, tmp_path: Path, second: str) -> None:
    """(Failed before: the first one counted, the other kept as a provider column BilledCost_1.)"""
    path = tmp_path / "twice.csv"
    path.write_text(FOCUS_HEADER.replace("\n", f",{second}\n") + _focus_row().replace("\n", ",9\n"))
    with pytest.raises(BillingImportError, match=rf"twice\.csv: columns 'BilledCost' and '{second}' are one column"):
        import_billing(db, [str(path)])


def test_a_parquet_string_written_as_binary_reads_as_its_text(db: duckdb.DuckDBPyConnection, tmp_path: Path) -> None:
    """Some writers store text as BINARY without the UTF8 annotation: the same export as CSV and as such a Parquet
    is one snapshot. (Failed before: the Parquet's ResourceId was the escaped bytes 'vm-\\xC3\\xA9'.)"""
    import pyarrow as pa
    import pyarrow.csv as pa_csv
    import pyarrow.parquet as pq

    csv_path = tmp_path / "export.csv"
    csv_path.write_text(FOCUS_HEADER + _focus_row().replace(",vm-1,", ",vm-é,"))
    table = pa_csv.read_csv(csv_path, convert_options=pa_csv.ConvertOptions(column_types={
        name: pa.string() for name in FOCUS_HEADER.strip().split(",")
    }))  # fmt: skip
    table = table.set_column(table.schema.get_field_index("ResourceId"), "ResourceId",
                             table["ResourceId"].cast(pa.binary()))  # fmt: skip
    pq.write_table(table, tmp_path / "export.parquet")
    assert [s.status for s in import_billing(db, [str(csv_path)]).snapshots] == ["imported"]
    assert [s.status for s in import_billing(db, [str(tmp_path / "export.parquet")]).snapshots] == ["unchanged"]


def test_one_billing_period_in_two_currencies_is_an_error(db: duckdb.DuckDBPyConnection, tmp_path: Path) -> None:
    mixed = tmp_path / "mixed.csv"
    mixed.write_text(FOCUS_HEADER + _focus_row() + _focus_row(currency="EUR"))
    with pytest.raises(
        CurrencyMixError, match=r"mixed\.csv: row 2, column BillingCurrency: EUR .* mixes currencies EUR and USD"
    ):
        import_billing(db, [str(mixed)])


def test_openai_costs_api_pages(db: duckdb.DuckDBPyConnection, tmp_path: Path) -> None:
    day = 1_736_899_200  # 2025-01-15
    pages = [
        {
            "object": "page",
            "data": [
                {
                    "object": "bucket",
                    "start_time": day,
                    "end_time": day + 86_400,
                    "results": [
                        {"object": "organization.costs.result", "amount": {"value": 0.0123456789, "currency": "usd"},
                         "line_item": "gpt-4o-mini-2024-07-18, input", "project_id": "proj_abc"},
                        {"object": "organization.costs.result", "amount": {"value": 0.06, "currency": "usd"},
                         "line_item": "gpt-4o-mini-2024-07-18, output", "project_id": "proj_abc"},
                    ],
                }
            ],
            "has_more": True,
            "next_page": "page_2",
        },
        {"object": "page", "data": [], "has_more": False, "next_page": None},
    ]  # fmt: skip
    (tmp_path / "costs.json").write_text(json.dumps(pages))
    result = import_billing(db, [str(tmp_path / "costs.json")])
    assert [(s.scope, s.billing_period, s.row_count) for s in result.snapshots] == [
        ("OpenAI||2025-01-01T00:00:00Z", "2025-01", 2)
    ]
    rows = db.execute(
        """SELECT model, usage_type, billed_cost, billing_currency, charge_period_start, sub_account_id
           FROM billing_lines ORDER BY line_no"""
    ).fetchall()
    assert [(r[0], r[1], str(r[2]), r[3], r[5]) for r in rows] == [
        ("gpt-4o-mini-2024-07-18", "gpt-4o-mini-2024-07-18, input", "0.012345678900", "USD", "proj_abc"),
        ("gpt-4o-mini-2024-07-18", "gpt-4o-mini-2024-07-18, output", "0.060000000000", "USD", "proj_abc"),
    ]
    assert str(rows[0][4]) == "2025-01-15 00:00:00"


@pytest.fixture
def s3_export(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    for name, value in {
        "AWS_ENDPOINT_URL": f"http://{host}:{port}",
        "AWS_ACCESS_KEY_ID": "AKIASPANLEDGERBILL01",
        "AWS_SECRET_ACCESS_KEY": "billing-test-secret",
        "AWS_DEFAULT_REGION": "us-east-1",
    }.items():
        monkeypatch.setenv(name, value)
    s3 = boto3.client("s3")
    s3.create_bucket(Bucket="exports")
    body = (FOCUS_HEADER + _focus_row("2.5")).encode()
    s3.put_object(
        Bucket="exports", Key="focus/acme/data/BILLING_PERIOD=2025-01/part-0.csv.gz", Body=gzip.compress(body)
    )
    s3.put_object(Bucket="exports", Key="focus/acme/metadata/manifest.txt", Body=b"not billing data")
    yield "s3://exports/focus/acme"
    server.stop()


def test_import_from_s3_as_aws_data_exports_deliver(db: duckdb.DuckDBPyConnection, s3_export: str) -> None:
    result = import_billing(db, [s3_export])
    assert result.files == ("s3://exports/focus/acme/data/BILLING_PERIOD=2025-01/part-0.csv.gz",)
    assert [s.row_count for s in result.snapshots] == [1]
    with pytest.raises(BillingImportError, match="s3://exports/nothing: no billing files"):
        import_billing(db, ["s3://exports/nothing"])


@pytest.mark.parametrize(
    ("first", "second"),
    [(("vm|1", "BoxUsage"), ("vm", "1|BoxUsage")), (("\\N", "BoxUsage"), ("", "BoxUsage"))],
)
def test_deliveries_that_differ_only_where_a_separator_is_are_different_snapshots(
    db: duckdb.DuckDBPyConnection, tmp_path: Path, first: tuple[str, str], second: tuple[str, str]
) -> None:
    """A row's digest joins its fields with "|" and writes NULL as "\\N": a field holding either is escaped, so
    ("vm|1", "BoxUsage") and ("vm", "1|BoxUsage") differ, and so do a text "\\N" and an empty (NULL) field.
    (The first case failed before: the second delivery was "unchanged" and the store kept the first.)"""
    statuses = []
    for resource, usage_type in (first, second):
        path = tmp_path / "export.csv"
        row = _focus_row().replace(",vm-1,,BoxUsage:g5.xlarge", f",{resource},,{usage_type}")
        path.write_text(FOCUS_HEADER + row)
        statuses += [s.status for s in import_billing(db, [str(path)]).snapshots]
    assert statuses == ["imported", "replaced"]


def test_s3_reads_stay_under_the_prefix_and_inside_the_download_directory(
    db: duckdb.DuckDBPyConnection, s3_export: str, tmp_path: Path
) -> None:
    """A prefix is a directory: its siblings that merely start alike are not read; and an object key is text,
    never a path to write to. (Failed before: s3://…/acme read acme-private/, and a "../" key was written
    outside the temporary download directory.)"""
    s3 = boto3.client("s3")
    body = gzip.compress((FOCUS_HEADER + _focus_row("7.5")).encode())
    s3.put_object(Bucket="exports", Key="focus/acme-private/data/part-0.csv.gz", Body=body)
    escape = f"focus/acme/../../../../../../..{tmp_path}/escaped.csv.gz"
    s3.put_object(Bucket="exports", Key=escape, Body=body)
    with billing_files([s3_export], within=[s3_export]) as files:
        assert sorted(file.display_name for file in files) == [
            f"s3://exports/{escape}",
            "s3://exports/focus/acme/data/BILLING_PERIOD=2025-01/part-0.csv.gz",
        ]
        assert all(file.local_path.name in {"escaped.csv.gz", "part-0.csv.gz"} for file in files)
    assert not (tmp_path / "escaped.csv.gz").exists()
    # a named object is that object: a longer-named neighbour is not it
    with pytest.raises(BillingImportError, match=r"part-0\.csv: no billing files"):
        import_billing(db, ["s3://exports/focus/acme/data/BILLING_PERIOD=2025-01/part-0.csv"])


def test_cli_import_is_quiet_when_asked_and_prints_a_summary_otherwise(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    export = tmp_path / "export.csv"
    export.write_text(FOCUS_HEADER + _focus_row())
    store = str(tmp_path / "store.duckdb")
    assert main(["billing", "import", str(export), "--store", store, "--collector", "none", "--quiet"]) == 0
    captured = capsys.readouterr()
    assert (captured.out, captured.err) == ("", "")  # no progress bar: stderr is not a terminal
    assert main(["billing", "import", str(export), "--store", store, "--collector", "none"]) == 0
    assert "2025-01 Acme Cloud|acct-1: 1 lines, unchanged" in capsys.readouterr().out
    assert main(["billing", "import", str(export), "--store", store, "--collector", "none", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["snapshots"][0]["status"] == "unchanged"
    bad = tmp_path / "bad.csv"
    bad.write_text(FOCUS_HEADER + _focus_row("abc"))
    assert main(["billing", "import", str(bad), "--store", store, "--collector", "none"]) == 1
    assert 'bad.csv: row 1, column BilledCost: "abc" is not a decimal number' in capsys.readouterr().err


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_progress_bar_is_drawn_on_a_terminal_only(db: duckdb.DuckDBPyConnection, tmp_path: Path) -> None:
    for name in ("a.csv", "b.csv"):
        (tmp_path / name).write_text(FOCUS_HEADER + _focus_row(start=f"2025-01-01T00:0{len(name)}:00Z"))
    terminal, pipe = _Terminal(), io.StringIO()
    import_billing(db, [str(tmp_path)], show_progress=True, progress_stream=terminal)
    assert "[" + "#" * 30 + "] 3/3 stored" in terminal.getvalue()
    (tmp_path / "c.csv").write_text(FOCUS_HEADER + _focus_row("9"))
    import_billing(db, [str(tmp_path)], show_progress=True, progress_stream=pipe)
    assert pipe.getvalue() == ""


def test_cli_allocate_reruns_only_when_asked(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    export = tmp_path / "export.csv"
    export.write_text(FOCUS_HEADER + _focus_row())
    store = ("--store", str(tmp_path / "store.duckdb"), "--collector", "none")
    assert main(["billing", "import", str(export), "--no-allocate", "--quiet", *store]) == 0
    assert main(["billing", "allocate", "--period", "2025-01", *store]) == 0
    assert "allocation 2025-01: run 1 allocated (1 billing lines, 0 usage facts matched)" in capsys.readouterr().out
    assert main(["billing", "allocate", *store, "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["runs"][0]["status"] == "unchanged"
    assert main(["billing", "allocate", "--force", *store]) == 0
    assert "run 2 allocated" in capsys.readouterr().out


def test_a_file_that_is_not_utf_8_names_its_row_and_the_reason(db: duckdb.DuckDBPyConnection, tmp_path: Path) -> None:
    bad = tmp_path / "bad.csv"
    bad.write_bytes((FOCUS_HEADER + _focus_row() + _focus_row(tags='"{\\"team\\": \\"caf\xe9\\"}"')).encode("latin-1"))
    with pytest.raises(BillingImportError, match=r"bad\.csv: cannot read the file: row 2 \(line 3\): .*not utf-8"):
        import_billing(db, [str(bad)])


def test_an_import_retried_after_its_allocation_did_not_run_allocates(
    db: duckdb.DuckDBPyConnection, tmp_path: Path
) -> None:
    """The snapshot was committed, the allocation failed or was interrupted: the retry's import is unchanged,
    and its period is allocated all the same (then left alone while its inputs stay the same)."""
    export = tmp_path / "export.csv"
    export.write_text(FOCUS_HEADER + _focus_row())
    assert import_and_allocate(db, [str(export)], run_allocation=False)["runs"] == []
    retried = import_and_allocate(db, [str(export)])
    assert [s["status"] for s in retried["snapshots"]] == ["unchanged"]
    assert [r["status"] for r in retried["runs"]] == ["allocated"]
    assert [r["status"] for r in import_and_allocate(db, [str(export)])["runs"]] == ["unchanged"]
