-- Stage 2 (per trace on a line of {{split}} where {{lines}}): the largest-remainder share of the allocated
-- {{metric}} cost x (scaled) weight / total weight. Ties of the remainder go to the smaller trace id, so every
-- engine gives the same cents. The weights' divisor is 1 below 2 x 10^15 (DuckDB's 128-bit division is slow, so it
-- runs only above); the remainder is below the total weight (< 2 x 10^15), so a BIGINT: a cheaper sort key.
-- A line with one trace gives it the whole amount (its floor is the amount, no remainder): only lines with several
-- go through the window.
INSERT INTO al_shares
SELECT '{{metric}}', pair_id,
       sign * (share_floor + CASE WHEN row_number() OVER by_remainder
                                      <= amount - sum(share_floor) OVER (by_remainder ROWS BETWEEN UNBOUNDED
                                                                         PRECEDING AND UNBOUNDED FOLLOWING)
                                  THEN 1 ELSE 0 END)
FROM (SELECT *, CAST(product - share_floor * total_weight AS BIGINT) AS remainder
      FROM (SELECT *, al_floor_div(product, total_weight) AS share_floor
            FROM (SELECT t.pair_id, t.line_id, t.trace_id, l.total_weight,
                         sign(l.{{metric}}_allocated) AS sign, abs(l.{{metric}}_allocated) AS amount,
                         abs(l.{{metric}}_allocated) * (CASE WHEN l.used_units < 2000000000000000 THEN t.weight
                                                     ELSE t.weight // (l.used_units // 1000000000000000) END)
                           AS product
                  FROM al_traces t JOIN {{split}} l USING (line_id)
                  WHERE l.busy_units > 0 AND l.trace_count > 1 AND {{lines}})))
WINDOW by_remainder AS (PARTITION BY line_id ORDER BY remainder DESC, trace_id)
UNION ALL
SELECT '{{metric}}', t.pair_id, l.{{metric}}_allocated
FROM al_traces t JOIN {{split}} l USING (line_id)
WHERE l.busy_units > 0 AND l.trace_count = 1 AND {{lines}}
