"""Billing export formats: detect one file's format and normalise its rows to FOCUS semantics, in SQL.

Every file is first staged as text (``raw``), so that a bad value is reported with its file, row and
column instead of being coerced. Rows are numbered from 1 (header excluded; blank lines skipped).
"""

from __future__ import annotations

import csv
import enum
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import duckdb

from ._errors import BillingImportError
from ._schema import LINE_COLUMNS, MONEY

__all__ = ["FileFormat", "StagedFile", "normalised_select", "stage_file"]

_NULL_STRINGS = ["NULL", "null", ""]


class FileFormat(str, enum.Enum):
    FOCUS = "focus"
    CUR2 = "cur2"
    OPENAI_COSTS = "openai_costs"


@dataclass(frozen=True)
class StagedFile:
    path: str
    """The name reported in errors (the s3:// URI for downloaded objects)."""
    table: str
    format: FileFormat
    columns: Mapping[str, str]
    """Lower-cased column name -> the name as spelled in the file."""


def _quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def stage_file(connection: duckdb.DuckDBPyConnection, local_path: Path, display_name: str, table: str) -> StagedFile:
    """Load one file as text columns into temp table ``table`` and detect its format."""
    name = local_path.name.lower()
    if name.endswith(".json"):
        from ._openai_costs import stage_openai_costs

        stage_openai_costs(connection, local_path, display_name, table)
        file_format = FileFormat.OPENAI_COSTS
    else:
        if name.endswith((".parquet", ".parq")):
            # A writer may store text as BINARY without the UTF8 annotation: read as text, not as escaped bytes
            source = f"read_parquet({_literal(str(local_path))}, binary_as_string = true)"
        elif name.endswith((".csv", ".csv.gz", ".csv.zst", ".txt")):
            source = (
                f"read_csv({_literal(str(local_path))}, all_varchar = true, header = true, delim = ',', quote = '\"', "
                f"nullstr = {_NULL_STRINGS!r}, strict_mode = true)"
            )
        else:
            raise BillingImportError(
                f"{display_name}: not a billing export (expected .csv, .csv.gz, .parquet or .json)"
            )
        try:
            described = connection.execute(f"DESCRIBE SELECT * FROM {source}").fetchall()
            names = [column for column, *_ in described]
            if source.startswith("read_csv("):
                # DuckDB reads a header's repeated name as NAME_1: the file's own header row tells them apart
                raw = source.replace("header = true", "header = false")
                header = connection.execute(f"SELECT * FROM {raw} LIMIT 1").fetchone()
                names = [str(name).strip() for name in header or () if name is not None]
            floats = [column for column, kind, *_ in described if kind == "FLOAT"]
            if floats:
                exact = ", ".join(f"{_float_as_double(_quote(column))} AS {_quote(column)}" for column in floats)
                source = f"(SELECT * REPLACE ({exact}) FROM {source})"
            casts = ", ".join(
                f"to_json({_quote(column)})::VARCHAR AS {_quote(column)}"
                if kind.startswith(("MAP", "STRUCT")) or kind.endswith("[]")
                else f"{_double_text(_quote(column))} AS {_quote(column)}"
                if kind in ("DOUBLE", "FLOAT")
                else f"{_quote(column)}::VARCHAR AS {_quote(column)}"
                for column, kind, *_ in described
            )
            connection.execute(f"CREATE OR REPLACE TEMP TABLE {table}_text AS SELECT {casts} FROM {source}")
            # rowid follows the file's order: number the rows before anything can reorder them.
            connection.execute(
                f"CREATE OR REPLACE TEMP TABLE {table} AS SELECT rowid - (SELECT min(rowid) FROM {table}_text) + 1 "
                f"AS source_row, * FROM {table}_text"
            )
            connection.execute(f"DROP TABLE {table}_text")
        except duckdb.Error as error:
            plain_csv = name.endswith((".csv", ".txt"))  # a compressed one is not scanned for its row
            reason = _read_error(error, local_path if plain_csv else None)
            raise BillingImportError(f"{display_name}: cannot read the file: {reason}") from error
        seen: dict[str, str] = {}
        for name in names:
            if (first := seen.get(name.lower())) is not None:
                raise BillingImportError(
                    f"{display_name}: columns {first!r} and {name!r} are one column given twice (names are read "
                    "without case): which value counts is not known"
                )
            seen[name.lower()] = name
        columns = {column.lower(): column for column, *_ in described}
        if {"billedcost", "chargeperiodstart"} <= columns.keys():
            file_format = FileFormat.FOCUS
        elif {"line_item_unblended_cost", "line_item_usage_start_date"} <= columns.keys():
            file_format = FileFormat.CUR2
        else:
            raise BillingImportError(
                f"{display_name}: unrecognised billing format: neither FOCUS (BilledCost, ChargePeriodStart) nor "
                "AWS CUR 2.0 (line_item_unblended_cost, line_item_usage_start_date) columns"
            )
    columns = {row[0].lower(): row[0] for row in connection.execute(f"DESCRIBE {table}").fetchall()}
    return StagedFile(display_name, table, file_format, columns)


