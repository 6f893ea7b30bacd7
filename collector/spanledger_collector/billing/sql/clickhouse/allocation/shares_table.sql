CREATE TEMPORARY TABLE al_shares (metric String, line_id UInt64, trace_id String, share Int128) ENGINE = Memory
