-- Per (line, trace): an id for the pair (what the shares' window joins back on: one integer), the weight, the
-- estimate, the facts, the spans (sorted, distinct), and the dimensions of the trace's first fact (by start time,
-- span id, meter: the same in every engine). first_key is a string that sorts as that tuple does (the start's
-- microseconds with the sign bit flipped, as 16 hex digits; the span id; a NUL; the meter; span ids are hex, never
-- NUL): min and argMin over a tuple were most of this step's CPU (2 of 3.6 s at 1M facts), over a string they are
-- cheap.
-- Most pairs hold one fact (a trace's facts of one line are few, and usually one): those pass through as they are,
-- and only the pairs of several facts (al_several) are grouped; pair_id is the pair's match_id (the smallest, for a
-- group). Grouping ~10M one-fact pairs and numbering them with row_number() OVER () cost 24-25 CPU-s at 10M facts
-- (12-13 s on 2 cores); counting and passing through, 7.5-7.7 (4 s).
CREATE TEMPORARY TABLE al_several ENGINE = Memory AS
SELECT line_id, trace_id FROM al_matches GROUP BY line_id, trace_id HAVING count() > 1;

CREATE TEMPORARY TABLE al_traces ENGINE = Memory AS
WITH keyed AS (
  SELECT *, {{first_key}} AS first_key
  FROM al_matches)
SELECT match_id AS pair_id, line_id, trace_id, weight, estimate_units, toUInt64(1) AS fact_count,
       [span_id] AS span_ids, first_key, (workflow, tenant, service, model) AS dimensions
FROM keyed WHERE (line_id, trace_id) NOT IN al_several
UNION ALL
SELECT min(match_id), line_id, trace_id, sum(weight), sum(estimate_units), count(), arraySort(groupUniqArray(span_id)),
       min(first_key), argMin((workflow, tenant, service, model), first_key)
FROM keyed WHERE (line_id, trace_id) IN al_several
GROUP BY line_id, trace_id
