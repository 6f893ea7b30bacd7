-- One allocations row per (line, trace) with its shares (BilledCost and ListCost: the EffectiveCost share where
-- they were not split on their own); the trace's columns come with the effective share, the line's from {{split}}
-- by line id, joined last (joined first, before the billed and list shares, the statement took 64-77 s at 10M
-- facts instead of 9), its strings as LowCardinality (the join's SELECT into a Null table: 3.5-5.4 s against
-- 4.9-6.2 as String). A shared line's usage quantity is money, rounded half away to 10^-6. The rows are unique by
-- the sorting key, so the insert skips ReplacingMergeTree's merge of the block (optimize_on_insert: most of the
-- insert's CPU).
INSERT INTO allocations SETTINGS optimize_on_insert = 0
SELECT {{run_id}}, l.snapshot_id, l.line_no, e.trace_id, e.span_ids,
       if(l.is_shared,
          toDecimal128(round(toDecimal128(e.weight, 0) * toDecimal128('0.000000000001', 12), 6), 6),
          toDecimal128(e.weight, 0) * toDecimal128('0.000001', 6)),
       l.usage_unit,
       toFloat64(e.weight) / toFloat64(l.used_units) * toFloat64(l.busy_units) / toFloat64(l.denominator_units),
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
JOIN (SELECT line_id, toLowCardinality(snapshot_id) AS snapshot_id, line_no, kind = 'shared' AS is_shared,
             CAST(usage_unit AS LowCardinality(Nullable(String))) AS usage_unit, used_units, busy_units,
             denominator_units
      FROM {{split}}) AS l ON l.line_id = e.line_id
