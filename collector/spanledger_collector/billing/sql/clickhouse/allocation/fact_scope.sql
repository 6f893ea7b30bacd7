f.meter IN ({{meters}}) AND f.end_time >= {{first}} AND f.start_time <= {{last}}
