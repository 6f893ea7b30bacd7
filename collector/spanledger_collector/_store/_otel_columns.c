/* OTLP trace requests to the Arrow buffers of otel_traces' columns (spanledger_collector._store._otel_columns).
 *
 * otel_traces_buffers(requests, service_key, text, span_kinds, status_codes) walks the serialized ExportTraceServiceRequests once and
 * writes each column of the contrib clickhouseexporter's otel_traces insert (_otel_traces.OTEL_TRACES_COLUMNS)
 * as Arrow buffers: int32 offsets and UTF-8 data for strings, int64 for times, int32 offsets for the Map
 * and the Nested (list) columns. _otel_traces.OtelTraceRows is the reference: the same rows, value for value
 * (tests/test_otel_columns.py); walking the decoded messages from Python costs ~1 µs a field.
 *
 * Attribute values: strings, booleans, integers and doubles are written here; bytes, arrays and maps (and an
 * AnyValue whose oneof is set more than once on the wire) are handed, as their serialized AnyValue, to
 * text(bytes) -> str, the Python reference (_otel_traces.attribute_text).
 * What this code does not reproduce exactly returns None and the caller uses the reference: malformed
 * input, a key twice in one map (a dict keeps its first position and last value), a KeyValue's value set
 * twice (messages merge), a time at or past 2^63 ns, a column over 2 GiB.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { OK = 0, DECLINE = 1, FAIL = -1 }; /* FAIL: a Python exception is set */

typedef struct {
    char *data;
    Py_ssize_t length;
    Py_ssize_t capacity;
} Buffer;

static int buffer_append(Buffer *b, const void *bytes, Py_ssize_t n) {
    if (n == 0) return OK;
    if (b->length + n > b->capacity) {
        Py_ssize_t capacity = b->capacity ? b->capacity : 1024;
        while (capacity < b->length + n) capacity *= 2;
        char *data = PyMem_Realloc(b->data, (size_t)capacity);
        if (data == NULL) {
            PyErr_NoMemory();
            return FAIL;
        }
        b->data = data;
        b->capacity = capacity;
    }
    memcpy(b->data + b->length, bytes, (size_t)n);
    b->length += n;
    return OK;
}

static int append_i32(Buffer *b, Py_ssize_t value) {
    if (value > INT32_MAX) return DECLINE;
    int32_t v = (int32_t)value;
    return buffer_append(b, &v, 4);
}

static int append_i64(Buffer *b, int64_t value) { return buffer_append(b, &value, 8); }

/* An Arrow string array: offsets (starting at 0) and data. */
typedef struct {
    Buffer offsets;
    Buffer data;
    Py_ssize_t count;
} Strings;

static int strings_init(Strings *s) { return append_i32(&s->offsets, 0); }

static int strings_append(Strings *s, const void *bytes, Py_ssize_t n) {
    int status = buffer_append(&s->data, bytes, n);
    if (status != OK) return status;
    s->count++;
    return append_i32(&s->offsets, s->data.length);
}

static int strings_append_hex(Strings *s, const uint8_t *bytes, Py_ssize_t n) {
    static const char digits[] = "0123456789abcdef";
    char text[64];
    Py_ssize_t done = 0;
    while (done < n) {
        Py_ssize_t chunk = n - done < 32 ? n - done : 32;
        for (Py_ssize_t i = 0; i < chunk; i++) {
            text[2 * i] = digits[bytes[done + i] >> 4];
            text[2 * i + 1] = digits[bytes[done + i] & 15];
        }
        if (buffer_append(&s->data, text, 2 * chunk) != OK) return FAIL;
        done += chunk;
    }
    s->count++;
    return append_i32(&s->offsets, s->data.length);
}

static const char *strings_at(const Strings *s, Py_ssize_t i, Py_ssize_t *n) {
    const int32_t *offsets = (const int32_t *)s->offsets.data;
    *n = offsets[i + 1] - offsets[i];
    return s->data.data + offsets[i];
}

