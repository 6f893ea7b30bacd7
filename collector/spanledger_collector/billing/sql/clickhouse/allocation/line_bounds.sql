-- The first and last instant of the period's charge periods (for the fact scope's constants).
SELECT min(charge_period_start), max(charge_period_end) FROM al_lines
