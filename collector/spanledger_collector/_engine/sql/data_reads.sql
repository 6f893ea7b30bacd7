-- spanledger.data.read events, one row per event (seq: its index among the span's events).
CREATE TABLE IF NOT EXISTS {database}.{table} (
  {columns}
) ENGINE = ReplacingMergeTree
ORDER BY (trace_id, span_id, seq)
