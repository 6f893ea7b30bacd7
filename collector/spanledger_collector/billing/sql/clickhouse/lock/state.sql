-- The newest lock: its number, who acquired it and when, when it last showed life (acquired or renewed), whether
-- it was released, and for how long it has been silent, by the server's clock (the writers' clocks may differ).
SELECT lock_no,
       anyIf(holder, event = 'acquired') AS holder,
       minIf(at, event = 'acquired') AS acquired_at,
       max(at) AS last_at,
       countIf(event = 'released') > 0 AS released,
       dateDiff('millisecond', max(at), now64(6, 'UTC')) / 1000 AS silent_s
FROM billing_locks
WHERE lock_no = (SELECT max(lock_no) FROM billing_locks)
GROUP BY lock_no
