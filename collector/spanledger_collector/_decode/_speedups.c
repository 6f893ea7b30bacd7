/* The compiled fast path of spanledger_collector._usage.decode_traces.
 *
 * decode_traces(data, extract_usage, context) walks an ExportTraceServiceRequest's protobuf wire format
 * and returns the same rows as the Python decoder (_usage._decode_traces_python), or None whenever the
 * request holds anything it does not handle exactly as the Python decoder would: malformed or unusual
 * wire data (groups, wrong wire types on known fields, invalid UTF-8), array or map attribute values are
 * handed to the Python value decoder, and any error raised by a Python helper makes the whole request go
 * through the Python decoder, which then decides (its result, or the DecodeError it raises). So this file
 * needs to agree with the Python decoder only on the requests it accepts; tests/test_collector_speedups.py
 * checks that on generated and mutated requests.
 *
 * Attribute names, meter names and the record types all come from `context` (built by _usage.py from the
 * generated semconv constants); the slot names below are matched against that context by name. Other
 * producers' dialect names come from configure_foreign() (built by _dialects.py from the usage-sources table).
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <datetime.h>
#include <stdint.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Attribute slots: the span and event attributes the usage extraction reads. */
#define SLOTS(X)                                                                                            \
    X(NOT_MEASURED_REASON) X(USAGE_OWNER) X(PROVIDER_NAME) X(CLOUD_PROVIDER) X(RESOURCE_TYPE)            \
    X(CLOUD_RESOURCE_ID) X(CLOUD_ACCOUNT_ID) X(CLOUD_REGION) X(RESPONSE_MODEL) X(REQUEST_MODEL)          \
    X(WORKFLOW_NAME) X(GEN_AI_WORKFLOW_NAME) X(TENANT_ID) X(INPUT_TOKENS) X(CACHE_READ_TOKENS)            \
    X(CACHE_WRITE_TOKENS) X(CACHE_CREATION_TOKENS) X(OUTPUT_TOKENS) X(ACCELERATOR_TIME)                   \
    X(ACCELERATOR_TYPE) X(OCCUPANCY_START) X(OCCUPANCY_END) X(EGRESS_BYTES) X(INGRESS_BYTES)              \
    X(EGRESS_BOUNDARY) X(OPERATION_NAME) X(SERVER_ADDRESS) X(SERVER_PORT) X(ERROR_TYPE)                   \
    X(TIME_TO_FIRST_CHUNK) X(DATA_LAST_MODIFIED) X(DATA_AGE) X(DATA_BYTES) X(DATA_SOURCE)                 \
    X(DATA_SOURCE_KIND) X(DATA_STALENESS_METHOD)

#define AS_ENUM(name) SLOT_##name,
#define AS_NAME(name) #name,
enum { SLOTS(AS_ENUM) SLOT_COUNT };
static const char *slot_names[] = {SLOTS(AS_NAME)};

/* Constants and helpers from the context, in this order (CONTEXT_NAMES). */
#define CONTEXT(X)                                                                                          \
    X(keys) X(owner_mark) X(data_read_mark) X(not_measured_mark) X(value) X(text) X(number) X(to_float)    \
    X(seconds_to_datetime) X(endpoint_usage) X(resource_defaults) X(no_resource) X(usage_fact) X(data_read) \
    X(llm_call) X(decimal) X(zero) X(max_quantity) X(max_tokens) X(max_nanos) X(not_measured_prefix)                    \
    X(llm_input_tokens) X(llm_cache_read_tokens) X(llm_cache_write_tokens) X(llm_output_tokens)            \
    X(accelerator_seconds) X(endpoint_seconds) X(egress_bytes) X(ingress_bytes) X(token_unit)              \
    X(seconds_unit) X(bytes_unit) X(llm_model) X(gpu_instance) X(sagemaker_endpoint) X(data_transfer)      \
    X(unknown_boundary) X(sagemaker_provider) X(empty)

#define AS_FIELD(name) PyObject *name;
typedef struct { CONTEXT(AS_FIELD) } Context;
#define AS_CONTEXT_NAME(name) #name,
static const char *context_names[] = {CONTEXT(AS_CONTEXT_NAME)};
#define CONTEXT_COUNT (sizeof(context_names) / sizeof(context_names[0]))

/* Resource defaults (_usage._ResourceDefaults) field indexes. */
enum { RES_PROVIDER, RES_RESOURCE_ID, RES_ACCOUNT_ID, RES_REGION, RES_WORKFLOW, RES_TENANT, RES_SERVICE };

/* The records this decoder builds, field by field in the order it fills them. The module exposes each order
 * (USAGE_FACT_FIELDS, DATA_READ_FIELDS, LLM_CALL_FIELDS, SPAN_COLUMNS) and _usage.py compares them with the
 * field tables (UsageFact, DataRead, LlmCall, SpanColumns) at import, declining this decoder if they differ. */
#define FACT_FIELDS_OF(X)                                                                                   \
    X(trace_id) X(span_id) X(meter) X(start_time) X(end_time) X(quantity) X(unit) X(resource_id)            \
    X(resource_type) X(provider) X(account_id) X(region) X(model) X(boundary) X(accelerator_type)         \
    X(workflow) X(tenant) X(service) X(estimated_cost) X(currency) X(catalog_version) X(unpriced_reason)
#define READ_FIELDS_OF(X)                                                                                   \
    X(trace_id) X(span_id) X(seq) X(read_time) X(source) X(source_kind) X(last_modified) X(age_seconds)     \
    X(bytes) X(staleness_method) X(workflow) X(tenant) X(service)
#define CALL_FIELDS_OF(X)                                                                                   \
    X(operation) X(provider) X(request_model) X(response_model) X(server_address) X(server_port)            \
    X(error_type) X(duration_s) X(input_tokens) X(output_tokens) X(time_to_first_chunk_s)
#define SPAN_COLUMNS_OF(X)                                                                                  \
    X(trace_id) X(span_id) X(parent_span_id) X(name) X(kind) X(service) X(start_time_unix_nano)            \
    X(end_time_unix_nano) X(status_code) X(unmeasured)

/* Issue 15's records: a candidate (built here), and what settle_quiet() gives back for each. */
#define CANDIDATE_FIELDS_OF(X) X(trace_id) X(span_id) X(facts) X(llm_calls)
#define REPORTED_FIELDS_OF(X) X(meters) X(owner) X(counted)
#define CANDIDATE_SPAN_FIELDS_OF(X) X(trace_id) X(span_id)

#define AS_FACT_INDEX(name) FACT_##name,
#define AS_READ_INDEX(name) READ_##name,
#define AS_CALL_INDEX(name) CALL_##name,
#define AS_COLUMN_INDEX(name) COL_##name,
enum { FACT_FIELDS_OF(AS_FACT_INDEX) FACT_FIELDS };
enum { READ_FIELDS_OF(AS_READ_INDEX) READ_FIELDS };
enum { CALL_FIELDS_OF(AS_CALL_INDEX) CALL_FIELDS };
enum { SPAN_COLUMNS_OF(AS_COLUMN_INDEX) COLUMNS };
#define AS_CANDIDATE_INDEX(name) CANDIDATE_##name,
#define AS_REPORTED_INDEX(name) REPORTED_##name,
#define AS_CANDIDATE_SPAN_INDEX(name) CANDIDATE_SPAN_##name,
enum { CANDIDATE_FIELDS_OF(AS_CANDIDATE_INDEX) CANDIDATE_FIELDS };
enum { REPORTED_FIELDS_OF(AS_REPORTED_INDEX) REPORTED_FIELDS };
enum { CANDIDATE_SPAN_FIELDS_OF(AS_CANDIDATE_SPAN_INDEX) CANDIDATE_SPAN_FIELDS };
#define AS_FIELD_NAME(name) #name,
static const char *fact_field_names[] = {FACT_FIELDS_OF(AS_FIELD_NAME)};
static const char *read_field_names[] = {READ_FIELDS_OF(AS_FIELD_NAME)};
static const char *call_field_names[] = {CALL_FIELDS_OF(AS_FIELD_NAME)};
static const char *span_column_names[] = {SPAN_COLUMNS_OF(AS_FIELD_NAME)};
static const char *candidate_field_names[] = {CANDIDATE_FIELDS_OF(AS_FIELD_NAME)};
static const char *reported_field_names[] = {REPORTED_FIELDS_OF(AS_FIELD_NAME)};
static const char *candidate_span_field_names[] = {CANDIDATE_SPAN_FIELDS_OF(AS_FIELD_NAME)};

typedef struct {
    const uint8_t *p;
    const uint8_t *end;
} Reader;

typedef struct {
    const uint8_t *p;
    Py_ssize_t n;
    int present;
} Slice;

/* Wire types. */
enum { WT_VARINT = 0, WT_I64 = 1, WT_LEN = 2, WT_I32 = 5 };

/* Every parse function returns 0, or -1 to give the request to the Python decoder. */

static int read_varint_long(Reader *r, uint64_t *out) {
    uint64_t value = 0;
    for (int shift = 0; shift < 64; shift += 7) {
        if (r->p >= r->end) return -1;
        uint8_t byte = *r->p++;
        if (shift == 63 && byte > 1) return -1;
        value |= (uint64_t)(byte & 0x7f) << shift;
        if (!(byte & 0x80)) {
            *out = value;
            return 0;
        }
    }
    return -1;
}

/* Most varints (tags, lengths, small values) are one byte: that case inlined. */
static inline int read_varint(Reader *r, uint64_t *out) {
    if (r->p < r->end && *r->p < 0x80) {
        *out = *r->p++;
        return 0;
    }
    return read_varint_long(r, out);
}

/* upb takes a tag of at most 5 bytes, below 2**32, and not of field 0. */
static int read_tag(Reader *r, uint32_t *field, int *wire_type) {
    const uint8_t *start = r->p;
    uint64_t tag;
    if (read_varint(r, &tag) < 0 || r->p - start > 5 || tag > UINT32_MAX || (tag >> 3) == 0) return -1;
    *field = (uint32_t)(tag >> 3);
    *wire_type = (int)(tag & 7);
    return 0;
}

static int read_len(Reader *r, Slice *out) {
    uint64_t n;
    if (read_varint(r, &n) < 0 || n > (uint64_t)(r->end - r->p)) return -1;
    out->p = r->p;
    out->n = (Py_ssize_t)n;
    out->present = 1;
    r->p += n;
    return 0;
}

static int read_fixed64(Reader *r, uint64_t *out) {
    if (r->end - r->p < 8) return -1;
    uint64_t value = 0;
    for (int i = 7; i >= 0; i--) value = (value << 8) | r->p[i];
    r->p += 8;
    *out = value;
    return 0;
}

/* Skips a field the schema does not read; groups and invalid wire types are not handled. */
static int skip_field(Reader *r, int wire_type) {
    uint64_t ignored;
    Slice slice;
    switch (wire_type) {
    case WT_VARINT: return read_varint(r, &ignored);
    case WT_I64: return read_fixed64(r, &ignored);
    case WT_LEN: return read_len(r, &slice);
    case WT_I32:
        if (r->end - r->p < 4) return -1;
        r->p += 4;
        return 0;
    default: return -1;
    }
}

static int contains(Slice haystack, PyObject *needle) {
    Py_ssize_t n = PyBytes_GET_SIZE(needle);
    if (n == 0 || haystack.n < n) return 0;
    return memmem(haystack.p, (size_t)haystack.n, PyBytes_AS_STRING(needle), (size_t)n) != NULL;
}

/* Eight bytes at a time: every attribute key is checked. */
static int is_ascii(Slice s) {
    uint64_t bits = 0, word;
    Py_ssize_t i = 0;
    for (; i + 8 <= s.n; i += 8) {
        memcpy(&word, s.p + i, 8);
        bits |= word;
    }
    for (; i < s.n; i++) bits |= s.p[i];
    return !(bits & 0x8080808080808080ULL);
}

/* A string field upb would check for UTF-8 but that is not needed here. */
static int check_utf8(Slice s) {
    if (is_ascii(s)) return 0;
    PyObject *text = PyUnicode_DecodeUTF8((const char *)s.p, s.n, NULL);
    if (text == NULL) return -1;
    Py_DECREF(text);
    return 0;
}

/* Keys by length, for matching attribute keys to slots. */
#define MAX_KEY_LEN 128
typedef struct {
    const char *key;
    Py_ssize_t n;
    int slot;
    uint64_t tail; /* key_tail() of the key */
} SlotKey;

/* The last 8 bytes of a key (all of a shorter one, zero-padded): many names share their first bytes
 * (gen_ai., spanledger., cloud.), so comparing the tails first spares most memcmp calls. */
