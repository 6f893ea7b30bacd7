-- Per (line, trace): an id for the pair (the key of al_shares: one integer to join on), the weight, the estimate,
-- the facts, the spans (sorted, distinct), and the dimensions of the trace's first fact (by start time, span id,
-- meter: the same in every engine). first_key is that order as one BLOB (create_sort_key sorts as the tuple does):
-- min/arg_min over a blob cost a fraction of those over a struct or a row.
CREATE OR REPLACE TEMP TABLE al_traces AS
SELECT row_number() OVER () AS pair_id, *
FROM (SELECT line_id, trace_id, sum(weight) AS weight, sum(estimate_units) AS estimate_units,
             count(*) AS fact_count,
             CASE WHEN count(*) > 1 THEN list_sort(list_distinct(list(span_id))) ELSE list(span_id) END AS span_ids,
             min(first_key) AS first_key,
             arg_min({'workflow': workflow, 'tenant': tenant, 'service': service, 'model': model}, first_key)
               AS dimensions
      FROM (SELECT *, create_sort_key(start_time, 'ASC NULLS LAST', span_id, 'ASC NULLS LAST',
                                      meter, 'ASC NULLS LAST') AS first_key
            FROM al_matches)
      GROUP BY line_id, trace_id)
