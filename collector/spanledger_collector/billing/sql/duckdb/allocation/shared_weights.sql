-- Shared lines, proportional policy: a trace's weight is the EffectiveCost it got directly (effective shares of
-- capacity and consumption lines) in the line's billing account, or in the whole period for a line without one;
-- traces whose net direct cost is not positive get nothing. Its dimensions are those of its first fact.
CREATE OR REPLACE TEMP TABLE al_shared_weights AS
WITH direct AS (
  SELECT l.billing_account_id, t.trace_id, sum(e.share) AS units, min(t.first_key) AS first_key,
         arg_min({'workflow': t.workflow, 'tenant': t.tenant, 'service': t.service, 'model': t.model}, t.first_key)
           AS dimensions
  FROM al_shares e JOIN {{pairs}} t ON e.metric = 'effective' AND e.pair_id = t.pair_id
  JOIN al_lines l ON l.line_id = t.line_id
  GROUP BY l.billing_account_id, t.trace_id),
in_period AS (
  SELECT trace_id, sum(units) AS units, min(first_key) AS first_key, arg_min(dimensions, first_key) AS dimensions
  FROM direct GROUP BY trace_id),
shared AS (SELECT line_id, billing_account_id FROM al_lines WHERE kind = 'shared')
SELECT s.line_id, d.trace_id, d.units AS weight, d.first_key, d.dimensions
FROM shared s JOIN direct d ON d.billing_account_id = s.billing_account_id
WHERE d.units > 0
UNION ALL
SELECT s.line_id, p.trace_id, p.units, p.first_key, p.dimensions
FROM shared s CROSS JOIN in_period p
WHERE s.billing_account_id IS NULL AND p.units > 0
