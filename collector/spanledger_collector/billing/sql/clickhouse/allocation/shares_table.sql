-- Per (line, trace): the share of a cost (metric: effective, or billed | list where split on their own), with the
-- trace's columns the trace rows are written from, so that the writing and the shared weights read this one table
-- instead of joining al_traces back by (line, trace) (the costliest joins at 1M rows). The line's columns are not
-- carried: a hash join copies each right-hand string per row, and the line's strings through the shares' join
-- cost 2.7-4.5 s at 10M facts; the writing joins the few it needs by line id (as LowCardinality) instead.
CREATE TEMPORARY TABLE al_shares ENGINE = Memory AS
SELECT '' AS metric, line_id, trace_id, toInt128(0) AS share, span_ids, weight, estimate_units, first_key,
       dimensions
FROM {{pairs}}
WHERE 0
