-- Facts x lines. Lines and facts are expanded to the UTC buckets they touch and joined on (meter, key, bucket); a
-- pair is kept only in the first bucket both touch, so a long fact or a long line is matched once. A line within
-- one UTC hour is bucketed by that hour; a longer one (a daily line, a monthly one) by the UTC days it touches, one
-- bucket a day rather than 24, and the facts are bucketed both ways (each grain joins its own lines). A fact
-- straddling the charge period is prorated by its overlap in microseconds (weight and estimate truncated toward
-- zero, intDiv). The lines are the right (hashed) side of the join. match_id numbers the rows (unique, in no
-- particular order: traces.sql's pair ids).
CREATE TEMPORARY TABLE al_matches ENGINE = Memory AS
WITH in_scope AS (
  SELECT f.trace_id AS trace_id, f.span_id AS span_id, toString(f.meter) AS meter, f.start_time AS start_time,
         f.end_time AS end_time, f.account_id AS account_id, f.region AS region, f.resource_type AS resource_type,
         f.boundary AS boundary, f.workflow AS workflow, f.tenant AS tenant, f.service AS service, f.model AS model,
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
           if(first_hour = last_hour, [('hour', first_hour, first_hour)],
              arrayMap(i -> ('hour', first_hour, first_hour + toIntervalHour(i)),
                       range(toUInt64(dateDiff('hour', first_hour, last_hour) + 1)))),
           if(first_day = last_day, [('day', first_day, first_day)],
              arrayMap(i -> ('day', first_day, first_day + toIntervalDay(i)),
                       range(toUInt64(dateDiff('day', first_day, last_day) + 1)))))) AS grain_bucket,
         grain_bucket.1 AS grain, grain_bucket.2 AS first_bucket, grain_bucket.3 AS bucket
  FROM in_scope
), line_buckets AS (
  SELECT l.line_id AS line_id, l.line_key AS line_key, m.meter AS meter, l.charge_period_start AS charge_period_start,
         l.charge_period_end AS charge_period_end, l.sub_account_id AS sub_account_id, l.region_id AS region_id,
         l.rule_resource_type AS rule_resource_type, l.boundary AS boundary,
         toStartOfHour(assumeNotNull(l.charge_period_start)) AS first_hour,
         toStartOfHour(assumeNotNull(if(l.charge_period_end > l.charge_period_start,
                                        l.charge_period_end - toIntervalMicrosecond(1), l.charge_period_start)))
           AS last_hour,
         toStartOfDay(first_hour) AS first_day,
         arrayJoin(if(first_hour = last_hour, [('hour', first_hour, first_hour)],
                      arrayMap(i -> ('day', first_day, first_day + toIntervalDay(i)),
                               range(toUInt64(dateDiff('day', first_day, toStartOfDay(last_hour)) + 1)))))
           AS grain_bucket,
         grain_bucket.1 AS grain, grain_bucket.2 AS first_bucket, grain_bucket.3 AS bucket
  FROM al_lines AS l JOIN al_rule_meters AS m ON m.rule_id = l.rule_id
  WHERE l.kind IN ('capacity', 'consumption') AND l.line_key IS NOT NULL
    AND l.charge_period_start IS NOT NULL AND l.charge_period_end IS NOT NULL
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
    AND (lh.boundary IS NULL OR f.boundary = lh.boundary)
    AND (f.account_id = lh.sub_account_id OR lh.sub_account_id IS NULL
         OR (f.account_id IS NULL AND (f.region IS NULL OR lh.region_id IS NULL OR f.region = lh.region_id)
             AND (f.resource_type IS NULL OR f.resource_type = lh.rule_resource_type)))
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
