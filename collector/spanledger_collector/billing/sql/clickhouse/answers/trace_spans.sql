-- Spans live only in the OTel Collector exporter's table (otel_traces unless configured); its trace-id lookup
-- table bounds the time range (as Grafana's trace view reads it). Its Start and End are DateTime, to the second
-- (End truncated): spans of the last second are before End + 1 s. The bounds are cast to Timestamp's
-- DateTime64(9): compared as DateTime, chdb 4.4's skip indexes dropped every span of `Timestamp < End + 1`
-- (use_skip_indexes=0 found them). Unbounded where the lookup has no row of the trace (spans stored before it
-- existed, or no such table: `bounds` is then empty) or a bound DateTime cannot hold (before 1970, after
-- 2106-02-07: saturated), as init's windowed views do. A span whose accelerator time was not measured carries
-- the reason.
WITH (SELECT if(count() > 0 AND min(Start) > toDateTime(0) AND max(End) < toDateTime(4294967295),
                (toDateTime64(min(Start), 9, 'UTC'), toDateTime64(max(End), 9, 'UTC') + toIntervalSecond(1)),
                (toDateTime64('1900-01-01 00:00:00', 9, 'UTC'), toDateTime64('2262-04-11 00:00:00', 9, 'UTC')))
      FROM {{bounds}} WHERE TraceId = {{trace_id}}) AS bounds
SELECT SpanId AS span_id, nullIf(ParentSpanId, '') AS parent_span_id, SpanName AS name, ServiceName AS service,
       toDateTime64(Timestamp, 6, 'UTC') AS start_time,
       toDateTime64(Timestamp + toIntervalNanosecond(Duration), 6, 'UTC') AS end_time,
       if(mapContains(SpanAttributes, {{not_measured_reason}}),
          concat('accelerator: ', SpanAttributes[{{not_measured_reason}}]), NULL) AS unmeasured
FROM {{spans}}
WHERE TraceId = {{trace_id}} AND Timestamp >= bounds.1 AND Timestamp < bounds.2
ORDER BY start_time, span_id
