-- Token prices by price key, as linear pieces: a fact of (meter, provider, model) starting in
-- [valid_from, valid_until), at a time of its UTC day in [day_from, day_until) nanoseconds (off-peak hours;
-- [0, 86400e9) for most), with above < quantity <= upto costs slope * quantity + intercept, rounded
-- half-even to 12 places; or it is unpriced for unpriced_reason. Written by `spanledger clickhouse init`
-- from the collector's catalog (bundled cloud catalog + genai-prices), so the numbers are the collector's.
-- provider is '\0' for facts without one. Each init replaces the rows (a table of them swapped in whole).
CREATE TABLE IF NOT EXISTS {database}.{table} (
  meter LowCardinality(String),
  provider LowCardinality(String),
  model String,
  valid_from {timestamp},
  valid_until {timestamp},
  day_from UInt64,
  day_until UInt64,
  above Decimal(38, 9),
  upto Decimal(38, 9),
  slope Nullable(Decimal(76, 30)),
  intercept Nullable(Decimal(76, 30)),
  currency Nullable(String),
  catalog_version String,
  unpriced_reason Nullable(String),
  loaded_at {timestamp}
) ENGINE = ReplacingMergeTree(loaded_at)
ORDER BY (meter, provider, model, valid_from, day_from, above)
