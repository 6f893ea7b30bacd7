-- The usage facts that count, as DuckDB's view (../counted_usage_facts.sql): the facts (FINAL: a replayed row
-- once) that no retraction names, with the same columns. GLOBAL: on a cluster the retractions of every shard
-- are sent to each (they are few).
CREATE OR REPLACE VIEW "{database}"."counted_usage_facts" {cluster} AS
SELECT f.*
FROM "{database}"."usage_facts" AS f FINAL
WHERE (f.trace_id, f.span_id, f.meter) GLOBAL NOT IN (
  SELECT trace_id, span_id, meter FROM "{database}"."usage_retractions"
)
