-- The shared lines of al_split with their weights (scaled like direct lines, see line_usage.sql); the whole cost
-- is allocated.
CREATE OR REPLACE TEMP TABLE al_split_shared AS
SELECT l.* REPLACE (
         coalesce(w.used_units, l.used_units) AS used_units,
         coalesce(w.total_weight, l.total_weight) AS total_weight,
         coalesce(w.used_units, l.busy_units) AS busy_units,
         coalesce(w.used_units, l.denominator_units) AS denominator_units,
         CASE WHEN w.line_id IS NULL THEN l.fact_count ELSE 0 END AS fact_count,
         coalesce(w.trace_count, l.trace_count) AS trace_count,
         CASE WHEN w.line_id IS NULL THEN l.usage_unit ELSE l.billing_currency END AS usage_unit,
         CASE WHEN w.line_id IS NULL THEN l.effective_allocated ELSE l.effective_units END AS effective_allocated,
         CASE WHEN w.line_id IS NULL THEN l.billed_allocated ELSE l.billed_units END AS billed_allocated,
         CASE WHEN w.line_id IS NULL THEN l.list_allocated ELSE l.list_units END AS list_allocated)
FROM al_split l LEFT JOIN (
  SELECT p.line_id, p.used_units, p.trace_count,
         CASE WHEN p.used_units >= 2000000000000000
              THEN sum(s.weight // greatest(1, p.used_units // 1000000000000000)) ELSE p.used_units END AS total_weight
  FROM (SELECT line_id, sum(weight) AS used_units, count(*) AS trace_count FROM al_shared_weights GROUP BY line_id) p
  JOIN al_shared_weights s USING (line_id)
  GROUP BY p.line_id, p.used_units, p.trace_count) w ON w.line_id = l.line_id