/* A Map(String, String) column: per row an offset into keys/values. */
typedef struct {
    Buffer offsets;
    Strings keys;
    Strings values;
} Map;

static int map_init(Map *m) {
    if (append_i32(&m->offsets, 0) != OK || strings_init(&m->keys) != OK) return FAIL;
    return strings_init(&m->values);
}

static int map_end_row(Map *m) { return append_i32(&m->offsets, m->keys.count); }

typedef struct {
    const uint8_t *p;
    const uint8_t *end;
} Reader;

static int read_varint(Reader *r, uint64_t *out) {
    uint64_t value = 0;
    for (int shift = 0; shift < 64; shift += 7) {
        if (r->p >= r->end) return DECLINE;
        uint8_t byte = *r->p++;
        value |= (uint64_t)(byte & 0x7f) << shift;
        if (!(byte & 0x80)) {
            *out = value;
            return OK;
        }
    }
    return DECLINE;
}

/* The next field: its number, wire type, and for LEN its bytes, for VARINT/I64/I32 its value. */
typedef struct {
    uint32_t number;
    uint32_t wire;
    uint64_t value;
    Reader bytes;
} Field;

static int next_field(Reader *r, Field *f) {
    uint64_t tag;
    if (read_varint(r, &tag) != OK || tag >> 32) return DECLINE;
    f->number = (uint32_t)(tag >> 3);
    f->wire = (uint32_t)(tag & 7);
    if (f->number == 0) return DECLINE;
    switch (f->wire) {
    case 0:
        return read_varint(r, &f->value);
    case 1:
        if (r->end - r->p < 8) return DECLINE;
        memcpy(&f->value, r->p, 8); /* little-endian hosts only (as the compiled decoder) */
        r->p += 8;
        return OK;
    case 2: {
        uint64_t n;
        if (read_varint(r, &n) != OK || n > (uint64_t)(r->end - r->p)) return DECLINE;
        f->bytes.p = r->p;
        f->bytes.end = r->p + n;
        r->p += n;
        return OK;
    }
    case 5: {
        if (r->end - r->p < 4) return DECLINE;
        uint32_t v;
        memcpy(&v, r->p, 4);
        f->value = v;
        r->p += 4;
        return OK;
    }
    default:
        return DECLINE; /* groups: not in these messages */
    }
}

#define EXPECT(f, w) \
    if ((f).wire != (w)) return DECLINE

typedef struct {
    PyObject *text; /* the reference's text of a serialized AnyValue */
    int32_t span_kinds, status_codes; /* how many enum values have a name */
} Context;

/* A double as Go's JSON encoder writes it (the reference's _number_text): the shortest digits that read back
 * (Python's repr), in exponent form below 1e-6 and from 1e21 on (exponent without leading zeros), else in
 * positional form without trailing zeros; NaN and infinities as the encoder's error text. */
static int append_double_text(Strings *values, double value) {
    if (isnan(value)) return strings_append(values, "json: unsupported value: NaN", 28);
    if (isinf(value))
        return value > 0 ? strings_append(values, "json: unsupported value: +Inf", 29)
                         : strings_append(values, "json: unsupported value: -Inf", 29);
    char *repr = PyOS_double_to_string(value, 'r', 0, 0, NULL);
    if (repr == NULL) return FAIL;
    char text[400];
    Py_ssize_t n = 0;
    double magnitude = fabs(value);
    char *e = strchr(repr, 'e');
    if (magnitude != 0 && (magnitude < 1e-6 || magnitude >= 1e21)) { /* "1.5e-07" -> "1.5e-7" */
        size_t mantissa = (size_t)(e - repr);
        memcpy(text, repr, mantissa + 2); /* through the exponent's sign */
        n = (Py_ssize_t)mantissa + 2;
        const char *digits = e + 2;
        while (digits[0] == '0' && digits[1] != '\0') digits++;
        while (*digits) text[n++] = *digits++;
    } else if (e == NULL) { /* "0.25", "100", "-0" */
        n = (Py_ssize_t)strlen(repr);
        memcpy(text, repr, (size_t)n);
        if (memchr(text, '.', (size_t)n) != NULL) {
            while (text[n - 1] == '0') n--;
            if (text[n - 1] == '.') n--;
        }
    } else { /* "1.5e+16", "2.5e-05": the digits placed at the exponent */
        const char *p = repr;
        if (*p == '-') text[n++] = *p++;
        char digits[32];
        int count = 0;
        for (; p < e; p++)
            if (*p != '.') digits[count++] = *p;
        int point = 1 + atoi(e + 1); /* digits before the decimal point */
        if (point >= count) {
            memcpy(text + n, digits, (size_t)count);
            n += count;
            for (int i = count; i < point; i++) text[n++] = '0';
        } else if (point <= 0) {
            text[n++] = '0';
            text[n++] = '.';
            for (int i = point; i < 0; i++) text[n++] = '0';
            memcpy(text + n, digits, (size_t)count);
            n += count;
        } else {
            memcpy(text + n, digits, (size_t)point);
            n += point;
            text[n++] = '.';
            memcpy(text + n, digits + point, (size_t)(count - point));
            n += count - point;
        }
    }
    PyMem_Free(repr);
    return strings_append(values, text, n);
}

