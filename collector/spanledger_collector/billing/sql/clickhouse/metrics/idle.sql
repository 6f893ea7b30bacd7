-- spanledger_billing_idle_cost and spanledger_billing_idle_accelerator_time_hours: billed capacity no request
-- used, per period and resource type, its idle time in seconds ({{per_instance_rules}}: the rules that count every
-- accelerator of an instance). Exact decimals: the collector divides and makes them floats.
SELECT formatDateTime(r.billing_period_start, '%Y-%m') AS period, coalesce(al.resource_type, '') AS type,
  sum(al.effective_cost - al.allocated_effective_cost) AS idle_cost,
  sum((al.capacity_seconds - least(al.busy_seconds, al.capacity_seconds))
      * if(al.rule_id IN ({{per_instance_rules}}), al.accelerators, 1)) AS idle_seconds
FROM (SELECT * FROM allocation_lines FINAL WHERE kind = 'capacity') AS al
JOIN (SELECT * FROM allocation_runs FINAL WHERE superseded_by IS NULL) AS r ON r.run_id = al.run_id
GROUP BY period, type ORDER BY period, type