def _significant_digits(text: str) -> str:
    """SQL: how many significant digits DuckDB's text of a number has (``-0.00125`` 3, ``1.5e-05`` 2, ``2.0`` 1)."""
    mantissa = f"replace(replace(split_part({text}, 'e', 1), '-', ''), '.', '')"
    return f"length(trim({mantissa}, '0'))"


def _double_text(value: str) -> str:
    """SQL: a DOUBLE as the shortest decimal text that reads back as it (``0.1``, ``1e-05``; ``nan``, ``inf`` as such):
    the text the exporter had, so a Parquet double is the same value and digest as the CSV's text.

    DuckDB's own text is that but for rare values (7.168e+25 comes out as 7.1680000000000004e+25). A text that may
    have more than 15 significant digits is checked: when the value rounded to 15 digits reads back, the shortest
    has at most 15 (only one such decimal reads back as a given double); else, when DuckDB's has 17, rounded to 16.
    """
    text = f"{value}::VARCHAR"
    digits = _significant_digits(text)
    fifteen, sixteen = (f"printf('%.{places}e', {value})" for places in (14, 15))

    def shorter(candidate: str, wrong: str) -> str:
        return (
            f"WHEN {candidate}::DOUBLE = {value} "
            f"THEN CASE WHEN {wrong} THEN regexp_replace({candidate}, '\\.?0+e', 'e') ELSE {text} END"
        )

    # 16 characters cannot hold 16 digits in DuckDB's text (it has a point or an exponent): the common case is cheap
    return (
        f"(CASE WHEN length({text}) <= 16 THEN {text} {shorter(fifteen, f'{digits} > 15')} "
        f"{shorter(sixteen, f'{digits} = 17')} ELSE {text} END)"
    )


def _float_as_double(value: str) -> str:
    """SQL: a FLOAT (32-bit) as the DOUBLE of its shortest decimal as a float (0.1, not 0.10000000149011612).

    DuckDB's own text of a float is not always the shortest (2202955.8 comes out as 2202955.75); it is when it has
    at most 6 significant digits (only one such decimal reads back as a given float). Else the value is rounded to
    1 ... 9 significant digits, the fewest that read back as the float found by bisection (9 always do)."""
    exact = f"{value}::DOUBLE"

    def rounded(places: int) -> str:
        return f"printf('%.{places}e', {exact})"

    def fewest(low: int, high: int) -> str:  # rounded(high) reads back
        if low == high:
            return f"{rounded(high)}::DOUBLE"
        middle = (low + high) // 2
        return (
            f"CASE WHEN {rounded(middle)}::FLOAT = {value} THEN {fewest(low, middle)} "
            f"ELSE {fewest(middle + 1, high)} END"
        )

    text = f"{value}::VARCHAR"
    return (
        f"(CASE WHEN NOT isfinite({value}) THEN {exact} WHEN {_significant_digits(text)} <= 6 THEN {text}::DOUBLE "
        f"ELSE {fewest(0, 8)} END)"
    )


