-- otel_traces rows -> usage_reports rows, per inserted block: spanledger's owner spans (owner = 1) and other
-- producers' spans that report tokens (owner = 0), in one view so that each block is read and planned once.
CREATE MATERIALIZED VIEW IF NOT EXISTS {database}.{view} TO {database}.{table} AS
SELECT
  TraceId AS trace_id,
  SpanId AS span_id,
  fact.1 AS meter,
  fact.7 AS start_time,
  fact.8 AS end_time,
  assumeNotNull(fact.2) AS quantity,
  fact.3 AS unit,
  r_resource_id AS resource_id,
  fact.4 AS resource_type,
  r_provider AS provider,
  r_account_id AS account_id,
  r_region AS region,
  r_model AS model,
  fact.5 AS boundary,
  fact.6 AS accelerator_type,
  r_workflow AS workflow,
  r_tenant AS tenant,
  r_service AS service,
  if(ParentSpanId = '', NULL, ParentSpanId) AS parent_span_id,
  r_owner AS owner
FROM (
{lets}
)
ARRAY JOIN r_facts AS fact
WHERE r_reports AND fact.2 > 0 AND fact.2 < toDecimal128('1e18', 0)
