-- Prices of the other meters (accelerator-, endpoint-seconds, bytes) by price key: a fact of the key starting
-- in [valid_from, valid_until) costs quantity * numerator / divisor, the exact quotient rounded half-even to 12
-- places (the collector's Decimals: `Fraction` in _pricing/_rates.py); or it is unpriced for unpriced_reason.
-- Written by `spanledger clickhouse init` for every key already in usage_reports; '\0' stands for NULL.
CREATE TABLE IF NOT EXISTS {database}.{table} (
  meter LowCardinality(String),
  provider LowCardinality(String),
  resource_id String,
  accelerator_type LowCardinality(String),
  region LowCardinality(String),
  boundary LowCardinality(String),
  valid_from {timestamp},
  valid_until {timestamp},
  numerator Nullable(Decimal(76, 30)),
  divisor Nullable(UInt64),
  currency Nullable(String),
  catalog_version String,
  unpriced_reason Nullable(String),
  loaded_at {timestamp}
) ENGINE = ReplacingMergeTree(loaded_at)
ORDER BY (meter, provider, resource_id, accelerator_type, region, boundary, valid_from)
