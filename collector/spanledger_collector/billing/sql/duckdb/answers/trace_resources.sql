-- The billed resources one trace used, with its share of each line, in the current runs.
SELECT strftime(r.billing_period_start, '%Y-%m') AS billing_period, a.run_id,
       coalesce(l.resource_id, l.model, al.rule_id) AS resource, al.resource_type, al.rule_id AS meter_rule,
       l.charge_period_start, l.charge_period_end, l.charge_description, a.span_ids,
       a.usage_quantity, a.usage_unit, a.allocated_ratio, a.effective_cost, a.billed_cost,
       a.list_cost, a.estimated_cost, l.billing_currency AS currency
FROM allocations a JOIN allocation_runs r USING (run_id)
JOIN billing_lines l USING (snapshot_id, line_no)
JOIN allocation_lines al USING (run_id, snapshot_id, line_no)
WHERE a.trace_id = {{trace_id}} AND r.superseded_by IS NULL
ORDER BY l.charge_period_start, resource
