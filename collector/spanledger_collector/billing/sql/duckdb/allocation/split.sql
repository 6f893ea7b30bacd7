-- Stage 1 (per line): the allocated part = cost x U / D, rounded half away from zero to 10^-12, for EffectiveCost,
-- BilledCost and ListCost. busy U: capacity min(sum of facts, union x accelerators), consumption sum of facts;
-- D = max(C, U). U and D are scaled down together when large so that cost x U fits 128 bits (the divisor is 1
-- below 2 x 10^15: DuckDB's 128-bit division is slow, so it runs only above).
-- Each stage of the rounding (al_floor_div's numerator, estimate, refinement, check) is its own column, one
-- subquery level each: the macros expand their operands several times, so nested they computed the 128-bit
-- numerator about a dozen times a cost. BilledCost and ListCost equal to EffectiveCost (most lines) reuse its
-- units and its allocated part (the same amount rounds the same) instead of being converted and rounded again.
CREATE OR REPLACE TEMP TABLE al_split AS
SELECT * EXCLUDE (double_denominator, billed_quotient, list_quotient),
       CASE WHEN billed_units = effective_units THEN effective_allocated
            WHEN double_denominator IS NULL THEN 0::HUGEINT
            ELSE sign(billed_units) * billed_quotient END AS billed_allocated,
       CASE WHEN list_units = effective_units THEN effective_allocated
            WHEN double_denominator IS NULL THEN 0::HUGEINT
            ELSE sign(list_units) * list_quotient END AS list_allocated
FROM (
  SELECT * EXCLUDE (effective_numerator, billed_numerator, list_numerator, effective_refined, billed_refined,
                    list_refined),
         CASE WHEN double_denominator IS NULL THEN 0::HUGEINT
              ELSE sign(effective_units)
                   * al_floor_div_checked(effective_numerator, double_denominator, effective_refined) END
           AS effective_allocated,
         al_floor_div_checked(billed_numerator, double_denominator, billed_refined) AS billed_quotient,
         al_floor_div_checked(list_numerator, double_denominator, list_refined) AS list_quotient
  FROM (
    SELECT *,
           al_floor_div_refined(effective_numerator, double_denominator,
                                CAST(floor(effective_numerator::DOUBLE / double_denominator::DOUBLE) AS HUGEINT))
             AS effective_refined,
           al_floor_div_refined(billed_numerator, double_denominator,
                                CAST(floor(billed_numerator::DOUBLE / double_denominator::DOUBLE) AS HUGEINT))
             AS billed_refined,
           al_floor_div_refined(list_numerator, double_denominator,
                                CAST(floor(list_numerator::DOUBLE / double_denominator::DOUBLE) AS HUGEINT))
             AS list_refined
    FROM (
      -- (2|cost| x U + D) // 2D rounds |cost| x U / D half up; NULL (and no rounding) where U or D is 0.
      SELECT * EXCLUDE (scaled_busy),
             abs(effective_units) * 2 * scaled_busy + double_denominator // 2 AS effective_numerator,
             CASE WHEN billed_units IS DISTINCT FROM effective_units
                  THEN abs(billed_units) * 2 * scaled_busy + double_denominator // 2 END AS billed_numerator,
             CASE WHEN list_units IS DISTINCT FROM effective_units
                  THEN abs(list_units) * 2 * scaled_busy + double_denominator // 2 END AS list_numerator
      FROM (
        SELECT *,
               CASE WHEN coalesce(busy_units, 0) = 0 OR denominator_units = 0 THEN NULL
                    WHEN denominator_units < 2000000000000000 THEN busy_units
                    ELSE busy_units // (denominator_units // 1000000000000000) END AS scaled_busy,
               CASE WHEN coalesce(busy_units, 0) = 0 OR denominator_units = 0 THEN NULL
                    WHEN denominator_units < 2000000000000000 THEN 2 * denominator_units
                    ELSE 2 * (denominator_units // (denominator_units // 1000000000000000)) END AS double_denominator
        FROM (
          SELECT * EXCLUDE (billed_cost_units, list_cost_units),
                 greatest(coalesce(busy_units, 0),
                          CASE WHEN kind = 'consumption' AND coalesce(capacity_units, 0) = 0
                               THEN coalesce(busy_units, 0) ELSE coalesce(capacity_units, 0) END) AS denominator_units,
                 CASE WHEN billed_cost = effective_cost THEN effective_units ELSE billed_cost_units END AS billed_units,
                 CASE WHEN list_cost = effective_cost THEN effective_units ELSE list_cost_units END AS list_units
          FROM (
            SELECT l.*, u.used_units, u.total_weight, u.union_us, u.fact_count, u.trace_count, u.estimate_units,
                   CASE WHEN l.kind = 'capacity'
                        THEN least(u.used_units,
                                   u.union_us * (CASE l.capacity_per WHEN 'accelerator' THEN l.accelerators
                                                 ELSE 1 END))
                        WHEN l.kind = 'consumption' THEN u.used_units END AS busy_units,
                   al_scaled_units(l.effective_cost, {{money_scale}}) AS effective_units,
                   CASE WHEN l.billed_cost IS DISTINCT FROM l.effective_cost
                        THEN al_scaled_units(l.billed_cost, {{money_scale}}) END AS billed_cost_units,
                   CASE WHEN l.list_cost IS DISTINCT FROM l.effective_cost
                        THEN al_scaled_units(l.list_cost, {{money_scale}}) END AS list_cost_units
            FROM al_lines l LEFT JOIN al_line_usage u USING (line_id)))))))
