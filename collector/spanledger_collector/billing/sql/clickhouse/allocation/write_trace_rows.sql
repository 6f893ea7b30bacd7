-- One allocations row per (line, trace) with its shares (BilledCost and ListCost: the EffectiveCost share where
-- they were not split on their own); the line's and the trace's columns come with the effective share. A shared
-- line's usage quantity is money, rounded half away to 10^-6. The rows are unique by the sorting key, so the
-- insert skips ReplacingMergeTree's merge of the block (optimize_on_insert: most of the insert's CPU).
INSERT INTO allocations SETTINGS optimize_on_insert = 0
SELECT {{run_id}}, e.snapshot_id, e.line_no, e.trace_id, e.span_ids,
       if(e.kind = 'shared',
          toDecimal128(round(toDecimal128(e.weight, 0) * toDecimal128('0.000000000001', 12), 6), 6),
          toDecimal128(e.weight, 0) * toDecimal128('0.000001', 6)),
       e.usage_unit,
       toFloat64(e.weight) / toFloat64(e.used_units) * toFloat64(e.busy_units) / toFloat64(e.denominator_units),
       toDecimal128(e.share, 0) * toDecimal128('0.000000000001', 12),
       toDecimal128(coalesce(b.share, e.share), 0) * toDecimal128('0.000000000001', 12),
       toDecimal128(coalesce(p.share, e.share), 0) * toDecimal128('0.000000000001', 12),
       toDecimal128(e.estimate_units, 0) * toDecimal128('0.000000000001', 12),
       e.dimensions.1, e.dimensions.2, e.dimensions.3, e.dimensions.4, NULL
FROM (SELECT * FROM al_shares WHERE metric = 'effective') AS e
LEFT JOIN (SELECT line_id, trace_id, share FROM al_shares WHERE metric = 'billed') AS b
  ON b.line_id = e.line_id AND b.trace_id = e.trace_id
LEFT JOIN (SELECT line_id, trace_id, share FROM al_shares WHERE metric = 'list') AS p
  ON p.line_id = e.line_id AND p.trace_id = e.trace_id
