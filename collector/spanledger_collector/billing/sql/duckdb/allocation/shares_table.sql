-- Per (line, trace): the share of a cost (metric: effective, or billed | list where split on their own), with the
-- trace's and the line's columns the trace rows are written from, so that the writing and the shared weights read
-- this one table instead of joining al_traces and the lines back by (line, trace) (the costliest joins at 1M rows).
CREATE OR REPLACE TEMP TABLE al_shares AS
SELECT ''::VARCHAR AS metric, t.line_id, t.trace_id, 0::HUGEINT AS share, l.snapshot_id, l.line_no, l.kind,
       l.usage_unit, l.billing_account_id, l.used_units, l.busy_units, l.denominator_units, t.span_ids, t.weight,
       t.estimate_units, t.first_key, t.dimensions
FROM al_traces t JOIN al_split l USING (line_id)
WHERE FALSE
