-- Expression helpers of the DuckDB allocation (session macros; expanded where used, so no cost).

-- An EC2 instance ARN and the bare instance id are the same resource; ids compare case-insensitively.
CREATE OR REPLACE TEMP MACRO al_canonical_resource(id) AS
  lower(CASE WHEN id LIKE 'arn:%:instance/%'
             THEN regexp_replace(id, '^arn:[^:]*:ec2:[^:]*:[^:]*:instance/', '') ELSE id END);

-- round(decimal x scale) as a HUGEINT, exactly (half away from zero). DuckDB rounds a DECIMAL(38, s) with
-- 128-bit division (slow); the double estimate is taken when the exact difference shows it is the nearest
-- integer (|difference| < 1/2), which leaves only ties and huge values to the exact rounding.
CREATE OR REPLACE TEMP MACRO al_scaled_units(value, scale) AS
  CASE WHEN abs(value) >= 1000000000000 THEN CAST(round(value * scale) AS HUGEINT)
       WHEN abs(value * scale - CAST(round(value::DOUBLE * scale) AS HUGEINT)) < 0.5
       THEN CAST(round(value::DOUBLE * scale) AS HUGEINT)
       ELSE CAST(round(value * scale) AS HUGEINT) END;

-- Exact numerator // divisor for HUGEINT numerator >= 0 and divisor > 0. DuckDB divides 128-bit integers bit
-- by bit (about 1 us each); a double estimate refined once with exact 128-bit multiplication lands on the
-- quotient almost always, and is checked, so the slow division runs only when the check fails.
CREATE OR REPLACE TEMP MACRO al_floor_div_refined(numerator, divisor, estimate) AS
  estimate + CAST(floor((numerator - estimate * divisor)::DOUBLE / divisor::DOUBLE) AS HUGEINT);
CREATE OR REPLACE TEMP MACRO al_floor_div_checked(numerator, divisor, refined) AS
  CASE WHEN numerator - refined * divisor >= 0 AND numerator - refined * divisor < divisor THEN refined
       ELSE numerator // divisor END;
CREATE OR REPLACE TEMP MACRO al_floor_div(numerator, divisor) AS
  al_floor_div_checked(numerator, divisor,
    al_floor_div_refined(numerator, divisor, CAST(floor(numerator::DOUBLE / divisor::DOUBLE) AS HUGEINT)));

-- "1000000 Tokens" -> 1000000, "1K tokens" -> 1000; a unit without a number prefix counts 1.
CREATE OR REPLACE TEMP MACRO al_unit_prefix(unit) AS
  coalesce(try_cast(regexp_extract(unit, '^\s*([0-9]+)', 1) AS HUGEINT)
           * (CASE upper(regexp_extract(unit, '^\s*[0-9]+\s*([KMB])\b', 1))
              WHEN 'K' THEN 1000 WHEN 'M' THEN 1000000 WHEN 'B' THEN 1000000000 ELSE 1 END), 1);

-- Whole 10^-12 units (HUGEINT) -> DECIMAL(38, 12) and whole 10^-6 units -> DECIMAL(38, 6), exactly.
CREATE OR REPLACE TEMP MACRO al_money(units) AS
  ((units)::DECIMAL(38, 0) * 0.000000000001::DECIMAL(13, 12))::DECIMAL(38, 12);
CREATE OR REPLACE TEMP MACRO al_quantity(units) AS ((units)::DECIMAL(38, 0) * 0.000001::DECIMAL(7, 6))::DECIMAL(38, 6);
