SELECT run_id, formatDateTime(billing_period_start, '%Y-%m'), billing_currency FROM allocation_runs FINAL
WHERE superseded_by IS NULL AND billing_period_start = {{period_start}}
