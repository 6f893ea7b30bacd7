-- The unallocated row of each line whose cost is not wholly allocated (or that no trace used); unique keys, as in
-- write_trace_rows.sql.
INSERT INTO allocations SETTINGS optimize_on_insert = 0
SELECT {{run_id}}, l.snapshot_id, l.line_no, NULL, [],
       if(l.kind IN ('capacity', 'consumption'),
          toDecimal128(greatest(toInt128(0), coalesce(l.capacity_units, 0) - coalesce(l.busy_units, 0)), 0)
            * toDecimal128('0.000001', 6), NULL),
       l.usage_unit,
       if(l.denominator_units > 0, 1 - toFloat64(coalesce(l.busy_units, 0)) / toFloat64(l.denominator_units), 1),
       toDecimal128(l.effective_units - l.effective_allocated, 0) * toDecimal128('0.000000000001', 12),
       toDecimal128(l.billed_units - l.billed_allocated, 0) * toDecimal128('0.000000000001', 12),
       toDecimal128(l.list_units - l.list_allocated, 0) * toDecimal128('0.000000000001', 12),
       NULL, NULL, NULL, NULL, NULL,
       multiIf(l.kind = 'capacity', 'idle', l.kind = 'consumption', 'untracked', 'no_usage_model')
FROM {{split}} AS l
WHERE l.effective_units <> l.effective_allocated OR l.billed_units <> l.billed_allocated
      OR l.list_units <> l.list_allocated OR coalesce(l.trace_count, 0) = 0