static uint64_t key_tail(const uint8_t *key, Py_ssize_t n) {
    uint64_t tail = 0;
    if (n >= 8) memcpy(&tail, key + n - 8, 8);
    else memcpy(&tail, key, (size_t)n);
    return tail;
}

typedef struct {
    Context ctx;
    long long max_tokens;
    PyObject *slot_keys[SLOT_COUNT]; /* each slot's attribute name (str), for counting refused values */
    SlotKey keys[SLOT_COUNT];
    int keys_by_len_start[MAX_KEY_LEN + 2];
    int configured;
} State;

static State state;

static int match_key(const SlotKey *keys, const int *by_len_start, const uint8_t *key, Py_ssize_t n,
                     uint64_t tail) {
    if (n > MAX_KEY_LEN) return -1;
    for (int i = by_len_start[n]; i < by_len_start[n + 1]; i++)
        if (keys[i].tail == tail && memcmp(keys[i].key, key, (size_t)n) == 0) return keys[i].slot;
    return -1;
}

/* Issue 15: the attributes other producers report usage in (configure_foreign(), from _dialects, which derives
 * them from the generated usage-sources table), read from spans without the owner mark that contain a report
 * mark. Each source name has a source index; a slot read through sources takes the first one present. */
#define MAX_SOURCES 128
typedef struct {
    PyObject *config;                     /* the dict given to configure_foreign(), kept: keys point into it */
    PyObject *report_marks;               /* tuple of non-empty bytes */
    PyObject *provider;                   /* _dialects.provider_value: str -> str */
    PyObject *candidate;                  /* _producers.Candidate */
    PyObject *reported;                   /* _producers.Reported */
    PyObject *candidate_span;             /* _store.CandidateSpan */
    SlotKey keys[MAX_SOURCES];            /* .slot is the source index */
    int keys_by_len_start[MAX_KEY_LEN + 2];
    int count;
    int read_through[SLOT_COUNT];         /* the slot is a usage field, read from its sources */
    int sources[SLOT_COUNT][MAX_SOURCES]; /* those sources' indexes, in precedence order */
    int source_count[SLOT_COUNT];
    int blank[SLOT_COUNT];                /* spanledger's own names: none on another producer's span */
    int token_slot[SLOT_COUNT];           /* a slot whose presence makes the span report usage */
    int uncached[MAX_SOURCES], uncached_count; /* input tokens without the cache tokens */
    int total[MAX_SOURCES], total_count;       /* total tokens (output = total - input) */
    int declines[MAX_SOURCES];            /* a source that sends the span, and so the request, to Python */
    int configured;
} Foreign;

static Foreign foreign;

/* Reads one map<string, bytes> entry (an OTLP KeyValue) into its slot; the last value of a key wins. upb keeps an
 * entry with any other field as an unknown field instead of a map entry, so such an entry is declined. */
static int read_attribute(Slice entry, Slice *slots, Slice *sources) {
    Reader r = {entry.p, entry.p + entry.n};
    Slice key = {(const uint8_t *)"", 0, 0}, value = {(const uint8_t *)"", 0, 0};
    /* As every OTLP exporter writes an entry: the key, then the value, each shorter than 128 bytes. The loop below
     * reads such an entry to the same key and value. */
    const uint8_t *p = entry.p;
    Py_ssize_t key_n = entry.n >= 4 && p[0] == ((1 << 3) | WT_LEN) && p[1] < 0x80 ? p[1] : -1;
    if (key_n >= 0 && key_n + 4 <= entry.n && p[key_n + 2] == ((2 << 3) | WT_LEN) && p[key_n + 3] < 0x80 &&
        key_n + 4 + p[key_n + 3] == entry.n) {
        key = (Slice){p + 2, key_n, 1};
        value = (Slice){p + key_n + 4, p[key_n + 3], 1};
        if (check_utf8(key) < 0) return -1;
        r.p = r.end;
    }
    while (r.p < r.end) {
        uint32_t field;
        int wire_type;
        if (read_tag(&r, &field, &wire_type) < 0) return -1;
        if (field == 1 || field == 2) {
            if (wire_type != WT_LEN) return -1;
            if (read_len(&r, field == 1 ? &key : &value) < 0) return -1;
            if (field == 1 && check_utf8(key) < 0) return -1;
        } else {
            return -1;
        }
    }
    uint64_t tail = key_tail(key.p, key.n);
    int slot = match_key(state.keys, state.keys_by_len_start, key.p, key.n, tail);
    if (slot >= 0) {
        slots[slot] = value;
        slots[slot].present = 1;
    }
    if (sources != NULL && (slot = match_key(foreign.keys, foreign.keys_by_len_start, key.p, key.n, tail)) >= 0) {
        sources[slot] = value;
        sources[slot].present = 1;
    }
    return 0;
}

/* Fails at once while an error is pending, so that a chain of helpers after a failure calls no Python code. */
#define UNLESS_FAILED(call) (PyErr_Occurred() ? NULL : (call))

/* Decodes an AnyValue; simple values here, arrays, maps and anything unusual by the Python decoder. */
/* The value of a simple AnyValue (string, bool, int, double, bytes; None when absent or empty), or NULL without an
 * error set where it takes the Python decoder (arrays, maps, anything unusual); NULL with an error on failure. */
static PyObject *simple_value(const Slice *slot) {
    if (!slot->present || slot->n == 0) Py_RETURN_NONE;
    Reader r = {slot->p, slot->p + slot->n};
    uint32_t field;
    int wire_type;
    if (read_tag(&r, &field, &wire_type) == 0) {
        Slice bytes;
        uint64_t number;
        PyObject *value = NULL;
        int ok = 0;
        switch (field) {
        case 1:
        case 7:
            if (wire_type == WT_LEN && read_len(&r, &bytes) == 0 && r.p == r.end) {
                ok = 1;
                value = field == 1 ? PyUnicode_DecodeUTF8((const char *)bytes.p, bytes.n, NULL)
                                   : PyBytes_FromStringAndSize((const char *)bytes.p, bytes.n);
            }
            break;
        case 2:
        case 3:
            if (wire_type == WT_VARINT && read_varint(&r, &number) == 0 && r.p == r.end) {
                ok = 1;
                value = field == 2 ? PyBool_FromLong(number != 0) : PyLong_FromLongLong((long long)number);
            }
            break;
        case 4:
            if (wire_type == WT_I64 && read_fixed64(&r, &number) == 0 && r.p == r.end) {
                double d;
                memcpy(&d, &number, sizeof d);
                ok = 1;
                value = PyFloat_FromDouble(d);
            }
            break;
        }
        if (ok) return value;
    }
    return NULL;
}

static PyObject *value_of(const Slice *slot) {
    if (PyErr_Occurred()) return NULL;
    PyObject *value = simple_value(slot);
    if (value != NULL || PyErr_Occurred()) return value;
    PyObject *raw = PyBytes_FromStringAndSize((const char *)slot->p, slot->n);
    if (raw == NULL) return NULL;
    value = PyObject_GetItem(state.ctx.value, raw);
    Py_DECREF(raw);
    return value;
}

/* _usage._text: str as it is, None for None and bytes, str() of an int, bool or float (as _text does), other
 * values (arrays, maps) through Python. */
static PyObject *text_of(PyObject *value) {
    if (value == NULL) return NULL;
    if (value == Py_None || PyUnicode_CheckExact(value)) return value;
    PyObject *text;
    if (PyBytes_CheckExact(value)) text = Py_NewRef(Py_None);
    else if (PyLong_CheckExact(value) || PyBool_Check(value) || PyFloat_CheckExact(value)) text = PyObject_Str(value);
    else text = PyObject_CallOneArg(state.ctx.text, value);
    Py_DECREF(value);
    return text;
}

/* _usage._number: Decimal(int) for an int, other values through Python. */
static PyObject *number_of(PyObject *value) {
    if (value == NULL) return NULL;
    if (value == Py_None) return value;
    PyObject *number = PyObject_CallOneArg(PyLong_CheckExact(value) ? state.ctx.decimal : state.ctx.number, value);
    Py_DECREF(value);
    return number;
}

/* Most digits a quantized coefficient has here; more go to Python, whose context (precision 28 by default) decides
 * whether quantize() fails. */
#define MAX_QUANTIZED_DIGITS 25

/* _usage._float of a float, without Decimal: float(Decimal(str(x)).quantize(Decimal("1e-9"))), None when not
 * finite. str(x) is x's shortest repr, D * 10**E; quantize() rounds it half-even to E = -9, exactly (the
 * coefficient has at most MAX_QUANTIZED_DIGITS digits), and float() of a Decimal is its text correctly rounded,
 * as PyOS_string_to_double does. NULL without an error set where it takes Python. */
static PyObject *quantized_float(double x) {
    if (!isfinite(x)) Py_RETURN_NONE;
    char *text = PyOS_double_to_string(x, 'r', 0, 0, NULL);
    if (text == NULL) return NULL;
    /* The repr's digits (no leading zeros) and exponent. */
    char digits[40];
    int n = 0, fraction = 0, in_fraction = 0, exponent = 0, negative = text[0] == '-';
    const char *c = text + negative;
    for (; (*c >= '0' && *c <= '9') || *c == '.'; c++) {
        if (*c == '.') {
            in_fraction = 1;
            continue;
        }
        fraction += in_fraction;
        if (n == 0 && *c == '0') continue;
        if (n == (int)sizeof digits) break; /* not a repr this function knows: Python decides */
        digits[n++] = *c;
    }
    if (*c == 'e') exponent = atoi(c + 1);
    else if (*c != '\0') n = (int)sizeof digits;
    PyMem_Free(text);
    if (n == (int)sizeof digits) return NULL;
    int shift = exponent - fraction + 9; /* the value is digits * 10**(shift - 9) */
    char coefficient[MAX_QUANTIZED_DIGITS + 16];
    int length;
    if (shift >= 0) {
        if (n + shift > MAX_QUANTIZED_DIGITS) return NULL;
        memcpy(coefficient, digits, (size_t)n);
        memset(coefficient + n, '0', (size_t)shift);
        length = n + shift;
    } else {
        /* Drop the last -shift digits, rounding half to even. */
        int kept = n + shift > 0 ? n + shift : 0;
        if (kept >= MAX_QUANTIZED_DIGITS) return NULL; /* a carry may add a digit */
        int up = 0;
        if (-shift <= n) {
            int first = digits[kept] - '0', rest_zero = 1;
            for (int i = kept + 1; i < n; i++)
                if (digits[i] != '0') rest_zero = 0;
            int odd = kept > 0 && (digits[kept - 1] - '0') % 2;
            up = first > 5 || (first == 5 && (!rest_zero || odd));
        }
        coefficient[0] = '0';
        memcpy(coefficient + 1, digits, (size_t)kept);
        length = kept + 1;
        for (int i = length - 1; up && i >= 0; i--) {
            up = coefficient[i] == '9';
            coefficient[i] = up ? '0' : (char)(coefficient[i] + 1);
        }
    }
    char number[MAX_QUANTIZED_DIGITS + 24];
    snprintf(number, sizeof number, "%s%.*se-9", negative ? "-" : "", length, coefficient);
    double quantized = PyOS_string_to_double(number, NULL, NULL);
    if (quantized == -1.0 && PyErr_Occurred()) return NULL;
    return PyFloat_FromDouble(quantized);
}

static PyObject *float_of(PyObject *value) {
    if (value == NULL) return NULL;
    if (value == Py_None) return value;
    if (PyFloat_CheckExact(value)) {
        PyObject *quantized = quantized_float(PyFloat_AS_DOUBLE(value));
        if (quantized != NULL || PyErr_Occurred()) {
            Py_DECREF(value);
            return quantized;
        }
    }
    PyObject *number = PyObject_CallOneArg(state.ctx.to_float, value);
    Py_DECREF(value);
    return number;
}

/* _usage._span_text: the slot's text, else the fallback slot's, else the resource's default. */
static PyObject *span_text(const Slice *slots, int slot, int fallback, PyObject *resource_default) {
    PyObject *value = value_of(&slots[slot]);
    if (value == Py_None && fallback >= 0) {
        Py_DECREF(value);
        value = value_of(&slots[fallback]);
    }
    if (value == Py_None) {
        Py_DECREF(value);
        return Py_NewRef(resource_default);
    }
    return text_of(value);
}

