-- The shared lines of al_split with their weights (scaled like direct lines, see line_usage.sql); the whole cost
-- is allocated.
CREATE TEMPORARY TABLE al_split_shared ENGINE = Memory AS
SELECT * EXCEPT (w_line_id, w_used_units, w_trace_count, w_total_weight) REPLACE (
         if(w_line_id IS NULL, used_units, w_used_units) AS used_units,
         if(w_line_id IS NULL, total_weight, w_total_weight) AS total_weight,
         if(w_line_id IS NULL, busy_units, w_used_units) AS busy_units,
         if(w_line_id IS NULL, denominator_units, w_used_units) AS denominator_units,
         if(w_line_id IS NULL, fact_count, 0) AS fact_count,
         if(w_line_id IS NULL, trace_count, w_trace_count) AS trace_count,
         if(w_line_id IS NULL, usage_unit, billing_currency) AS usage_unit,
         if(w_line_id IS NULL, effective_allocated, effective_units) AS effective_allocated,
         if(w_line_id IS NULL, billed_allocated, billed_units) AS billed_allocated,
         if(w_line_id IS NULL, list_allocated, list_units) AS list_allocated)
FROM al_split AS l LEFT JOIN (
  SELECT p.line_id AS w_line_id, p.used_units AS w_used_units, p.trace_count AS w_trace_count,
         if(p.used_units >= 2000000000000000,
            sum(intDiv(s.weight, greatest(1, intDiv(p.used_units, 1000000000000000)))), p.used_units) AS w_total_weight
  FROM (SELECT line_id, sum(weight) AS used_units, count() AS trace_count FROM al_shared_weights GROUP BY line_id) AS p
  JOIN al_shared_weights AS s ON s.line_id = p.line_id
  GROUP BY p.line_id, p.used_units, p.trace_count) AS w ON w.w_line_id = l.line_id
