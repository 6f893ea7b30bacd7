f.meter IN ({{meters}}) AND f.end_time >= TIMESTAMP {{first}} AND f.start_time <= TIMESTAMP {{last}}
