-- Stage 2 (per trace of the lines of share_floors.sql): the largest-remainder share of the allocated
-- {{metric}} cost: the floor, plus one unit for the line's first `leftover` traces (the amount
-- less the floors) by remainder, ties to the smaller trace id so that every engine gives the same cents. The
-- columns after the share are carried for the writing (see shares_table.sql).
-- No trace is ranked: per line, the remainders alone are sorted (one numeric array a line) for the threshold, the
-- leftover-th largest; a trace above it gets the unit, and so does one at it unless more traces share the threshold
-- than units remain (rare: those few go by trace id). Sorting every line's (remainder, trace id) pairs cost 2 s more
-- at 10M facts, and ranking every trace (a window, or unrolled arrays joined back) 2.5-4 s more.
DROP TEMPORARY TABLE IF EXISTS al_thresholds;

CREATE TEMPORARY TABLE al_thresholds ENGINE = Memory AS
SELECT line_id, leftover, remainders[leftover] AS threshold, arrayCount(r -> r > threshold, remainders) AS above,
       arrayCount(r -> r = threshold, remainders) AS tied
FROM (SELECT line_id, toUInt64(assumeNotNull(any(amount) - sum(share_floor))) AS leftover,
             arrayReverseSort(groupArray(remainder)) AS remainders
      FROM {{floors}} AS f WHERE trace_count > 1 GROUP BY line_id HAVING leftover > 0);

INSERT INTO al_shares
WITH tie_ranks AS (
  SELECT f.line_id AS line_id, f.trace_id AS trace_id,
         row_number() OVER (PARTITION BY f.line_id ORDER BY f.trace_id) <= any(th.leftover - th.above)
           OVER (PARTITION BY f.line_id) AS gets_unit
  FROM {{floors}} AS f JOIN (SELECT * FROM al_thresholds WHERE leftover - above < tied) AS th
    ON th.line_id = f.line_id
  WHERE f.remainder = th.threshold)
SELECT '{{metric}}', f.line_id, f.trace_id,
       if(f.trace_count = 1, f.allocated,
          f.sign_of * (f.share_floor + if(f.remainder > th.threshold
                                          OR (f.remainder = th.threshold
                                              AND (th.leftover - th.above = th.tied OR tr.gets_unit)), 1, 0))),
       f.span_ids, f.weight, f.estimate_units, f.first_key, f.dimensions
FROM {{floors}} AS f LEFT JOIN al_thresholds AS th ON th.line_id = f.line_id
LEFT JOIN tie_ranks AS tr ON tr.line_id = f.line_id AND tr.trace_id = f.trace_id
