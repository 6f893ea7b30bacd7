-- The rules as tables (rows inserted by the driver): rule per id, its fact meters, accelerators per instance type.
CREATE TEMPORARY TABLE al_rules (rule_id String, kind Nullable(String), rule_resource_type Nullable(String),
  match_on Nullable(String), boundary Nullable(String), unit_seconds Nullable(Int64), capacity_per Nullable(String),
  unit_factor Nullable(Int128), usage_unit Nullable(String)) ENGINE = Memory;
CREATE TEMPORARY TABLE al_rule_meters (rule_id String, meter String) ENGINE = Memory;
CREATE TEMPORARY TABLE al_accelerators (instance_type String, accelerators Int32) ENGINE = Memory;
