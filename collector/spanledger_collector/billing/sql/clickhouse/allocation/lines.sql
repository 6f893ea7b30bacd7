-- The period's current billing lines, classified by the rules (rule_case: the first matching rule id), with their
-- capacity C in whole 10^-6 units of the fact meter (capacity: seconds x accelerators; consumption: the billed
-- quantity in fact units). round() on a Decimal is half away from zero, as in DuckDB.
-- What depends on a line's text only (the rule, its unit's seconds or number prefix, its accelerators) is worked out
-- once per class, a distinct combination of the columns read for it (the rules' columns, the units, the SKU's price
-- details and the instance type): a bill has a few thousand classes (SKUs x units) against up to millions of lines,
-- and the rules' regular expressions were most of the cost. line_id is any unique number (nothing is ordered by
-- it), so no sort of the lines.
CREATE TEMPORARY TABLE al_lines ENGINE = Memory AS
WITH period_lines AS (
  SELECT * FROM billing_lines FINAL
  WHERE snapshot_id IN (SELECT snapshot_id FROM billing_snapshots FINAL
                        WHERE superseded_by IS NULL AND billing_period_start = {{period_start}})
), classes AS (
  SELECT {{class_columns}}, r.rule_id AS rule_id, r.kind AS kind, r.rule_resource_type AS rule_resource_type,
         r.match_on AS match_on, r.boundary AS boundary, r.capacity_per AS capacity_per,
         r.unit_factor AS unit_factor, r.usage_unit AS usage_unit,
         coalesce(toInt32OrNull(trim(BOTH '"' FROM JSONExtractRaw(coalesce(l.sku_price_details, ''), 'GpuCount'))),
                  a.accelerators, 1) AS accelerators,
         multiIf(lower(coalesce(l.pricing_unit, l.consumed_unit, '')) IN ('hours', 'hour', 'hrs', 'hr', 'h'), 3600,
                 lower(coalesce(l.pricing_unit, l.consumed_unit, '')) IN ('seconds', 'second', 's', 'secs'), 1,
                 r.unit_seconds) AS unit_seconds,
         -- "1000000 Tokens" -> 1000000, "1K tokens" -> 1000; a unit without a number prefix counts 1.
         coalesce(toInt128OrNull(extract(coalesce(l.consumed_unit, ''), '^\\s*([0-9]+)'))
                  * multiIf(upper(extract(coalesce(l.consumed_unit, ''), '^\\s*[0-9]+\\s*([KMB])\\b')) = 'K', 1000,
                            upper(extract(coalesce(l.consumed_unit, ''), '^\\s*[0-9]+\\s*([KMB])\\b')) = 'M', 1000000,
                            upper(extract(coalesce(l.consumed_unit, ''), '^\\s*[0-9]+\\s*([KMB])\\b')) = 'B', 1000000000,
                            1), 1) AS consumed_prefix,
         coalesce(toInt128OrNull(extract(coalesce(l.pricing_unit, ''), '^\\s*([0-9]+)'))
                  * multiIf(upper(extract(coalesce(l.pricing_unit, ''), '^\\s*[0-9]+\\s*([KMB])\\b')) = 'K', 1000,
                            upper(extract(coalesce(l.pricing_unit, ''), '^\\s*[0-9]+\\s*([KMB])\\b')) = 'M', 1000000,
                            upper(extract(coalesce(l.pricing_unit, ''), '^\\s*[0-9]+\\s*([KMB])\\b')) = 'B', 1000000000,
                            1), 1) AS pricing_prefix
  FROM (SELECT DISTINCT {{class_columns}} FROM period_lines AS l) AS l
  LEFT JOIN al_rules AS r ON r.rule_id = ({{rule_case}})
  LEFT JOIN al_accelerators AS a ON a.instance_type = lower(replaceRegexpOne(l.instance_type, '^ml\\.', ''))
)
SELECT row_number() OVER () AS line_id,
       l.snapshot_id AS snapshot_id, l.line_no AS line_no, l.charge_period_start AS charge_period_start,
       l.charge_period_end AS charge_period_end, l.billing_account_id AS billing_account_id,
       l.sub_account_id AS sub_account_id, l.region_id AS region_id, l.billing_currency AS billing_currency,
       l.effective_cost AS effective_cost, l.billed_cost AS billed_cost, l.list_cost AS list_cost,
       c.rule_id AS rule_id, c.kind AS kind, c.rule_resource_type AS rule_resource_type, c.boundary AS boundary,
       c.capacity_per AS capacity_per, c.usage_unit AS usage_unit,
       if(c.match_on = 'model', lower(l.model),
          lower(if(l.resource_id LIKE 'arn:%:instance/%',
                   replaceRegexpOne(l.resource_id, '^arn:[^:]*:ec2:[^:]*:[^:]*:instance/', ''), l.resource_id)))
         AS line_key,
       c.accelerators AS accelerators,
       multiIf(
         c.kind = 'capacity', toInt128(round(coalesce(l.pricing_quantity, l.consumed_quantity) * c.unit_seconds
              * if(c.capacity_per = 'accelerator', c.accelerators, 1) * {{quantity_scale}})),
         c.kind = 'consumption', toInt128(round(coalesce(l.consumed_quantity * c.consumed_prefix,
                                                         l.pricing_quantity * c.pricing_prefix)
              * c.unit_factor * {{quantity_scale}})),
         NULL) AS capacity_units
FROM period_lines AS l JOIN classes AS c ON {{class_join}}
