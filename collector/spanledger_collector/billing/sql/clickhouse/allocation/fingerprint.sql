-- What the facts that can match the period add up to (a new run only when it changes); engine-specific hash (of a
-- tuple: a NULL field is hashed, not propagated).
SELECT toString(count()) || ':' || toString(groupBitXor(cityHash64((f.trace_id, f.span_id, f.meter, f.quantity,
       f.start_time, f.end_time, f.resource_id, f.model, f.account_id, f.estimated_cost))))
FROM {{facts}} AS f
WHERE {{scope}}
