-- One event of lock {{lock_no}}. The token makes the claim: of several inserts with one token the engine keeps
-- the first and drops the others without an error (deduplication, on in this statement whatever the profile says;
-- an asynchronous insert would be deduplicated otherwise). The time is the server's.
INSERT INTO billing_locks (lock_no, event, owner, holder)
SETTINGS insert_deduplicate = 1, insert_deduplication_token = {{token}}, async_insert = 0
VALUES ({{lock_no}}, {{event}}, {{owner}}, {{holder}})
