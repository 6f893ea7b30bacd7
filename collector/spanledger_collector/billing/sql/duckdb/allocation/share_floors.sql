-- Per (line, trace) pair on a line of {{split}} where {{lines}} with busy units: the floor of the allocated
-- {{metric}} cost x (scaled) weight / total weight, and its remainder. The weights' divisor is 1 below 2 x 10^15
-- (DuckDB's 128-bit division is slow, so it runs only above); the remainder is below the total weight
-- (< 2 x 10^15), so a BIGINT: a cheaper sort key.
(SELECT *, CAST(product - share_floor * total_weight AS BIGINT) AS remainder
 FROM (SELECT *, al_floor_div(product, total_weight) AS share_floor
       FROM (SELECT t.pair_id, t.line_id, t.trace_id, l.total_weight, l.trace_count,
                    l.{{metric}}_allocated AS allocated, sign(l.{{metric}}_allocated) AS sign,
                    abs(l.{{metric}}_allocated) AS amount,
                    abs(l.{{metric}}_allocated) * (CASE WHEN l.used_units < 2000000000000000 THEN t.weight
                                                ELSE t.weight // (l.used_units // 1000000000000000) END) AS product
             FROM {{pairs}} t JOIN {{split}} l USING (line_id)
             WHERE l.busy_units > 0 AND {{lines}})))
