-- By the model of the read's trace (its first by name): every fact is read, as a trace's model call may lie
-- outside the period of its reads.
SELECT coalesce(m.model, '(none)') AS model, max(r.age_seconds) AS oldest_age_seconds,
       avg(r.age_seconds) AS mean_age_seconds, count() AS reads, uniqExact(r.trace_id) AS traces
FROM {{reads}} AS r
LEFT JOIN (SELECT trace_id, min(model) AS model FROM {{facts}} AS f WHERE model IS NOT NULL GROUP BY trace_id) AS m
  ON m.trace_id = r.trace_id
WHERE {{period}}
GROUP BY 1 ORDER BY oldest_age_seconds DESC NULLS LAST, 1 LIMIT {{limit}}
