SELECT max(lock_no) FROM billing_locks
