SELECT max(run_id) + 1 FROM allocation_runs
