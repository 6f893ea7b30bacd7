-- Stage 1 (per line): the allocated part = cost x U / D, rounded half away from zero to 10^-12, for EffectiveCost,
-- BilledCost and ListCost. busy U: capacity min(sum of facts, union x accelerators), consumption sum of facts;
-- D = max(C, U). U and D are scaled down together when large so that cost x U fits 128 bits (the divisor is 1
-- below 2 x 10^15: DuckDB's 128-bit division is slow, so it runs only above).
CREATE OR REPLACE TEMP TABLE al_split AS
SELECT * EXCLUDE (scaled_busy, scaled_denominator),
       CASE WHEN coalesce(busy_units, 0) = 0 OR denominator_units = 0 THEN 0::HUGEINT
            ELSE sign(effective_units) * al_floor_div(abs(effective_units) * 2 * scaled_busy + scaled_denominator,
                                                      2 * scaled_denominator) END AS effective_allocated,
       CASE WHEN coalesce(busy_units, 0) = 0 OR denominator_units = 0 THEN 0::HUGEINT
            ELSE sign(billed_units) * al_floor_div(abs(billed_units) * 2 * scaled_busy + scaled_denominator,
                                                   2 * scaled_denominator) END AS billed_allocated,
       CASE WHEN coalesce(busy_units, 0) = 0 OR denominator_units = 0 THEN 0::HUGEINT
            ELSE sign(list_units) * al_floor_div(abs(list_units) * 2 * scaled_busy + scaled_denominator,
                                                 2 * scaled_denominator) END AS list_allocated
FROM (SELECT *, CASE WHEN denominator_units < 2000000000000000 THEN busy_units
                     ELSE busy_units // (denominator_units // 1000000000000000) END AS scaled_busy,
             CASE WHEN denominator_units < 2000000000000000 THEN denominator_units
                  ELSE denominator_units // (denominator_units // 1000000000000000) END AS scaled_denominator
      FROM (SELECT *, greatest(coalesce(busy_units, 0),
                               CASE WHEN kind = 'consumption' AND coalesce(capacity_units, 0) = 0
                                    THEN coalesce(busy_units, 0) ELSE coalesce(capacity_units, 0) END)
                        AS denominator_units
            FROM (SELECT l.*, u.used_units, u.total_weight, u.union_us, u.fact_count, u.trace_count,
                         u.estimate_units,
                         CASE WHEN l.kind = 'capacity'
                              THEN least(u.used_units,
                                         u.union_us * (CASE l.capacity_per WHEN 'accelerator' THEN l.accelerators
                                                       ELSE 1 END))
                              WHEN l.kind = 'consumption' THEN u.used_units END AS busy_units,
                         al_scaled_units(l.effective_cost, {{money_scale}}) AS effective_units,
                         al_scaled_units(l.billed_cost, {{money_scale}}) AS billed_units,
                         al_scaled_units(l.list_cost, {{money_scale}}) AS list_units
                  FROM al_lines l LEFT JOIN al_line_usage u USING (line_id))))
