CREATE OR REPLACE TEMP TABLE al_shares (metric VARCHAR, line_id BIGINT, trace_id VARCHAR, share HUGEINT)
