SELECT span_id, meter, quantity, unit, start_time, end_time, resource_id, resource_type, model, boundary,
       accelerator_type, workflow, tenant, service, estimated_cost, currency, unpriced_reason
FROM {{facts}} AS f WHERE trace_id = {{trace_id}} ORDER BY start_time, span_id, meter
