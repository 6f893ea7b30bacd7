SELECT run_id, strftime(billing_period_start, '%Y-%m'), billing_currency FROM allocation_runs
WHERE superseded_by IS NULL AND billing_period_start = {{period_start}}
