-- The counted facts that stored ancestors and descendants of the reporting spans hold for the same meter: what
-- a span arriving in a later request than its relatives retracts (theirs or its own) where the decoder's memory
-- cannot know them (a restart, a forgotten trace). $trace_ids, $span_ids, $meters, $owners: the reporting
-- spans (AncestryCheck), one list element each.
WITH RECURSIVE reporters AS (
  SELECT unnest($trace_ids::VARCHAR[]) AS trace_id, unnest($span_ids::VARCHAR[]) AS span_id,
         unnest($meters::VARCHAR[]) AS meter, unnest($owners::BOOLEAN[]) AS owner
), links AS MATERIALIZED (
  -- the parent links of the reporters' traces only: spans has no index, so it is scanned once, not per level
  SELECT DISTINCT trace_id, span_id, parent_span_id FROM spans
  WHERE trace_id IN (SELECT trace_id FROM reporters) AND parent_span_id IS NOT NULL
), up(trace_id, reporter, meter, owner, relative, depth) AS (
  SELECT r.trace_id, r.span_id, r.meter, r.owner, l.parent_span_id, 1
  FROM reporters r JOIN links l ON l.trace_id = r.trace_id AND l.span_id = r.span_id
  UNION
  SELECT c.trace_id, c.reporter, c.meter, c.owner, l.parent_span_id, c.depth + 1
  FROM up c JOIN links l ON l.trace_id = c.trace_id AND l.span_id = c.relative
  WHERE c.depth < 256  -- a parent loop ends here
), down(trace_id, reporter, meter, owner, relative, depth) AS (
  SELECT r.trace_id, r.span_id, r.meter, r.owner, l.span_id, 1
  FROM reporters r JOIN links l ON l.trace_id = r.trace_id AND l.parent_span_id = r.span_id
  UNION
  SELECT c.trace_id, c.reporter, c.meter, c.owner, l.span_id, c.depth + 1
  FROM down c JOIN links l ON l.trace_id = c.trace_id AND l.parent_span_id = c.relative
  WHERE c.depth < 256
), relatives AS (
  SELECT trace_id, reporter, meter, owner, relative, true AS is_ancestor FROM up
  UNION
  SELECT trace_id, reporter, meter, owner, relative, false FROM down
)
SELECT DISTINCT c.reporter, c.owner AS reporter_is_owner, c.is_ancestor,
       k.span_id IS NOT NULL AS relative_is_candidate, f.*
FROM relatives c
JOIN counted_usage_facts f ON f.trace_id = c.trace_id AND f.span_id = c.relative AND f.meter = c.meter
LEFT JOIN (SELECT DISTINCT trace_id, span_id FROM usage_candidates) k
  ON k.trace_id = f.trace_id AND k.span_id = f.span_id
