-- The rules as tables (rows inserted by the driver): rule per id, its fact meters, accelerators per instance type.
CREATE OR REPLACE TEMP TABLE al_rules (rule_id VARCHAR, kind VARCHAR, rule_resource_type VARCHAR, match_on VARCHAR,
  boundary VARCHAR, unit_seconds BIGINT, capacity_per VARCHAR, unit_factor HUGEINT, usage_unit VARCHAR);
CREATE OR REPLACE TEMP TABLE al_rule_meters (rule_id VARCHAR, meter VARCHAR);
CREATE OR REPLACE TEMP TABLE al_accelerators (instance_type VARCHAR, accelerators INTEGER);
