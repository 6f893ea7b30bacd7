-- The billed resources one trace used, with its share of each line, in the current runs.
SELECT formatDateTime(r.billing_period_start, '%Y-%m') AS billing_period, a.run_id AS run_id,
       coalesce(l.resource_id, l.model, al.rule_id) AS resource, al.resource_type AS resource_type,
       al.rule_id AS meter_rule, l.charge_period_start AS charge_period_start, l.charge_period_end AS charge_period_end,
       l.charge_description AS charge_description, a.span_ids AS span_ids, a.usage_quantity AS usage_quantity,
       a.usage_unit AS usage_unit, a.allocated_ratio AS allocated_ratio, a.effective_cost AS effective_cost,
       a.billed_cost AS billed_cost, a.list_cost AS list_cost, a.estimated_cost AS estimated_cost,
       l.billing_currency AS currency
FROM (SELECT * FROM allocations FINAL WHERE trace_id = {{trace_id}}) AS a
JOIN (SELECT * FROM allocation_runs FINAL) AS r ON r.run_id = a.run_id
JOIN (SELECT * FROM billing_lines FINAL) AS l ON l.snapshot_id = a.snapshot_id AND l.line_no = a.line_no
JOIN (SELECT * FROM allocation_lines FINAL) AS al
  ON al.run_id = a.run_id AND al.snapshot_id = a.snapshot_id AND al.line_no = a.line_no
WHERE r.superseded_by IS NULL
ORDER BY charge_period_start, resource
