-- Stage 2 (per trace on a line of {{split}} where {{lines}}): the largest-remainder share of the allocated
-- {{metric}} cost x (scaled) weight / total weight. Ties of the remainder go to the smaller trace id, so every
-- engine gives the same cents. The columns after the share are carried for the writing (see shares_table.sql).
-- Only lines with several traces are ranked (a line with one trace gives it the whole amount: its floor is the
-- amount, no remainder), each on its own: its traces' (pair, floor, remainder, trace id) gathered into one array
-- and sorted there, then unrolled with their rank (a window over all the pairs sorted ~10M rows as one: 22 against
-- 17 CPU-s at 10M facts). The wide rows join the ranked shares by pair id.
INSERT INTO al_shares
WITH ranked AS (
  SELECT item.1 AS pair_id, sign_of * (item.2 + if(rank <= amount - floor_total, 1, 0)) AS share
  FROM (SELECT line_id, any(sign_of) AS sign_of, any(amount) AS amount, sum(share_floor) AS floor_total,
               arraySort(x -> (-x.3, x.4), groupArray((pair_id, share_floor, remainder, trace_id))) AS items
        FROM (SELECT *, product - share_floor * total_weight AS remainder
              FROM (SELECT *, intDiv(product, total_weight) AS share_floor
                    FROM (SELECT t.pair_id AS pair_id, t.line_id AS line_id, t.trace_id AS trace_id,
                                 assumeNotNull(l.total_weight) AS total_weight,
                                 sign(l.{{metric}}_allocated) AS sign_of,
                                 if(l.{{metric}}_allocated < 0, -l.{{metric}}_allocated, l.{{metric}}_allocated)
                                   AS amount,
                                 amount * intDiv(t.weight,
                                                 greatest(1, intDiv(assumeNotNull(l.used_units), 1000000000000000)))
                                   AS product
                          FROM al_traces AS t JOIN {{split}} AS l ON l.line_id = t.line_id
                          WHERE l.busy_units > 0 AND l.trace_count > 1 AND {{lines}})))
        GROUP BY line_id)
  ARRAY JOIN items AS item, arrayEnumerate(items) AS rank)
SELECT '{{metric}}', t.line_id, t.trace_id, if(l.trace_count = 1, l.{{metric}}_allocated, r.share),
       l.snapshot_id, l.line_no, l.kind, l.usage_unit, l.billing_account_id, l.used_units, l.busy_units,
       l.denominator_units, t.span_ids, t.weight, t.estimate_units, t.first_key, t.dimensions
FROM al_traces AS t JOIN {{split}} AS l ON l.line_id = t.line_id
LEFT JOIN ranked AS r ON r.pair_id = t.pair_id
WHERE l.busy_units > 0 AND {{lines}}
