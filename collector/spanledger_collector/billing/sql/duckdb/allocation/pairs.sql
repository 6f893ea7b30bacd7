-- The (line, trace) pairs: each one-fact pair read from al_matches as it is, and the grouped ones of al_traces.
(SELECT m.rowid AS pair_id, m.line_id, m.trace_id, m.weight, m.estimate_units, 1::BIGINT AS fact_count,
        [m.span_id] AS span_ids, {{first_key}} AS first_key, m.workflow, m.tenant, m.service, m.model
 FROM al_matches m ANTI JOIN al_several USING (line_id, trace_id)
 UNION ALL
 SELECT pair_id, line_id, trace_id, weight, estimate_units, fact_count, span_ids, first_key, dimensions.workflow,
        dimensions.tenant, dimensions.service, dimensions.model
 FROM al_traces)
