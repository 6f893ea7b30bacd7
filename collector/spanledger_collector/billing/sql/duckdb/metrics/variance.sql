-- spanledger_billing_estimate_variance: the current allocation's effective minus estimated cost per period.
SELECT strftime(r.billing_period_start, '%Y-%m'), sum(a.effective_cost) - sum(a.estimated_cost)
FROM allocations a JOIN allocation_runs r USING (run_id)
WHERE r.superseded_by IS NULL AND a.trace_id IS NOT NULL AND a.estimated_cost IS NOT NULL
GROUP BY ALL ORDER BY ALL
