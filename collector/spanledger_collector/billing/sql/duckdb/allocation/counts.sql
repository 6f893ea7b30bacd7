SELECT (SELECT count(*) FROM al_lines), (SELECT count(*) FROM al_matches)