/* A naive UTC datetime with microseconds, as _usage.nanos_to_datetime (nanos <= 2**63 - 1). */
static PyObject *nanos_to_datetime(uint64_t nanos) {
    int64_t micros = (int64_t)(nanos / 1000);
    int64_t days = micros / 86400000000LL;
    int64_t rest = micros % 86400000000LL;
    /* Civil date from days since 1970-01-01 (days >= 0 here). */
    int64_t z = days + 719468;
    int64_t era = z / 146097;
    int64_t doe = z - era * 146097;
    int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    int64_t year = yoe + era * 400;
    int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    int64_t mp = (5 * doy + 2) / 153;
    int day = (int)(doy - (153 * mp + 2) / 5 + 1);
    int month = (int)(mp < 10 ? mp + 3 : mp - 9);
    if (month <= 2) year += 1;
    int64_t seconds = rest / 1000000;
    return PyDateTime_FromDateAndTime((int)year, month, day, (int)(seconds / 3600), (int)(seconds / 60 % 60),
                                      (int)(seconds % 60), (int)(rest % 1000000));
}

/* A NamedTuple instance from `items` (references stolen; NULL items make it fail and are released). */
static PyObject *record(PyObject *type, PyObject **items, Py_ssize_t n) {
    for (Py_ssize_t i = 0; i < n; i++) {
        if (items[i] == NULL) {
            for (Py_ssize_t j = 0; j < n; j++) Py_XDECREF(items[j]);
            return NULL;
        }
    }
    PyObject *tuple = ((PyTypeObject *)type)->tp_alloc((PyTypeObject *)type, n);
    if (tuple == NULL) {
        for (Py_ssize_t j = 0; j < n; j++) Py_DECREF(items[j]);
        return NULL;
    }
    for (Py_ssize_t i = 0; i < n; i++) PyTuple_SET_ITEM(tuple, i, items[i]);
    return tuple;
}

static int append_new(PyObject *list, PyObject *item) {
    if (item == NULL) return -1;
    int result = PyList_Append(list, item);
    Py_DECREF(item);
    return result;
}

static PyObject *token_decimal(long long count);

/* What one owner span's facts share. */
typedef struct {
    PyObject *trace_id, *span_id, *start, *end, *resource_id, *provider, *account_id, *region, *model,
        *workflow, *tenant, *service;
} FactCommon;

/* Appends a fact of a quantity known to be in (0, 10**18) (steals quantity). */
static int append_fact(PyObject *facts, const FactCommon *c, PyObject *meter, PyObject *quantity, PyObject *unit,
                       PyObject *resource_type, PyObject *boundary, PyObject *accelerator_type, PyObject *begin,
                       PyObject *finish) {
    if (quantity == NULL) return -1;
    PyObject *items[FACT_FIELDS] = {
        [FACT_trace_id] = Py_NewRef(c->trace_id),
        [FACT_span_id] = Py_NewRef(c->span_id),
        [FACT_meter] = Py_NewRef(meter),
        [FACT_start_time] = Py_NewRef(begin ? begin : c->start),
        [FACT_end_time] = Py_NewRef(finish ? finish : c->end),
        [FACT_quantity] = quantity,
        [FACT_unit] = Py_NewRef(unit),
        [FACT_resource_id] = Py_NewRef(c->resource_id),
        [FACT_resource_type] = Py_NewRef(resource_type),
        [FACT_provider] = Py_NewRef(c->provider),
        [FACT_account_id] = Py_NewRef(c->account_id),
        [FACT_region] = Py_NewRef(c->region),
        [FACT_model] = Py_NewRef(c->model),
        [FACT_boundary] = Py_NewRef(boundary),
        [FACT_accelerator_type] = Py_NewRef(accelerator_type),
        [FACT_workflow] = Py_NewRef(c->workflow),
        [FACT_tenant] = Py_NewRef(c->tenant),
        [FACT_service] = Py_NewRef(c->service),
        /* The estimate is the cost processor's. */
        [FACT_estimated_cost] = Py_NewRef(Py_None),
        [FACT_currency] = Py_NewRef(Py_None),
        [FACT_catalog_version] = Py_NewRef(Py_None),
        [FACT_unpriced_reason] = Py_NewRef(Py_None),
    };
    return append_new(facts, record(state.ctx.usage_fact, items, FACT_FIELDS));
}

/* _owner_usage's add(): appends a fact unless the quantity is None, <= 0 or >= 10**18 (steals quantity). */
static int add_fact(PyObject *facts, const FactCommon *c, PyObject *meter, PyObject *quantity, PyObject *unit,
                    PyObject *resource_type, PyObject *boundary, PyObject *accelerator_type, PyObject *begin,
                    PyObject *finish) {
    if (quantity == NULL) return -1;
    if (quantity == Py_None) {
        Py_DECREF(quantity);
        return 0;
    }
    int positive = PyObject_RichCompareBool(quantity, state.ctx.zero, Py_GT);
    int small = positive == 1 ? PyObject_RichCompareBool(quantity, state.ctx.max_quantity, Py_LT) : 0;
    if (positive < 0 || small < 0 || !positive || !small) {
        Py_DECREF(quantity);
        return positive < 0 || small < 0 ? -1 : 0;
    }
    return append_fact(facts, c, meter, quantity, unit, resource_type, boundary, accelerator_type, begin, finish);
}

/* A token fact: its count is in (0, max_tokens], and configure() checked max_tokens < max_quantity, so add()'s
 * bounds hold without comparing Decimals. */
static int add_token_fact(PyObject *facts, const FactCommon *c, PyObject *meter, long long count,
                          PyObject *resource_type) {
    return append_fact(facts, c, meter, token_decimal(count), state.ctx.token_unit, resource_type, Py_None, Py_None,
                       NULL, NULL);
}

static int truthy(PyObject *value) { return value != NULL && value != Py_None && PyObject_IsTrue(value) == 1; }

static PyObject *text_or_empty(PyObject *text) {
    if (text == NULL || text != Py_None) return text;
    Py_DECREF(text);
    return Py_NewRef(state.ctx.empty);
}

/* _usage._token_count: 1 with *count set for an int in [0, max_tokens]; 0 for an absent value, and for any other
 * value, which is refused (counted in refused[slot]); -1 on an error. */
static int token_count(const Slice *slots, int slot, Py_ssize_t *refused, long long *count) {
    PyObject *value = value_of(&slots[slot]);
    if (value == NULL) return -1;
    int result = 0;
    if (value != Py_None) {
        int overflow = 0;
        long long n = PyLong_CheckExact(value) ? PyLong_AsLongLongAndOverflow(value, &overflow) : -1;
        if (n == -1 && PyErr_Occurred()) {
            result = -1;
        } else if (PyLong_CheckExact(value) && !overflow && n >= 0 && n <= state.max_tokens) {
            *count = n;
            result = 1;
        } else {
            refused[slot]++;
        }
    }
    Py_DECREF(value);
    return result;
}

static PyObject *token_decimal(long long count) {
    PyObject *number = PyLong_FromLongLong(count);
    if (number == NULL) return NULL;
    PyObject *decimal = PyObject_CallOneArg(state.ctx.decimal, number);
    Py_DECREF(number);
    return decimal;
}

static PyObject *token_int(int present, long long count) {
    return present ? UNLESS_FAILED(PyLong_FromLongLong(count)) : Py_NewRef(Py_None);
}

/* _usage._owner_usage: the usage facts of one owner span and its LLM call. */
static int owner_usage(PyObject *facts, PyObject *calls, Py_ssize_t *refused, PyObject *trace_id, PyObject *span_id,
                       uint64_t start_ns, uint64_t end_ns, const Slice *slots, PyObject *resource) {
    Context *x = &state.ctx;
    int result = -1;
    FactCommon c = {.trace_id = trace_id, .span_id = span_id};
    PyObject *raw_provider = NULL, *span_provider = NULL, *declared_type = NULL, *response_model = NULL,
             *request_model = NULL, *egress = NULL, *ingress = NULL, *operation = NULL;
    c.start = nanos_to_datetime(start_ns);
    c.end = nanos_to_datetime(end_ns);
    if (c.start == NULL || c.end == NULL) goto done;
    raw_provider = value_of(&slots[SLOT_PROVIDER_NAME]);
    if (raw_provider == NULL) goto done;
    span_provider = text_of(Py_NewRef(raw_provider));
    if (span_provider == NULL) goto done;
    c.provider = raw_provider != Py_None
                     ? Py_NewRef(span_provider)
                     : span_text(slots, SLOT_CLOUD_PROVIDER, -1, PyTuple_GET_ITEM(resource, RES_PROVIDER));
    declared_type = text_of(value_of(&slots[SLOT_RESOURCE_TYPE]));
    c.resource_id = span_text(slots, SLOT_CLOUD_RESOURCE_ID, -1, PyTuple_GET_ITEM(resource, RES_RESOURCE_ID));
    c.account_id = span_text(slots, SLOT_CLOUD_ACCOUNT_ID, -1, PyTuple_GET_ITEM(resource, RES_ACCOUNT_ID));
    c.region = span_text(slots, SLOT_CLOUD_REGION, -1, PyTuple_GET_ITEM(resource, RES_REGION));
    response_model = text_of(value_of(&slots[SLOT_RESPONSE_MODEL]));
    request_model = text_of(value_of(&slots[SLOT_REQUEST_MODEL]));
    c.workflow = span_text(slots, SLOT_WORKFLOW_NAME, SLOT_GEN_AI_WORKFLOW_NAME,
                           PyTuple_GET_ITEM(resource, RES_WORKFLOW));
    c.tenant = span_text(slots, SLOT_TENANT_ID, -1, PyTuple_GET_ITEM(resource, RES_TENANT));
    c.service = PyTuple_GET_ITEM(resource, RES_SERVICE);
    if (!c.provider || !declared_type || !c.resource_id || !c.account_id || !c.region || !response_model ||
        !request_model || !c.workflow || !c.tenant)
        goto done;
    c.model = truthy(response_model) ? response_model : request_model;  /* response_model or request_model */

    PyObject *llm_type = truthy(declared_type) ? declared_type : x->llm_model;
    long long input_n = 0, read_n = 0, write_n = 0, output_n = 0;
    int has_input = token_count(slots, SLOT_INPUT_TOKENS, refused, &input_n);
    if (has_input < 0 || token_count(slots, SLOT_CACHE_READ_TOKENS, refused, &read_n) < 0 ||
        token_count(slots, SLOT_CACHE_WRITE_TOKENS, refused, &write_n) < 0)
        goto done;
    if (write_n == 0 && token_count(slots, SLOT_CACHE_CREATION_TOKENS, refused, &write_n) < 0) goto done;
    /* Counts are at most max_tokens (far below 2**62): no overflow. */
    if (has_input && input_n - read_n - write_n > 0 &&
        add_token_fact(facts, &c, x->llm_input_tokens, input_n - read_n - write_n, llm_type) < 0)
        goto done;
    if (read_n > 0 && add_token_fact(facts, &c, x->llm_cache_read_tokens, read_n, llm_type) < 0) goto done;
    if (write_n > 0 && add_token_fact(facts, &c, x->llm_cache_write_tokens, write_n, llm_type) < 0) goto done;
    int has_output = token_count(slots, SLOT_OUTPUT_TOKENS, refused, &output_n);
    if (has_output < 0) goto done;
    if (output_n > 0 && add_token_fact(facts, &c, x->llm_output_tokens, output_n, llm_type) < 0) goto done;

    PyObject *accelerator_seconds = number_of(value_of(&slots[SLOT_ACCELERATOR_TIME]));
    if (accelerator_seconds == NULL) goto done;
    if (accelerator_seconds != Py_None) {
        PyObject *accelerator_type = text_of(value_of(&slots[SLOT_ACCELERATOR_TYPE]));
        if (accelerator_type == NULL) {
            Py_DECREF(accelerator_seconds);
            goto done;
        }
        int added = add_fact(facts, &c, x->accelerator_seconds, accelerator_seconds, x->seconds_unit,
                             truthy(declared_type) ? declared_type : x->gpu_instance, Py_None, accelerator_type,
                             NULL, NULL);
        Py_DECREF(accelerator_type);
        if (added < 0) goto done;
    } else {
        Py_DECREF(accelerator_seconds);
    }

    int is_endpoint = PyObject_RichCompareBool(declared_type, x->sagemaker_endpoint, Py_EQ);
    if (is_endpoint == 0) is_endpoint = PyObject_RichCompareBool(c.provider, x->sagemaker_provider, Py_EQ);
    if (is_endpoint < 0) goto done;
    if (is_endpoint) {
        PyObject *start_nanos = PyLong_FromUnsignedLongLong(start_ns);
        PyObject *end_nanos = PyLong_FromUnsignedLongLong(end_ns);
        PyObject *occupied_from = value_of(&slots[SLOT_OCCUPANCY_START]);
        PyObject *occupied_to = value_of(&slots[SLOT_OCCUPANCY_END]);
        PyObject *usage = NULL;
        if (start_nanos && end_nanos && occupied_from && occupied_to)
            usage = PyObject_CallFunctionObjArgs(x->endpoint_usage, occupied_from, occupied_to, c.start, c.end,
                                                 start_nanos, end_nanos, NULL);
        Py_XDECREF(start_nanos);
        Py_XDECREF(end_nanos);
        Py_XDECREF(occupied_from);
        Py_XDECREF(occupied_to);
        if (usage == NULL) goto done;
        if (!PyTuple_CheckExact(usage) || PyTuple_GET_SIZE(usage) != 3) {
            Py_DECREF(usage);
            goto done;
        }
        int added = add_fact(facts, &c, x->endpoint_seconds, Py_NewRef(PyTuple_GET_ITEM(usage, 2)),
                             x->seconds_unit, x->sagemaker_endpoint, Py_None, Py_None, PyTuple_GET_ITEM(usage, 0),
                             PyTuple_GET_ITEM(usage, 1));
        Py_DECREF(usage);
        if (added < 0) goto done;
    }

    egress = value_of(&slots[SLOT_EGRESS_BYTES]);
    ingress = value_of(&slots[SLOT_INGRESS_BYTES]);
    if (egress == NULL || ingress == NULL) goto done;
    if (egress != Py_None || ingress != Py_None) {
        PyObject *boundary = text_of(value_of(&slots[SLOT_EGRESS_BOUNDARY]));
        if (boundary == NULL) goto done;
        if (!truthy(boundary)) Py_SETREF(boundary, Py_NewRef(x->unknown_boundary));
        int added = add_fact(facts, &c, x->egress_bytes, number_of(Py_NewRef(egress)), x->bytes_unit,
                             x->data_transfer, boundary, Py_None, NULL, NULL);
        if (added == 0)
            added = add_fact(facts, &c, x->ingress_bytes, number_of(Py_NewRef(ingress)), x->bytes_unit,
                             x->data_transfer, boundary, Py_None, NULL, NULL);
        Py_DECREF(boundary);
        if (added < 0) goto done;
    }

    operation = text_of(value_of(&slots[SLOT_OPERATION_NAME]));
    if (operation == NULL) goto done;
    if (operation != Py_None) {
        int64_t elapsed = end_ns > start_ns ? (int64_t)(end_ns - start_ns) : 0;
        PyObject *items[CALL_FIELDS] = {
            [CALL_operation] = Py_NewRef(operation),
            [CALL_provider] = truthy(span_provider) ? Py_NewRef(span_provider) : Py_NewRef(x->empty),
            [CALL_request_model] = truthy(request_model) ? Py_NewRef(request_model) : Py_NewRef(x->empty),
            [CALL_response_model] = truthy(response_model) ? Py_NewRef(response_model) : Py_NewRef(x->empty),
            [CALL_server_address] = text_or_empty(text_of(value_of(&slots[SLOT_SERVER_ADDRESS]))),
            [CALL_server_port] = text_or_empty(text_of(value_of(&slots[SLOT_SERVER_PORT]))),
            [CALL_error_type] = text_or_empty(text_of(value_of(&slots[SLOT_ERROR_TYPE]))),
            [CALL_duration_s] = UNLESS_FAILED(PyFloat_FromDouble((double)elapsed / 1e9)),
            [CALL_input_tokens] = token_int(has_input, input_n),
            [CALL_output_tokens] = token_int(has_output, output_n),
            [CALL_time_to_first_chunk_s] = float_of(value_of(&slots[SLOT_TIME_TO_FIRST_CHUNK])),
        };
        if (append_new(calls, record(x->llm_call, items, CALL_FIELDS)) < 0) goto done;
    }
    result = 0;
done:
    Py_XDECREF(c.start);
    Py_XDECREF(c.end);
    Py_XDECREF(raw_provider);
    Py_XDECREF(span_provider);
    Py_XDECREF(c.provider);
    Py_XDECREF(declared_type);
    Py_XDECREF(c.resource_id);
    Py_XDECREF(c.account_id);
    Py_XDECREF(c.region);
    Py_XDECREF(response_model);
    Py_XDECREF(request_model);
    Py_XDECREF(c.workflow);
    Py_XDECREF(c.tenant);
    Py_XDECREF(egress);
    Py_XDECREF(ingress);
    Py_XDECREF(operation);
    return result;
}