/* An AnyValue's text into values. */
static int append_value_text(Context *c, Strings *values, const uint8_t *p, const uint8_t *end) {
    Reader r = {p, end};
    Field f, chosen = {0};
    int set = 0;
    while (r.p < r.end) {
        if (next_field(&r, &f) != OK) return DECLINE;
        if (f.number >= 1 && f.number <= 7) {
            chosen = f;
            set++;
        }
    }
    if (set == 0) return strings_append(values, "", 0);
    if (set == 1) {
        char text[24];
        switch (chosen.number) {
        case 1:
            EXPECT(chosen, 2);
            return strings_append(values, chosen.bytes.p, chosen.bytes.end - chosen.bytes.p);
        case 2:
            EXPECT(chosen, 0);
            return chosen.value ? strings_append(values, "true", 4) : strings_append(values, "false", 5);
        case 3:
            EXPECT(chosen, 0);
            return strings_append(values, text, snprintf(text, sizeof text, "%lld", (long long)(int64_t)chosen.value));
        case 4: {
            EXPECT(chosen, 1);
            double value;
            memcpy(&value, &chosen.value, 8);
            return append_double_text(values, value);
        }
        default:
            break;
        }
    }
    PyObject *raw = PyBytes_FromStringAndSize((const char *)p, end - p);
    if (raw == NULL) return FAIL;
    PyObject *result = PyObject_CallOneArg(c->text, raw);
    Py_DECREF(raw);
    if (result == NULL) return FAIL;
    Py_ssize_t n;
    const char *utf8 = PyUnicode_Check(result) ? PyUnicode_AsUTF8AndSize(result, &n) : NULL;
    int status = utf8 == NULL ? (PyErr_Occurred() ? FAIL : DECLINE) : strings_append(values, utf8, n);
    Py_DECREF(result);
    return status;
}

/* One KeyValue into map's current row; a key already in the row (from entry first on) declines. */
static int append_attribute(Context *c, Map *m, Py_ssize_t first, Reader r) {
    Field f;
    const uint8_t *key = (const uint8_t *)"", *value = NULL, *value_end = NULL;
    Py_ssize_t key_length = 0;
    while (r.p < r.end) {
        if (next_field(&r, &f) != OK) return DECLINE;
        if (f.number == 1) {
            EXPECT(f, 2);
            key = f.bytes.p;
            key_length = f.bytes.end - f.bytes.p;
        } else if (f.number == 2) {
            EXPECT(f, 2);
            if (value != NULL) return DECLINE; /* set twice: the messages merge */
            value = f.bytes.p;
            value_end = f.bytes.end;
        }
    }
    for (Py_ssize_t i = first; i < m->keys.count; i++) {
        Py_ssize_t n;
        const char *other = strings_at(&m->keys, i, &n);
        if (n == key_length && memcmp(other, key, (size_t)n) == 0) return DECLINE;
    }
    int status = strings_append(&m->keys, key, key_length);
    if (status != OK) return status;
    return value == NULL ? strings_append(&m->values, "", 0) : append_value_text(c, &m->values, value, value_end);
}

