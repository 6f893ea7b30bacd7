-- Per (line, trace): the share of a cost (metric: effective, or billed | list where split on their own), with the
-- trace's and the line's columns the trace rows are written from, so that the writing and the shared weights read
-- this one table instead of joining al_traces and the lines back by (line, trace) (the costliest joins at 1M rows).
CREATE TEMPORARY TABLE al_shares ENGINE = Memory AS
SELECT '' AS metric, t.line_id AS line_id, t.trace_id AS trace_id, toInt128(0) AS share,
       l.snapshot_id AS snapshot_id, l.line_no AS line_no, l.kind AS kind, l.usage_unit AS usage_unit,
       l.billing_account_id AS billing_account_id, l.used_units AS used_units, l.busy_units AS busy_units,
       l.denominator_units AS denominator_units, t.span_ids AS span_ids, t.weight AS weight,
       t.estimate_units AS estimate_units, t.first_key AS first_key, t.dimensions AS dimensions
FROM {{pairs}} AS t JOIN al_split AS l ON l.line_id = t.line_id
WHERE 0