/* One event of a span (SpanEvent in _otlp.py): time, name, attributes. */
static int read_event(Slice raw, uint64_t *time, Slice *name, Slice *slots) {
    Reader r = {raw.p, raw.p + raw.n};
    *time = 0;
    name->p = (const uint8_t *)"";
    name->n = 0;
    for (int i = 0; i < SLOT_COUNT; i++) slots[i].present = 0;
    while (r.p < r.end) {
        uint32_t field;
        int wire_type;
        Slice slice;
        if (read_tag(&r, &field, &wire_type) < 0) return -1;
        if (field == 1) {
            if (wire_type != WT_I64 || read_fixed64(&r, time) < 0) return -1;
        } else if (field == 2 || field == 3) {
            if (wire_type != WT_LEN || read_len(&r, &slice) < 0) return -1;
            if (field == 2) {
                if (check_utf8(slice) < 0) return -1;
                *name = slice;
            } else if (read_attribute(slice, slots, NULL) < 0) {
                return -1;
            }
        } else if (skip_field(&r, wire_type) < 0) {
            return -1;
        }
    }
    return 0;
}

/* _data_reads' bytes: int(_number(value)) for a size in [0, max_nanos), else None (steals value). An int needs no
 * Decimal: it is its own int(Decimal(value)). */
static PyObject *byte_count(PyObject *value) {
    if (value == NULL || value == Py_None) return value;
    int not_negative, below;
    PyObject *size;
    if (PyLong_CheckExact(value)) {
        int overflow = 0;
        long long n = PyLong_AsLongLongAndOverflow(value, &overflow);
        if (n == -1 && PyErr_Occurred()) {
            Py_DECREF(value);
            return NULL;
        }
        size = value;
        not_negative = overflow > 0 || (overflow == 0 && n >= 0);
    } else {
        size = number_of(value);
        if (size == NULL || size == Py_None) return size;
        not_negative = PyObject_RichCompareBool(size, state.ctx.zero, Py_GE);
    }
    below = not_negative == 1 ? PyObject_RichCompareBool(size, state.ctx.max_nanos, Py_LT) : 0;
    PyObject *count = not_negative < 0 || below < 0 ? NULL
                      : !not_negative || !below     ? Py_NewRef(Py_None)
                      : PyLong_CheckExact(size)     ? Py_NewRef(size)
                                                    : PyNumber_Long(size);
    Py_DECREF(size);
    return count;
}

/* _usage._data_reads: one row per spanledger.data.read event of the span. */
static int data_reads(PyObject *reads, PyObject *trace_id, PyObject *span_id, Slice raw_span, const Slice *slots,
                      PyObject *resource) {
    Context *x = &state.ctx;
    PyObject *workflow = span_text(slots, SLOT_WORKFLOW_NAME, SLOT_GEN_AI_WORKFLOW_NAME,
                                   PyTuple_GET_ITEM(resource, RES_WORKFLOW));
    PyObject *tenant = span_text(slots, SLOT_TENANT_ID, -1, PyTuple_GET_ITEM(resource, RES_TENANT));
    int result = -1;
    if (workflow == NULL || tenant == NULL) goto done;
    Slice event_slots[SLOT_COUNT];
    Reader r = {raw_span.p, raw_span.p + raw_span.n};
    long seq = -1;
    while (r.p < r.end) {
        uint32_t field;
        int wire_type;
        Slice raw;
        if (read_tag(&r, &field, &wire_type) < 0) goto done;
        if (field != 11) {
            if (skip_field(&r, wire_type) < 0) goto done;
            continue;
        }
        if (wire_type != WT_LEN || read_len(&r, &raw) < 0) goto done;
        seq++;
        if (!contains(raw, x->data_read_mark)) continue;
        uint64_t time;
        Slice name;
        if (read_event(raw, &time, &name, event_slots) < 0) goto done;
        if (name.n != PyBytes_GET_SIZE(x->data_read_mark) ||
            memcmp(name.p, PyBytes_AS_STRING(x->data_read_mark), (size_t)name.n) != 0 || time > (uint64_t)INT64_MAX)
            continue;
        PyObject *last_modified = float_of(value_of(&event_slots[SLOT_DATA_LAST_MODIFIED]));
        PyObject *age = last_modified ? float_of(value_of(&event_slots[SLOT_DATA_AGE])) : NULL;
        PyObject *size = age ? byte_count(value_of(&event_slots[SLOT_DATA_BYTES])) : NULL;
        if (size == NULL) {
            Py_XDECREF(last_modified);
            Py_XDECREF(age);
            goto done;
        }
        if (age == Py_None && last_modified != Py_None) {
            double modified = PyFloat_AsDouble(last_modified);
            if (modified == -1.0 && PyErr_Occurred()) {
                Py_DECREF(last_modified);
                Py_DECREF(age);
                Py_DECREF(size);
                goto done;
            }
            Py_SETREF(age, PyFloat_FromDouble((double)time / 1e9 - modified));
        }
        PyObject *modified_at = last_modified == Py_None
                                    ? Py_NewRef(Py_None)
                                    : UNLESS_FAILED(PyObject_CallOneArg(x->seconds_to_datetime, last_modified));
        Py_DECREF(last_modified);
        PyObject *items[READ_FIELDS] = {
            [READ_trace_id] = Py_NewRef(trace_id),
            [READ_span_id] = Py_NewRef(span_id),
            [READ_seq] = UNLESS_FAILED(PyLong_FromLong(seq)),
            [READ_read_time] = UNLESS_FAILED(nanos_to_datetime(time)),
            [READ_source] = text_of(value_of(&event_slots[SLOT_DATA_SOURCE])),
            [READ_source_kind] = text_of(value_of(&event_slots[SLOT_DATA_SOURCE_KIND])),
            [READ_last_modified] = modified_at,
            [READ_age_seconds] = age,
            [READ_bytes] = size,
            [READ_staleness_method] = text_of(value_of(&event_slots[SLOT_DATA_STALENESS_METHOD])),
            [READ_workflow] = Py_NewRef(workflow),
            [READ_tenant] = Py_NewRef(tenant),
            [READ_service] = Py_NewRef(PyTuple_GET_ITEM(resource, RES_SERVICE)),
        };
        if (append_new(reads, record(x->data_read, items, READ_FIELDS)) < 0) goto done;
    }
    result = 0;
done:
    Py_XDECREF(workflow);
    Py_XDECREF(tenant);
    return result;
}

typedef struct {
    PyObject *columns[COLUMNS];
    PyObject *facts, *reads, *calls, *rejection;
    PyObject *candidates; /* _producers.Candidate records, or NULL while there are none */
    Py_ssize_t rejected;
    int extract_usage;
    Py_ssize_t refused[SLOT_COUNT]; /* values refused per attribute (token counts out of bounds) */
    PyObject *trace_id;             /* the last span's trace id text, and its bytes: a trace's spans share it */
    uint8_t trace[16];
} Output;

static PyObject *hex_of(Slice bytes) {
    static const char digits[] = "0123456789abcdef";
    PyObject *text = PyUnicode_New(bytes.n * 2, 127);
    if (text == NULL) return NULL;
    Py_UCS1 *out = PyUnicode_1BYTE_DATA(text);
    for (Py_ssize_t i = 0; i < bytes.n; i++) {
        out[2 * i] = (Py_UCS1)digits[bytes.p[i] >> 4];
        out[2 * i + 1] = (Py_UCS1)digits[bytes.p[i] & 15];
    }
    return text;
}

static int all_zero(Slice s) {
    for (Py_ssize_t i = 0; i < s.n; i++)
        if (s.p[i]) return 0;
    return 1;
}

static int read_status(Slice raw, int32_t *code) {
    Reader r = {raw.p, raw.p + raw.n};
    while (r.p < r.end) {
        uint32_t field;
        int wire_type;
        Slice message;
        uint64_t value;
        if (read_tag(&r, &field, &wire_type) < 0) return -1;
        if (field == 2) {
            if (wire_type != WT_LEN || read_len(&r, &message) < 0 || check_utf8(message) < 0) return -1;
        } else if (field == 3) {
            if (wire_type != WT_VARINT || read_varint(&r, &value) < 0) return -1;
            *code = (int32_t)(uint32_t)value;
        } else if (skip_field(&r, wire_type) < 0) {
            return -1;
        }
    }
    return 0;
}

static int set_rejection(Output *out, PyObject *message) {
    if (message == NULL) return -1;
    Py_SETREF(out->rejection, message);
    out->rejected++;
    return 0;
}

