-- The unallocated row of each line whose cost is not wholly allocated (or that no trace used).
INSERT INTO allocations
SELECT {{run_id}}, l.snapshot_id, l.line_no, NULL, NULL,
       CASE WHEN l.kind IN ('capacity', 'consumption')
            THEN al_quantity(greatest(0, coalesce(l.capacity_units, 0) - coalesce(l.busy_units, 0))) END,
       l.usage_unit,
       CASE WHEN l.denominator_units > 0 THEN 1 - CAST(coalesce(l.busy_units, 0) AS DOUBLE) / l.denominator_units
            ELSE 1 END,
       al_money(l.effective_units - l.effective_allocated), al_money(l.billed_units - l.billed_allocated),
       al_money(l.list_units - l.list_allocated), NULL, NULL, NULL, NULL, NULL,
       CASE WHEN l.kind = 'capacity' THEN 'idle' WHEN l.kind = 'consumption' THEN 'untracked'
            ELSE 'no_usage_model' END
FROM {{split}} l
WHERE l.effective_units <> l.effective_allocated OR l.billed_units <> l.billed_allocated
      OR l.list_units <> l.list_allocated OR coalesce(l.trace_count, 0) = 0
