-- The current run of the latest period whose run allocated cost to traces (else of the latest period).
SELECT run_id, strftime(billing_period_start, '%Y-%m'), billing_currency FROM allocation_runs r
WHERE superseded_by IS NULL
ORDER BY EXISTS (SELECT 1 FROM allocations a WHERE a.run_id = r.run_id AND a.trace_id IS NOT NULL) DESC,
         billing_period_start DESC
LIMIT 1
