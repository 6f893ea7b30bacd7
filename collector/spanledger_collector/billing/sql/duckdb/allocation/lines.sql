-- The period's current billing lines, classified by the rules (rule_case: the first matching rule id), with their
-- capacity C in whole 10^-6 units of the fact meter (capacity: seconds x accelerators; consumption: the billed
-- quantity in fact units).
-- What depends on a line's text only (the rule, its unit's seconds or number prefix, its accelerators) is worked out
-- once per class, a distinct combination of the columns read for it (the rules' columns, the units, the SKU's price
-- details and the instance type): a bill has a few thousand classes (SKUs x units) against up to millions of lines,
-- and the rules' regular expressions were most of the cost.
-- line_id is any unique number (nothing is ordered by it), so no sort of the lines.
CREATE OR REPLACE TEMP TABLE al_lines AS
WITH period_snapshots AS (
  SELECT snapshot_id FROM billing_snapshots WHERE superseded_by IS NULL AND billing_period_start = {{period_start}}
), classes AS (
  SELECT {{class_columns}}, r.rule_id, r.kind, r.rule_resource_type, r.match_on, r.boundary, r.capacity_per,
         r.unit_factor, r.usage_unit,
         coalesce(try_cast(json_extract_string(l.sku_price_details, '$.GpuCount') AS INTEGER), a.accelerators, 1)
           AS accelerators,
         CASE WHEN lower(coalesce(l.pricing_unit, l.consumed_unit, '')) IN ('hours', 'hour', 'hrs', 'hr', 'h') THEN 3600
              WHEN lower(coalesce(l.pricing_unit, l.consumed_unit, '')) IN ('seconds', 'second', 's', 'secs') THEN 1
              ELSE r.unit_seconds END AS unit_seconds,
         al_unit_prefix(l.consumed_unit) AS consumed_prefix,
         al_unit_prefix(l.pricing_unit) AS pricing_prefix
  FROM (SELECT DISTINCT {{class_columns}} FROM billing_lines l JOIN period_snapshots USING (snapshot_id)) l
  LEFT JOIN al_rules r ON r.rule_id = ({{rule_case}})
  LEFT JOIN al_accelerators a ON a.instance_type = lower(regexp_replace(l.instance_type, '^ml\.', ''))
)
SELECT row_number() OVER () AS line_id,
       l.snapshot_id, l.line_no, l.charge_period_start, l.charge_period_end, l.billing_account_id,
       l.sub_account_id, l.region_id, l.billing_currency, l.effective_cost, l.billed_cost, l.list_cost,
       c.rule_id, c.kind, c.rule_resource_type, c.boundary, c.capacity_per, c.usage_unit,
       CASE c.match_on WHEN 'model' THEN lower(l.model) ELSE al_canonical_resource(l.resource_id) END AS line_key,
       c.accelerators,
       CASE
         WHEN c.kind = 'capacity' THEN CAST(round(coalesce(l.pricing_quantity, l.consumed_quantity) * c.unit_seconds
              * (CASE c.capacity_per WHEN 'accelerator' THEN c.accelerators ELSE 1 END) * {{quantity_scale}}) AS HUGEINT)
         WHEN c.kind = 'consumption' THEN CAST(round(coalesce(l.consumed_quantity * c.consumed_prefix,
                                                              l.pricing_quantity * c.pricing_prefix)
              * c.unit_factor * {{quantity_scale}}) AS HUGEINT)
       END AS capacity_units
FROM billing_lines l JOIN period_snapshots USING (snapshot_id)
JOIN classes c ON {{class_join}}
