SELECT coalesce({{group}}, '(none)') AS {{group}}, sum(quantity) AS tokens,
       sum(quantity) FILTER (WHERE meter = {{input_meter}}) AS input_tokens,
       sum(quantity) FILTER (WHERE meter = {{cache_read_meter}}) AS cache_read_tokens,
       sum(quantity) FILTER (WHERE meter = {{cache_write_meter}}) AS cache_write_tokens,
       sum(quantity) FILTER (WHERE meter = {{output_meter}}) AS output_tokens,
       count(DISTINCT trace_id) AS traces
FROM {{facts}} f WHERE meter IN ({{token_meters}}) AND {{period}}
GROUP BY 1 ORDER BY tokens DESC, 1 LIMIT {{limit}}
