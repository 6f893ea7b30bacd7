-- What the facts that can match the period add up to (a new run only when it changes); engine-specific hash.
SELECT count(*)::VARCHAR || ':' || coalesce(bit_xor(hash(f.trace_id, f.span_id, f.meter, f.quantity, f.start_time,
       f.end_time, f.resource_id, f.model, f.account_id, f.estimated_cost)), 0)::VARCHAR
FROM {{facts}} f
WHERE {{scope}}
