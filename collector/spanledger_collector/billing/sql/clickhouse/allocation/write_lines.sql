-- One allocation_lines row per billing line of the run (unique keys: no merge of the block on insert, see
-- write_trace_rows.sql). Whole 10^-12 (10^-6) units become Decimal(38, 12)
-- (Decimal(38, 6)) exactly by multiplying a Decimal(38, 0).
INSERT INTO allocation_lines SETTINGS optimize_on_insert = 0
SELECT {{run_id}}, l.snapshot_id, l.line_no, l.rule_id, coalesce(l.kind, 'none'), l.rule_resource_type,
       l.line_key, l.accelerators,
       if(l.kind = 'capacity', toDecimal128(l.capacity_units, 0) * toDecimal128('0.000001', 6), NULL),
       if(l.kind = 'capacity', toDecimal128(coalesce(l.busy_units, 0), 0) * toDecimal128('0.000001', 6), NULL),
       if(l.kind = 'consumption', toDecimal128(l.capacity_units, 0) * toDecimal128('0.000001', 6), NULL),
       if(l.kind = 'consumption', toDecimal128(coalesce(l.busy_units, 0), 0) * toDecimal128('0.000001', 6), NULL),
       coalesce(l.fact_count, 0), coalesce(l.trace_count, 0),
       l.effective_cost, l.billed_cost, l.list_cost,
       toDecimal128(l.effective_allocated, 0) * toDecimal128('0.000000000001', 12),
       toDecimal128(l.billed_allocated, 0) * toDecimal128('0.000000000001', 12),
       toDecimal128(l.list_allocated, 0) * toDecimal128('0.000000000001', 12),
       toDecimal128(l.estimate_units, 0) * toDecimal128('0.000000000001', 12),
       if(l.effective_units <> l.effective_allocated OR l.billed_units <> l.billed_allocated
            OR l.list_units <> l.list_allocated OR coalesce(l.trace_count, 0) = 0,
          multiIf(l.kind = 'capacity', 'idle', l.kind = 'consumption', 'untracked', 'no_usage_model'), NULL),
       nullIf(arrayStringConcat(arrayMap(flag -> assumeNotNull(flag), arrayFilter(flag -> flag IS NOT NULL, [
         if(l.kind = 'capacity' AND l.busy_units > l.capacity_units, 'oversubscribed', NULL),
         if(l.kind = 'consumption' AND l.capacity_units > 0 AND l.busy_units > l.capacity_units, 'overcount', NULL),
         if(l.kind = 'consumption' AND coalesce(l.capacity_units, 0) = 0, 'billed_quantity_unknown', NULL),
         if(l.kind = 'shared', 'shared_policy_{{shared_policy}}', NULL)])), ','), '')
FROM {{split}} AS l
