"""Tables the billing section owns: snapshots, normalised billing lines, allocation runs and rows."""

from __future__ import annotations

from typing import Any

from ._engine import engine_of

__all__ = [
    "CLICKHOUSE_LINE_TYPES",
    "LINE_COLUMNS",
    "MONEY",
    "MONEY_SCALE",
    "QUANTITY_SCALE",
    "ensure_billing_tables",
    "has_table",
]

MONEY = "DECIMAL(38, 12)"
MONEY_SCALE = 10**12
"""Allocated money is split in whole units of 10^-12 of the currency (exact, by largest remainder)."""
QUANTITY_SCALE = 10**6
"""Usage quantities are weighed in whole micro-units (a micro-token, a microsecond, a micro-byte)."""

# Normalised billing line: FOCUS semantics whatever the source format. Name -> DuckDB type.
LINE_COLUMNS: dict[str, str] = {
    "billing_account_id": "VARCHAR",
    "provider_name": "VARCHAR",
    "sub_account_id": "VARCHAR",
    "region_id": "VARCHAR",
    "billing_period_start": "TIMESTAMP",
    "billing_period_end": "TIMESTAMP",
    "charge_period_start": "TIMESTAMP",
    "charge_period_end": "TIMESTAMP",
    "charge_category": "VARCHAR",
    "charge_class": "VARCHAR",
    "charge_description": "VARCHAR",
    "service_name": "VARCHAR",
    "service_category": "VARCHAR",
    "resource_id": "VARCHAR",
    "resource_name": "VARCHAR",
    "resource_type": "VARCHAR",
    "sku_id": "VARCHAR",
    "sku_price_id": "VARCHAR",
    "sku_meter": "VARCHAR",
    "sku_price_details": "VARCHAR",
    "usage_type": "VARCHAR",
    "model": "VARCHAR",
    "instance_type": "VARCHAR",
    "pricing_quantity": MONEY,
    "pricing_unit": "VARCHAR",
    "consumed_quantity": MONEY,
    "consumed_unit": "VARCHAR",
    "billed_cost": MONEY,
    "effective_cost": MONEY,
    "list_cost": MONEY,
    "contracted_cost": MONEY,
    "billing_currency": "VARCHAR",
    "pricing_category": "VARCHAR",
    "commitment_discount_id": "VARCHAR",
    "commitment_discount_status": "VARCHAR",
    "tags": "VARCHAR",
    "provider_columns": "VARCHAR",
    "cost_flags": "VARCHAR",
}

_DDL = f"""
CREATE TABLE IF NOT EXISTS billing_snapshots (
  snapshot_id VARCHAR PRIMARY KEY,     -- sha256 of the normalised rows of one scope
  scope VARCHAR NOT NULL,              -- provider | billing account | billing period
  billing_period_start TIMESTAMP NOT NULL,
  billing_period_end TIMESTAMP NOT NULL,
  format VARCHAR NOT NULL,
  sources VARCHAR NOT NULL,
  row_count BIGINT NOT NULL,
  billing_currency VARCHAR NOT NULL,
  imported_at TIMESTAMP NOT NULL,
  seq BIGINT NOT NULL,
  superseded_by VARCHAR                -- NULL while current; old snapshots are kept for audit
);
CREATE TABLE IF NOT EXISTS billing_lines (
  snapshot_id VARCHAR NOT NULL,
  line_no BIGINT NOT NULL,
  source_file VARCHAR NOT NULL,
  source_row BIGINT NOT NULL,
  format VARCHAR NOT NULL,
  {", ".join(f"{name} {kind}" for name, kind in LINE_COLUMNS.items())},
  PRIMARY KEY (snapshot_id, line_no)
);
CREATE TABLE IF NOT EXISTS allocation_runs (
  run_id BIGINT PRIMARY KEY,
  billing_period_start TIMESTAMP NOT NULL,
  created_at TIMESTAMP NOT NULL,
  snapshot_ids VARCHAR NOT NULL,
  facts_fingerprint VARCHAR NOT NULL,
  method_version VARCHAR NOT NULL,
  rules_digest VARCHAR NOT NULL,
  billing_currency VARCHAR,
  line_count BIGINT NOT NULL,
  matched_fact_count BIGINT NOT NULL,
  superseded_by BIGINT                 -- NULL for the current run of its period
);
CREATE TABLE IF NOT EXISTS allocation_lines (
  run_id BIGINT NOT NULL,
  snapshot_id VARCHAR NOT NULL,
  line_no BIGINT NOT NULL,
  rule_id VARCHAR,
  kind VARCHAR NOT NULL,
  resource_type VARCHAR,
  line_key VARCHAR,
  accelerators INTEGER,
  capacity_seconds DECIMAL(38, 6),     -- capacity lines: billed hours x accelerators (or instances) x 3600
  busy_seconds DECIMAL(38, 6),
  billed_quantity DECIMAL(38, 6),      -- consumption lines, in fact units
  tracked_quantity DECIMAL(38, 6),
  fact_count BIGINT NOT NULL,
  trace_count BIGINT NOT NULL,
  effective_cost {MONEY}, billed_cost {MONEY}, list_cost {MONEY},
  allocated_effective_cost {MONEY}, allocated_billed_cost {MONEY}, allocated_list_cost {MONEY},
  estimated_cost {MONEY},
  unallocated_reason VARCHAR,
  flags VARCHAR,
  PRIMARY KEY (run_id, snapshot_id, line_no)
);
CREATE TABLE IF NOT EXISTS allocations (
  run_id BIGINT NOT NULL,
  snapshot_id VARCHAR NOT NULL,
  line_no BIGINT NOT NULL,
  trace_id VARCHAR,                    -- NULL on the unallocated row (AllocatedResourceId NULL)
  span_ids VARCHAR[],
  usage_quantity DECIMAL(38, 6),
  usage_unit VARCHAR,
  allocated_ratio DOUBLE,
  effective_cost {MONEY} NOT NULL,
  billed_cost {MONEY} NOT NULL,
  list_cost {MONEY} NOT NULL,
  estimated_cost {MONEY},
  workflow VARCHAR,
  tenant VARCHAR,
  service VARCHAR,
  model VARCHAR,
  unallocated_reason VARCHAR
);
"""


CLICKHOUSE_LINE_TYPES = {
    "VARCHAR": "Nullable(String)",
    "TIMESTAMP": "Nullable(DateTime64(6, 'UTC'))",
    MONEY: "Nullable(Decimal(38, 12))",
}
"""The ClickHouse type of each DuckDB type of :data:`LINE_COLUMNS`."""


def ensure_billing_tables(store: Any) -> None:
    """Create the billing tables when missing (``store``: a DuckDB connection, ClickHouse client or Engine)."""
    engine = engine_of(store)
    if engine.dialect == "duckdb":
        engine.execute(_DDL)
    else:
        columns = ",\n  ".join(f"{name} {CLICKHOUSE_LINE_TYPES[kind]}" for name, kind in LINE_COLUMNS.items())
        engine.execute(engine.sql("billing_tables", line_columns=columns))


def has_table(store: Any, name: str) -> bool:
    return engine_of(store).has_table(name)
