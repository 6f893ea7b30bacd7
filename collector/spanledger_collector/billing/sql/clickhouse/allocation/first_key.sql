-- A fact's place in its trace's order (start time, span id, meter) as a string that sorts as the tuple does.
concat(leftPad(hex(bitXor(reinterpretAsUInt64(toUnixTimestamp64Micro(start_time)), toUInt64(9223372036854775808))),
               16, '0'), span_id, '\0', meter)
