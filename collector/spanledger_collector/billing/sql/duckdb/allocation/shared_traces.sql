INSERT INTO al_traces (pair_id, line_id, trace_id, weight, fact_count, span_ids, first_key, dimensions)
SELECT (SELECT coalesce(max(rowid), 0) FROM al_matches) + row_number() OVER (), line_id, trace_id, weight, 0,
       []::VARCHAR[], first_key, dimensions
FROM al_shared_weights
