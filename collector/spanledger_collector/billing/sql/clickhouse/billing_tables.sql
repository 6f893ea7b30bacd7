-- The billing tables in ClickHouse: the DuckDB tables' columns, typed (Decimal money, LowCardinality names).
-- ClickHouse has no UPDATE in the write path: superseding a snapshot or a run inserts a newer revision of its row
-- (ReplacingMergeTree(revision) on the row's id, read with FINAL). Every table is keyed on its row identity, so a
-- retried insert collapses into one row. Lines and allocations are ordered by (snapshot, line) and by run: the
-- allocation reads a period's lines, the answers one run's rows.
CREATE TABLE IF NOT EXISTS billing_snapshots (
  snapshot_id String,
  scope String,
  billing_period_start DateTime64(6, 'UTC'),
  billing_period_end DateTime64(6, 'UTC'),
  format LowCardinality(String),
  sources String,
  row_count Int64,
  billing_currency LowCardinality(String),
  imported_at DateTime64(6, 'UTC'),
  seq Int64,
  superseded_by Nullable(String),
  revision UInt32 DEFAULT 0
) ENGINE = ReplacingMergeTree(revision) ORDER BY snapshot_id;
CREATE TABLE IF NOT EXISTS billing_lines (
  snapshot_id String,
  line_no Int64,
  source_file String,
  source_row Int64,
  format LowCardinality(String),
  {{line_columns}}
) ENGINE = ReplacingMergeTree ORDER BY (snapshot_id, line_no);
CREATE TABLE IF NOT EXISTS allocation_runs (
  run_id Int64,
  billing_period_start DateTime64(6, 'UTC'),
  created_at DateTime64(6, 'UTC'),
  snapshot_ids String,
  facts_fingerprint String,
  method_version LowCardinality(String),
  rules_digest String,
  billing_currency LowCardinality(Nullable(String)),
  line_count Int64,
  matched_fact_count Int64,
  superseded_by Nullable(Int64),
  revision UInt32 DEFAULT 0
) ENGINE = ReplacingMergeTree(revision) ORDER BY run_id;
CREATE TABLE IF NOT EXISTS allocation_lines (
  run_id Int64,
  snapshot_id String,
  line_no Int64,
  rule_id LowCardinality(Nullable(String)),
  kind LowCardinality(String),
  resource_type LowCardinality(Nullable(String)),
  line_key Nullable(String),
  accelerators Nullable(Int32),
  capacity_seconds Nullable(Decimal(38, 6)),
  busy_seconds Nullable(Decimal(38, 6)),
  billed_quantity Nullable(Decimal(38, 6)),
  tracked_quantity Nullable(Decimal(38, 6)),
  fact_count Int64,
  trace_count Int64,
  effective_cost Nullable(Decimal(38, 12)), billed_cost Nullable(Decimal(38, 12)), list_cost Nullable(Decimal(38, 12)),
  allocated_effective_cost Nullable(Decimal(38, 12)), allocated_billed_cost Nullable(Decimal(38, 12)),
  allocated_list_cost Nullable(Decimal(38, 12)),
  estimated_cost Nullable(Decimal(38, 12)),
  unallocated_reason LowCardinality(Nullable(String)),
  flags LowCardinality(Nullable(String))
) ENGINE = ReplacingMergeTree ORDER BY (run_id, snapshot_id, line_no);
CREATE TABLE IF NOT EXISTS allocations (
  run_id Int64,
  snapshot_id String,
  line_no Int64,
  trace_id Nullable(String),           -- NULL on the unallocated row (AllocatedResourceId NULL)
  span_ids Array(String),              -- [] on the unallocated row (DuckDB: NULL)
  usage_quantity Nullable(Decimal(38, 6)),
  usage_unit LowCardinality(Nullable(String)),
  allocated_ratio Nullable(Float64),
  effective_cost Decimal(38, 12),
  billed_cost Decimal(38, 12),
  list_cost Decimal(38, 12),
  estimated_cost Nullable(Decimal(38, 12)),
  workflow LowCardinality(Nullable(String)),
  tenant LowCardinality(Nullable(String)),
  service LowCardinality(Nullable(String)),
  model LowCardinality(Nullable(String)),
  unallocated_reason LowCardinality(Nullable(String))
) ENGINE = ReplacingMergeTree ORDER BY (run_id, snapshot_id, line_no, ifNull(trace_id, ''));
-- The billing lock (billing/_lock.py): one import or allocation at a time. Each acquisition, renewal and release
-- is a row; the acquisitions claim their number by deduplication token, which a MergeTree keeps for its last
-- inserts only when non_replicated_deduplication_window says so (Replicated tables keep them in Keeper anyway).
CREATE TABLE IF NOT EXISTS billing_locks (
  lock_no UInt64,
  event LowCardinality(String),        -- acquired, renewed or released
  owner UUID,                          -- the writer's own id: whether its claim is the one kept
  holder String,                       -- host and process, for the writers that wait
  at DateTime64(6, 'UTC') DEFAULT now64(6, 'UTC')
) ENGINE = MergeTree ORDER BY (lock_no, event, at)
SETTINGS non_replicated_deduplication_window = 10000;