_CSV_LINE = re.compile(r"CSV Error on Line: (\d+)")


def _read_error(error: BaseException, csv_path: Path | None) -> str:
    """Why DuckDB could not read a file, with the row where it can be told: DuckDB's first line alone says only
    the line (counting the header) for a bad row, and nothing for a row of another width (its sniffer fails)."""
    lines = [line.strip() for line in str(error).splitlines() if line.strip()]
    first = lines[0] if lines else type(error).__name__
    if (match := _CSV_LINE.search(first)) is not None:
        line = int(match.group(1))
        reason = next((text for text in lines[1:] if not text.startswith(("Original Line:", "Possible Solution"))), "")
        return f"row {line - 1} (line {line}): {reason}".rstrip(": ")
    if csv_path is not None and "sniffing" in first and (ragged := _ragged_row(csv_path)) is not None:
        row, fields, expected = ragged
        return f"row {row} has {fields} fields, the header {expected}"
    return first


def _ragged_row(path: Path) -> tuple[int, int, int] | None:
    """The first row with another number of fields than the header: (row, its fields, the header's)."""
    try:
        with open(path, encoding="utf-8", errors="replace", newline="") as file:
            rows = csv.reader(file)
            expected = len(next(rows, []))
            for row, fields in enumerate(rows, start=1):
                if fields and len(fields) != expected:
                    return row, len(fields), expected
    except (OSError, csv.Error):
        return None
    return None


@dataclass(frozen=True)
class _Field:
    """One normalised column: its SQL over the raw text columns, and how to validate it."""

    target: str
    expression: str
    """SQL producing the text value (NULL when absent)."""
    file_column: str
    """The column named in an error."""
    required: bool = False


class _Resolver:
    def __init__(self, staged: StagedFile) -> None:
        self._columns = staged.columns

    def has(self, name: str) -> bool:
        return name.lower() in self._columns

    def column(self, *names: str) -> str:
        """The first present column among ``names`` (trimmed text), or NULL."""
        present = [f"nullif(trim({_quote(self._columns[n.lower()])}), '')" for n in names if self.has(n)]
        if not present:
            return "NULL"
        return present[0] if len(present) == 1 else f"coalesce({', '.join(present)})"

    def name(self, *names: str) -> str:
        for candidate in names:
            if self.has(candidate):
                return self._columns[candidate.lower()]
        return names[0]


def _timestamp(text: str) -> str:
    # Offsets and zone names are honoured; a bare date or date-time is UTC (FOCUS datetimes are UTC). An offset
    # follows a time of day: a bare date's day ("2025-02-01") is no offset (read as one, the date was the
    # session's local day). A zone name ("CET", "Europe/Berlin", "GMT+1") goes to the zone-aware cast too (read as
    # a plain date-time, it was dropped: an hour's shift); one it does not know is no date-time.
    offset = r"[0-9]:[0-9]{2}(:[0-9]{2}([.,][0-9]*)?)?\s*(Z|[+-][0-9]{2}(:?[0-9]{2})?|[A-Za-z][A-Za-z0-9_/+:-]*)$"
    return (
        f"(CASE WHEN regexp_matches({text}, '{offset}') "
        # the zone-aware cast takes no blank before an offset ("01:00:00 +01:00")
        f"THEN timezone('UTC', try_cast(regexp_replace({text}, '\\s+([+-][0-9])', '\\1') AS TIMESTAMPTZ)) "
        f"ELSE try_cast({text} AS TIMESTAMP) END)"
    )


