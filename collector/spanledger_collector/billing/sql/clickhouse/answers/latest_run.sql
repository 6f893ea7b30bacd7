-- The current run of the latest period whose run allocated cost to traces (else of the latest period).
SELECT run_id, formatDateTime(billing_period_start, '%Y-%m'), billing_currency FROM allocation_runs FINAL
WHERE superseded_by IS NULL
ORDER BY run_id IN (SELECT run_id FROM allocations WHERE trace_id IS NOT NULL) DESC, billing_period_start DESC
LIMIT 1
