-- spanledger_billing_estimate_variance: the current allocation's effective minus estimated cost per period.
SELECT formatDateTime(r.billing_period_start, '%Y-%m') AS period, sum(a.effective_cost) - sum(a.estimated_cost)
FROM (SELECT * FROM allocations FINAL WHERE trace_id IS NOT NULL AND estimated_cost IS NOT NULL) AS a
JOIN (SELECT * FROM allocation_runs FINAL WHERE superseded_by IS NULL) AS r ON r.run_id = a.run_id
GROUP BY period ORDER BY period