def _typed(field: _Field) -> str:
    kind = LINE_COLUMNS[field.target]
    if kind == "TIMESTAMP":
        return _timestamp(field.expression)
    if kind == MONEY:
        return f"try_cast({field.expression} AS {MONEY})"
    return field.expression


def _focus_fields(r: _Resolver, default_currency: str | None) -> list[_Field]:
    details = r.column("SkuPriceDetails")
    usage_type = r.column("x_UsageType", "x_usage_type")
    description = r.column("ChargeDescription")
    currency = r.column("BillingCurrency")
    if currency == "NULL" and default_currency:
        currency = _literal(default_currency)
    return [
        _Field("billing_account_id", r.column("BillingAccountId"), "BillingAccountId"),
        _Field(
            "provider_name",
            r.column("ServiceProviderName", "ProviderName", "InvoiceIssuerName", "PublisherName"),
            "ProviderName",
        ),
        _Field("sub_account_id", r.column("SubAccountId"), "SubAccountId"),
        _Field("region_id", r.column("RegionId"), "RegionId"),
        _Field("billing_period_start", r.column("BillingPeriodStart"), r.name("BillingPeriodStart"), True),
        _Field("billing_period_end", r.column("BillingPeriodEnd"), r.name("BillingPeriodEnd"), True),
        _Field("charge_period_start", r.column("ChargePeriodStart"), r.name("ChargePeriodStart"), True),
        _Field("charge_period_end", r.column("ChargePeriodEnd"), r.name("ChargePeriodEnd"), True),
        _Field("charge_category", r.column("ChargeCategory"), r.name("ChargeCategory"), True),
        _Field("charge_class", r.column("ChargeClass"), "ChargeClass"),
        _Field("charge_description", description, "ChargeDescription"),
        _Field("service_name", r.column("ServiceName"), "ServiceName"),
        _Field("service_category", r.column("ServiceCategory"), "ServiceCategory"),
        _Field("resource_id", r.column("ResourceId"), "ResourceId"),
        _Field("resource_name", r.column("ResourceName"), "ResourceName"),
        _Field("resource_type", r.column("ResourceType"), "ResourceType"),
        _Field("sku_id", r.column("SkuId"), "SkuId"),
        _Field("sku_price_id", r.column("SkuPriceId"), "SkuPriceId"),
        _Field("sku_meter", r.column("SkuMeter"), "SkuMeter"),
        _Field("sku_price_details", details, r.name("SkuPriceDetails")),
        _Field("usage_type", usage_type, "x_UsageType"),
        _Field("model", f"json_extract_string({details}, '$.ModelId')", "SkuPriceDetails"),
        _Field(
            "instance_type",
            f"coalesce(json_extract_string({details}, '$.InstanceType'), {_instance_type_from(usage_type)}, "
            f"{_instance_type_from(description)})",
            "SkuPriceDetails",
        ),
        _Field("pricing_quantity", r.column("PricingQuantity"), r.name("PricingQuantity")),
        _Field("pricing_unit", r.column("PricingUnit"), "PricingUnit"),
        _Field("consumed_quantity", r.column("ConsumedQuantity"), r.name("ConsumedQuantity")),
        _Field("consumed_unit", r.column("ConsumedUnit"), "ConsumedUnit"),
        _Field("billed_cost", r.column("BilledCost"), r.name("BilledCost"), True),
        _Field("effective_cost", r.column("EffectiveCost", "BilledCost"), r.name("EffectiveCost", "BilledCost")),
        _Field("list_cost", r.column("ListCost"), r.name("ListCost")),
        _Field("contracted_cost", r.column("ContractedCost"), r.name("ContractedCost")),
        _Field(
            "billing_currency", "NULL" if currency == "NULL" else f"upper({currency})", r.name("BillingCurrency"), True
        ),
        _Field("pricing_category", r.column("PricingCategory"), "PricingCategory"),
        _Field("commitment_discount_id", r.column("CommitmentDiscountId"), "CommitmentDiscountId"),
        _Field("commitment_discount_status", r.column("CommitmentDiscountStatus"), "CommitmentDiscountStatus"),
        _Field("tags", r.column("Tags"), r.name("Tags")),
    ]


