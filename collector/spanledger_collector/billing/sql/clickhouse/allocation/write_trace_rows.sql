-- One allocations row per (line, trace) with its shares (BilledCost and ListCost: the EffectiveCost share where
-- they were not split on their own). A shared line's usage quantity is money, rounded half away to 10^-6.
INSERT INTO allocations
SELECT {{run_id}}, l.snapshot_id, l.line_no, t.trace_id, t.span_ids,
       if(l.kind = 'shared',
          toDecimal128(round(toDecimal128(t.weight, 0) * toDecimal128('0.000000000001', 12), 6), 6),
          toDecimal128(t.weight, 0) * toDecimal128('0.000001', 6)),
       l.usage_unit,
       toFloat64(t.weight) / toFloat64(l.used_units) * toFloat64(l.busy_units) / toFloat64(l.denominator_units),
       toDecimal128(e.share, 0) * toDecimal128('0.000000000001', 12),
       toDecimal128(coalesce(b.share, e.share), 0) * toDecimal128('0.000000000001', 12),
       toDecimal128(coalesce(p.share, e.share), 0) * toDecimal128('0.000000000001', 12),
       toDecimal128(t.estimate_units, 0) * toDecimal128('0.000000000001', 12),
       t.dimensions.1, t.dimensions.2, t.dimensions.3, t.dimensions.4, NULL
FROM al_traces AS t
JOIN {{split}} AS l ON l.line_id = t.line_id
JOIN (SELECT * FROM al_shares WHERE metric = 'effective') AS e ON e.line_id = t.line_id AND e.trace_id = t.trace_id
LEFT JOIN (SELECT * FROM al_shares WHERE metric = 'billed') AS b ON b.line_id = t.line_id AND b.trace_id = t.trace_id
LEFT JOIN (SELECT * FROM al_shares WHERE metric = 'list') AS p ON p.line_id = t.line_id AND p.trace_id = t.trace_id
