-- Per (line, trace): an id for the pair (what the shares' window joins back on: one integer), the weight, the
-- estimate, the facts, the spans (sorted, distinct), and the dimensions of the trace's first fact (by start time,
-- span id, meter: the same in every engine). first_key is a string that sorts as that tuple does (the start's
-- microseconds with the sign bit flipped, as 16 hex digits; the span id; a NUL; the meter; span ids are hex, never
-- NUL): min and argMin over a tuple were most of this step's CPU (2 of 3.6 s at 1M facts), over a string they are
-- cheap.
CREATE TEMPORARY TABLE al_traces ENGINE = Memory AS
SELECT row_number() OVER () AS pair_id, *
FROM (SELECT line_id, trace_id, sum(weight) AS weight, sum(estimate_units) AS estimate_units, count() AS fact_count,
             arraySort(groupUniqArray(span_id)) AS span_ids, min(first_key) AS first_key,
             argMin((workflow, tenant, service, model), first_key) AS dimensions
      FROM (SELECT *, concat(leftPad(hex(bitXor(reinterpretAsUInt64(toUnixTimestamp64Micro(start_time)),
                                                toUInt64(9223372036854775808))), 16, '0'), span_id, '\0', meter)
                        AS first_key
            FROM al_matches)
      GROUP BY line_id, trace_id)