def _instance_type_from(text: str) -> str:
    pattern = "((ml\\.)?(g|p|inf|trn|dl|c|m|r|t|x)[0-9][a-z0-9-]*\\.[0-9]*[a-z]+[0-9]*)"
    return f"nullif(regexp_extract({text}, '{pattern}', 1), '')"


_CUR_CATEGORIES = """CASE {t}
  WHEN 'Usage' THEN 'Usage' WHEN 'DiscountedUsage' THEN 'Usage' WHEN 'SavingsPlanCoveredUsage' THEN 'Usage'
  WHEN 'Tax' THEN 'Tax' WHEN 'Credit' THEN 'Credit' WHEN 'Refund' THEN 'Credit'
  WHEN 'RIFee' THEN 'Purchase' WHEN 'Fee' THEN 'Purchase' WHEN 'SavingsPlanUpfrontFee' THEN 'Purchase'
  WHEN 'SavingsPlanRecurringFee' THEN 'Purchase'
  ELSE CASE WHEN {t} IS NULL THEN NULL ELSE 'Adjustment' END END"""


def _cur_fields(r: _Resolver) -> list[_Field]:
    line_type = r.column("line_item_line_item_type")
    unblended = r.column("line_item_unblended_cost")
    product = r.column("product")
    resource = r.column("line_item_resource_id")
    usage_type = r.column("line_item_usage_type")
    amortised = (
        f"CASE {line_type} WHEN 'DiscountedUsage' THEN {r.column('reservation_effective_cost')} "
        f"WHEN 'SavingsPlanCoveredUsage' THEN {r.column('savings_plan_savings_plan_effective_cost')} "
        f"WHEN 'SavingsPlanNegation' THEN '0' WHEN 'SavingsPlanUpfrontFee' THEN '0' "
        f"WHEN 'SavingsPlanRecurringFee' THEN '0' WHEN 'RIFee' THEN '0' ELSE {unblended} END"
    )
    model = (
        f"coalesce(nullif(regexp_extract({resource}, '(foundation-model|inference-profile)/([^/]+)$', 2), ''), "
        f"json_extract_string({product}, '$.model'))"
    )
    return [
        _Field("billing_account_id", r.column("bill_payer_account_id"), "bill_payer_account_id"),
        _Field("provider_name", "'AWS'", "bill_billing_entity"),
        _Field("sub_account_id", r.column("line_item_usage_account_id"), "line_item_usage_account_id"),
        _Field(
            "region_id",
            f"coalesce({r.column('product_region_code', 'product_region')}, "
            f"json_extract_string({product}, '$.region_code'), json_extract_string({product}, '$.region'))",
            "product_region_code",
        ),
        _Field(
            "billing_period_start", r.column("bill_billing_period_start_date"), "bill_billing_period_start_date", True
        ),
        _Field("billing_period_end", r.column("bill_billing_period_end_date"), "bill_billing_period_end_date", True),
        _Field("charge_period_start", r.column("line_item_usage_start_date"), "line_item_usage_start_date", True),
        _Field("charge_period_end", r.column("line_item_usage_end_date"), "line_item_usage_end_date", True),
        _Field("charge_category", _CUR_CATEGORIES.format(t=line_type), "line_item_line_item_type", True),
        _Field("charge_class", "NULL", "bill_bill_type"),
        _Field("charge_description", r.column("line_item_line_item_description"), "line_item_line_item_description"),
        _Field("service_name", r.column("line_item_product_code", "product_servicecode"), "line_item_product_code"),
        _Field("service_category", "NULL", "product_product_family"),
        _Field("resource_id", resource, "line_item_resource_id"),
        _Field("resource_name", "NULL", "line_item_resource_id"),
        _Field("resource_type", "NULL", "line_item_resource_id"),
        _Field("sku_id", r.column("product_sku"), "product_sku"),
        _Field("sku_price_id", r.column("pricing_rate_code", "pricing_rate_id"), "pricing_rate_code"),
        _Field("sku_meter", "NULL", "line_item_usage_type"),
        _Field("sku_price_details", "NULL", "product"),
        _Field("usage_type", usage_type, "line_item_usage_type"),
        _Field("model", model, "line_item_resource_id"),
        _Field(
            "instance_type",
            f"coalesce({r.column('product_instance_type')}, json_extract_string({product}, '$.instance_type'), "
            f"{_instance_type_from(usage_type)})",
            "product_instance_type",
        ),
        _Field(
            "pricing_quantity", r.column("pricing_pricing_quantity", "line_item_usage_amount"), "line_item_usage_amount"
        ),
        _Field("pricing_unit", r.column("pricing_unit"), "pricing_unit"),
        _Field("consumed_quantity", r.column("line_item_usage_amount"), "line_item_usage_amount"),
        _Field("consumed_unit", r.column("pricing_unit"), "pricing_unit"),
        _Field("billed_cost", unblended, "line_item_unblended_cost", True),
        _Field("effective_cost", amortised, "line_item_unblended_cost"),
        _Field("list_cost", r.column("pricing_public_on_demand_cost"), "pricing_public_on_demand_cost"),
        _Field("contracted_cost", "NULL", "line_item_net_unblended_cost"),
        _Field("billing_currency", f"upper({r.column('line_item_currency_code')})", "line_item_currency_code", True),
        _Field("pricing_category", r.column("pricing_term"), "pricing_term"),
        _Field(
            "commitment_discount_id",
            r.column("savings_plan_savings_plan_a_r_n", "reservation_reservation_a_r_n"),
            "savings_plan_savings_plan_a_r_n",
        ),
        _Field("commitment_discount_status", "NULL", "savings_plan_savings_plan_a_r_n"),
        _Field("tags", r.column("resource_tags"), "resource_tags"),
    ]


