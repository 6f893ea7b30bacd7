-- Per (line, trace) pair on a line of {{split}} where {{lines}} with busy units: the floor of the allocated
-- {{metric}} cost x (scaled) weight / total weight, its remainder, and the trace's columns the shares carry.
(SELECT *, product - share_floor * total_weight AS remainder
 FROM (SELECT *, intDiv(product, total_weight) AS share_floor
       FROM (SELECT t.line_id AS line_id, t.trace_id AS trace_id, t.span_ids AS span_ids, t.weight AS weight,
                    t.estimate_units AS estimate_units, t.first_key AS first_key, t.dimensions AS dimensions,
                    l.trace_count AS trace_count, l.{{metric}}_allocated AS allocated,
                    assumeNotNull(l.total_weight) AS total_weight, sign(l.{{metric}}_allocated) AS sign_of,
                    if(l.{{metric}}_allocated < 0, -l.{{metric}}_allocated, l.{{metric}}_allocated) AS amount,
                    amount * intDiv(t.weight, greatest(1, intDiv(assumeNotNull(l.used_units), 1000000000000000)))
                      AS product
             FROM {{pairs}} AS t JOIN {{split}} AS l ON l.line_id = t.line_id
             WHERE l.busy_units > 0 AND {{lines}})))
