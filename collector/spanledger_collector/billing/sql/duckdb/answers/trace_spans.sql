SELECT span_id, parent_span_id, name, service, start_time, end_time, unmeasured FROM {{spans}}
WHERE trace_id = {{trace_id}} ORDER BY start_time, span_id
