-- The (line, trace) pairs of several facts, grouped: an id for the pair (the smallest rowid of its facts in
-- al_matches), the weight, the estimate, the facts, the spans (sorted, distinct), and the dimensions of the trace's
-- first fact (by start time, span id, meter: the same in every engine; first_key.sql): min/arg_min over that blob
-- cost a fraction of those over a struct or a row.
-- Most pairs hold one fact (a trace's facts of one line are few, and usually one): those are not copied here but
-- read from al_matches where they are used (pairs.sql): copying them, ~10M at 10M facts, made this step 6.6 s
-- against 2.5.
CREATE OR REPLACE TEMP TABLE al_several AS
SELECT line_id, trace_id FROM al_matches GROUP BY line_id, trace_id HAVING count(*) > 1;

CREATE OR REPLACE TEMP TABLE al_traces AS
SELECT min(match_id) AS pair_id, line_id, trace_id, sum(weight) AS weight, sum(estimate_units) AS estimate_units,
       count(*) AS fact_count, list_sort(list_distinct(list(span_id))) AS span_ids, min(first_key) AS first_key,
       arg_min(dimensions, first_key) AS dimensions
FROM (SELECT m.rowid AS match_id, m.line_id, m.trace_id, m.span_id, m.weight, m.estimate_units,
             {{first_key}} AS first_key,
             {'workflow': m.workflow, 'tenant': m.tenant, 'service': m.service, 'model': m.model} AS dimensions
      FROM al_matches m SEMI JOIN al_several USING (line_id, trace_id))
GROUP BY line_id, trace_id
