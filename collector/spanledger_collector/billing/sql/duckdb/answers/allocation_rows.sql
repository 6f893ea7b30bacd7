-- One run's rows in FOCUS 1.3 split-cost-allocation form (unallocated rows have no resource).
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
       {{method_version}} || '.' || CASE WHEN proportional THEN 'proportional_to_allocated_cost' ELSE al.kind END
         AS AllocatedMethodId,
       json_merge_patch(
         json_object('Elements', [json_object('AllocatedRatio', a.allocated_ratio,
                                              'UsageUnit', a.usage_unit,
                                              'UsageQuantity', a.usage_quantity)],
                     'x_Rule', al.rule_id),
         CASE WHEN proportional THEN json_object(
           'x_SharedPolicy', 'proportional',
           'x_Basis', 'EffectiveCost allocated directly to each trace in the same billing period and '
                      || 'billing account (UsageQuantity, in BillingCurrency)') ELSE '{}' END
       )::VARCHAR AS AllocatedMethodDetails,
       a.trace_id AS AllocatedResourceId,
       CASE WHEN a.trace_id IS NOT NULL THEN json_object('workflow', a.workflow, 'tenant', a.tenant,
            'service', a.service, 'model', a.model)::VARCHAR END AS AllocatedTags,
       a.trace_id AS x_TraceId, array_to_string(a.span_ids, ',') AS x_SpanIds,
       a.estimated_cost AS x_EstimatedCost, a.unallocated_reason AS x_UnallocatedReason,
       a.run_id AS x_AllocationRunId, al.flags AS x_Flags
FROM allocations a JOIN billing_lines l USING (snapshot_id, line_no)
JOIN (SELECT *, kind = 'shared' AND list_contains(string_split(coalesce(flags, ''), ','),
                                                'shared_policy_proportional') AS proportional
      FROM allocation_lines) al USING (run_id, snapshot_id, line_no)
WHERE a.run_id = {{run_id}}
ORDER BY l.snapshot_id, l.line_no, a.trace_id NULLS LAST
