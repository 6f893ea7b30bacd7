-- spanledger_billing_idle_cost and spanledger_billing_idle_accelerator_time_hours: billed capacity no request
-- used, per period and resource type; rules of $per_instance_rules count every accelerator of an instance.
SELECT strftime(r.billing_period_start, '%Y-%m'), coalesce(al.resource_type, ''),
  sum(al.effective_cost - al.allocated_effective_cost)::DOUBLE,
  sum((al.capacity_seconds - least(al.busy_seconds, al.capacity_seconds))
      * CASE WHEN list_contains($per_instance_rules::VARCHAR[], al.rule_id) THEN al.accelerators ELSE 1 END
      / 3600)::DOUBLE
FROM allocation_lines al JOIN allocation_runs r USING (run_id)
WHERE r.superseded_by IS NULL AND al.kind = 'capacity'
GROUP BY ALL ORDER BY ALL
