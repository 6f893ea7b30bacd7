-- Facts x lines. Lines and facts are expanded to the UTC buckets they touch and joined on (meter, key, bucket); a
-- pair is kept only in the first bucket both touch, so a long fact or a long line is matched once. A line within
-- one UTC hour is bucketed by that hour; a longer one (a daily line, a monthly one) by the UTC days it touches, one
-- bucket a day rather than 24, and the facts are bucketed both ways (each grain joins its own lines), but only by
-- a grain some line of their meter has (a meter is mostly billed at one grain: most facts probe once). A fact
-- straddling the charge period is prorated by its overlap in microseconds (weight and estimate truncated toward
-- zero, intDiv). The lines are the right (hashed) side of the join. The scope conditions (account, region, resource
-- type, boundary) compare numbers: each value's place among the lines' values (0: NULL, or no line has it), worked
-- out once per distinct value of a LowCardinality column, where comparing the strings of the two sides cost about
-- half the step. match_id numbers the rows (unique, in no particular order: traces.sql's pair ids).
CREATE TEMPORARY TABLE al_matches ENGINE = Memory AS
WITH (SELECT (groupUniqArray(sub_account_id), groupUniqArray(region_id), groupUniqArray(rule_resource_type),
               groupUniqArray(boundary))
      FROM al_lines) AS scope_values,
line_spans AS (
  SELECT l.line_id AS line_id, l.line_key AS line_key, m.meter AS meter,
         assumeNotNull(l.charge_period_start) AS charge_period_start,
         assumeNotNull(l.charge_period_end) AS charge_period_end,
         indexOf(scope_values.1, l.sub_account_id) AS account_no, indexOf(scope_values.2, l.region_id) AS region_no,
         indexOf(scope_values.3, l.rule_resource_type) AS type_no, indexOf(scope_values.4, l.boundary) AS boundary_no,
         toStartOfHour(assumeNotNull(l.charge_period_start)) AS first_hour,
         toStartOfHour(assumeNotNull(if(l.charge_period_end > l.charge_period_start,
                                        l.charge_period_end - toIntervalMicrosecond(1), l.charge_period_start)))
           AS last_hour,
         toStartOfDay(first_hour) AS first_day
  FROM al_lines AS l JOIN al_rule_meters AS m ON m.rule_id = l.rule_id
  WHERE l.kind IN ('capacity', 'consumption') AND l.line_key IS NOT NULL
    AND l.charge_period_start IS NOT NULL AND l.charge_period_end IS NOT NULL
), (SELECT (groupUniqArrayIf(meter, first_hour = last_hour), groupUniqArrayIf(meter, first_hour <> last_hour))
    FROM line_spans) AS meters_by_grain,
in_scope AS (
  SELECT f.trace_id AS trace_id, f.span_id AS span_id, toString(f.meter) AS meter, f.start_time AS start_time,
         f.end_time AS end_time, f.workflow AS workflow, f.tenant AS tenant, f.service AS service, f.model AS model,
         indexOf(scope_values.1, f.account_id) AS account_no, f.account_id IS NULL AS no_account,
         indexOf(scope_values.2, f.region) AS region_no, f.region IS NULL AS no_region,
         indexOf(scope_values.3, f.resource_type) AS type_no, f.resource_type IS NULL AS no_type,
         indexOf(scope_values.4, f.boundary) AS boundary_no,
         if(f.meter IN ({{token_meters}}), lower(f.model),
            lower(if(f.resource_id LIKE 'arn:%:instance/%',
                     replaceRegexpOne(f.resource_id, '^arn:[^:]*:ec2:[^:]*:[^:]*:instance/', ''), f.resource_id)))
           AS fact_key,
         toInt128(round(f.quantity * {{quantity_scale}})) AS quantity_units,
         if(f.currency IS NULL OR upper(f.currency) = {{currency}},
            toInt128(round(f.estimated_cost * {{money_scale}})), NULL) AS estimate_units,
         toStartOfHour(f.start_time) AS first_hour,
         toStartOfHour(if(f.end_time > f.start_time, f.end_time - toIntervalMicrosecond(1), f.start_time)) AS last_hour
  FROM {{facts}} AS f
  WHERE f.quantity > 0 AND {{scope}}
), fact_buckets AS (
  SELECT *, toStartOfDay(first_hour) AS first_day, toStartOfDay(last_hour) AS last_day,
         arrayJoin(arrayConcat(
           if(NOT has(meters_by_grain.1, meter), [],
              if(first_hour = last_hour, [('hour', first_hour, first_hour)],
                 arrayMap(i -> ('hour', first_hour, first_hour + toIntervalHour(i)),
                          range(toUInt64(dateDiff('hour', first_hour, last_hour) + 1))))),
           if(NOT has(meters_by_grain.2, meter), [],
              if(first_day = last_day, [('day', first_day, first_day)],
                 arrayMap(i -> ('day', first_day, first_day + toIntervalDay(i)),
                          range(toUInt64(dateDiff('day', first_day, last_day) + 1))))))) AS grain_bucket,
         grain_bucket.1 AS grain, grain_bucket.2 AS first_bucket, grain_bucket.3 AS bucket
  FROM in_scope
), line_buckets AS (
  SELECT *,
         arrayJoin(if(first_hour = last_hour, [('hour', first_hour, first_hour)],
                      arrayMap(i -> ('day', first_day, first_day + toIntervalDay(i)),
                               range(toUInt64(dateDiff('day', first_day, toStartOfDay(last_hour)) + 1)))))
           AS grain_bucket,
         grain_bucket.1 AS grain, grain_bucket.2 AS first_bucket, grain_bucket.3 AS bucket
  FROM line_spans
), pairs AS (
  SELECT lh.line_id AS line_id, f.trace_id AS trace_id, f.span_id AS span_id, f.meter AS meter,
         f.start_time AS start_time, f.workflow AS workflow, f.tenant AS tenant, f.service AS service,
         f.model AS model, f.quantity_units AS quantity_units, f.estimate_units AS estimate_units,
         toUnixTimestamp64Micro(f.end_time) - toUnixTimestamp64Micro(f.start_time) AS duration_us,
         toUnixTimestamp64Micro(assumeNotNull(greatest(f.start_time, lh.charge_period_start))) AS clipped_start_us,
         toUnixTimestamp64Micro(assumeNotNull(least(f.end_time, lh.charge_period_end))) AS clipped_end_us
  FROM fact_buckets AS f JOIN line_buckets AS lh
    ON f.bucket = lh.bucket AND f.grain = lh.grain AND f.fact_key = lh.line_key AND f.meter = lh.meter
  WHERE lh.bucket = greatest(f.first_bucket, lh.first_bucket)
    AND (lh.boundary_no = 0 OR f.boundary_no = lh.boundary_no)
    AND (lh.account_no = 0 OR f.account_no = lh.account_no
         OR (f.no_account AND (f.no_region OR lh.region_no = 0 OR f.region_no = lh.region_no)
             AND (f.no_type OR (lh.type_no > 0 AND f.type_no = lh.type_no))))
    AND ((f.end_time > f.start_time AND f.start_time < lh.charge_period_end AND f.end_time > lh.charge_period_start)
         OR (f.end_time = f.start_time AND f.start_time >= lh.charge_period_start
             AND f.start_time < lh.charge_period_end))
)
SELECT rowNumberInAllBlocks() AS match_id, line_id, trace_id, span_id, meter, start_time, workflow, tenant, service,
       model, clipped_start_us, clipped_end_us,
       if(duration_us = 0 OR clipped_end_us - clipped_start_us = duration_us, quantity_units,
          intDiv(quantity_units * (clipped_end_us - clipped_start_us), duration_us)) AS weight,
       if(duration_us = 0 OR clipped_end_us - clipped_start_us = duration_us, estimate_units,
          intDiv(estimate_units * (clipped_end_us - clipped_start_us), duration_us)) AS estimate_units
FROM pairs
