-- Empty capacity per resource and charge period of one run (hours rounded to 10^-6 through a double, as DuckDB).
SELECT l.resource_id AS resource, al.resource_type AS resource_type, l.instance_type AS instance_type,
       al.accelerators AS accelerators, l.charge_period_start AS charge_period_start,
       l.charge_period_end AS charge_period_end,
       toDecimal128(round(toFloat64(al.capacity_seconds) / 3600, 6), 6) AS billed_hours,
       toDecimal128(round(toFloat64(al.busy_seconds) / 3600, 6), 6) AS busy_hours,
       toDecimal128(round(toFloat64(al.capacity_seconds - least(al.busy_seconds, al.capacity_seconds)) / 3600, 6), 6)
         AS idle_hours,
       al.effective_cost - al.allocated_effective_cost AS idle_cost,
       al.effective_cost AS cost, al.trace_count AS traces,
       multiIf(al.busy_seconds = 0, 'no_spans', al.busy_seconds < al.capacity_seconds, 'partial', 'busy') AS reason,
       al.flags AS flags
FROM (SELECT * FROM allocation_lines FINAL WHERE run_id = {{run_id}} AND kind = 'capacity') AS al
JOIN (SELECT * FROM billing_lines FINAL) AS l ON l.snapshot_id = al.snapshot_id AND l.line_no = al.line_no
ORDER BY idle_cost DESC, charge_period_start, resource