/* --- Issue 15: other producers' usage. A span without the owner mark that contains a report mark is read as
 * _dialects.standard_view reads it (each usage field from its first source present; input tokens from a dialect's
 * uncached count plus the cache tokens; output tokens from a total less the input; spanledger's own names blank
 * but its workflow and tenant),
 * and its facts and call, built as an owner span's, are handed back as a _producers.Candidate: which candidates
 * count is decided in Python (_producers.Candidates.settle) for the compiled and the reference decoder alike.
 * A span carrying a declined source (the fields whose meaning only the reference knows) or a source value that
 * is not a simple AnyValue makes the whole request go to the reference. --- */
static int may_report_foreign_usage(Slice raw) {
    for (Py_ssize_t i = 0; i < PyTuple_GET_SIZE(foreign.report_marks); i++)
        if (contains(raw, PyTuple_GET_ITEM(foreign.report_marks, i))) return 1;
    return 0;
}

/* _dialects._count: 1 with *count set for an int >= 0 (not a bool), 0 for an absent or other value, -1 to decline
 * (a value the reference parses in Python, or an error). */
static int count_of(const Slice *slot, long long *count) {
    PyObject *value = simple_value(slot);
    if (value == NULL) return -1;
    int result = 0;
    if (PyLong_CheckExact(value)) {
        long long n = PyLong_AsLongLong(value); /* from an int64 varint: fits */
        if (n == -1 && PyErr_Occurred()) result = -1;
        else if (n >= 0) {
            *count = n;
            result = 1;
        }
    }
    Py_DECREF(value);
    return result;
}

/* An AnyValue{int_value} encoding of `n` in `buf` (at least 11 bytes), as the slot's value. */
static void encode_int(uint8_t *buf, uint64_t n, Slice *slot) {
    Py_ssize_t length = 0;
    buf[length++] = (3 << 3) | WT_VARINT;
    do {
        buf[length++] = (uint8_t)((n & 0x7f) | (n > 0x7f ? 0x80 : 0));
        n >>= 7;
    } while (n);
    *slot = (Slice){buf, length, 1};
}

static const Slice *first_source(const Slice *sources, const int *indexes, int count) {
    for (int i = 0; i < count; i++)
        if (sources[indexes[i]].present) return &sources[indexes[i]];
    return NULL;
}

#define MAX_PROVIDER_BYTES 256

/* The span's facts and call as a candidate, unless it reports no tokens; -1 to decline. */
static int foreign_usage(Output *out, PyObject *trace_id, PyObject *span_id, uint64_t start, uint64_t end,
                         const Slice *slots, const Slice *sources, PyObject *resource) {
    Foreign *f = &foreign;
    for (int i = 0; i < f->count; i++)
        if (sources[i].present && f->declines[i]) return -1;
    Slice view[SLOT_COUNT];
    for (int slot = 0; slot < SLOT_COUNT; slot++) {
        const Slice *found = NULL;
        if (f->read_through[slot]) found = first_source(sources, f->sources[slot], f->source_count[slot]);
        else if (!f->blank[slot]) found = &slots[slot];
        view[slot] = found != NULL ? *found : (Slice){(const uint8_t *)"", 0, 0};
    }
    /* _dialects._provider: a dialect's provider value as a gen_ai.provider.name value. */
    uint8_t provider_buf[MAX_PROVIDER_BYTES + 8];
    if (view[SLOT_PROVIDER_NAME].present) {
        PyObject *value = simple_value(&view[SLOT_PROVIDER_NAME]);
        if (value == NULL) return -1;
        if (PyUnicode_CheckExact(value)) {
            PyObject *mapped = PyObject_CallOneArg(f->provider, value);
            int changed = mapped == NULL || !PyUnicode_CheckExact(mapped) ? -1 : PyUnicode_Compare(mapped, value) != 0;
            Py_ssize_t n = 0;
            const char *text = changed == 1 ? PyUnicode_AsUTF8AndSize(mapped, &n) : NULL;
            if (changed == 1 && (text == NULL || n > MAX_PROVIDER_BYTES)) changed = -1;
            if (changed == 1) {
                Py_ssize_t length = 0;
                provider_buf[length++] = (1 << 3) | WT_LEN;
                provider_buf[length++] = (uint8_t)(n > 0x7f ? (n & 0x7f) | 0x80 : n);
                if (n > 0x7f) provider_buf[length++] = (uint8_t)(n >> 7);
                memcpy(provider_buf + length, text, (size_t)n);
                view[SLOT_PROVIDER_NAME] = (Slice){provider_buf, length + n, 1};
            }
            Py_XDECREF(mapped);
            if (changed < 0) {
                Py_DECREF(value);
                return -1;
            }
        }
        Py_DECREF(value);
    }
    uint8_t input_buf[12], output_buf[12];
    long long uncached = 0, cache_read = 0, cache_write = 0, total = 0, inputs = 0;
    if (!view[SLOT_INPUT_TOKENS].present) {
        const Slice *source = first_source(sources, f->uncached, f->uncached_count);
        int has = source == NULL ? 0 : count_of(source, &uncached);
        if (has < 0) return -1;
        if (has) {
            int has_read = count_of(&view[SLOT_CACHE_READ_TOKENS], &cache_read);
            int has_write = count_of(&view[SLOT_CACHE_WRITE_TOKENS], &cache_write);
            if (has_read < 0 || has_write < 0) return -1;
            uint64_t sum = (uint64_t)uncached + (uint64_t)(has_read ? cache_read : 0);
            if (sum > INT64_MAX) return -1; /* the reference cannot encode it either */
            sum += (uint64_t)(has_write ? cache_write : 0);
            if (sum > INT64_MAX) return -1;
            encode_int(input_buf, sum, &view[SLOT_INPUT_TOKENS]);
        }
    }
    if (!view[SLOT_OUTPUT_TOKENS].present) {
        const Slice *source = first_source(sources, f->total, f->total_count);
        int has_total = source == NULL ? 0 : count_of(source, &total);
        int has_inputs = count_of(&view[SLOT_INPUT_TOKENS], &inputs);
        if (has_total < 0 || has_inputs < 0) return -1;
        if (has_total && has_inputs && total >= inputs) encode_int(output_buf, (uint64_t)(total - inputs), &view[SLOT_OUTPUT_TOKENS]);
    }
    int reports = 0;
    for (int slot = 0; slot < SLOT_COUNT; slot++)
        if (f->token_slot[slot] && view[slot].present) reports = 1;
    if (!reports) return 0;
    Py_ssize_t refused[SLOT_COUNT] = {0}; /* the reference counts no refusals of a candidate's values */
    PyObject *facts = PyList_New(0), *calls = PyList_New(0);
    if (facts == NULL || calls == NULL ||
        owner_usage(facts, calls, refused, trace_id, span_id, start, end, view, resource) < 0) {
        Py_XDECREF(facts);
        Py_XDECREF(calls);
        return -1;
    }
    if (out->candidates == NULL && (out->candidates = PyList_New(0)) == NULL) {
        Py_DECREF(facts);
        Py_DECREF(calls);
        return -1;
    }
    PyObject *items[4] = {Py_NewRef(trace_id), Py_NewRef(span_id), facts, calls};
    return append_new(out->candidates, record(f->candidate, items, 4));
}

static int compare_keys(const void *a, const void *b);
static int slot_index(PyObject *name);

/* Reads a tuple of source indexes (ints below `count`) into `into`; -1 with an error otherwise. */
static int read_indexes(PyObject *tuple, int count, int *into, int *length) {
    if (!PyTuple_Check(tuple) || PyTuple_GET_SIZE(tuple) > MAX_SOURCES) {
        PyErr_SetString(PyExc_TypeError, "configure_foreign(): source lists must be tuples of source indexes");
        return -1;
    }
    for (Py_ssize_t i = 0; i < PyTuple_GET_SIZE(tuple); i++) {
        long index = PyLong_Check(PyTuple_GET_ITEM(tuple, i)) ? PyLong_AsLong(PyTuple_GET_ITEM(tuple, i)) : -1;
        if (index < 0 || index >= count) {
            PyErr_Clear();
            PyErr_SetString(PyExc_ValueError, "configure_foreign(): a source index is out of range");
            return -1;
        }
        into[i] = (int)index;
    }
    *length = (int)PyTuple_GET_SIZE(tuple);
    return 0;
}

/* Marks the slots named in a tuple (slot names, str). */
static int read_slot_set(PyObject *tuple, int *into) {
    if (!PyTuple_Check(tuple)) {
        PyErr_SetString(PyExc_TypeError, "configure_foreign(): slot sets must be tuples of slot names");
        return -1;
    }
    for (Py_ssize_t i = 0; i < PyTuple_GET_SIZE(tuple); i++) {
        int slot = slot_index(PyTuple_GET_ITEM(tuple, i));
        if (slot < 0) return -1;
        into[slot] = 1;
    }
    return 0;
}

static int slot_index(PyObject *name) {
    const char *text = PyUnicode_Check(name) ? PyUnicode_AsUTF8(name) : NULL;
    if (text != NULL)
        for (int slot = 0; slot < SLOT_COUNT; slot++)
            if (strcmp(slot_names[slot], text) == 0) return slot;
    PyErr_Clear();
    PyErr_Format(PyExc_KeyError, "configure_foreign(): %R is not an attribute slot", name);
    return -1;
}

static PyObject *context_item(PyObject *config, const char *name) {
    PyObject *value = PyDict_GetItemString(config, name);
    if (value == NULL) PyErr_Format(PyExc_KeyError, "configure_foreign() lacks %s", name);
    return value;
}

/* configure_foreign(config): the dialect tables (see _dialects.compiled_view). Until it is called, a request with
 * another producer's usage is declined. */
static PyObject *configure_foreign(PyObject *module, PyObject *config) {
    if (!PyDict_Check(config)) {
        PyErr_SetString(PyExc_TypeError, "configure_foreign() takes a dict");
        return NULL;
    }
    Foreign fresh;
    memset(&fresh, 0, sizeof fresh);
    PyObject *names = context_item(config, "names"), *marks = context_item(config, "report_marks"),
             *fields = context_item(config, "fields"), *uncached = context_item(config, "uncached"),
             *total = context_item(config, "total"), *blank = context_item(config, "blank"),
             *tokens = context_item(config, "token_slots"), *declines = context_item(config, "declines");
    fresh.provider = context_item(config, "provider");
    fresh.candidate = context_item(config, "candidate");
    fresh.reported = context_item(config, "reported");
    fresh.candidate_span = context_item(config, "candidate_span");
    if (!names || !marks || !fields || !uncached || !total || !blank || !tokens || !declines || !fresh.provider ||
        !fresh.candidate || !fresh.reported || !fresh.candidate_span)
        return NULL;
    if (!PyTuple_Check(names) || PyTuple_GET_SIZE(names) > MAX_SOURCES) {
        PyErr_Format(PyExc_TypeError, "configure_foreign(): names must be a tuple of at most %d bytes", MAX_SOURCES);
        return NULL;
    }
    fresh.count = (int)PyTuple_GET_SIZE(names);
    for (int i = 0; i < fresh.count; i++) {
        PyObject *name = PyTuple_GET_ITEM(names, i);
        if (!PyBytes_Check(name) || PyBytes_GET_SIZE(name) == 0 || PyBytes_GET_SIZE(name) > MAX_KEY_LEN) {
            PyErr_Format(PyExc_TypeError, "configure_foreign(): names must be non-empty bytes up to %d long",
                         MAX_KEY_LEN);
            return NULL;
        }
        fresh.keys[i] = (SlotKey){PyBytes_AS_STRING(name), PyBytes_GET_SIZE(name), i,
                                  key_tail((const uint8_t *)PyBytes_AS_STRING(name), PyBytes_GET_SIZE(name))};
    }
    if (!PyTuple_Check(marks) || PyTuple_GET_SIZE(marks) == 0) {
        PyErr_SetString(PyExc_TypeError, "configure_foreign(): report_marks must be a non-empty tuple of bytes");
        return NULL;
    }
    for (Py_ssize_t i = 0; i < PyTuple_GET_SIZE(marks); i++) {
        PyObject *mark = PyTuple_GET_ITEM(marks, i);
        if (!PyBytes_Check(mark) || PyBytes_GET_SIZE(mark) == 0) {
            PyErr_SetString(PyExc_TypeError, "configure_foreign(): the report marks must be non-empty bytes");
            return NULL;
        }
    }
    if (!PyDict_Check(fields)) {
        PyErr_SetString(PyExc_TypeError, "configure_foreign(): fields must map slot names to source indexes");
        return NULL;
    }
    PyObject *slot_name, *indexes;
    Py_ssize_t position = 0;
    while (PyDict_Next(fields, &position, &slot_name, &indexes)) {
        int slot = slot_index(slot_name);
        if (slot < 0 || read_indexes(indexes, fresh.count, fresh.sources[slot], &fresh.source_count[slot]) < 0)
            return NULL;
        fresh.read_through[slot] = 1;
    }
    int declined[MAX_SOURCES], declined_count = 0;
    if (read_indexes(uncached, fresh.count, fresh.uncached, &fresh.uncached_count) < 0 ||
        read_indexes(total, fresh.count, fresh.total, &fresh.total_count) < 0 ||
        read_indexes(declines, fresh.count, declined, &declined_count) < 0 || read_slot_set(blank, fresh.blank) < 0 ||
        read_slot_set(tokens, fresh.token_slot) < 0)
        return NULL;
    for (int i = 0; i < declined_count; i++) fresh.declines[declined[i]] = 1;
    if (!PyCallable_Check(fresh.provider) || !PyType_Check(fresh.candidate) || !PyType_Check(fresh.reported) ||
        !PyType_Check(fresh.candidate_span)) {
        PyErr_SetString(PyExc_TypeError,
                        "configure_foreign(): provider must be callable, candidate, reported and candidate_span types");
        return NULL;
    }
    qsort(fresh.keys, (size_t)fresh.count, sizeof fresh.keys[0], compare_keys);
    int next = 0;
    for (int n = 0; n <= MAX_KEY_LEN + 1; n++) {
        while (next < fresh.count && fresh.keys[next].n < n) next++;
        fresh.keys_by_len_start[n] = next;
    }
    fresh.config = Py_NewRef(config);
    fresh.report_marks = Py_NewRef(marks);
    Py_INCREF(fresh.provider);
    Py_INCREF(fresh.candidate);
    Py_INCREF(fresh.reported);
    Py_INCREF(fresh.candidate_span);
    if (foreign.configured) {
        Py_DECREF(foreign.config);
        Py_DECREF(foreign.report_marks);
        Py_DECREF(foreign.provider);
        Py_DECREF(foreign.candidate);
        Py_DECREF(foreign.reported);
        Py_DECREF(foreign.candidate_span);
    }
    fresh.configured = 1;
    foreign = fresh;
    Py_RETURN_NONE;
}

