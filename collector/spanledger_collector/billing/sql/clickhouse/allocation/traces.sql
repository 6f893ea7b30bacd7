-- Per (line, trace): the weight, the estimate, the facts, the spans (sorted, distinct), and the dimensions of the
-- trace's first fact (by start time, span id, meter: the same in every engine).
CREATE TEMPORARY TABLE al_traces ENGINE = Memory AS
SELECT line_id, trace_id, sum(weight) AS weight, sum(estimate_units) AS estimate_units, count() AS fact_count,
       arraySort(groupUniqArray(span_id)) AS span_ids,
       min((start_time, span_id, meter)) AS first_key,
       argMin((workflow, tenant, service, model), (start_time, span_id, meter)) AS dimensions
FROM al_matches GROUP BY line_id, trace_id
