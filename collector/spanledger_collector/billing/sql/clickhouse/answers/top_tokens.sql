SELECT coalesce({{group}}, '(none)') AS {{group}}, sum(quantity) AS tokens,
       sumOrNullIf(quantity, meter = {{input_meter}}) AS input_tokens,
       sumOrNullIf(quantity, meter = {{cache_read_meter}}) AS cache_read_tokens,
       sumOrNullIf(quantity, meter = {{cache_write_meter}}) AS cache_write_tokens,
       sumOrNullIf(quantity, meter = {{output_meter}}) AS output_tokens,
       uniqExact(trace_id) AS traces
FROM {{facts}} AS f WHERE meter IN ({{token_meters}}) AND {{period}}
GROUP BY 1 ORDER BY tokens DESC, 1 LIMIT {{limit}}
