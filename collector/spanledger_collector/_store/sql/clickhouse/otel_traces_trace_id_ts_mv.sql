CREATE MATERIALIZED VIEW IF NOT EXISTS "{database}"."{table}_trace_id_ts_mv" {cluster}
TO "{database}"."{table}_trace_id_ts"
AS SELECT
    TraceId,
    min(Timestamp) as Start,
    max(Timestamp) as End
FROM "{database}"."{table}"
WHERE TraceId != ''
GROUP BY TraceId