# FOCUS columns the normalised line holds; every other column of a FOCUS file is kept in provider_columns.
_FOCUS_MAPPED = {
    "billingaccountid",
    "providername",
    "subaccountid",
    "regionid",
    "billingperiodstart",
    "billingperiodend",
    "chargeperiodstart",
    "chargeperiodend",
    "chargecategory",
    "chargeclass",
    "chargedescription",
    "servicename",
    "servicecategory",
    "resourceid",
    "resourcename",
    "resourcetype",
    "skuid",
    "skupriceid",
    "skumeter",
    "skupricedetails",
    "x_usagetype",
    "pricingquantity",
    "pricingunit",
    "consumedquantity",
    "consumedunit",
    "billedcost",
    "effectivecost",
    "listcost",
    "contractedcost",
    "billingcurrency",
    "pricingcategory",
    "commitmentdiscountid",
    "commitmentdiscountstatus",
    "tags",
}


def _provider_columns(staged: StagedFile) -> str:
    if staged.format is FileFormat.CUR2:
        kept = [(f"x_{name}", name) for name in staged.columns.values()]
    elif staged.format is FileFormat.OPENAI_COSTS:
        kept = [(name, name) for name in staged.columns.values() if name.startswith("x_")]
    else:
        kept = [(name, name) for lower, name in staged.columns.items() if lower not in _FOCUS_MAPPED]
    kept = [(key, column) for key, column in kept if column != "source_row"]
    if not kept:
        return "NULL"
    pairs = ", ".join(f"{_literal(key)}, nullif(trim({_quote(column)}), '')" for key, column in kept)
    return f"json_object({pairs})::VARCHAR"


def _fields(staged: StagedFile, default_currency: str | None) -> list[_Field]:
    resolver = _Resolver(staged)
    if staged.format is FileFormat.CUR2:
        return _cur_fields(resolver)
    return _focus_fields(resolver, default_currency)