/* settle_quiet(candidates, parents, owner_facts, traces) -> (facts, llm_calls, spans, reported) or None: the
 * counted-once resolution (_producers.Candidates.settle) of the candidates of quiet traces (`traces`: no reporting
 * span of theirs remembered from earlier requests), the common case; settle() says which traces are quiet. Then
 * a candidate's facts count but for the meters reported below it (by candidates or owner spans: owner_facts of
 * `traces`) and those an owner ancestor reports, and each reporting span is remembered with its meters (the
 * owners first) and, a candidate, the facts that counted. `parents` maps (trace id, span id) to the parent span
 * id (the request's links and the earlier ones). None declines (a span that is a candidate twice, or an owner
 * too; an ancestor chain longer than MAX_CHAIN): settle() resolves them itself. The same results as settle()'s
 * own resolution (tests/test_collector_settle.py compares the two). */
#define MAX_CHAIN 64

/* The span's ancestors that `parents` ((trace id, span id) -> parent span id) knows, nearest first, as new
 * (trace id, span id) keys in `chain` (a parent loop is cut where it closes: _ancestry.ancestors, the
 * reference). Their count, -1 on an error, MAX_CHAIN + 1 to decline (a longer chain). */
static int chain_of(PyObject *parents, PyObject *trace, PyObject *span, PyObject **chain) {
    PyObject *key = PyTuple_Pack(2, trace, span);
    if (key == NULL) return -1;
    PyObject *parent = PyDict_GetItemWithError(parents, key); /* borrowed; NULL: not known, no ancestors */
    Py_DECREF(key);
    int count = 0;
    while (parent != NULL && parent != Py_None) {
        int same = PyObject_RichCompareBool(parent, span, Py_EQ);
        for (int i = 0; i < count && !same; i++)
            same = PyObject_RichCompareBool(parent, PyTuple_GET_ITEM(chain[i], 1), Py_EQ);
        if (same) { /* a parent loop closes */
            if (same > 0) return count;
            break;
        }
        if (count == MAX_CHAIN) {
            count++;
            break;
        }
        if ((key = PyTuple_Pack(2, trace, parent)) == NULL) break;
        parent = PyDict_GetItemWithError(parents, key); /* NULL: an unknown span ends the chain, no ancestor */
        if (parent == NULL) {
            Py_DECREF(key);
            break;
        }
        chain[count++] = key;
    }
    if (PyErr_Occurred() || count > MAX_CHAIN) {
        for (int i = 0; i < count && i < MAX_CHAIN; i++) Py_DECREF(chain[i]);
        return PyErr_Occurred() ? -1 : MAX_CHAIN + 1;
    }
    return count;
}

/* ancestors(parents, trace_id, span_id) -> list of keys, or None to decline: _ancestry.ancestors in C. */
static PyObject *ancestors(PyObject *module, PyObject *const *args, Py_ssize_t nargs) {
    if (nargs != 3 || !PyDict_Check(args[0])) {
        PyErr_SetString(PyExc_TypeError, "ancestors(parents: dict, trace_id, span_id)");
        return NULL;
    }
    PyObject *chain[MAX_CHAIN];
    int count = chain_of(args[0], args[1], args[2], chain);
    if (count < 0) return NULL;
    if (count > MAX_CHAIN) Py_RETURN_NONE;
    PyObject *list = PyList_New(count);
    if (list == NULL) {
        for (int i = 0; i < count; i++) Py_DECREF(chain[i]);
        return NULL;
    }
    for (int i = 0; i < count; i++) PyList_SET_ITEM(list, i, chain[i]);
    return list;
}

/* Walk the ancestors of reporting span `r` (positions: candidates 0..n-1, owners n..): a candidate ancestor takes
 * r's meters (r reports them below it), and a candidate r takes an owner ancestor's (the owner has them).
 * 0, -1 on an error, 1 to decline (a chain longer than MAX_CHAIN). */
static int mark_ancestors(PyObject *parents, PyObject *index, PyObject *key, Py_ssize_t r, Py_ssize_t n,
                          PyObject **meters, PyObject **taken) {
    PyObject *chain[MAX_CHAIN];
    int count = chain_of(parents, PyTuple_GET_ITEM(key, 0), PyTuple_GET_ITEM(key, 1), chain);
    if (count < 0) return -1;
    if (count > MAX_CHAIN) return 1;
    int failed = 0;
    for (int i = 0; i < count; i++) {
        PyObject *position = failed ? NULL : PyDict_GetItemWithError(index, chain[i]);
        Py_DECREF(chain[i]);
        if (position == NULL) {
            failed = failed || PyErr_Occurred();
            continue;
        }
        Py_ssize_t j = PyLong_AsSsize_t(position);
        Py_ssize_t into = j < n ? j : r, from = j < n ? r : j;
        if (into >= n) continue; /* an owner under an owner: no candidate's usage */
        if (taken[into] == NULL) {
            failed = (taken[into] = PySet_New(meters[from])) == NULL;
        } else {
            PyObject *merged = PyNumber_InPlaceOr(taken[into], meters[from]);
            failed = merged == NULL;
            Py_XDECREF(merged); /* the same set */
        }
    }
    return failed ? -1 : 0;
}

/* The candidate's facts whose meter is not in `taken` (NULL or empty: all), a new list. */
static PyObject *kept_facts(PyObject *facts, PyObject *taken) {
    if (taken == NULL || PySet_GET_SIZE(taken) == 0) return PyList_GetSlice(facts, 0, PyList_GET_SIZE(facts));
    PyObject *kept = PyList_New(0);
    if (kept == NULL) return NULL;
    for (Py_ssize_t i = 0; i < PyList_GET_SIZE(facts); i++) {
        PyObject *fact = PyList_GET_ITEM(facts, i);
        int in = PySet_Contains(taken, PyTuple_GET_ITEM(fact, FACT_meter));
        if (in < 0 || (!in && PyList_Append(kept, fact) < 0)) {
            Py_DECREF(kept);
            return NULL;
        }
    }
    return kept;
}

static int extend(PyObject *list, PyObject *items) {
    return PyList_SetSlice(list, PyList_GET_SIZE(list), PyList_GET_SIZE(list), items);
}

/* The owner spans of `traces` among `owner_facts` (new (trace id, span id) keys, in first-fact order) and each
 * one's meters (a set); -1 on an error. */
static int owner_spans(PyObject *owner_facts, PyObject *traces, PyObject *owners) {
    for (Py_ssize_t i = 0; i < PyList_GET_SIZE(owner_facts); i++) {
        PyObject *fact = PyList_GET_ITEM(owner_facts, i);
        if (!PyTuple_Check(fact) || PyTuple_GET_SIZE(fact) != FACT_FIELDS) {
            PyErr_SetString(PyExc_TypeError, "settle_quiet(): owner_facts must be UsageFact records");
            return -1;
        }
        int quiet = PySet_Contains(traces, PyTuple_GET_ITEM(fact, FACT_trace_id));
        if (quiet <= 0) {
            if (quiet < 0) return -1;
            continue;
        }
        PyObject *key = PyTuple_Pack(2, PyTuple_GET_ITEM(fact, FACT_trace_id), PyTuple_GET_ITEM(fact, FACT_span_id));
        if (key == NULL) return -1;
        PyObject *meters = PyDict_GetItemWithError(owners, key);
        if (meters == NULL && !PyErr_Occurred()) {
            meters = PySet_New(NULL);
            if (meters != NULL && PyDict_SetItem(owners, key, meters) < 0) Py_CLEAR(meters);
            Py_XDECREF(meters); /* the dict holds it */
        }
        Py_DECREF(key);
        if (meters == NULL || PySet_Add(meters, PyTuple_GET_ITEM(fact, FACT_meter)) < 0) return -1;
    }
    return 0;
}

