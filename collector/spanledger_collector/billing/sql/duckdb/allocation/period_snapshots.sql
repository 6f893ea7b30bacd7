-- The current snapshots of the period and their currencies.
SELECT list(snapshot_id ORDER BY snapshot_id), list(DISTINCT billing_currency ORDER BY billing_currency)
FROM billing_snapshots WHERE superseded_by IS NULL AND billing_period_start = {{period_start}}