#define CHECK(call)                      \
    do {                                 \
        int status_ = (call);            \
        if (status_ != OK) return status_; \
    } while (0)

typedef struct {
    Buffer timestamps;
    Strings trace_ids, span_ids, parent_ids, trace_states, names;
    Buffer kinds;
    Strings services;
    Map resources;
    Strings scope_names, scope_versions;
    Map attributes;
    Buffer durations;
    Buffer status_codes;
    Strings status_messages;
    Buffer event_offsets;
    Buffer event_times;
    Strings event_names;
    Map event_attributes;
    Buffer link_offsets;
    Strings link_trace_ids, link_span_ids, link_states;
    Map link_attributes;
    Py_ssize_t rows;
} Columns;

static int columns_init(Columns *t) {
    Strings *strings[] = {&t->trace_ids,     &t->span_ids,        &t->parent_ids,     &t->trace_states,
                          &t->names,         &t->services,        &t->scope_names,    &t->scope_versions,
                          &t->status_messages, &t->event_names,   &t->link_trace_ids, &t->link_span_ids,
                          &t->link_states};
    for (size_t i = 0; i < sizeof strings / sizeof *strings; i++) CHECK(strings_init(strings[i]));
    Map *maps[] = {&t->resources, &t->attributes, &t->event_attributes, &t->link_attributes};
    for (size_t i = 0; i < sizeof maps / sizeof *maps; i++) CHECK(map_init(maps[i]));
    CHECK(append_i32(&t->event_offsets, 0));
    return append_i32(&t->link_offsets, 0);
}

static void strings_free(Strings *s) {
    PyMem_Free(s->offsets.data);
    PyMem_Free(s->data.data);
}

static void map_free(Map *m) {
    PyMem_Free(m->offsets.data);
    strings_free(&m->keys);
    strings_free(&m->values);
}

static void columns_free(Columns *t) {
    Strings *strings[] = {&t->trace_ids,     &t->span_ids,        &t->parent_ids,     &t->trace_states,
                          &t->names,         &t->services,        &t->scope_names,    &t->scope_versions,
                          &t->status_messages, &t->event_names,   &t->link_trace_ids, &t->link_span_ids,
                          &t->link_states};
    for (size_t i = 0; i < sizeof strings / sizeof *strings; i++) strings_free(strings[i]);
    Map *maps[] = {&t->resources, &t->attributes, &t->event_attributes, &t->link_attributes};
    for (size_t i = 0; i < sizeof maps / sizeof *maps; i++) map_free(maps[i]);
    Buffer *buffers[] = {&t->timestamps, &t->kinds, &t->durations, &t->status_codes,
                         &t->event_offsets, &t->event_times, &t->link_offsets};
    for (size_t i = 0; i < sizeof buffers / sizeof *buffers; i++) PyMem_Free(buffers[i]->data);
}

typedef struct {
    Strings keys, values; /* the resource's attributes, copied to each span's row */
    const char *service;
    Py_ssize_t service_length;
    int has_service;
} Resource;

static int time_ok(uint64_t t) { return t < ((uint64_t)1 << 63); }

static int append_event(Context *c, Columns *t, Reader r) {
    Field f;
    uint64_t time = 0;
    const uint8_t *name = (const uint8_t *)"";
    Py_ssize_t name_length = 0, first = t->event_attributes.keys.count;
    while (r.p < r.end) {
        CHECK(next_field(&r, &f));
        if (f.number == 1) {
            EXPECT(f, 1);
            time = f.value;
        } else if (f.number == 2) {
            EXPECT(f, 2);
            name = f.bytes.p;
            name_length = f.bytes.end - f.bytes.p;
        } else if (f.number == 3) {
            EXPECT(f, 2);
            CHECK(append_attribute(c, &t->event_attributes, first, f.bytes));
        }
    }
    if (!time_ok(time)) return DECLINE;
    CHECK(append_i64(&t->event_times, (int64_t)time));
    CHECK(strings_append(&t->event_names, name, name_length));
    return map_end_row(&t->event_attributes);
}