static PyObject *settle_quiet(PyObject *module, PyObject *const *args, Py_ssize_t nargs) {
    if (nargs != 4 || !PyList_Check(args[0]) || !PyDict_Check(args[1]) || !PyList_Check(args[2]) ||
        !PyAnySet_Check(args[3])) {
        PyErr_SetString(PyExc_TypeError,
                        "settle_quiet(candidates: list, parents: dict, owner_facts: list, traces: set)");
        return NULL;
    }
    if (!foreign.configured) {
        PyErr_SetString(PyExc_RuntimeError, "settle_quiet() before configure_foreign()");
        return NULL;
    }
    PyObject *candidates = args[0], *parents = args[1];
    Py_ssize_t n = PyList_GET_SIZE(candidates), m = 0;
    PyObject *result = NULL, *index = PyDict_New(), *owners = PyDict_New(), *facts = PyList_New(0),
             *calls = PyList_New(0), *spans = PyList_New(0), *reported = PyDict_New();
    PyObject **keys = NULL;
    if (!index || !owners || !facts || !calls || !spans || !reported || owner_spans(args[2], args[3], owners) < 0)
        goto done;
    m = PyDict_GET_SIZE(owners);
    /* Per reporting span: its key and meters; per candidate, the meters taken from it. */
    if ((keys = PyMem_Calloc((size_t)(3 * (n + m) + 1), sizeof(PyObject *))) == NULL) {
        PyErr_NoMemory();
        goto done;
    }
    PyObject **meters = keys + n + m, **taken = keys + 2 * (n + m);
    PyObject *owner_key, *owner_meters;
    Py_ssize_t at = 0, o = n;
    while (PyDict_Next(owners, &at, &owner_key, &owner_meters)) {
        keys[o] = Py_NewRef(owner_key);
        if ((meters[o] = PyFrozenSet_New(owner_meters)) == NULL) goto done;
        PyObject *position = PyLong_FromSsize_t(o++);
        if (position == NULL || PyDict_SetItem(index, owner_key, position) < 0) {
            Py_XDECREF(position);
            goto done;
        }
        Py_DECREF(position);
    }
    for (Py_ssize_t i = 0; i < n; i++) {
        PyObject *candidate = PyList_GET_ITEM(candidates, i);
        if (Py_TYPE(candidate) != (PyTypeObject *)foreign.candidate) {
            PyErr_SetString(PyExc_TypeError, "settle_quiet(): candidates must be Candidate records");
            goto done;
        }
        PyObject *own = PyTuple_GET_ITEM(candidate, CANDIDATE_facts);
        if (!PyList_Check(own) || !PyList_Check(PyTuple_GET_ITEM(candidate, CANDIDATE_llm_calls))) {
            PyErr_SetString(PyExc_TypeError, "settle_quiet(): a candidate's facts and calls must be lists");
            goto done;
        }
        keys[i] = PyTuple_Pack(2, PyTuple_GET_ITEM(candidate, CANDIDATE_trace_id),
                               PyTuple_GET_ITEM(candidate, CANDIDATE_span_id));
        PyObject *position = PyLong_FromSsize_t(i);
        if (keys[i] == NULL || position == NULL) {
            Py_XDECREF(position);
            goto done;
        }
        PyObject *earlier = PyDict_SetDefault(index, keys[i], position);
        int twice = earlier != NULL && earlier != position;
        Py_DECREF(position);
        if (earlier == NULL) goto done;
        if (twice) { /* a candidate twice, or an owner too: settle() merges their meters */
            result = Py_NewRef(Py_None);
            goto done;
        }
        PyObject *list = PyList_New(PyList_GET_SIZE(own));
        if (list == NULL) goto done;
        for (Py_ssize_t j = 0; j < PyList_GET_SIZE(own); j++) {
            PyObject *fact = PyList_GET_ITEM(own, j);
            if (!PyTuple_Check(fact) || PyTuple_GET_SIZE(fact) != FACT_FIELDS) {
                Py_DECREF(list);
                PyErr_SetString(PyExc_TypeError, "settle_quiet(): a candidate's facts must be UsageFact records");
                goto done;
            }
            PyList_SET_ITEM(list, j, Py_NewRef(PyTuple_GET_ITEM(fact, FACT_meter)));
        }
        meters[i] = PyFrozenSet_New(list);
        Py_DECREF(list);
        if (meters[i] == NULL) goto done;
    }
    for (Py_ssize_t r = 0; r < n + m; r++) {
        int walked = mark_ancestors(parents, index, keys[r], r, n, meters, taken);
        if (walked < 0) goto done;
        if (walked > 0) {
            result = Py_NewRef(Py_None);
            goto done;
        }
    }
    for (Py_ssize_t o = n; o < n + m; o++) { /* the owners are remembered first, as settle() does */
        PyObject *items[REPORTED_FIELDS] = {Py_NewRef(meters[o]), Py_NewRef(Py_True), PyTuple_New(0)};
        PyObject *remembered = record(foreign.reported, items, REPORTED_FIELDS);
        if (remembered == NULL || PyDict_SetItem(reported, keys[o], remembered) < 0) {
            Py_XDECREF(remembered);
            goto done;
        }
        Py_DECREF(remembered);
    }
    for (Py_ssize_t i = 0; i < n; i++) {
        PyObject *candidate = PyList_GET_ITEM(candidates, i);
        PyObject *own = PyTuple_GET_ITEM(candidate, CANDIDATE_facts);
        PyObject *own_calls = PyTuple_GET_ITEM(candidate, CANDIDATE_llm_calls);
        PyObject *kept = kept_facts(own, taken[i]);
        if (kept == NULL) goto done;
        int failed = 0;
        if (PyList_GET_SIZE(kept) > 0) {
            PyObject *items[CANDIDATE_SPAN_FIELDS] = {Py_NewRef(PyTuple_GET_ITEM(keys[i], 0)),
                                                      Py_NewRef(PyTuple_GET_ITEM(keys[i], 1))};
            failed = append_new(spans, record(foreign.candidate_span, items, CANDIDATE_SPAN_FIELDS)) < 0 ||
                     extend(facts, kept) < 0 || extend(calls, own_calls) < 0;
        } else if (PyList_GET_SIZE(own) == 0) {
            failed = extend(calls, own_calls) < 0;
        }
        PyObject *items[REPORTED_FIELDS];
        items[REPORTED_meters] = Py_NewRef(meters[i]);
        items[REPORTED_owner] = Py_NewRef(Py_False);
        items[REPORTED_counted] = failed ? NULL : PyList_AsTuple(kept);
        Py_DECREF(kept);
        if (failed) { /* record() releases the items it was given when one is missing */
            Py_DECREF(items[REPORTED_meters]);
            Py_DECREF(items[REPORTED_owner]);
            goto done;
        }
        PyObject *remembered = record(foreign.reported, items, REPORTED_FIELDS);
        if (remembered == NULL || PyDict_SetItem(reported, keys[i], remembered) < 0) {
            Py_XDECREF(remembered);
            goto done;
        }
        Py_DECREF(remembered);
    }
    result = PyTuple_Pack(4, facts, calls, spans, reported);
done:
    if (keys != NULL) {
        for (Py_ssize_t i = 0; i < 3 * (n + m); i++) Py_XDECREF(keys[i]);
        PyMem_Free(keys);
    }
    Py_XDECREF(owners);
    Py_XDECREF(index);
    Py_XDECREF(facts);
    Py_XDECREF(calls);
    Py_XDECREF(spans);
    Py_XDECREF(reported);
    return result;
}
/* --- end of issue 15 --- */

static int decode_span(Output *out, Slice raw, PyObject *resource) {
    Context *x = &state.ctx;
    Slice trace = {(const uint8_t *)"", 0, 0}, span = trace, parent = trace, name = trace;
    uint64_t start = 0, end = 0, kind_raw = 0;
    int32_t status_code = 0;
    int owner_fields_ok = 1;
    Reader r = {raw.p, raw.p + raw.n};
    while (r.p < r.end) {
        uint32_t field;
        int wire_type;
        Slice slice;
        if (read_tag(&r, &field, &wire_type) < 0) return -1;
        switch (field) {
        case 1:
        case 2:
        case 4:
        case 5:
        case 15:
            if (wire_type != WT_LEN || read_len(&r, &slice) < 0) return -1;
            if (field == 1) trace = slice;
            else if (field == 2) span = slice;
            else if (field == 4) parent = slice;
            else if (field == 5) {
                if (check_utf8(slice) < 0) return -1;
                name = slice;
            } else if (read_status(slice, &status_code) < 0) {
                return -1;
            }
            break;
        case 6:
            if (wire_type != WT_VARINT || read_varint(&r, &kind_raw) < 0) return -1;
            break;
        case 7:
        case 8:
            if (wire_type != WT_I64 || read_fixed64(&r, field == 7 ? &start : &end) < 0) return -1;
            break;
        case 9:
        case 11:
            if (wire_type != WT_LEN) owner_fields_ok = 0;
            if (skip_field(&r, wire_type) < 0) return -1;
            break;
        default:
            if (skip_field(&r, wire_type) < 0) return -1;
        }
    }
    PyObject *name_text = PyUnicode_DecodeUTF8((const char *)name.p, name.n, NULL);
    if (name_text == NULL) return -1;
    if (trace.n != 16 || span.n != 8 || all_zero(trace) || all_zero(span)) {
        PyObject *message = PyUnicode_FromFormat(
            "spans must have a 16-byte non-zero trace_id and an 8-byte non-zero span_id "
            "(span %R has %zd and %zd bytes)",
            name_text, trace.n, span.n);
        Py_DECREF(name_text);
        return set_rejection(out, message);
    }
    if (start > (uint64_t)INT64_MAX || end > (uint64_t)INT64_MAX) {
        PyObject *message = PyUnicode_FromFormat("span %R has a start or end time past the year 2262", name_text);
        Py_DECREF(name_text);
        return set_rejection(out, message);
    }
    int32_t kind = (int32_t)(uint32_t)kind_raw;
    /* A request's spans come grouped by trace: one text per run of a trace's spans (fewer to hash, to store). */
    PyObject *trace_id;
    if (out->trace_id != NULL && memcmp(out->trace, trace.p, sizeof out->trace) == 0) {
        trace_id = Py_NewRef(out->trace_id);
    } else if ((trace_id = hex_of(trace)) != NULL) {
        Py_XSETREF(out->trace_id, Py_NewRef(trace_id));
        memcpy(out->trace, trace.p, sizeof out->trace);
    }
    PyObject *span_id = hex_of(span);
    PyObject *values[COLUMNS] = {
        [COL_trace_id] = trace_id,
        [COL_span_id] = span_id,
        [COL_parent_span_id] = parent.n ? hex_of(parent) : Py_NewRef(Py_None),
        [COL_name] = name_text,
        [COL_kind] = PyLong_FromLong(kind >= 0 && kind < 6 ? kind : 0),
        [COL_service] = Py_NewRef(PyTuple_GET_ITEM(resource, RES_SERVICE)),
        [COL_start_time_unix_nano] = PyLong_FromUnsignedLongLong(start),
        [COL_end_time_unix_nano] = PyLong_FromUnsignedLongLong(end),
        [COL_status_code] = PyLong_FromLong(status_code >= 0 && status_code < 3 ? status_code : 0),
        [COL_unmeasured] = NULL, /* set below */
    };
    int result = -1;
    for (int i = 0; i < COLUMNS; i++)
        if (i != COL_unmeasured && values[i] == NULL) goto done;
    /* Each mark is looked for once per span (a whole-span scan each). */
    int owner_marked = out->extract_usage && contains(raw, x->owner_mark);
    int read_marked = out->extract_usage && contains(raw, x->data_read_mark);
    /* Issue 15: another producer's span that may report usage; declined (no error set) until configured. */
    int is_foreign = out->extract_usage && !owner_marked && foreign.configured && may_report_foreign_usage(raw);
    int marked = is_foreign || owner_marked || read_marked || contains(raw, x->not_measured_mark);
    Slice slots[SLOT_COUNT], sources[MAX_SOURCES];
    if (marked) {
        if (!owner_fields_ok) goto done;
        for (int i = 0; i < SLOT_COUNT; i++) slots[i].present = 0;
        if (is_foreign)
            for (int i = 0; i < foreign.count; i++) sources[i].present = 0;
        Reader attributes = {raw.p, raw.p + raw.n};
        while (attributes.p < attributes.end) {
            uint32_t field;
            int wire_type;
            Slice slice;
            if (read_tag(&attributes, &field, &wire_type) < 0) goto done;
            if (field == 9) {
                if (read_len(&attributes, &slice) < 0 || read_attribute(slice, slots, is_foreign ? sources : NULL) < 0)
                    goto done;
            } else if (skip_field(&attributes, wire_type) < 0) {
                goto done;
            }
        }
        PyObject *reason = text_of(value_of(&slots[SLOT_NOT_MEASURED_REASON]));
        if (reason == NULL) goto done;
        if (reason == Py_None) {
            values[COL_unmeasured] = reason;
        } else {
            values[COL_unmeasured] = PyUnicode_Concat(x->not_measured_prefix, reason);
            Py_DECREF(reason);
            if (values[COL_unmeasured] == NULL) goto done;
        }
    } else {
        values[COL_unmeasured] = Py_NewRef(Py_None);
    }
    for (int i = 0; i < COLUMNS; i++)
        if (PyList_Append(out->columns[i], values[i]) < 0) goto done;
    if (marked && out->extract_usage) {
        PyObject *owner = value_of(&slots[SLOT_USAGE_OWNER]);
        if (owner == NULL) goto done;
        int is_owner = owner == Py_True;
        Py_DECREF(owner);
        if (is_owner &&
            owner_usage(out->facts, out->calls, out->refused, trace_id, span_id, start, end, slots, resource) < 0)
            goto done;
        if (!is_owner && is_foreign &&
            foreign_usage(out, trace_id, span_id, start, end, slots, sources, resource) < 0)
            goto done;
        if (read_marked && data_reads(out->reads, trace_id, span_id, raw, slots, resource) < 0)
            goto done;
    }
    result = 0;
done:
    for (int i = 0; i < COLUMNS; i++) Py_XDECREF(values[i]);
    return result;
}

/* The next field of a ResourceSpans or ScopeSpans (fields 1 and 2 are both length-delimited): 1 with
 * `field` and `slice` set for those, 0 for another field (skipped), -1 to decline. */
static int next_field(Reader *r, uint32_t *field, Slice *slice) {
    int wire_type;
    if (read_tag(r, field, &wire_type) < 0) return -1;
    if (*field != 1 && *field != 2) return skip_field(r, wire_type) < 0 ? -1 : 0;
    return wire_type == WT_LEN && read_len(r, slice) == 0 ? 1 : -1;
}

static int decode_scope_spans(Output *out, Slice raw, PyObject *resource) {
    Reader r = {raw.p, raw.p + raw.n};
    while (r.p < r.end) {
        uint32_t field;
        Slice slice;
        int read = next_field(&r, &field, &slice);
        if (read < 0 || (read == 1 && field == 2 && decode_span(out, slice, resource) < 0)) return -1;
    }
    return 0;
}

