-- Empty capacity per resource and charge period of one run.
SELECT l.resource_id AS resource, al.resource_type, l.instance_type, al.accelerators,
       l.charge_period_start, l.charge_period_end,
       (al.capacity_seconds / 3600)::DECIMAL(38, 6) AS billed_hours,
       (al.busy_seconds / 3600)::DECIMAL(38, 6) AS busy_hours,
       ((al.capacity_seconds - least(al.busy_seconds, al.capacity_seconds)) / 3600)::DECIMAL(38, 6) AS idle_hours,
       al.effective_cost - al.allocated_effective_cost AS idle_cost,
       al.effective_cost AS cost, al.trace_count AS traces,
       CASE WHEN al.busy_seconds = 0 THEN 'no_spans' WHEN al.busy_seconds < al.capacity_seconds THEN 'partial'
            ELSE 'busy' END AS reason,
       al.flags
FROM allocation_lines al JOIN billing_lines l USING (snapshot_id, line_no)
WHERE al.run_id = {{run_id}} AND al.kind = 'capacity'
ORDER BY idle_cost DESC, l.charge_period_start, resource
