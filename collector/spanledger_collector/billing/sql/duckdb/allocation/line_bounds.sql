-- The first and last instant of the period's charge periods (text, for the fact scope's constants).
SELECT strftime(min(charge_period_start), '%Y-%m-%d %H:%M:%S.%f'), strftime(max(charge_period_end), '%Y-%m-%d %H:%M:%S.%f')
FROM al_lines
