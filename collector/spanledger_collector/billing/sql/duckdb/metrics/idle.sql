-- spanledger_billing_idle_cost and spanledger_billing_idle_accelerator_time_hours: billed capacity no request
-- used, per period and resource type, its idle time in seconds ({{per_instance_rules}}: the rules that count every
-- accelerator of an instance). Exact decimals: the collector divides and makes them floats.
SELECT strftime(r.billing_period_start, '%Y-%m'), coalesce(al.resource_type, ''),
  sum(al.effective_cost - al.allocated_effective_cost),
  sum((al.capacity_seconds - least(al.busy_seconds, al.capacity_seconds))
      * CASE WHEN al.rule_id IN ({{per_instance_rules}}) THEN al.accelerators ELSE 1 END)
FROM allocation_lines al JOIN allocation_runs r USING (run_id)
WHERE r.superseded_by IS NULL AND al.kind = 'capacity'
GROUP BY ALL ORDER BY ALL
