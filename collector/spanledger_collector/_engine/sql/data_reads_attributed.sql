-- The data reads the answers read: {table} with workflow and tenant attributed as the collector does
-- (docs/producers.md "Attribution"), at read time over whole traces like counted-once in usage_facts.
CREATE OR REPLACE VIEW {database}.{view} AS
WITH
{traces}  events AS (SELECT * FROM {database}.{table} FINAL WHERE {traces_read}),
  starts AS (SELECT DISTINCT trace_id, span_id FROM events WHERE workflow IS NULL OR tenant IS NULL),
{span_chains}
SELECT {columns}
FROM events AS e
LEFT JOIN chains AS a ON a.trace_id = e.trace_id AND a.span_id = e.span_id
WHERE {rows_read}
