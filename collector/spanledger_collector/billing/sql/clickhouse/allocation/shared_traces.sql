INSERT INTO al_traces (line_id, trace_id, weight, fact_count, span_ids, first_key, dimensions)
SELECT line_id, trace_id, weight, 0, [], first_key, dimensions FROM al_shared_weights
