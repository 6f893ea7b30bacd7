-- Other producers' S3 GetObject spans -> {table} rows, per inserted block: the object read, at the span's end (its
-- age unknown: that producer records no last-modified time), as the collector's decoder reads them.
CREATE MATERIALIZED VIEW IF NOT EXISTS {database}.{view} TO {database}.{table} AS
SELECT
  {columns}
FROM (
{lets}
)
WHERE o_object_read