static int append_link(Context *c, Columns *t, Reader r) {
    Field f;
    Reader trace_id = {0}, span_id = {0}, state = {0};
    Py_ssize_t first = t->link_attributes.keys.count;
    while (r.p < r.end) {
        CHECK(next_field(&r, &f));
        if (f.number >= 1 && f.number <= 3) {
            EXPECT(f, 2);
            *(f.number == 1 ? &trace_id : f.number == 2 ? &span_id : &state) = f.bytes;
        } else if (f.number == 4) {
            EXPECT(f, 2);
            CHECK(append_attribute(c, &t->link_attributes, first, f.bytes));
        }
    }
    CHECK(strings_append_hex(&t->link_trace_ids, trace_id.p, trace_id.end - trace_id.p));
    CHECK(strings_append_hex(&t->link_span_ids, span_id.p, span_id.end - span_id.p));
    CHECK(strings_append(&t->link_states, state.p, state.end - state.p));
    return map_end_row(&t->link_attributes);
}

static int append_span(Context *c, Columns *t, const Resource *resource, Reader scope_name, Reader scope_version,
                       Reader r) {
    Field f;
    Reader trace_id = {0}, span_id = {0}, parent_id = {0}, state = {0}, name = {0}, message = {0};
    uint64_t start = 0, end = 0, kind = 0, code = 0;
    Py_ssize_t first = t->attributes.keys.count;
    while (r.p < r.end) {
        CHECK(next_field(&r, &f));
        switch (f.number) {
        case 1: case 2: case 3: case 4: case 5:
            EXPECT(f, 2);
            *(f.number == 1 ? &trace_id : f.number == 2 ? &span_id : f.number == 3 ? &state
              : f.number == 4 ? &parent_id : &name) = f.bytes;
            break;
        case 6:
            EXPECT(f, 0);
            kind = f.value;
            break;
        case 7: case 8:
            EXPECT(f, 1);
            *(f.number == 7 ? &start : &end) = f.value;
            break;
        case 9:
            EXPECT(f, 2);
            CHECK(append_attribute(c, &t->attributes, first, f.bytes));
            break;
        case 11:
            EXPECT(f, 2);
            CHECK(append_event(c, t, f.bytes));
            break;
        case 13:
            EXPECT(f, 2);
            CHECK(append_link(c, t, f.bytes));
            break;
        case 15: { /* Status; a second one merges into the first: its fields overwrite */
            EXPECT(f, 2);
            Field g;
            while (f.bytes.p < f.bytes.end) {
                CHECK(next_field(&f.bytes, &g));
                if (g.number == 2) {
                    EXPECT(g, 2);
                    message = g.bytes;
                } else if (g.number == 3) {
                    EXPECT(g, 0);
                    code = g.value;
                }
            }
            break;
        }
        default:
            break;
        }
    }
    if (!time_ok(start) || !time_ok(end)) return DECLINE;
    CHECK(append_i64(&t->timestamps, (int64_t)start));
    CHECK(strings_append_hex(&t->trace_ids, trace_id.p, trace_id.end - trace_id.p));
    CHECK(strings_append_hex(&t->span_ids, span_id.p, span_id.end - span_id.p));
    CHECK(strings_append_hex(&t->parent_ids, parent_id.p, parent_id.end - parent_id.p));
    CHECK(strings_append(&t->trace_states, state.p, state.end - state.p));
    CHECK(strings_append(&t->names, name.p, name.end - name.p));
    /* enums are int32 on the wire: the index of the name; one past the names for a value without one */
    int32_t kind_value = (int32_t)kind, code_value = (int32_t)code;
    if (kind_value < 0 || kind_value >= c->span_kinds) kind_value = c->span_kinds;
    if (code_value < 0 || code_value >= c->status_codes) code_value = c->status_codes;
    CHECK(append_i32(&t->kinds, kind_value));
    CHECK(append_i32(&t->status_codes, code_value));
    CHECK(resource->has_service ? strings_append(&t->services, resource->service, resource->service_length)
                                : strings_append(&t->services, "", 0));
    for (Py_ssize_t i = 0; i < resource->keys.count; i++) {
        Py_ssize_t n;
        const char *s = strings_at(&resource->keys, i, &n);
        CHECK(strings_append(&t->resources.keys, s, n));
        s = strings_at(&resource->values, i, &n);
        CHECK(strings_append(&t->resources.values, s, n));
    }
    CHECK(map_end_row(&t->resources));
    CHECK(strings_append(&t->scope_names, scope_name.p, scope_name.end - scope_name.p));
    CHECK(strings_append(&t->scope_versions, scope_version.p, scope_version.end - scope_version.p));
    CHECK(map_end_row(&t->attributes));
    CHECK(append_i64(&t->durations, end > start ? (int64_t)(end - start) : 0));
    CHECK(strings_append(&t->status_messages, message.p, message.end - message.p));
    CHECK(append_i32(&t->event_offsets, t->event_names.count));
    CHECK(append_i32(&t->link_offsets, t->link_trace_ids.count));
    t->rows++;
    return OK;
}

