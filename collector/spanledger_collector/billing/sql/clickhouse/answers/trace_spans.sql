-- Spans live only in the OTel Collector exporter's table (otel_traces unless configured); its trace-id lookup
-- table bounds the time range (as Grafana's trace view reads it). Its Start and End are DateTime, to the second
-- (End truncated): spans of the last second are before End + 1 s. The bounds are cast to Timestamp's
-- DateTime64(9): compared as DateTime, chdb 4.4's skip indexes dropped every span of `Timestamp < End + 1`
-- (use_skip_indexes=0 found them). A span whose accelerator time was not measured carries the reason.
WITH (SELECT (min(Start), max(End)) FROM {{spans}}_trace_id_ts WHERE TraceId = {{trace_id}}) AS bounds
SELECT SpanId AS span_id, nullIf(ParentSpanId, '') AS parent_span_id, SpanName AS name, ServiceName AS service,
       toDateTime64(Timestamp, 6, 'UTC') AS start_time,
       toDateTime64(Timestamp + toIntervalNanosecond(Duration), 6, 'UTC') AS end_time,
       if(mapContains(SpanAttributes, {{not_measured_reason}}),
          concat('accelerator: ', SpanAttributes[{{not_measured_reason}}]), NULL) AS unmeasured
FROM {{spans}}
WHERE TraceId = {{trace_id}} AND Timestamp >= toDateTime64(bounds.1, 9)
  AND Timestamp < toDateTime64(bounds.2 + 1, 9)
ORDER BY start_time, span_id
