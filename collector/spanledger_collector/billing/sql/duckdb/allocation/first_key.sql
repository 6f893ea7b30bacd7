-- A fact's place in its trace's order (start time, span id, meter) as one BLOB that sorts as the tuple does.
create_sort_key(start_time, 'ASC NULLS LAST', span_id, 'ASC NULLS LAST', meter, 'ASC NULLS LAST')
