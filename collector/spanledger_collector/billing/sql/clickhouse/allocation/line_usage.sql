-- Per line: used units U (sum of the weights), facts, traces, estimate, and the busy-time union (capacity lines:
-- one window pass, the running max of previous ends; 0 before the first, which is before every start). Weights
-- are scaled down on lines with huge totals (>= 2 x 10^15) so that allocated x weight fits 128 bits.
CREATE TEMPORARY TABLE al_line_usage ENGINE = Memory AS
WITH per_line AS (
  SELECT line_id, sum(weight) AS used_units, sum(fact_count) AS fact_count, count() AS trace_count,
         sum(estimate_units) AS estimate_units
  FROM {{pairs}} AS t GROUP BY line_id),
scaled_totals AS (
  SELECT t.line_id AS line_id, sum(intDiv(t.weight, intDiv(p.used_units, 1000000000000000))) AS total_weight
  FROM {{pairs}} AS t JOIN per_line AS p ON p.line_id = t.line_id WHERE p.used_units >= 2000000000000000
  GROUP BY t.line_id),
unions AS (
  SELECT line_id, sum(greatest(0, clipped_end_us - greatest(clipped_start_us, coalesce(previous_end_us, clipped_start_us)))) AS union_us
  FROM (SELECT line_id, clipped_start_us, clipped_end_us,
               max(clipped_end_us) OVER (PARTITION BY line_id ORDER BY clipped_start_us, clipped_end_us
                 ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING) AS previous_end_us
        FROM al_matches WHERE line_id IN (SELECT line_id FROM al_lines WHERE kind = 'capacity'))
  GROUP BY line_id)
SELECT per_line.line_id AS line_id, per_line.used_units AS used_units, per_line.fact_count AS fact_count,
       per_line.trace_count AS trace_count, per_line.estimate_units AS estimate_units,
       coalesce(scaled_totals.total_weight, per_line.used_units) AS total_weight, unions.union_us AS union_us
FROM per_line LEFT JOIN scaled_totals ON scaled_totals.line_id = per_line.line_id
LEFT JOIN unions ON unions.line_id = per_line.line_id
