-- Stage 2 (per trace on a line of {{split}} where {{lines}}): the largest-remainder share of the allocated
-- {{metric}} cost x (scaled) weight / total weight. Ties of the remainder go to the smaller trace id, so every
-- engine gives the same cents. The columns after the share are carried for the writing (see shares_table.sql).
-- The window sorts narrow rows (the pair, its line, remainder and trace id), and only of lines with several traces:
-- a line with one trace gives it the whole amount (its floor is the amount, no remainder). The wide rows join the
-- ranked shares by pair id; sorting them in the window was most of the step.
INSERT INTO al_shares
WITH ranked AS (
  SELECT pair_id,
         sign_of * (share_floor + if(row_number() OVER (PARTITION BY line_id ORDER BY remainder DESC, trace_id)
                                       <= amount - sum(share_floor) OVER (PARTITION BY line_id), 1, 0)) AS share
  FROM (SELECT *, product - share_floor * total_weight AS remainder
        FROM (SELECT *, intDiv(product, total_weight) AS share_floor
              FROM (SELECT t.pair_id AS pair_id, t.line_id AS line_id, t.trace_id AS trace_id,
                           assumeNotNull(l.total_weight) AS total_weight, sign(l.{{metric}}_allocated) AS sign_of,
                           if(l.{{metric}}_allocated < 0, -l.{{metric}}_allocated, l.{{metric}}_allocated) AS amount,
                           amount * intDiv(t.weight, greatest(1, intDiv(assumeNotNull(l.used_units), 1000000000000000)))
                             AS product
                    FROM al_traces AS t JOIN {{split}} AS l ON l.line_id = t.line_id
                    WHERE l.busy_units > 0 AND l.trace_count > 1 AND {{lines}}))))
SELECT '{{metric}}', t.line_id, t.trace_id, if(l.trace_count = 1, l.{{metric}}_allocated, r.share),
       l.snapshot_id, l.line_no, l.kind, l.usage_unit, l.billing_account_id, l.used_units, l.busy_units,
       l.denominator_units, t.span_ids, t.weight, t.estimate_units, t.first_key, t.dimensions
FROM al_traces AS t JOIN {{split}} AS l ON l.line_id = t.line_id
LEFT JOIN ranked AS r ON r.pair_id = t.pair_id
WHERE l.busy_units > 0 AND {{lines}}