static int append_scope_spans(Context *c, Columns *t, const Resource *resource, Reader r) {
    Field f;
    Reader name = {0}, version = {0}, walk = r;
    while (walk.p < walk.end) { /* the scope first: it may follow the spans on the wire */
        CHECK(next_field(&walk, &f));
        if (f.number == 1) {
            EXPECT(f, 2);
            Field g;
            while (f.bytes.p < f.bytes.end) {
                CHECK(next_field(&f.bytes, &g));
                if (g.number == 1 || g.number == 2) {
                    EXPECT(g, 2);
                    *(g.number == 1 ? &name : &version) = g.bytes;
                }
            }
        }
    }
    while (r.p < r.end) {
        CHECK(next_field(&r, &f));
        if (f.number == 2) {
            EXPECT(f, 2);
            CHECK(append_span(c, t, resource, name, version, f.bytes));
        }
    }
    return OK;
}

static int append_resource_spans(Context *c, Columns *t, PyObject *service_key, Reader r) {
    Field f;
    Resource resource = {0};
    Reader walk = r;
    int status = OK;
    Map scratch = {0};
    if ((status = map_init(&scratch)) != OK) goto done;
    while (walk.p < walk.end) { /* the resource first: it may follow the scope spans on the wire */
        if ((status = next_field(&walk, &f)) != OK) goto done;
        if (f.number != 1) continue;
        if (f.wire != 2) {
            status = DECLINE;
            goto done;
        }
        Field g;
        while (f.bytes.p < f.bytes.end) {
            if ((status = next_field(&f.bytes, &g)) != OK) goto done;
            if (g.number != 1) continue;
            if (g.wire != 2) {
                status = DECLINE;
                goto done;
            }
            if ((status = append_attribute(c, &scratch, 0, g.bytes)) != OK) goto done;
        }
    }
    resource.keys = scratch.keys;
    resource.values = scratch.values;
    Py_ssize_t service_length;
    const char *service = PyUnicode_AsUTF8AndSize(service_key, &service_length);
    if (service == NULL) {
        status = FAIL;
        goto done;
    }
    for (Py_ssize_t i = 0; i < resource.keys.count; i++) {
        Py_ssize_t n;
        const char *key = strings_at(&resource.keys, i, &n);
        if (n == service_length && memcmp(key, service, (size_t)n) == 0) {
            resource.service = strings_at(&resource.values, i, &resource.service_length);
            resource.has_service = 1;
        }
    }
    while (r.p < r.end) {
        if ((status = next_field(&r, &f)) != OK) goto done;
        if (f.number != 2) continue;
        if (f.wire != 2) {
            status = DECLINE;
            goto done;
        }
        if ((status = append_scope_spans(c, t, &resource, f.bytes)) != OK) goto done;
    }
done:
    map_free(&scratch);
    return status;
}

