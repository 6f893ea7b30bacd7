-- Per (line, trace): an id for the pair (the key of al_shares: one integer to join on), the weight, the estimate,
-- the facts, the spans (sorted, distinct), and the dimensions of the trace's first fact (by start time, span id,
-- meter: the same in every engine). first_key is that order as one BLOB (create_sort_key sorts as the tuple does):
-- min/arg_min over a blob cost a fraction of those over a struct or a row.
-- Most pairs hold one fact (a trace's facts of one line are few, and usually one): those pass through as they are,
-- and only the pairs of several facts are grouped; pair_id is the pair's first row of al_matches (its rowid, the
-- smallest for a group). Grouping ~10M one-fact pairs with list and arg_min aggregates, numbered with
-- row_number() OVER (), cost 24-25 CPU-s at 10M facts (20 s on 2 cores); counting and passing through, 12-13 (6 s).
CREATE OR REPLACE TEMP TABLE al_traces AS
WITH keyed AS (
  SELECT m.rowid AS match_id, m.line_id, m.trace_id, m.span_id, m.weight, m.estimate_units, m.workflow, m.tenant,
         m.service, m.model,
         create_sort_key(m.start_time, 'ASC NULLS LAST', m.span_id, 'ASC NULLS LAST', m.meter, 'ASC NULLS LAST')
           AS first_key
  FROM al_matches m
), several AS (
  SELECT line_id, trace_id FROM al_matches GROUP BY line_id, trace_id HAVING count(*) > 1
)
SELECT match_id AS pair_id, line_id, trace_id, weight, estimate_units, 1::BIGINT AS fact_count, [span_id] AS span_ids,
       first_key, {'workflow': workflow, 'tenant': tenant, 'service': service, 'model': model} AS dimensions
FROM keyed ANTI JOIN several USING (line_id, trace_id)
UNION ALL
SELECT min(match_id), line_id, trace_id, sum(weight), sum(estimate_units), count(*),
       list_sort(list_distinct(list(span_id))), min(first_key),
       arg_min({'workflow': workflow, 'tenant': tenant, 'service': service, 'model': model}, first_key)
FROM keyed SEMI JOIN several USING (line_id, trace_id)
GROUP BY line_id, trace_id
