-- The current snapshots of the period and their currencies.
SELECT arraySort(groupArray(snapshot_id)), arraySort(groupUniqArray(billing_currency))
FROM billing_snapshots FINAL WHERE superseded_by IS NULL AND billing_period_start = {{period_start}}