static PyObject *bytes_of(const Buffer *b) {
    return PyBytes_FromStringAndSize(b->data ? b->data : "", b->length);
}

static PyObject *strings_tuple(const Strings *s) {
    return Py_BuildValue("(nNN)", s->count, bytes_of(&s->offsets), bytes_of(&s->data));
}

static PyObject *map_tuple(const Map *m) {
    return Py_BuildValue("(NNN)", bytes_of(&m->offsets), strings_tuple(&m->keys), strings_tuple(&m->values));
}

static PyObject *otel_traces_buffers(PyObject *self, PyObject *const *args, Py_ssize_t nargs) {
    if (nargs != 5 || !PyList_Check(args[0]) || !PyUnicode_Check(args[1])) {
        PyErr_SetString(PyExc_TypeError,
                        "otel_traces_buffers(requests: list[bytes], service_key: str, text, span_kinds: int, "
                        "status_codes: int)");
        return NULL;
    }
    Context context = {args[2], (int32_t)PyLong_AsLong(args[3]), (int32_t)PyLong_AsLong(args[4])};
    if (PyErr_Occurred()) return NULL;
    Columns t;
    memset(&t, 0, sizeof t);
    int status = columns_init(&t);
    for (Py_ssize_t i = 0; status == OK && i < PyList_GET_SIZE(args[0]); i++) {
        PyObject *request = PyList_GET_ITEM(args[0], i);
        if (!PyBytes_Check(request)) {
            PyErr_SetString(PyExc_TypeError, "a request must be bytes");
            status = FAIL;
            break;
        }
        Reader r = {(const uint8_t *)PyBytes_AS_STRING(request),
                    (const uint8_t *)PyBytes_AS_STRING(request) + PyBytes_GET_SIZE(request)};
        Field f;
        while (status == OK && r.p < r.end) {
            status = next_field(&r, &f);
            if (status == OK && f.number == 1)
                status = f.wire == 2 ? append_resource_spans(&context, &t, args[1], f.bytes) : DECLINE;
        }
    }
    PyObject *result = NULL;
    if (status == OK) {
        result = Py_BuildValue(
            "(nNNNNNNNNNNNNNNNNNNNNNNNN)", t.rows, bytes_of(&t.timestamps), strings_tuple(&t.trace_ids),
            strings_tuple(&t.span_ids), strings_tuple(&t.parent_ids), strings_tuple(&t.trace_states),
            strings_tuple(&t.names), bytes_of(&t.kinds), strings_tuple(&t.services), map_tuple(&t.resources),
            strings_tuple(&t.scope_names), strings_tuple(&t.scope_versions), map_tuple(&t.attributes),
            bytes_of(&t.durations), bytes_of(&t.status_codes), strings_tuple(&t.status_messages),
            bytes_of(&t.event_offsets), bytes_of(&t.event_times), strings_tuple(&t.event_names),
            map_tuple(&t.event_attributes), bytes_of(&t.link_offsets), strings_tuple(&t.link_trace_ids),
            strings_tuple(&t.link_span_ids), strings_tuple(&t.link_states), map_tuple(&t.link_attributes));
    } else if (status == DECLINE) {
        result = Py_NewRef(Py_None);
    }
    columns_free(&t);
    return result;
}

static PyMethodDef methods[] = {
    {"otel_traces_buffers", (PyCFunction)(void (*)(void))otel_traces_buffers, METH_FASTCALL,
     "otel_traces_buffers(requests, service_key, text, span_kinds, status_codes) -> the otel_traces columns as Arrow buffers, or None"},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module_def = {
    PyModuleDef_HEAD_INIT, "spanledger_collector._store._otel_columns", "OTLP spans to otel_traces' Arrow buffers.",
    -1, methods,
};

PyMODINIT_FUNC PyInit__otel_columns(void) { return PyModule_Create(&module_def); }
