-- Every fact a reporting span gives, before counted-once: spanledger's owner spans (owner = 1) and other
-- producers' spans that report tokens (owner = 0). Retried exporter batches insert a span twice: the
-- ReplacingMergeTree key collapses them, and the readers use FINAL.
CREATE TABLE IF NOT EXISTS {database}.{table} (
  {columns},
  parent_span_id Nullable(String),
  owner UInt8
) ENGINE = ReplacingMergeTree
ORDER BY (trace_id, span_id, meter)
