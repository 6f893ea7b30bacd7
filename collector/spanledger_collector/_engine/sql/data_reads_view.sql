-- spanledger.data.read events of otel_traces rows -> {table} rows, per inserted block (not yet attributed).
CREATE MATERIALIZED VIEW IF NOT EXISTS {database}.{view} TO {database}.{table} AS
SELECT
  TraceId AS trace_id,
  SpanId AS span_id,
  toInt32(event_index - 1) AS seq,
  fromUnixTimestamp64Micro(intDiv(toUnixTimestamp64Nano(event_time), 1000)) AS read_time,
  d_source AS source,
  d_source_kind AS source_kind,
  d_last_modified AS last_modified,
  d_age_seconds AS age_seconds,
  d_bytes AS bytes,
  d_staleness_method AS staleness_method,
  d_workflow AS workflow,
  d_tenant AS tenant,
  d_service AS service
FROM (
  SELECT
  TraceId, SpanId, event_index, event_time,
  {lets}
  FROM (
    SELECT TraceId, SpanId, Events.Timestamp, Events.Name, {event_values}, {span_values}
    FROM {traces_database}.{traces_table}
    WHERE has(Events.Name, {event_name})
  )
  ARRAY JOIN Events.Timestamp AS event_time, Events.Name AS event_name, event_values AS event_attributes,
    arrayEnumerate(Events.Name) AS event_index
  WHERE {valid_span} AND {condition}
)
