SELECT span_id, read_time, source, source_kind, last_modified, age_seconds, bytes, staleness_method
FROM {{reads}} r WHERE trace_id = {{trace_id}} ORDER BY read_time, span_id, seq
