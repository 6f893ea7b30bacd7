-- No UPDATE: a newer revision of the run's row (ReplacingMergeTree(revision), read with FINAL) replaces it.
INSERT INTO allocation_runs
SELECT * REPLACE ({{new_run_id}} AS superseded_by, revision + 1 AS revision)
FROM allocation_runs FINAL WHERE run_id = {{run_id}}
