UPDATE allocation_runs SET superseded_by = {{new_run_id}} WHERE run_id = {{run_id}}
