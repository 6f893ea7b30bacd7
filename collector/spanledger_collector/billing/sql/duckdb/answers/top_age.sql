-- By a column of the reads themselves (workflow, tenant, service): no fact is read.
SELECT coalesce(r.{{group}}, '(none)') AS {{group}}, max(r.age_seconds) AS oldest_age_seconds,
       avg(r.age_seconds) AS mean_age_seconds, count(*) AS reads, count(DISTINCT r.trace_id) AS traces
FROM {{reads}} r
WHERE {{period}}
GROUP BY 1 ORDER BY oldest_age_seconds DESC NULLS LAST, 1 LIMIT {{limit}}
