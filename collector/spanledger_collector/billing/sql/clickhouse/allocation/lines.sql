-- The period's current billing lines, classified by the rules ({{rule_case}}: the first matching rule id), with
-- their capacity C in whole 10^-6 units of the fact meter (capacity: seconds x accelerators; consumption: the
-- billed quantity in fact units). round() on a Decimal is half away from zero, as in DuckDB.
CREATE TEMPORARY TABLE al_lines ENGINE = Memory AS
SELECT *, multiIf(
  kind = 'capacity', toInt128(round(coalesce(pricing_quantity, consumed_quantity)
       * multiIf(lower(coalesce(pricing_unit, consumed_unit, '')) IN ('hours', 'hour', 'hrs', 'hr', 'h'), 3600,
                 lower(coalesce(pricing_unit, consumed_unit, '')) IN ('seconds', 'second', 's', 'secs'), 1,
                 unit_seconds)
       * if(capacity_per = 'accelerator', accelerators, 1) * {{quantity_scale}})),
  kind = 'consumption', toInt128(round(coalesce(consumed_quantity * consumed_prefix, pricing_quantity * pricing_prefix)
       * unit_factor * {{quantity_scale}})),
  NULL) AS capacity_units
FROM (
  SELECT row_number() OVER (ORDER BY l.snapshot_id, l.line_no) AS line_id,
         l.snapshot_id AS snapshot_id, l.line_no AS line_no, l.charge_period_start AS charge_period_start,
          l.charge_period_end AS charge_period_end, l.billing_account_id AS billing_account_id,
          l.sub_account_id AS sub_account_id, l.region_id AS region_id, l.billing_currency AS billing_currency,
          l.effective_cost AS effective_cost, l.billed_cost AS billed_cost, l.list_cost AS list_cost,
          l.pricing_quantity AS pricing_quantity, l.pricing_unit AS pricing_unit,
          l.consumed_quantity AS consumed_quantity, l.consumed_unit AS consumed_unit, r.rule_id AS rule_id,
          r.kind AS kind, r.rule_resource_type AS rule_resource_type, r.match_on AS match_on,
          r.boundary AS boundary, r.unit_seconds AS unit_seconds, r.capacity_per AS capacity_per,
          r.unit_factor AS unit_factor, r.usage_unit AS usage_unit,
         if(r.match_on = 'model', lower(l.model),
            lower(if(l.resource_id LIKE 'arn:%:instance/%',
                     replaceRegexpOne(l.resource_id, '^arn:[^:]*:ec2:[^:]*:[^:]*:instance/', ''), l.resource_id)))
           AS line_key,
         coalesce(toInt32OrNull(trim(BOTH '"' FROM JSONExtractRaw(coalesce(l.sku_price_details, ''), 'GpuCount'))),
                  a.accelerators, 1) AS accelerators,
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
  FROM (SELECT * FROM billing_lines FINAL) AS l
  JOIN (SELECT * FROM billing_snapshots FINAL) AS s ON s.snapshot_id = l.snapshot_id
  LEFT JOIN al_rules AS r ON r.rule_id = ({{rule_case}})
  LEFT JOIN al_accelerators AS a ON a.instance_type = lower(replaceRegexpOne(l.instance_type, '^ml\\.', ''))
  WHERE s.superseded_by IS NULL AND s.billing_period_start = {{period_start}})