# The amounts the allocation splits: it multiplies a line's amount in 10^-12 units by a weight below 4 x 10^15 in
# 128 bits (DuckDB HUGEINT, ClickHouse Int128, which wraps silently), exact below 1.7 x 10^38: an amount from
# 4 x 10^10 on (a line of 40 billion, in any currency) could not be split exactly, so it is refused here.
_ALLOCATED_MONEY = ("billed_cost", "effective_cost", "list_cost")
_ALLOCATED_LIMIT = 40_000_000_000


def validate(connection: duckdb.DuckDBPyConnection, staged: StagedFile, default_currency: str | None) -> None:
    """Raise naming the first bad row and column of the file (set-based: one scan)."""
    checks: list[tuple[str, str, str | None]] = []  # condition, message, SQL of the offending value
    fields = {field.target: field for field in _fields(staged, default_currency)}
    for field in fields.values():
        if field.expression == "NULL" and field.required:
            hint = " (or pass --currency)" if field.target == "billing_currency" else ""
            raise BillingImportError(f"{staged.path}: missing required column {field.file_column}{hint}")
        typed = _typed(field)
        if typed != field.expression:
            # DECIMAL(38, 12) holds 26 integer digits: a larger amount is refused, never rounded
            kind = "a date-time" if LINE_COLUMNS[field.target] == "TIMESTAMP" else "a decimal number below 10^26"
            checks.append(
                (
                    f"({field.expression}) IS NOT NULL AND {typed} IS NULL",
                    f"column {field.file_column}: {{}} is not {kind}",
                    field.expression,
                ),
            )
        if field.required:
            checks.append((f"({field.expression}) IS NULL", f"column {field.file_column}: value is missing", None))
        if field.target in _ALLOCATED_MONEY:
            checks.append(
                (
                    f"abs({typed}) >= {_ALLOCATED_LIMIT}",
                    f"column {field.file_column}: {{}} is beyond what the allocation computes exactly "
                    "(|amount| below 4 x 10^10)",
                    field.expression,
                ),
            )
        if field.target == "tags":
            checks.append(
                (
                    f"({field.expression}) IS NOT NULL AND NOT json_valid({field.expression})",
                    f"column {field.file_column}: {{}} is not JSON",
                    field.expression,
                ),
            )
    checks.append(
        (
            f"{_typed(fields['charge_period_end'])} < {_typed(fields['charge_period_start'])}",
            f"column {fields['charge_period_end'].file_column}: the charge period ends before it starts",
            None,
        )
    )
    selects = ", ".join(f"min(source_row) FILTER (WHERE {condition})" for condition, _, _ in checks)
    first_bad = connection.execute(f"SELECT {selects} FROM {staged.table}").fetchone()
    assert first_bad is not None
    failing = [(row, index) for index, row in enumerate(first_bad) if row is not None]
    if not failing:
        return
    row, index = min(failing)
    _, message, value_sql = checks[index]
    if value_sql is not None:
        found = connection.execute(f"SELECT {value_sql} FROM {staged.table} WHERE source_row = ?", [row]).fetchone()
        message = message.format(json.dumps(found[0] if found else None))
    raise BillingImportError(f"{staged.path}: row {row}, {message}")


def normalised_select(staged: StagedFile, default_currency: str | None) -> str:
    """SELECT producing the normalised line columns (plus source_file, source_row, format) of a staged file."""
    parts = [f"{_literal(staged.path)} AS source_file", "source_row", f"{_literal(staged.format.value)} AS format"]
    for field in _fields(staged, default_currency):
        parts.append(f"{_typed(field)} AS {field.target}")
    parts.append(f"{_provider_columns(staged)} AS provider_columns")
    parts.append("NULL::VARCHAR AS cost_flags")
    return f"SELECT {', '.join(parts)} FROM {staged.table}"
