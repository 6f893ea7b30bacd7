-- The facts that count overlapping a window, of one trace or all (the parameters: _clickhouse_schema.WINDOW), as
-- `spanledger clickhouse init`'s view of this name over otel_traces: the answers and the dashboard read one name.
CREATE OR REPLACE VIEW "{database}"."usage_facts_window" {cluster} AS
SELECT * FROM "{database}"."counted_usage_facts"
WHERE {facts_in_window}
