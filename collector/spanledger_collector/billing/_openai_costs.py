"""OpenAI Costs API pages (``GET /v1/organization/costs``) staged as FOCUS-named text columns.

A file holds one page (``{"object": "page", "data": [buckets]}``) or a list of pages. Each result of a
daily bucket becomes one line: the charge period is the bucket, the billing period its calendar month,
``line_item`` ("gpt-4o-2024-08-06, input") is kept as ``x_UsageType`` and gives the model.
"""

from __future__ import annotations

import json
from datetime import datetime, timezone
from decimal import Decimal
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa

from ._errors import BillingImportError

__all__ = ["stage_openai_costs"]

_COLUMNS = (
    "source_row",
    "BillingAccountId",
    "ProviderName",
    "SubAccountId",
    "BillingPeriodStart",
    "BillingPeriodEnd",
    "ChargePeriodStart",
    "ChargePeriodEnd",
    "ChargeCategory",
    "ChargeDescription",
    "ServiceName",
    "ServiceCategory",
    "x_UsageType",
    "SkuPriceDetails",
    "ConsumedQuantity",
    "ConsumedUnit",
    "BilledCost",
    "EffectiveCost",
    "ListCost",
    "BillingCurrency",
    "x_ProjectId",
    "x_ApiKeyId",
    "x_LineItem",
)


def _iso(seconds: int) -> str:
    return datetime.fromtimestamp(seconds, tz=timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def _month_bounds(seconds: int) -> tuple[str, str]:
    start = datetime.fromtimestamp(seconds, tz=timezone.utc).replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    end = start.replace(year=start.year + 1, month=1) if start.month == 12 else start.replace(month=start.month + 1)
    return start.strftime("%Y-%m-%dT%H:%M:%SZ"), end.strftime("%Y-%m-%dT%H:%M:%SZ")


def _text(value: Any) -> str | None:
    return None if value is None else str(value)


def _rows(document: Any, display_name: str) -> list[tuple[str | None, ...]]:
    pages = document if isinstance(document, list) else [document]
    rows: list[tuple[str | None, ...]] = []
    for page_index, page in enumerate(pages, start=1):
        if not isinstance(page, dict) or page.get("object") != "page" or not isinstance(page.get("data"), list):
            raise BillingImportError(
                f'{display_name}: page {page_index} is not an OpenAI Costs API page (expected object "page" with data)'
            )
        for bucket_index, bucket in enumerate(page["data"], start=1):
            where = f"{display_name}: page {page_index}, bucket {bucket_index}"
            try:
                start, end = int(bucket["start_time"]), int(bucket["end_time"])
                results = bucket["results"]
                if not isinstance(results, list):
                    raise TypeError("results is not a list")
                # Unix seconds a date can hold (years 1-9999 fail past it with OverflowError, ValueError, OSError)
                period_start, period_end = _month_bounds(start)
                _iso(end)
            except (KeyError, TypeError, ValueError, OverflowError, OSError) as error:
                raise BillingImportError(f"{where}: missing or invalid start_time/end_time/results") from error
            for result in results:
                row = len(rows) + 1
                amount = result.get("amount") if isinstance(result, dict) else None
                if not isinstance(amount, dict) or not isinstance(amount.get("value"), (Decimal, int)):
                    raise BillingImportError(f"{display_name}: row {row}, column amount.value: missing or not a number")
                if not isinstance(amount.get("currency"), str):
                    raise BillingImportError(f"{display_name}: row {row}, column amount.currency: missing")
                line_item = result.get("line_item")
                model = line_item.split(",")[0].strip() if isinstance(line_item, str) and "," in line_item else None
                value = str(amount["value"])
                rows.append(
                    (
                        str(row),
                        _text(result.get("organization_id")),
                        "OpenAI",
                        _text(result.get("project_id")),
                        period_start,
                        period_end,
                        _iso(start),
                        _iso(end),
                        "Usage",
                        _text(line_item),
                        "OpenAI API",
                        "AI and Machine Learning",
                        _text(line_item),
                        json.dumps({"ModelId": model}) if model else None,
                        _text(result.get("quantity")),
                        _text(result.get("quantity_unit")) or "Tokens",
                        value,
                        value,
                        value,
                        amount["currency"],
                        _text(result.get("project_id")),
                        _text(result.get("api_key_id")),
                        _text(line_item),
                    )
                )
    return rows


def stage_openai_costs(connection: duckdb.DuckDBPyConnection, path: Path, display_name: str, table: str) -> None:
    try:
        document = json.loads(path.read_text(encoding="utf-8"), parse_float=Decimal)
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise BillingImportError(f"{display_name}: not valid JSON: {error}") from error
    except RecursionError:  # nested deeper than Python's parser goes; a Costs API page is four levels deep
        raise BillingImportError(f"{display_name}: not an OpenAI Costs API page (JSON nested too deeply)") from None
    rows = _rows(document, display_name)
    columns = list(zip(*rows, strict=True)) if rows else [() for _ in _COLUMNS]
    arrow = pa.table({name: pa.array(values, type=pa.string()) for name, values in zip(_COLUMNS, columns, strict=True)})
    connection.register(f"{table}_arrow", arrow)
    try:
        connection.execute(
            f"CREATE OR REPLACE TEMP TABLE {table} AS SELECT * REPLACE (source_row::BIGINT AS source_row) "
            f"FROM {table}_arrow"
        )
    finally:
        connection.unregister(f"{table}_arrow")
