-- spanledger_billing_cost: the current allocation's effective cost per period, workflow, model and tenant.
-- Each label from span data keeps its costliest values ({{label_limit}}; tenants {{tenant_limit}}) no longer than
-- {{value_length}} characters; the rest add up under {{other}}, so the totals stay whole (docs/schema.md).
-- Sums stay exact decimals: the collector makes them floats, so both engines give the same gauges.
WITH current AS (
  SELECT a.*, strftime(r.billing_period_start, '%Y-%m') AS period
  FROM allocations a JOIN allocation_runs r USING (run_id)
  WHERE r.superseded_by IS NULL AND a.trace_id IS NOT NULL
), kept_workflows AS (
  SELECT workflow FROM current WHERE workflow IS NOT NULL AND length(workflow) <= {{value_length}}
  GROUP BY workflow ORDER BY sum(effective_cost) DESC, workflow LIMIT {{label_limit}}
), kept_models AS (
  SELECT model FROM current WHERE model IS NOT NULL AND length(model) <= {{value_length}}
  GROUP BY model ORDER BY sum(effective_cost) DESC, model LIMIT {{label_limit}}
), kept_tenants AS (
  SELECT tenant FROM current WHERE tenant IS NOT NULL AND length(tenant) <= {{value_length}}
  GROUP BY tenant ORDER BY sum(effective_cost) DESC, tenant LIMIT {{tenant_limit}}
)
SELECT period,
  CASE WHEN workflow IS NULL THEN '' WHEN workflow IN (SELECT workflow FROM kept_workflows) THEN workflow
       ELSE {{other}} END AS workflow_label,
  CASE WHEN model IS NULL THEN '' WHEN model IN (SELECT model FROM kept_models) THEN model
       ELSE {{other}} END AS model_label,
  CASE WHEN tenant IS NULL THEN '' WHEN tenant IN (SELECT tenant FROM kept_tenants) THEN tenant
       ELSE {{other}} END AS tenant_label,
  sum(effective_cost)
FROM current GROUP BY ALL ORDER BY ALL
