-- One run's rows in FOCUS 1.3 split-cost-allocation form (unallocated rows have no resource). The JSON columns
-- are named tuples written by toJSONString (Decimals as numbers, as DuckDB's json_object).
SELECT l.billing_account_id AS BillingAccountId, l.sub_account_id AS SubAccountId,
       l.provider_name AS ProviderName, l.billing_period_start AS BillingPeriodStart,
       l.billing_period_end AS BillingPeriodEnd, l.charge_period_start AS ChargePeriodStart,
       l.charge_period_end AS ChargePeriodEnd, l.charge_category AS ChargeCategory,
       l.charge_class AS ChargeClass, l.charge_description AS ChargeDescription,
       l.service_name AS ServiceName, l.resource_id AS ResourceId, l.resource_type AS ResourceType,
       l.region_id AS RegionId, l.sku_id AS SkuId, l.sku_price_id AS SkuPriceId,
       l.pricing_quantity AS PricingQuantity, l.pricing_unit AS PricingUnit,
       l.consumed_quantity AS ConsumedQuantity, l.consumed_unit AS ConsumedUnit,
       l.billing_currency AS BillingCurrency, a.billed_cost AS BilledCost,
       a.effective_cost AS EffectiveCost, a.list_cost AS ListCost, l.tags AS Tags,
       concat({{method_version}}, '.', if(al.proportional, 'proportional_to_allocated_cost', toString(al.kind)))
         AS AllocatedMethodId,
       if(al.proportional,
          toJSONString(CAST((
            [CAST((a.allocated_ratio, a.usage_unit, a.usage_quantity),
                  'Tuple(AllocatedRatio Nullable(Float64), UsageUnit Nullable(String), UsageQuantity Nullable(Decimal(38, 6)))')],
            al.rule_id, 'proportional',
            'EffectiveCost allocated directly to each trace in the same billing period and billing account '
            || '(UsageQuantity, in BillingCurrency)'),
            'Tuple(Elements Array(Tuple(AllocatedRatio Nullable(Float64), UsageUnit Nullable(String), UsageQuantity Nullable(Decimal(38, 6)))), x_Rule Nullable(String), x_SharedPolicy String, x_Basis String)')),
          toJSONString(CAST((
            [CAST((a.allocated_ratio, a.usage_unit, a.usage_quantity),
                  'Tuple(AllocatedRatio Nullable(Float64), UsageUnit Nullable(String), UsageQuantity Nullable(Decimal(38, 6)))')],
            al.rule_id),
            'Tuple(Elements Array(Tuple(AllocatedRatio Nullable(Float64), UsageUnit Nullable(String), UsageQuantity Nullable(Decimal(38, 6)))), x_Rule Nullable(String))')))
         AS AllocatedMethodDetails,
       a.trace_id AS AllocatedResourceId,
       if(a.trace_id IS NOT NULL,
          toJSONString(CAST((a.workflow, a.tenant, a.service, a.model),
                            'Tuple(workflow Nullable(String), tenant Nullable(String), service Nullable(String), model Nullable(String))')),
          NULL) AS AllocatedTags,
       a.trace_id AS x_TraceId, if(a.trace_id IS NULL, NULL, arrayStringConcat(a.span_ids, ',')) AS x_SpanIds,
       a.estimated_cost AS x_EstimatedCost, a.unallocated_reason AS x_UnallocatedReason,
       a.run_id AS x_AllocationRunId, al.flags AS x_Flags
FROM (SELECT * FROM allocations FINAL WHERE run_id = {{run_id}}) AS a
JOIN (SELECT * FROM billing_lines FINAL) AS l ON l.snapshot_id = a.snapshot_id AND l.line_no = a.line_no
JOIN (SELECT *, kind = 'shared' AND has(splitByChar(',', coalesce(flags, '')), 'shared_policy_proportional')
                  AS proportional
      FROM allocation_lines FINAL WHERE run_id = {{run_id}}) AS al
  ON al.snapshot_id = a.snapshot_id AND al.line_no = a.line_no
ORDER BY l.snapshot_id, l.line_no, a.trace_id NULLS LAST
