-- spanledger_billing_cost: the current allocation's effective cost per period, workflow, model and tenant.
-- Each label from span data keeps its costliest values ({{label_limit}}; tenants {{tenant_limit}}) no longer than
-- {{value_length}} characters; the rest add up under {{other}}, so the totals stay whole (docs/schema.md).
-- Sums stay exact decimals: the collector makes them floats, so both engines give the same gauges.
WITH current AS (
  SELECT a.workflow AS workflow, a.model AS model, a.tenant AS tenant, a.effective_cost AS effective_cost,
         formatDateTime(r.billing_period_start, '%Y-%m') AS period
  FROM (SELECT * FROM allocations FINAL WHERE trace_id IS NOT NULL) AS a
  JOIN (SELECT * FROM allocation_runs FINAL WHERE superseded_by IS NULL) AS r ON r.run_id = a.run_id
), kept_workflows AS (
  SELECT workflow FROM current WHERE workflow IS NOT NULL AND lengthUTF8(workflow) <= {{value_length}}
  GROUP BY workflow ORDER BY sum(effective_cost) DESC, workflow LIMIT {{label_limit}}
), kept_models AS (
  SELECT model FROM current WHERE model IS NOT NULL AND lengthUTF8(model) <= {{value_length}}
  GROUP BY model ORDER BY sum(effective_cost) DESC, model LIMIT {{label_limit}}
), kept_tenants AS (
  SELECT tenant FROM current WHERE tenant IS NOT NULL AND lengthUTF8(tenant) <= {{value_length}}
  GROUP BY tenant ORDER BY sum(effective_cost) DESC, tenant LIMIT {{tenant_limit}}
)
SELECT period,
  multiIf(workflow IS NULL, '', workflow IN (SELECT workflow FROM kept_workflows), workflow, {{other}})
    AS workflow_label,
  multiIf(model IS NULL, '', model IN (SELECT model FROM kept_models), model, {{other}}) AS model_label,
  multiIf(tenant IS NULL, '', tenant IN (SELECT tenant FROM kept_tenants), tenant, {{other}}) AS tenant_label,
  sum(effective_cost) AS cost
FROM current GROUP BY period, workflow_label, model_label, tenant_label
ORDER BY period, workflow_label, model_label, tenant_label
