-- The data reads within a window, of one trace or all (the parameters: _clickhouse_schema.WINDOW), as
-- `spanledger clickhouse init`'s view of this name over otel_traces: the answers and the dashboard read one name.
CREATE OR REPLACE VIEW "{database}"."data_reads_window" {cluster} AS
SELECT * FROM "{database}"."data_reads" FINAL
WHERE {reads_in_window}
