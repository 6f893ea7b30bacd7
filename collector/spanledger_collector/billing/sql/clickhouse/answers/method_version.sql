SELECT method_version FROM allocation_runs FINAL WHERE run_id = {{run_id}}
