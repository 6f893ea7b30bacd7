-- Stage 1 (per line): the allocated part = cost x U / D, rounded half away from zero to 10^-12, for EffectiveCost,
-- BilledCost and ListCost. busy U: capacity min(sum of facts, union x accelerators), consumption sum of facts;
-- D = max(C, U). U and D are scaled down together when large so that cost x U fits 128 bits.
CREATE TEMPORARY TABLE al_split ENGINE = Memory AS
SELECT * EXCEPT (scaled_busy, scaled_denominator),
       if(coalesce(busy_units, 0) = 0 OR denominator_units = 0, toInt128(0),
          sign(effective_units) * intDiv(if(effective_units < 0, -effective_units, effective_units) * 2 * scaled_busy
                                         + scaled_denominator, 2 * scaled_denominator)) AS effective_allocated,
       if(coalesce(busy_units, 0) = 0 OR denominator_units = 0, toInt128(0),
          sign(billed_units) * intDiv(if(billed_units < 0, -billed_units, billed_units) * 2 * scaled_busy
                                      + scaled_denominator, 2 * scaled_denominator)) AS billed_allocated,
       if(coalesce(busy_units, 0) = 0 OR denominator_units = 0, toInt128(0),
          sign(list_units) * intDiv(if(list_units < 0, -list_units, list_units) * 2 * scaled_busy
                                    + scaled_denominator, 2 * scaled_denominator)) AS list_allocated
FROM (SELECT *, intDiv(busy_units, greatest(1, intDiv(denominator_units, 1000000000000000))) AS scaled_busy,
             intDiv(denominator_units, greatest(1, intDiv(denominator_units, 1000000000000000))) AS scaled_denominator
      FROM (SELECT *, toInt128(greatest(coalesce(busy_units, 0),
                                        if(kind = 'consumption' AND coalesce(capacity_units, 0) = 0,
                                           coalesce(busy_units, 0), coalesce(capacity_units, 0))))
                        AS denominator_units
            FROM (SELECT l.*, u.used_units AS used_units, u.total_weight AS total_weight, u.union_us AS union_us,
                         u.fact_count AS fact_count, u.trace_count AS trace_count, u.estimate_units AS estimate_units,
                         toNullable(toInt128(multiIf(l.kind = 'capacity',
                                    least(u.used_units, u.union_us * if(l.capacity_per = 'accelerator', l.accelerators, 1)),
                                    l.kind = 'consumption', u.used_units, NULL))) AS busy_units,
                         toInt128(round(l.effective_cost * {{money_scale}})) AS effective_units,
                         toInt128(round(l.billed_cost * {{money_scale}})) AS billed_units,
                         toInt128(round(l.list_cost * {{money_scale}})) AS list_units
                  FROM al_lines AS l LEFT JOIN al_line_usage AS u ON u.line_id = l.line_id)))
