SELECT method_version FROM allocation_runs WHERE run_id = {{run_id}}
