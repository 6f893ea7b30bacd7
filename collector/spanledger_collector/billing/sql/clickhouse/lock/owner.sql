-- Who acquired lock {{lock_no}}: one row, the claim the engine kept.
SELECT toString(owner) FROM billing_locks WHERE lock_no = {{lock_no}} AND event = 'acquired'
