-- The table holding this database's spans, for a process that opens the store without the collector's config
-- (the CLI): the table `spanledger clickhouse init`'s usage view reads (its --traces-table), else one the OTel
-- Collector's clickhouse exporter (or spanledger's, same templates) made, known by its trace-id view
-- `<table>_trace_id_ts_mv`. None: the exporter's default name.
SELECT name
FROM system.tables
WHERE database = currentDatabase()
  AND (has(dependencies_table, {{init_view}}) OR has(dependencies_table, concat(name, '_trace_id_ts_mv')))
ORDER BY has(dependencies_table, {{init_view}}) DESC, name = {{default}} DESC, name
LIMIT 1
