SELECT run_id, facts_fingerprint, line_count, matched_fact_count FROM allocation_runs FINAL
WHERE billing_period_start = {{period_start}} AND superseded_by IS NULL
