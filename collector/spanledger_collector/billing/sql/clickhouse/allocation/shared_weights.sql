-- Shared lines, proportional policy: a trace's weight is the EffectiveCost it got directly (effective shares of
-- capacity and consumption lines) in the line's billing account, or in the whole period for a line without one;
-- traces whose net direct cost is not positive get nothing. Its dimensions are those of its first fact. The
-- line's billing account comes from al_lines (al_shares carries no line columns).
CREATE TEMPORARY TABLE al_shared_weights ENGINE = Memory AS
WITH direct AS (
  SELECT l.billing_account_id AS billing_account_id, s.trace_id AS trace_id, sum(s.share) AS units,
         min(s.first_key) AS first_key, argMin(s.dimensions, s.first_key) AS dimensions
  FROM al_shares AS s JOIN al_lines AS l ON l.line_id = s.line_id WHERE s.metric = 'effective'
  GROUP BY billing_account_id, trace_id),
in_period AS (
  SELECT trace_id, sum(units) AS units, min(first_key) AS first_key, argMin(dimensions, first_key) AS dimensions
  FROM direct GROUP BY trace_id),
shared AS (SELECT line_id, billing_account_id FROM al_lines WHERE kind = 'shared')
SELECT s.line_id AS line_id, d.trace_id AS trace_id, d.units AS weight, d.first_key AS first_key,
       d.dimensions AS dimensions
FROM shared AS s JOIN direct AS d ON d.billing_account_id = s.billing_account_id
WHERE d.units > 0
UNION ALL
SELECT s.line_id, p.trace_id, p.units, p.first_key, p.dimensions
FROM shared AS s CROSS JOIN in_period AS p
WHERE s.billing_account_id IS NULL AND p.units > 0
