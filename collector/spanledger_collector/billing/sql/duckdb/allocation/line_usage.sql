-- Per line: used units U (sum of the weights), facts, traces, estimate, and the busy-time union (capacity lines:
-- one window pass, the running max of previous ends). Weights are scaled down on lines with huge totals
-- (>= 2 x 10^15) so that allocated x weight fits 128 bits; total_weight is the sum of the (scaled) weights.
CREATE OR REPLACE TEMP TABLE al_line_usage AS
WITH per_line AS (
  -- Counted from the facts; a pair of several facts (al_traces) is one trace.
  SELECT line_id, f.used_units, f.fact_count, f.fact_count - coalesce(s.extra_facts, 0) AS trace_count,
         f.estimate_units
  FROM (SELECT line_id, sum(weight) AS used_units, count(*) AS fact_count, sum(estimate_units) AS estimate_units
        FROM al_matches GROUP BY line_id) f
  LEFT JOIN (SELECT line_id, sum(fact_count - 1) AS extra_facts FROM al_traces GROUP BY line_id) s USING (line_id)),
scaled_totals AS (
  SELECT t.line_id, sum(t.weight // (p.used_units // 1000000000000000)) AS total_weight
  FROM {{pairs}} t JOIN per_line p USING (line_id) WHERE p.used_units >= 2000000000000000
  GROUP BY t.line_id),
unions AS (
  SELECT line_id, sum(greatest(0, clipped_end_us
                                  - greatest(clipped_start_us, coalesce(previous_end_us, clipped_start_us))))
           AS union_us
  FROM (SELECT m.line_id, m.clipped_start_us, m.clipped_end_us,
               max(m.clipped_end_us) OVER (PARTITION BY m.line_id ORDER BY m.clipped_start_us, m.clipped_end_us
                 ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING) AS previous_end_us
        FROM al_matches m SEMI JOIN al_lines l ON l.line_id = m.line_id AND l.kind = 'capacity')
  GROUP BY line_id)
SELECT per_line.*, coalesce(scaled_totals.total_weight, per_line.used_units) AS total_weight, unions.union_us
FROM per_line LEFT JOIN scaled_totals USING (line_id) LEFT JOIN unions USING (line_id)
