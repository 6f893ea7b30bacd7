-- The table holding this database's spans, for a process that opens the store without the collector's config
-- (the CLI): the table `spanledger clickhouse init`'s usage view reads (its --traces-table), else one the OTel
-- Collector's clickhouse exporter (or spanledger's, same templates) made, known by its trace-id view
-- `<table>_trace_id_ts_mv`. On a cluster that view reads the node's `<table>_local`: the `Distributed` table of
-- the plain name over it is the one to read (every shard). None: the exporter's default name.
WITH found AS (
  SELECT name
  FROM system.tables
  WHERE database = currentDatabase()
    AND (has(dependencies_table, {{init_view}}) OR has(dependencies_table, concat(name, '_trace_id_ts_mv')))
  ORDER BY has(dependencies_table, {{init_view}}) DESC, name = {{default}} DESC, name
  LIMIT 1
)
SELECT if(distributed.name != '', distributed.name, found.name)
FROM found
LEFT JOIN (SELECT name FROM system.tables WHERE database = currentDatabase() AND engine = 'Distributed') AS distributed
  ON concat(distributed.name, '_local') = found.name