static int decode_resource_spans(Output *out, Slice raw) {
    Slice resource_bytes = {(const uint8_t *)"", 0, 0};
    Reader r = {raw.p, raw.p + raw.n};
    while (r.p < r.end) {
        uint32_t field;
        Slice slice;
        int read = next_field(&r, &field, &slice);
        if (read < 0) return -1;
        if (read == 1 && field == 1) resource_bytes = slice;
    }
    PyObject *resource;
    if (resource_bytes.n) {
        PyObject *bytes = PyBytes_FromStringAndSize((const char *)resource_bytes.p, resource_bytes.n);
        if (bytes == NULL) return -1;
        resource = PyObject_CallOneArg(state.ctx.resource_defaults, bytes);
        Py_DECREF(bytes);
        if (resource == NULL) return -1;
    } else {
        resource = Py_NewRef(state.ctx.no_resource);
    }
    if (!PyTuple_Check(resource) || PyTuple_GET_SIZE(resource) <= RES_SERVICE) {
        Py_DECREF(resource);
        return -1;
    }
    int result = 0;
    r.p = raw.p;
    while (r.p < r.end && result == 0) {
        uint32_t field;
        Slice slice;
        int read = next_field(&r, &field, &slice);
        if (read < 0 || (read == 1 && field == 2 && decode_scope_spans(out, slice, resource) < 0)) result = -1;
    }
    Py_DECREF(resource);
    return result;
}

static PyObject *decode_traces(PyObject *module, PyObject *const *args, Py_ssize_t nargs) {
    if (nargs != 2) {
        PyErr_SetString(PyExc_TypeError, "decode_traces(data, extract_usage)");
        return NULL;
    }
    if (!state.configured || !foreign.configured) {
        PyErr_SetString(PyExc_RuntimeError, "configure() and configure_foreign() have not been called");
        return NULL;
    }
    Py_buffer view;
    if (PyObject_GetBuffer(args[0], &view, PyBUF_SIMPLE) < 0) return NULL;
    int extract_usage = PyObject_IsTrue(args[1]);
    if (extract_usage < 0) {
        PyBuffer_Release(&view);
        return NULL;
    }
    Output out = {{NULL}, NULL, NULL, NULL, NULL, NULL, 0, extract_usage, {0}, NULL, {0}};
    PyObject *result = NULL;
    for (int i = 0; i < COLUMNS; i++)
        if ((out.columns[i] = PyList_New(0)) == NULL) goto done;
    if ((out.facts = PyList_New(0)) == NULL || (out.reads = PyList_New(0)) == NULL ||
        (out.calls = PyList_New(0)) == NULL)
        goto done;
    out.rejection = Py_NewRef(state.ctx.empty);
    Reader r = {view.buf, (const uint8_t *)view.buf + view.len};
    int failed = 0;
    while (r.p < r.end && !failed) {
        uint32_t field;
        int wire_type;
        Slice slice;
        if (read_tag(&r, &field, &wire_type) < 0) {
            failed = 1;
        } else if (field == 1) {
            failed = wire_type != WT_LEN || read_len(&r, &slice) < 0 || decode_resource_spans(&out, slice) < 0;
        } else {
            failed = skip_field(&r, wire_type) < 0;
        }
    }
    if (failed) {
        /* Out of memory, or an interrupt raised in a Python helper, is not the request's to decide. */
        if (PyErr_Occurred() &&
            (PyErr_ExceptionMatches(PyExc_MemoryError) || !PyErr_ExceptionMatches(PyExc_Exception)))
            goto done;
        PyErr_Clear();
        result = Py_NewRef(Py_None);
        goto done;
    }
    PyObject *columns = PyTuple_New(COLUMNS);
    if (columns == NULL) {
        goto done;
    }
    for (int i = 0; i < COLUMNS; i++) {
        PyTuple_SET_ITEM(columns, i, out.columns[i]);
        out.columns[i] = NULL;
    }
    PyObject *refused = PyDict_New();
    if (refused == NULL) {
        Py_DECREF(columns);
        goto done;
    }
    for (int slot = 0; slot < SLOT_COUNT; slot++) {
        if (out.refused[slot] == 0) continue;
        PyObject *count = PyLong_FromSsize_t(out.refused[slot]);
        if (count == NULL || PyDict_SetItem(refused, state.slot_keys[slot], count) < 0) {
            Py_XDECREF(count);
            Py_DECREF(refused);
            Py_DECREF(columns);
            goto done;
        }
        Py_DECREF(count);
    }
    result = Py_BuildValue("(NOOOnONO)", columns, out.facts, out.reads, out.calls, out.rejected, out.rejection, refused,
                           out.candidates ? out.candidates : Py_None);
done:
    for (int i = 0; i < COLUMNS; i++) Py_XDECREF(out.columns[i]);
    Py_XDECREF(out.facts);
    Py_XDECREF(out.reads);
    Py_XDECREF(out.calls);
    Py_XDECREF(out.rejection);
    Py_XDECREF(out.candidates);
    Py_XDECREF(out.trace_id);
    PyBuffer_Release(&view);
    return result;
}

static int compare_keys(const void *a, const void *b) {
    const SlotKey *left = a, *right = b;
    return left->n < right->n ? -1 : left->n > right->n;
}

static PyObject *configure(PyObject *module, PyObject *context) {
    if (!PyDict_Check(context)) {
        PyErr_SetString(PyExc_TypeError, "configure() takes a dict");
        return NULL;
    }
    PyObject **fields = (PyObject **)&state.ctx;
    Context fresh;
    PyObject **fresh_fields = (PyObject **)&fresh;
    for (size_t i = 0; i < CONTEXT_COUNT; i++) {
        PyObject *value = PyDict_GetItemString(context, context_names[i]);
        if (value == NULL) {
            PyErr_Format(PyExc_KeyError, "the decoder context lacks %s", context_names[i]);
            return NULL;
        }
        fresh_fields[i] = value;
    }
    PyObject *records[] = {fresh.usage_fact, fresh.data_read, fresh.llm_call};
    Py_ssize_t sizes[] = {FACT_FIELDS, READ_FIELDS, CALL_FIELDS};
    for (size_t i = 0; i < 3; i++) {
        PyObject *record_fields = PyType_Check(records[i]) &&
                                          PyType_IsSubtype((PyTypeObject *)records[i], &PyTuple_Type)
                                      ? PyObject_GetAttrString(records[i], "_fields")
                                      : NULL;
        Py_ssize_t count = record_fields && PyTuple_Check(record_fields) ? PyTuple_GET_SIZE(record_fields) : -1;
        Py_XDECREF(record_fields);
        PyErr_Clear();
        if (count != sizes[i]) {
            PyErr_Format(PyExc_TypeError, "the record types must be NamedTuples of %zd, %zd and %zd fields",
                         sizes[0], sizes[1], sizes[2]);
            return NULL;
        }
    }
    PyObject *marks[] = {fresh.owner_mark, fresh.data_read_mark, fresh.not_measured_mark};
    for (size_t i = 0; i < 3; i++) {
        if (!PyBytes_Check(marks[i])) {
            PyErr_SetString(PyExc_TypeError, "the marks must be bytes");
            return NULL;
        }
    }
    if (!PyDict_Check(fresh.keys)) {
        PyErr_SetString(PyExc_TypeError, "keys must map slot names to attribute names (bytes)");
        return NULL;
    }
    SlotKey keys[SLOT_COUNT];
    for (int slot = 0; slot < SLOT_COUNT; slot++) {
        PyObject *key = PyDict_GetItemString(fresh.keys, slot_names[slot]);
        if (key == NULL || !PyBytes_Check(key) || PyBytes_GET_SIZE(key) == 0 ||
            PyBytes_GET_SIZE(key) > MAX_KEY_LEN) {
            PyErr_Format(PyExc_KeyError, "keys lacks slot %s (non-empty bytes up to %d long)", slot_names[slot],
                         MAX_KEY_LEN);
            return NULL;
        }
        keys[slot] = (SlotKey){PyBytes_AS_STRING(key), PyBytes_GET_SIZE(key), slot,
                               key_tail((const uint8_t *)PyBytes_AS_STRING(key), PyBytes_GET_SIZE(key))};
    }
    if (PyDict_GET_SIZE(fresh.keys) != SLOT_COUNT) {
        PyErr_SetString(PyExc_KeyError, "keys names slots this decoder does not have");
        return NULL;
    }
    int overflow = 0;
    long long max_tokens = PyLong_Check(fresh.max_tokens) ? PyLong_AsLongLongAndOverflow(fresh.max_tokens, &overflow) : -1;
    if (max_tokens < 0 || overflow || max_tokens > ((long long)1 << 60)) {
        PyErr_Clear();
        PyErr_SetString(PyExc_ValueError, "max_tokens must be an int in [0, 2**60]");
        return NULL;
    }
    int below_max = PyObject_RichCompareBool(fresh.max_tokens, fresh.max_quantity, Py_LT);
    if (below_max <= 0) {
        if (below_max == 0) PyErr_SetString(PyExc_ValueError, "max_tokens must be below max_quantity");
        return NULL;
    }
    PyObject *slot_keys[SLOT_COUNT];
    for (int slot = 0; slot < SLOT_COUNT; slot++) {
        slot_keys[slot] = PyUnicode_DecodeUTF8(keys[slot].key, keys[slot].n, NULL);
        if (slot_keys[slot] == NULL) {
            for (int j = 0; j < slot; j++) Py_DECREF(slot_keys[j]);
            return NULL;
        }
    }
    for (int slot = 0; slot < SLOT_COUNT; slot++) {
        if (state.configured) Py_DECREF(state.slot_keys[slot]);
        state.slot_keys[slot] = slot_keys[slot];
    }
    state.max_tokens = max_tokens;
    for (size_t i = 0; i < CONTEXT_COUNT; i++) Py_INCREF(fresh_fields[i]);
    if (state.configured)
        for (size_t i = 0; i < CONTEXT_COUNT; i++) Py_DECREF(fields[i]);
    state.ctx = fresh;
    qsort(keys, SLOT_COUNT, sizeof keys[0], compare_keys);
    memcpy(state.keys, keys, sizeof keys);
    int next = 0;
    for (int n = 0; n <= MAX_KEY_LEN + 1; n++) {
        while (next < SLOT_COUNT && state.keys[next].n < n) next++;
        state.keys_by_len_start[n] = next;
    }
    state.configured = 1;
    Py_RETURN_NONE;
}

static PyObject *name_tuple(const char **names_of, int count) {
    PyObject *names = PyTuple_New(count);
    if (names == NULL) return NULL;
    for (int i = 0; i < count; i++) {
        PyObject *name = PyUnicode_FromString(names_of[i]);
        if (name == NULL) {
            Py_DECREF(names);
            return NULL;
        }
        PyTuple_SET_ITEM(names, i, name);
    }
    return names;
}

static PyMethodDef methods[] = {
    {"decode_traces", (PyCFunction)(void (*)(void))decode_traces, METH_FASTCALL,
     "decode_traces(data, extract_usage) -> (columns, facts, data_reads, llm_calls, rejected, rejection, refused, "
     "candidates) or None"},
    {"configure", configure, METH_O, "configure(context): the names, helpers and record types the decoder uses"},
    {"configure_foreign", configure_foreign, METH_O,
     "configure_foreign(config): the dialect tables for other producers' spans (_dialects.compiled_view())"},
    {"ancestors", (PyCFunction)(void (*)(void))ancestors, METH_FASTCALL,
     "ancestors(parents, trace_id, span_id) -> the span's ancestors' keys, nearest first, or None: see _ancestry"},
    {"settle_quiet", (PyCFunction)(void (*)(void))settle_quiet, METH_FASTCALL,
     "settle_quiet(candidates, parents, owner_facts, traces) -> (facts, llm_calls, spans, reported) or None: see "
     "_producers"},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module_def = {
    PyModuleDef_HEAD_INIT, "spanledger_collector._decode._speedups", "The compiled OTLP trace decoder.", -1, methods,
};

PyMODINIT_FUNC PyInit__speedups(void) {
    PyDateTime_IMPORT;
    if (PyDateTimeAPI == NULL) return NULL;
    PyObject *module = PyModule_Create(&module_def);
    if (module == NULL) return NULL;
    struct {
        const char *attribute;
        const char **names;
        int count;
    } tuples[] = {
        {"ATTRIBUTE_SLOTS", slot_names, SLOT_COUNT},
        {"USAGE_FACT_FIELDS", fact_field_names, FACT_FIELDS},
        {"DATA_READ_FIELDS", read_field_names, READ_FIELDS},
        {"LLM_CALL_FIELDS", call_field_names, CALL_FIELDS},
        {"SPAN_COLUMNS", span_column_names, COLUMNS},
        {"CANDIDATE_FIELDS", candidate_field_names, CANDIDATE_FIELDS},
        {"REPORTED_FIELDS", reported_field_names, REPORTED_FIELDS},
        {"CANDIDATE_SPAN_FIELDS", candidate_span_field_names, CANDIDATE_SPAN_FIELDS},
    };
    for (size_t i = 0; i < sizeof tuples / sizeof tuples[0]; i++) {
        PyObject *names = name_tuple(tuples[i].names, tuples[i].count);
        if (names == NULL || PyModule_AddObject(module, tuples[i].attribute, names) < 0) {
            Py_XDECREF(names);
            Py_DECREF(module);
            return NULL;
        }
    }
    return module;
}
