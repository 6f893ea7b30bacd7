-- The usage facts that count: every answer, the billing allocation and the trace roll-ups read these, never
-- usage_facts itself. A fact named by a retraction (a candidate's roll-up of a descendant that arrived in a
-- later request, docs/producers.md) is left out; both tables are insert-only. Same columns as usage_facts.
CREATE OR REPLACE VIEW counted_usage_facts AS
SELECT f.* FROM usage_facts f
WHERE NOT EXISTS (
  SELECT 1 FROM usage_retractions r
  WHERE r.trace_id = f.trace_id AND r.span_id = f.span_id AND r.meter = f.meter
)
