-- Stage 2 (per trace of the lines of share_floors.sql): the largest-remainder share of the allocated
-- {{metric}} cost: the floor, plus one unit for the line's first traces by remainder (ties to
-- the smaller trace id, so every engine gives the same cents) while units are left. A line with one trace gives it
-- the whole amount (its floor is the amount, no remainder): only lines with several go through the window.
INSERT INTO al_shares
SELECT '{{metric}}', pair_id,
       sign * (share_floor + CASE WHEN row_number() OVER by_remainder
                                      <= amount - sum(share_floor) OVER (by_remainder ROWS BETWEEN UNBOUNDED
                                                                         PRECEDING AND UNBOUNDED FOLLOWING)
                                  THEN 1 ELSE 0 END)
FROM {{floors}} f
WHERE trace_count > 1
WINDOW by_remainder AS (PARTITION BY line_id ORDER BY remainder DESC, trace_id)
UNION ALL
SELECT '{{metric}}', pair_id, allocated FROM {{floors}} f WHERE trace_count = 1
