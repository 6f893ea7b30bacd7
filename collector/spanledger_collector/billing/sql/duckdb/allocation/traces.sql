-- Per (line, trace): the weight, the estimate, the facts, the spans (sorted, distinct), and the dimensions of the
-- trace's first fact (by start time, span id, meter: the same in every engine).
CREATE OR REPLACE TEMP TABLE al_traces AS
SELECT line_id, trace_id, sum(weight) AS weight, sum(estimate_units) AS estimate_units, count(*) AS fact_count,
       CASE WHEN count(*) > 1 THEN list_sort(list_distinct(list(span_id))) ELSE list(span_id) END AS span_ids,
       min({'start_time': start_time, 'span_id': span_id, 'meter': meter}) AS first_key,
       arg_min({'workflow': workflow, 'tenant': tenant, 'service': service, 'model': model},
               (start_time, span_id, meter)) AS dimensions
FROM al_matches GROUP BY line_id, trace_id
