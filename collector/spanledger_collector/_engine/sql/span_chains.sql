  -- (included in the views that read otel_traces at read time; `starts` is each view's spans to follow)
  -- Each start span's ancestors through otel_traces, with their distance (nearest first), up to {max_depth} levels.
  links AS (
    SELECT DISTINCT TraceId AS trace_id, SpanId AS span_id, ParentSpanId AS parent_span_id
    FROM {traces_database}.{traces_table}
    WHERE TraceId IN (SELECT trace_id FROM starts) AND {spans_read} AND ParentSpanId != ''
  ),
  ancestry AS (
    SELECT trace_id, span_id, ancestor, min(depth) AS depth FROM (
      WITH RECURSIVE up AS (
        SELECT s.trace_id AS trace_id, s.span_id AS span_id, l.parent_span_id AS ancestor, 1 AS depth
        FROM starts AS s INNER JOIN links AS l ON l.trace_id = s.trace_id AND l.span_id = s.span_id
        UNION ALL
        SELECT up.trace_id, up.span_id, l.parent_span_id, up.depth + 1
        FROM up INNER JOIN links AS l ON l.trace_id = up.trace_id AND l.span_id = up.ancestor
        WHERE up.depth < {max_depth} AND l.parent_span_id != up.span_id
      )
      SELECT trace_id, span_id, ancestor, depth FROM up
    )
    GROUP BY trace_id, span_id, ancestor
  ),
  -- Attribution (docs/producers.md): the values of the attribution lists on each start span (depth 0) and its
  -- ancestors, nearest first; only spans carrying a listed name are read.
  listed AS (
    SELECT TraceId AS trace_id, SpanId AS span_id,
      any({workflow_values}) AS workflow_values, any({tenant_values}) AS tenant_values
    FROM (
      SELECT TraceId, SpanId, {span_values}
      FROM {traces_database}.{traces_table}
      WHERE TraceId IN (SELECT trace_id FROM starts) AND {spans_read} AND hasAny(mapKeys(SpanAttributes), {listed_names})
    )
    GROUP BY TraceId, SpanId
  ),
  chains AS (
    SELECT c.trace_id AS trace_id, c.span_id AS span_id,
      arrayMap(x -> x.2, arraySort(x -> x.1, groupArray(tuple(c.depth, l.workflow_values)))) AS workflow_chain,
      arrayMap(x -> x.2, arraySort(x -> x.1, groupArray(tuple(c.depth, l.tenant_values)))) AS tenant_chain
    FROM (
      SELECT trace_id, span_id, span_id AS member, 0 AS depth FROM starts
      UNION ALL
      SELECT trace_id, span_id, ancestor, depth FROM ancestry
    ) AS c
    INNER JOIN listed AS l ON l.trace_id = c.trace_id AND l.span_id = c.member
    GROUP BY c.trace_id, c.span_id
  )
