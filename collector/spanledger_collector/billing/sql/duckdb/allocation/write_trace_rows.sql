-- One allocations row per (line, trace) with its shares (BilledCost and ListCost: the EffectiveCost share where
-- they were not split on their own).
INSERT INTO allocations
SELECT {{run_id}}, l.snapshot_id, l.line_no, t.trace_id, t.span_ids,
       CASE WHEN l.kind = 'shared' THEN al_money(t.weight)::DECIMAL(38, 6) ELSE al_quantity(t.weight) END,
       l.usage_unit,
       CAST(t.weight AS DOUBLE) / l.used_units * CAST(l.busy_units AS DOUBLE) / l.denominator_units,
       al_money(e.share), al_money(coalesce(b.share, e.share)), al_money(coalesce(p.share, e.share)),
       al_money(t.estimate_units), t.workflow, t.tenant, t.service, t.model, NULL
FROM {{pairs}} t
JOIN {{split}} l USING (line_id)
JOIN al_shares e ON e.metric = 'effective' AND e.pair_id = t.pair_id
LEFT JOIN al_shares b ON b.metric = 'billed' AND b.pair_id = t.pair_id
LEFT JOIN al_shares p ON p.metric = 'list' AND p.pair_id = t.pair_id
