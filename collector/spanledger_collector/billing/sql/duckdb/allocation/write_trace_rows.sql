-- One allocations row per (line, trace) with its shares (BilledCost and ListCost: the EffectiveCost share where
-- they were not split on their own). The line's and the trace's columns come with the effective share.
INSERT INTO allocations
SELECT {{run_id}}, e.snapshot_id, e.line_no, e.trace_id, e.span_ids,
       CASE WHEN e.kind = 'shared' THEN al_money(e.weight)::DECIMAL(38, 6) ELSE al_quantity(e.weight) END,
       e.usage_unit,
       CAST(e.weight AS DOUBLE) / e.used_units * CAST(e.busy_units AS DOUBLE) / e.denominator_units,
       al_money(e.share), al_money(coalesce(b.share, e.share)), al_money(coalesce(p.share, e.share)),
       al_money(e.estimate_units), e.dimensions.workflow, e.dimensions.tenant, e.dimensions.service,
       e.dimensions.model, NULL
FROM al_shares e
LEFT JOIN al_shares b ON b.metric = 'billed' AND b.line_id = e.line_id AND b.trace_id = e.trace_id
LEFT JOIN al_shares p ON p.metric = 'list' AND p.line_id = e.line_id AND p.trace_id = e.trace_id
WHERE e.metric = 'effective'
