-- The (line, trace) pairs: all copied into al_traces by traces.sql. (Reading the one-fact pairs from al_matches
-- where they are used, as DuckDB does, cost ClickHouse more in the shares than it saved: 18.2 against 15.1 s.)
al_traces
