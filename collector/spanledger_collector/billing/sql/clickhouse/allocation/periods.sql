SELECT DISTINCT billing_period_start FROM billing_snapshots FINAL WHERE superseded_by IS NULL ORDER BY 1
