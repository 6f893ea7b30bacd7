-- The usage facts the answers read: usage_reports resolved counted-once, priced from the price table.
-- Counted once (docs/producers.md), per trace and meter: an owner span's facts count; another producer's
-- span's fact counts unless a descendant reports the same meter (a roll-up) or an ancestor owner does.
-- Resolved here, at read time, over whole traces: a materialized view sees one insert block, and a trace's
-- spans arrive in many. Estimates come from the price tables: tokens from the first piece of the fact's price key
-- whose interval and part of the UTC day hold its start time and whose tier holds its quantity; the other meters
-- from the row of the fact's price key whose interval holds its start time (quantity * numerator / divisor,
-- exact, then rounded).
CREATE OR REPLACE VIEW {database}.{view} AS
WITH
{traces}  -- every report of the traces read (FINAL: a retried span's rows once; measured cheaper than DISTINCT,
  -- whose hash tables of ids cost 12x over a whole table: benchmarks/README.md)
  reports AS (
    SELECT trace_id, span_id, meter, owner, workflow IS NULL OR tenant IS NULL AS unattributed
    FROM {database}.{reports} FINAL
    WHERE {traces_read}
  ),
  candidate_traces AS (SELECT DISTINCT trace_id FROM reports WHERE owner = 0),
  -- the spans followed up their traces: every reporting span of a trace with other producers' spans (counted
  -- once), and the spans whose facts lack a workflow or tenant (attribution)
  starts AS (
    SELECT DISTINCT trace_id, span_id FROM reports
    WHERE unattributed OR trace_id IN (SELECT trace_id FROM candidate_traces)
  ),
{span_chains},
  prices AS (
    SELECT meter, provider, model,
      groupArray(tuple(valid_from, valid_until, above, upto, slope, intercept, currency, catalog_version,
                       unpriced_reason, day_from, day_until)) AS pieces
    FROM {database}.{prices} FINAL
    GROUP BY meter, provider, model
  ),
  cloud_prices AS (
    SELECT meter, provider, resource_id, accelerator_type, region, boundary,
      groupArray(tuple(valid_from, valid_until, numerator, divisor, currency, catalog_version, unpriced_reason))
        AS pieces
    FROM {database}.{cloud_prices} FINAL
    GROUP BY meter, provider, resource_id, accelerator_type, region, boundary
  ),
  taken AS (
    SELECT a.trace_id AS trace_id, a.ancestor AS span_id, r.meter AS meter
    FROM ancestry AS a INNER JOIN reports AS r ON r.trace_id = a.trace_id AND r.span_id = a.span_id
    UNION DISTINCT
    SELECT a.trace_id, a.span_id, r.meter
    FROM ancestry AS a INNER JOIN reports AS r ON r.trace_id = a.trace_id AND r.span_id = a.ancestor
    WHERE r.owner = 1
  )
SELECT
  {fact_columns},
  -- cloud prices: quantity * numerator at scale 39, divided (the quotient truncated at 39 places), rounded once
  multiIf(piece_index > 0 AND piece.5 IS NOT NULL,
          toDecimal128(roundBankers(toDecimal256(quantity, 9) * piece.5 + piece.6, 12), 12),
          cloud_index > 0 AND cloud_piece.3 IS NOT NULL,
          toDecimal128(roundBankers(toDecimal256(quantity, 9) * cloud_piece.3 / cloud_piece.4, 12), 12),
          NULL) AS estimated_cost,
  multiIf(piece_index > 0, piece.7, cloud_index > 0, cloud_piece.5, NULL) AS currency,
  multiIf(piece_index > 0, piece.8, cloud_index > 0, cloud_piece.6,
          (SELECT argMax(catalog_version, loaded_at) FROM {database}.{prices})) AS catalog_version,
  multiIf(piece_index > 0, piece.9, cloud_index > 0, cloud_piece.7, {not_in_price_table}) AS unpriced_reason
FROM (
  SELECT {attributed_columns},
    positiveModulo(toUnixTimestamp64Nano(f.start_time), 86400000000000) AS nanos_of_day,
    arrayFirstIndex(x -> x.1 <= f.start_time AND f.start_time < x.2 AND x.3 < f.quantity AND f.quantity <= x.4
                         AND x.10 <= nanos_of_day AND nanos_of_day < x.11, p.pieces) AS piece_index,
    p.pieces[piece_index] AS piece,
    arrayFirstIndex(x -> x.1 <= f.start_time AND f.start_time < x.2, c.pieces) AS cloud_index,
    c.pieces[cloud_index] AS cloud_piece
  FROM {database}.{reports} AS f FINAL
  LEFT JOIN chains AS a ON a.trace_id = f.trace_id AND a.span_id = f.span_id
  LEFT JOIN prices AS p ON p.meter = f.meter AND p.provider = ifNull(f.provider, {no_provider})
    AND p.model = ifNull(f.model, '')
  LEFT JOIN cloud_prices AS c ON c.meter = f.meter AND c.provider = ifNull(f.provider, {no_provider})
    AND c.resource_id = ifNull(f.resource_id, {null_key}) AND c.accelerator_type = ifNull(f.accelerator_type, {null_key})
    AND c.region = ifNull(f.region, {null_key}) AND c.boundary = ifNull(f.boundary, {null_key})
  WHERE {rows_read} AND (f.owner = 1 OR (f.trace_id, f.span_id, f.meter) NOT IN (SELECT trace_id, span_id, meter FROM taken))
)
