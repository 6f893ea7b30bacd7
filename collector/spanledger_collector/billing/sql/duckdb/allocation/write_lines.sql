-- One allocation_lines row per billing line of the run.
INSERT INTO allocation_lines
SELECT {{run_id}}, l.snapshot_id, l.line_no, l.rule_id, coalesce(l.kind, 'none'), l.rule_resource_type,
       l.line_key, l.accelerators,
       CASE WHEN l.kind = 'capacity' THEN al_quantity(l.capacity_units) END,
       CASE WHEN l.kind = 'capacity' THEN al_quantity(coalesce(l.busy_units, 0)) END,
       CASE WHEN l.kind = 'consumption' THEN al_quantity(l.capacity_units) END,
       CASE WHEN l.kind = 'consumption' THEN al_quantity(coalesce(l.busy_units, 0)) END,
       coalesce(l.fact_count, 0), coalesce(l.trace_count, 0),
       l.effective_cost, l.billed_cost, l.list_cost,
       al_money(l.effective_allocated), al_money(l.billed_allocated), al_money(l.list_allocated),
       al_money(l.estimate_units),
       CASE WHEN l.effective_units <> l.effective_allocated OR l.billed_units <> l.billed_allocated
                 OR l.list_units <> l.list_allocated OR coalesce(l.trace_count, 0) = 0
            THEN CASE WHEN l.kind = 'capacity' THEN 'idle' WHEN l.kind = 'consumption' THEN 'untracked'
                      ELSE 'no_usage_model' END END,
       nullif(concat_ws(',',
         CASE WHEN l.kind = 'capacity' AND l.busy_units > l.capacity_units THEN 'oversubscribed' END,
         CASE WHEN l.kind = 'consumption' AND l.capacity_units > 0 AND l.busy_units > l.capacity_units
              THEN 'overcount' END,
         CASE WHEN l.kind = 'consumption' AND coalesce(l.capacity_units, 0) = 0 THEN 'billed_quantity_unknown' END,
         CASE WHEN l.kind = 'shared' THEN 'shared_policy_{{shared_policy}}' END), '')
FROM {{split}} l
