-- The period's current billing lines, classified by the rules ({{rule_case}}: the first matching rule id), with
-- their capacity C in whole 10^-6 units of the fact meter (capacity: seconds x accelerators; consumption: the
-- billed quantity in fact units).
CREATE OR REPLACE TEMP TABLE al_lines AS
SELECT *, CASE
  WHEN kind = 'capacity' THEN CAST(round(coalesce(pricing_quantity, consumed_quantity)
       * (CASE WHEN lower(coalesce(pricing_unit, consumed_unit, '')) IN ('hours', 'hour', 'hrs', 'hr', 'h') THEN 3600
               WHEN lower(coalesce(pricing_unit, consumed_unit, '')) IN ('seconds', 'second', 's', 'secs') THEN 1
               ELSE unit_seconds END)
       * (CASE capacity_per WHEN 'accelerator' THEN accelerators ELSE 1 END) * {{quantity_scale}}) AS HUGEINT)
  WHEN kind = 'consumption' THEN CAST(round(coalesce(consumed_quantity * al_unit_prefix(consumed_unit),
                                                     pricing_quantity * al_unit_prefix(pricing_unit))
       * unit_factor * {{quantity_scale}}) AS HUGEINT)
END AS capacity_units
FROM (
  SELECT row_number() OVER (ORDER BY l.snapshot_id, l.line_no) AS line_id,
         l.snapshot_id, l.line_no, l.charge_period_start, l.charge_period_end, l.billing_account_id,
         l.sub_account_id, l.region_id, l.billing_currency, l.effective_cost, l.billed_cost, l.list_cost,
         l.pricing_quantity, l.pricing_unit, l.consumed_quantity, l.consumed_unit, r.*,
         CASE r.match_on WHEN 'model' THEN lower(l.model) ELSE al_canonical_resource(l.resource_id) END AS line_key,
         coalesce(try_cast(json_extract_string(l.sku_price_details, '$.GpuCount') AS INTEGER), a.accelerators, 1)
           AS accelerators
  FROM billing_lines l JOIN billing_snapshots s USING (snapshot_id)
  LEFT JOIN al_rules r ON r.rule_id = ({{rule_case}})
  LEFT JOIN al_accelerators a ON a.instance_type = lower(regexp_replace(l.instance_type, '^ml\.', ''))
  WHERE s.superseded_by IS NULL AND s.billing_period_start = {{period_start}})
