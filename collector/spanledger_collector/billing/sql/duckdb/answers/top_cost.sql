SELECT coalesce({{group}}, '(none)') AS {{group}}, sum(effective_cost) AS cost, sum(billed_cost) AS billed_cost,
       sum(estimated_cost) AS estimated_cost, sum(effective_cost) - sum(estimated_cost) AS variance,
       count(DISTINCT trace_id) AS traces
FROM allocations WHERE run_id = {{run_id}} AND trace_id IS NOT NULL
GROUP BY 1 ORDER BY cost DESC, 1 LIMIT {{limit}}
