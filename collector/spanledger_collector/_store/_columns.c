/* Python rows to Arrow buffers, for the store's inserts (spanledger_collector._store._columns).
 *
 * rows_to_buffers(rows, kinds) transposes a list of tuples (usage facts, data reads) and
 * column_to_buffers(values, kind) converts one list into the buffers of an Arrow array;
 * arrow_stream(kinds, names, chunks) hands staged chunks of those buffers to DuckDB as an Arrow C stream
 * (ArrowArrayStream in a PyCapsule). pyarrow.array() does the same from Python objects, but asks each
 * value for its type first; here each column has one declared kind.
 * estimate_builder(fact_type, width) makes the function that sets a usage fact's estimate (the cost processor's
 * with_estimate, see below), and flat_pricer(...) the one that prices a request's facts at their flat token
 * rates with it (the price catalog's fast path, see below).
 * A value this code does not convert exactly as pyarrow.array() would (an aware datetime, a Decimal with
 * more places than the column's scale, a value of another type) makes it return None, and _duckdb.py
 * converts those rows with pyarrow.array(), which then converts them or raises as before.
 *
 * Kinds: 's' string, 't' timestamp[us] from naive datetimes, 'n' timestamp[us] from int nanoseconds,
 * 'b' int8, 'i' int32, 'l' int64, 'f' float64, 'q' decimal128(38, 9), 'c' decimal128(38, 12) (from exact
 * decimal.Decimal instances: read in place where their layout is known, else from their str(), which runs
 * no Python code).
 * Each column comes back as (null_count, validity or None, values, offsets or None).
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <datetime.h>
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* Built in a bytes object, which the caller then gets as it is (shrunk to its length), not copied. */
typedef struct {
    PyObject *bytes; /* NULL until the first byte is reserved */
    char *data;
    Py_ssize_t length;
    Py_ssize_t capacity;
} Buffer;

/* Out of line: a column's buffers are sized up front (column_init, the first string), so this seldom runs. */
static int buffer_grow(Buffer *b, Py_ssize_t extra) {
    Py_ssize_t capacity = b->capacity ? b->capacity : extra;
    while (capacity < b->length + extra) capacity *= 2;
    if (b->bytes == NULL ? (b->bytes = PyBytes_FromStringAndSize(NULL, capacity)) == NULL
                         : _PyBytes_Resize(&b->bytes, capacity) < 0)
        return -1;
    b->data = PyBytes_AS_STRING(b->bytes);
    b->capacity = capacity;
    return 0;
}

static inline int buffer_reserve(Buffer *b, Py_ssize_t extra) {
    return b->length + extra <= b->capacity ? 0 : buffer_grow(b, extra);
}

/* Inlined, so a value of fixed width is one store (memcpy of a constant size), not a call. */
static inline int buffer_append(Buffer *b, const void *bytes, Py_ssize_t n) {
    if (n == 0) return 0; /* an empty string: memcpy into a buffer not yet allocated is undefined */
    if (buffer_reserve(b, n) < 0) return -1;
    memcpy(b->data + b->length, bytes, (size_t)n);
    b->length += n;
    return 0;
}

typedef struct {
    char kind;
    Py_ssize_t rows;
    Py_ssize_t null_count;
    Buffer values;
    Buffer offsets;
    Buffer validity; /* written only once a null is seen */
} Column;

static Py_ssize_t kind_width(char kind) {
    switch (kind) {
    case 'b': return 1;
    case 'i': return 4;
    case 'q':
    case 'c': return 16;
    case 's': return 0;
    default: return 8;
    }
}

/* Returned by the converters: the value cannot be converted here (the caller falls back). */
#define DECLINE 1

static int set_null(Column *c, Py_ssize_t row) {
    if (c->null_count == 0) {
        Py_ssize_t bytes = (c->rows + 7) / 8;
        if (buffer_reserve(&c->validity, bytes) < 0) return -1;
        memset(c->validity.data, 0xff, (size_t)bytes);
        c->validity.length = bytes;
    }
    c->validity.data[row / 8] &= (char)~(1 << (row % 8));
    c->null_count++;
    return 0;
}

static int64_t days_from_civil(int64_t year, int64_t month, int64_t day) {
    year -= month <= 2;
    int64_t era = (year >= 0 ? year : year - 399) / 400;
    int64_t yoe = year - era * 400;
    int64_t doy = (153 * (month > 2 ? month - 3 : month + 9) + 2) / 5 + day - 1;
    int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + doe - 719468;
}

static PyObject *decimal_type; /* decimal.Decimal: only its exact instances are converted */

static const __int128 DECIMAL_LIMIT = (__int128)10000000000000000000ULL * (__int128)10000000000000000000ULL;

/* ±coefficient * 10**exponent as an integer scaled by 10**scale; DECLINE if not exact or beyond 38 digits. */
static int decimal_scale(int negative, __int128 coefficient, long exponent, int scale, __int128 *out) {
    if (coefficient == 0 && exponent > 0) return DECLINE; /* 0E+30: pyarrow checks its precision */
    long shift = exponent + scale;
    for (; shift > 0; shift--) {
        if (coefficient >= DECIMAL_LIMIT / 10) return DECLINE;
        coefficient *= 10;
    }
    for (; shift < 0; shift++) {
        if (coefficient % 10 != 0) return DECLINE; /* more places than the scale: pyarrow decides */
        coefficient /= 10;
    }
    *out = negative ? -coefficient : coefficient;
    return 0;
}

/* A Decimal as an integer scaled by 10**scale, from its str(); DECLINE if not exact or beyond 38 digits. */
static int decimal_scaled_from_str(PyObject *value, int scale, __int128 *out) {
    PyObject *text = PyObject_Str(value);
    if (text == NULL) return -1;
    Py_ssize_t n;
    const char *s = PyUnicode_AsUTF8AndSize(text, &n);
    if (s == NULL) {
        Py_DECREF(text);
        return -1;
    }
    int result = DECLINE;
    Py_ssize_t i = 0;
    int negative = 0;
    if (i < n && (s[i] == '-' || s[i] == '+')) negative = s[i++] == '-';
    __int128 coefficient = 0;
    int digits = 0, fraction = 0, seen_point = 0;
    for (; i < n && ((s[i] >= '0' && s[i] <= '9') || s[i] == '.'); i++) {
        if (s[i] == '.') {
            if (seen_point) goto done;
            seen_point = 1;
            continue;
        }
        if (coefficient >= DECIMAL_LIMIT / 10) goto done;
        coefficient = coefficient * 10 + (s[i] - '0');
        digits++;
        fraction += seen_point;
    }
    if (digits == 0) goto done; /* NaN, Infinity */
    long exponent = 0;
    if (i < n && (s[i] == 'E' || s[i] == 'e')) {
        char *end;
        exponent = strtol(s + i + 1, &end, 10);
        if (end != s + n || exponent > 100 || exponent < -100) goto done;
        i = n;
    }
    if (i != n) goto done;
    result = decimal_scale(negative, coefficient, exponent - fraction, scale, out);
done:
    Py_DECREF(text);
    return result;
}

/* CPython's C Decimal (PyDecObject in Modules/_decimal/_decimal.c, the same from 3.10 on) and its libmpdec
 * number (mpd_t in mpdecimal.h, 64-bit build), mirrored to read a Decimal's sign, coefficient and exponent
 * in place: str() allocates and formats a string for each (≈ 0.2 µs a value, most of the conversion's cost). */
typedef struct {
    uint8_t flags;
    int64_t exp;
    int64_t digits;
    int64_t len;   /* coefficient words */
    int64_t alloc;
    uint64_t *data; /* the coefficient, little-endian words of MPD_RADIX */
} MpdNumber;

typedef struct {
    PyObject_HEAD
    Py_hash_t hash;
    MpdNumber number;
    uint64_t data[4]; /* where data points while the coefficient fits (_Py_DEC_MINALLOC) */
} DecimalObject;

#define MPD_NEGATIVE 1
#define MPD_SPECIAL 14 /* infinity, NaN, signaling NaN */
#define MPD_RADIX 10000000000000000000ULL

/* Set at import only if Decimal objects have this layout and read back as their str() does. */
static int decimal_layout_known;

/* The Decimal scaled by 10**scale read in place: 0 or DECLINE, as decimal_scaled_from_str() answers, or -1
 * where it does not read it (another layout, a coefficient outside the object, NaN, infinity, more than 38
 * digits, an exponent above 0 or below -100: str() writes those in E notation, declined past ±100). */
static int decimal_scaled_in_place(PyObject *value, int scale, __int128 *out) {
    if (!decimal_layout_known) return -1;
    const MpdNumber *number = &((const DecimalObject *)value)->number;
    if (number->data != ((const DecimalObject *)value)->data || (number->flags & MPD_SPECIAL) || number->len < 1 ||
        number->len > 2 || number->exp > 0 || number->exp < -100)
        return -1;
    __int128 coefficient = number->data[0];
    if (number->len == 2) coefficient += (__int128)number->data[1] * MPD_RADIX;
    return decimal_scale(number->flags & MPD_NEGATIVE, coefficient, (long)number->exp, scale, out);
}

static int decimal_scaled(PyObject *value, int scale, __int128 *out) {
    int scaled = decimal_scaled_in_place(value, scale, out);
    return scaled >= 0 ? scaled : decimal_scaled_from_str(value, scale, out);
}

/* Whether Decimals read in place as from their str(), on values of one and two coefficient words. */
static int check_decimal_layout(void) {
    if (((PyTypeObject *)decimal_type)->tp_basicsize != sizeof(DecimalObject)) return 0;
    static const char *const probes[] = {"806", "0.000016120000", "-1234567890123456789012.345678901", "-0E-12"};
    static const int64_t digits[] = {3, 8, 31, 1}; /* for the price catalog's fast path (decimal_quantized) */
    int known = 1;
    for (size_t i = 0; known && i < sizeof probes / sizeof probes[0]; i++) {
        PyObject *probe = PyObject_CallFunction(decimal_type, "s", probes[i]);
        if (probe == NULL) return -1;
        __int128 in_place, from_str;
        decimal_layout_known = 1;
        int read = decimal_scaled_in_place(probe, 12, &in_place);
        int64_t probe_digits = ((const DecimalObject *)probe)->number.digits;
        decimal_layout_known = 0;
        int parsed = decimal_scaled_from_str(probe, 12, &from_str);
        Py_DECREF(probe);
        if (parsed < 0) return -1;
        known = read == 0 && parsed == 0 && in_place == from_str && probe_digits == digits[i];
    }
    return known;
}

static int append_value(Column *c, Py_ssize_t row, PyObject *value) {
    if (value == Py_None) {
        if (set_null(c, row) < 0) return -1;
        switch (c->kind) {
        case 's': {
            int32_t offset = (int32_t)(c->values.length);
            return buffer_append(&c->offsets, &offset, sizeof offset);
        }
        case 'b': return buffer_append(&c->values, "", 1);
        case 'i': {
            int32_t zero = 0;
            return buffer_append(&c->values, &zero, sizeof zero);
        }
        case 'q':
        case 'c': {
            __int128 zero = 0;
            return buffer_append(&c->values, &zero, sizeof zero);
        }
        default: {
            int64_t zero = 0;
            return buffer_append(&c->values, &zero, sizeof zero);
        }
        }
    }
    switch (c->kind) {
    case 's': {
        if (!PyUnicode_Check(value)) return DECLINE;
        Py_ssize_t n;
        const char *utf8;
        if (PyUnicode_IS_COMPACT_ASCII(value)) { /* ids, names: their characters are their UTF-8 */
            utf8 = PyUnicode_DATA(value);
            n = PyUnicode_GET_LENGTH(value);
        } else if ((utf8 = PyUnicode_AsUTF8AndSize(value, &n)) == NULL) {
            PyErr_Clear();
            return DECLINE;
        }
        /* The first string sizes the column's text as if the rest were as long (ids are). */
        if (c->values.capacity == 0 && buffer_reserve(&c->values, n * (c->rows - row)) < 0) return -1;
        if (buffer_append(&c->values, utf8, n) < 0) return -1;
        if (c->values.length > INT32_MAX) return DECLINE;
        int32_t offset = (int32_t)c->values.length;
        return buffer_append(&c->offsets, &offset, sizeof offset);
    }
    case 't': {
        if (!PyDateTime_Check(value) || PyDateTime_DATE_GET_TZINFO(value) != Py_None) return DECLINE;
        int64_t days = days_from_civil(PyDateTime_GET_YEAR(value), PyDateTime_GET_MONTH(value),
                                       PyDateTime_GET_DAY(value));
        int64_t micros = ((days * 24 + PyDateTime_DATE_GET_HOUR(value)) * 60 + PyDateTime_DATE_GET_MINUTE(value)) * 60;
        micros = (micros + PyDateTime_DATE_GET_SECOND(value)) * 1000000 + PyDateTime_DATE_GET_MICROSECOND(value);
        return buffer_append(&c->values, &micros, sizeof micros);
    }
    case 'n':
    case 'b':
    case 'i':
    case 'l': {
        if (!PyLong_CheckExact(value)) return DECLINE;
        int overflow;
        long long number = PyLong_AsLongLongAndOverflow(value, &overflow);
        if (overflow || (number == -1 && PyErr_Occurred())) {
            PyErr_Clear();
            return DECLINE;
        }
        if (c->kind == 'n') {
            if (number < 0) return DECLINE;
            int64_t micros = number / 1000;
            return buffer_append(&c->values, &micros, sizeof micros);
        }
        if (c->kind == 'b') {
            if (number < INT8_MIN || number > INT8_MAX) return DECLINE;
            int8_t small = (int8_t)number;
            return buffer_append(&c->values, &small, 1);
        }
        if (c->kind == 'i') {
            if (number < INT32_MIN || number > INT32_MAX) return DECLINE;
            int32_t medium = (int32_t)number;
            return buffer_append(&c->values, &medium, sizeof medium);
        }
        int64_t large = number;
        return buffer_append(&c->values, &large, sizeof large);
    }
    case 'f': {
        if (!PyFloat_CheckExact(value)) return DECLINE;
        double number = PyFloat_AS_DOUBLE(value);
        return buffer_append(&c->values, &number, sizeof number);
    }
    case 'q':
    case 'c': {
        if (!Py_IS_TYPE(value, (PyTypeObject *)decimal_type)) return DECLINE;
        __int128 scaled;
        int converted = decimal_scaled(value, c->kind == 'q' ? 9 : 12, &scaled);
        if (converted != 0) {
            if (converted < 0) PyErr_Clear();
            return DECLINE;
        }
        return buffer_append(&c->values, &scaled, sizeof scaled);
    }
    }
    return DECLINE;
}

static void column_release(Column *c) {
    Py_XDECREF(c->values.bytes);
    Py_XDECREF(c->offsets.bytes);
    Py_XDECREF(c->validity.bytes);
}

static int column_init(Column *c, char kind, Py_ssize_t rows) {
    memset(c, 0, sizeof *c);
    c->kind = kind;
    c->rows = rows;
    if (!strchr("stnbilfqc", kind)) {
        PyErr_Format(PyExc_ValueError, "unknown column kind %c", kind);
        return -1;
    }
    if (kind == 's') {
        int32_t zero = 0;
        if (buffer_reserve(&c->offsets, (rows + 1) * (Py_ssize_t)sizeof zero) < 0) return -1;
        return buffer_append(&c->offsets, &zero, sizeof zero);
    }
    return buffer_reserve(&c->values, rows * kind_width(kind));
}

/* The buffer's bytes object, handed over (the column no longer holds it). */
static PyObject *as_bytes(Buffer *b) {
    PyObject *bytes = b->bytes;
    b->bytes = NULL;
    if (bytes == NULL) return PyBytes_FromStringAndSize(NULL, 0);
    if (b->length < b->capacity && _PyBytes_Resize(&bytes, b->length) < 0) return NULL;
    return bytes;
}

static PyObject *column_result(Column *c) {
    PyObject *validity = c->null_count ? as_bytes(&c->validity) : Py_NewRef(Py_None);
    PyObject *values = as_bytes(&c->values);
    PyObject *offsets = c->kind == 's' ? as_bytes(&c->offsets) : Py_NewRef(Py_None);
    if (validity == NULL || values == NULL || offsets == NULL) {
        Py_XDECREF(validity);
        Py_XDECREF(values);
        Py_XDECREF(offsets);
        return NULL;
    }
    return Py_BuildValue("(nNNN)", c->null_count, validity, values, offsets);
}

static PyObject *own_items(PyObject *sequence) {
    if (!PyList_Check(sequence) && !PyTuple_Check(sequence)) {
        PyErr_SetString(PyExc_TypeError, "expected a list or a tuple");
        return NULL;
    }
    return PySequence_Tuple(sequence);
}

static PyObject *rows_to_buffers(PyObject *module, PyObject *const *args, Py_ssize_t nargs) {
    const char *kinds;
    Py_ssize_t width;
    if (nargs != 2 || !PyUnicode_Check(args[1])) {
        PyErr_SetString(PyExc_TypeError, "rows_to_buffers(rows: Sequence[tuple], kinds: str)");
        return NULL;
    }
    if ((kinds = PyUnicode_AsUTF8AndSize(args[1], &width)) == NULL) return NULL;
    /* A tuple of the rows: references held while converting, whatever the caller's list does meanwhile. */
    PyObject *rows = own_items(args[0]);
    if (rows == NULL) return NULL;
    Py_ssize_t count = PyTuple_GET_SIZE(rows);
    Column *columns = PyMem_Calloc((size_t)(width ? width : 1), sizeof(Column));
    if (columns == NULL) {
        Py_DECREF(rows);
        return PyErr_NoMemory();
    }
    PyObject *result = NULL;
    Py_ssize_t ready = 0;
    for (; ready < width; ready++)
        if (column_init(&columns[ready], kinds[ready], count) < 0) goto done;
    for (Py_ssize_t row = 0; row < count; row++) {
        PyObject *item = PyTuple_GET_ITEM(rows, row);
        if (!PyTuple_Check(item) || PyTuple_GET_SIZE(item) != width) {
            result = Py_NewRef(Py_None);
            goto done;
        }
        for (Py_ssize_t i = 0; i < width; i++) {
            int appended = append_value(&columns[i], row, PyTuple_GET_ITEM(item, i));
            if (appended < 0) goto done;
            if (appended == DECLINE) {
                result = Py_NewRef(Py_None);
                goto done;
            }
        }
    }
    result = PyList_New(width);
    if (result == NULL) goto done;
    for (Py_ssize_t i = 0; i < width; i++) {
        PyObject *column = column_result(&columns[i]);
        if (column == NULL) {
            Py_CLEAR(result);
            goto done;
        }
        PyList_SET_ITEM(result, i, column);
    }
done:
    for (Py_ssize_t i = 0; i < ready; i++) column_release(&columns[i]);
    PyMem_Free(columns);
    Py_DECREF(rows);
    return result;
}

static PyObject *column_to_buffers(PyObject *module, PyObject *const *args, Py_ssize_t nargs) {
    const char *kind;
    Py_ssize_t width;
    if (nargs != 2 || !PyUnicode_Check(args[1])) {
        PyErr_SetString(PyExc_TypeError, "column_to_buffers(values: Sequence, kind: str)");
        return NULL;
    }
    if ((kind = PyUnicode_AsUTF8AndSize(args[1], &width)) == NULL) return NULL;
    if (width != 1) {
        PyErr_SetString(PyExc_ValueError, "kind is one character");
        return NULL;
    }
    PyObject *values = own_items(args[0]);
    if (values == NULL) return NULL;
    Py_ssize_t count = PyTuple_GET_SIZE(values);
    Column column;
    PyObject *result = NULL;
    if (column_init(&column, kind[0], count) < 0) goto done;
    for (Py_ssize_t row = 0; row < count; row++) {
        int appended = append_value(&column, row, PyTuple_GET_ITEM(values, row));
        if (appended < 0) goto done;
        if (appended == DECLINE) {
            result = Py_NewRef(Py_None);
            goto done;
        }
    }
    result = column_result(&column);
done:
    column_release(&column);
    Py_DECREF(values);
    return result;
}

/* The Arrow C data and stream interfaces (https://arrow.apache.org/docs/format/CDataInterface.html). */
struct ArrowSchema {
    const char *format;
    const char *name;
    const char *metadata;
    int64_t flags;
    int64_t n_children;
    struct ArrowSchema **children;
    struct ArrowSchema *dictionary;
    void (*release)(struct ArrowSchema *);
    void *private_data;
};

struct ArrowArray {
    int64_t length;
    int64_t null_count;
    int64_t offset;
    int64_t n_buffers;
    int64_t n_children;
    const void **buffers;
    struct ArrowArray **children;
    struct ArrowArray *dictionary;
    void (*release)(struct ArrowArray *);
    void *private_data;
};

struct ArrowArrayStream {
    int (*get_schema)(struct ArrowArrayStream *, struct ArrowSchema *);
    int (*get_next)(struct ArrowArrayStream *, struct ArrowArray *);
    const char *(*get_last_error)(struct ArrowArrayStream *);
    void (*release)(struct ArrowArrayStream *);
    void *private_data;
};

#define ARROW_FLAG_NULLABLE 2

static const char *arrow_format(char kind) {
    switch (kind) {
    case 's': return "u";
    case 't':
    case 'n': return "tsu:";
    case 'b': return "c";
    case 'i': return "i";
    case 'l':
    case 'f': return kind == 'l' ? "l" : "g";
    case 'q': return "d:38,9";
    case 'c': return "d:38,12";
    default: return NULL;
    }
}

/* A column of one chunk: its own copies of the buffers, freed by its release (no Python, no GIL needed). */
typedef struct {
    const void *buffers[3];
} ColumnData;

static void column_array_release(struct ArrowArray *array) {
    ColumnData *data = array->private_data;
    for (int i = 0; i < 3; i++) free((void *)data->buffers[i]);
    free(data);
    array->release = NULL;
}

typedef struct {
    struct ArrowArray *children; /* the column arrays, in one block */
    struct ArrowArray **child_pointers;
} ChunkData;

static void chunk_array_release(struct ArrowArray *array) {
    ChunkData *data = array->private_data;
    for (int64_t i = 0; i < array->n_children; i++)
        if (data->children[i].release != NULL) data->children[i].release(&data->children[i]);
    free(data->children);
    free(data->child_pointers);
    free(data);
    array->release = NULL;
}

static void *copy_of(PyObject *bytes) {
    Py_ssize_t n = PyBytes_GET_SIZE(bytes);
    void *copy = malloc((size_t)(n ? n : 1));
    if (copy != NULL) memcpy(copy, PyBytes_AS_STRING(bytes), (size_t)n);
    return copy;
}

/* Fills ``out`` from one (null_count, validity, values, offsets) tuple of ``rows`` values of ``kind``. */
static int column_array(struct ArrowArray *out, char kind, Py_ssize_t rows, PyObject *column) {
    memset(out, 0, sizeof(*out));
    Py_ssize_t null_count;
    PyObject *validity, *values, *offsets;
    if (!PyTuple_Check(column) || !PyArg_ParseTuple(column, "nOSO", &null_count, &validity, &values, &offsets))
        return -1;
    int is_string = kind == 's';
    Py_ssize_t width = kind_width(kind);
    if (null_count < 0 || null_count > rows || (validity != Py_None && !PyBytes_Check(validity)) ||
        (null_count && validity == Py_None) || (validity != Py_None && PyBytes_GET_SIZE(validity) < (rows + 7) / 8) ||
        (is_string != (offsets != Py_None)) || (is_string && !PyBytes_Check(offsets)) ||
        (is_string && PyBytes_GET_SIZE(offsets) < (rows + 1) * 4) ||
        (!is_string && PyBytes_GET_SIZE(values) < rows * width)) {
        PyErr_SetString(PyExc_ValueError, "a column's buffers do not match its kind and length");
        return -1;
    }
    if (is_string) {
        const int32_t *ends = (const int32_t *)PyBytes_AS_STRING(offsets);
        if (ends[0] != 0 || ends[rows] < 0 || ends[rows] > PyBytes_GET_SIZE(values)) {
            PyErr_SetString(PyExc_ValueError, "a string column's offsets run past its values");
            return -1;
        }
    }
    ColumnData *data = calloc(1, sizeof(ColumnData));
    if (data == NULL) {
        PyErr_NoMemory();
        return -1;
    }
    out->private_data = data;
    out->release = column_array_release;
    out->length = rows;
    out->null_count = null_count;
    out->n_buffers = is_string ? 3 : 2;
    out->buffers = data->buffers;
    if (validity != Py_None && (data->buffers[0] = copy_of(validity)) == NULL) goto no_memory;
    if (is_string) {
        if ((data->buffers[1] = copy_of(offsets)) == NULL) goto no_memory;
        if ((data->buffers[2] = copy_of(values)) == NULL) goto no_memory;
    } else if ((data->buffers[1] = copy_of(values)) == NULL) {
        goto no_memory;
    }
    return 0;
no_memory:
    column_array_release(out);
    PyErr_NoMemory();
    return -1;
}

/* Fills ``out`` with a struct array of one chunk: (rows, [column tuples]). */
static int chunk_array(struct ArrowArray *out, const char *kinds, Py_ssize_t width, PyObject *chunk) {
    memset(out, 0, sizeof(*out));
    Py_ssize_t rows;
    PyObject *columns;
    if (!PyTuple_Check(chunk) || !PyArg_ParseTuple(chunk, "nO", &rows, &columns)) return -1;
    if (rows < 0 || !PySequence_Check(columns) || PySequence_Size(columns) != width) {
        PyErr_SetString(PyExc_ValueError, "a chunk is (rows, one buffers tuple per column)");
        return -1;
    }
    ChunkData *data = calloc(1, sizeof(ChunkData));
    struct ArrowArray *children = calloc((size_t)(width ? width : 1), sizeof(struct ArrowArray));
    struct ArrowArray **pointers = calloc((size_t)(width ? width : 1), sizeof(struct ArrowArray *));
    if (data == NULL || children == NULL || pointers == NULL) {
        free(data);
        free(children);
        free(pointers);
        PyErr_NoMemory();
        return -1;
    }
    data->children = children;
    data->child_pointers = pointers;
    out->private_data = data;
    out->release = chunk_array_release;
    out->length = rows;
    out->n_buffers = 1;
    out->n_children = width;
    out->children = pointers;
    static const void *no_validity[1] = {NULL};
    out->buffers = no_validity;
    for (Py_ssize_t i = 0; i < width; i++) {
        pointers[i] = &children[i];
        PyObject *column = PySequence_GetItem(columns, i);
        if (column == NULL) goto fail;
        int made = column_array(&children[i], kinds[i], rows, column);
        Py_DECREF(column);
        if (made < 0) goto fail;
    }
    return 0;
fail:
    chunk_array_release(out);
    return -1;
}

typedef struct {
    Py_ssize_t width;
    char *kinds;
    char **names;
    Py_ssize_t count;
    Py_ssize_t next;
    struct ArrowArray *chunks;
} StreamData;

static void schema_release(struct ArrowSchema *schema) {
    for (int64_t i = 0; i < schema->n_children; i++) {
        struct ArrowSchema *child = schema->children[i];
        if (child->release != NULL) child->release(child);
    }
    free(schema->private_data); /* the children, in one block */
    free(schema->children);
    schema->release = NULL;
}

static void child_schema_release(struct ArrowSchema *schema) { schema->release = NULL; }

static int stream_get_schema(struct ArrowArrayStream *stream, struct ArrowSchema *out) {
    StreamData *data = stream->private_data;
    memset(out, 0, sizeof(*out));
    struct ArrowSchema *children = calloc((size_t)(data->width ? data->width : 1), sizeof(struct ArrowSchema));
    struct ArrowSchema **pointers = calloc((size_t)(data->width ? data->width : 1), sizeof(struct ArrowSchema *));
    if (children == NULL || pointers == NULL) {
        free(children);
        free(pointers);
        return ENOMEM;
    }
    for (Py_ssize_t i = 0; i < data->width; i++) {
        children[i].format = arrow_format(data->kinds[i]);
        children[i].name = data->names[i];
        children[i].flags = ARROW_FLAG_NULLABLE;
        children[i].release = child_schema_release;
        pointers[i] = &children[i];
    }
    out->format = "+s";
    out->name = "";
    out->n_children = data->width;
    out->children = pointers;
    out->private_data = children;
    out->release = schema_release;
    return 0;
}

static int stream_get_next(struct ArrowArrayStream *stream, struct ArrowArray *out) {
    StreamData *data = stream->private_data;
    if (data->next >= data->count) {
        memset(out, 0, sizeof(*out)); /* release NULL: the end of the stream */
        return 0;
    }
    *out = data->chunks[data->next];
    data->chunks[data->next].release = NULL; /* moved */
    data->next++;
    return 0;
}

static const char *stream_get_last_error(struct ArrowArrayStream *stream) {
    (void)stream;
    return NULL;
}

static void stream_release(struct ArrowArrayStream *stream) {
    StreamData *data = stream->private_data;
    for (Py_ssize_t i = 0; i < data->count; i++)
        if (data->chunks[i].release != NULL) data->chunks[i].release(&data->chunks[i]);
    if (data->names != NULL)
        for (Py_ssize_t i = 0; i < data->width; i++) free(data->names[i]);
    free(data->names);
    free(data->kinds);
    free(data->chunks);
    free(data);
    stream->release = NULL;
}

static void stream_capsule_destructor(PyObject *capsule) {
    struct ArrowArrayStream *stream = PyCapsule_GetPointer(capsule, "arrow_array_stream");
    if (stream == NULL) {
        PyErr_Clear();
        return;
    }
    if (stream->release != NULL) stream->release(stream);
    free(stream);
}

static PyObject *arrow_stream(PyObject *module, PyObject *const *args, Py_ssize_t nargs) {
    const char *kinds;
    Py_ssize_t width;
    if (nargs != 3 || !PyUnicode_Check(args[0]) || !PyTuple_Check(args[1]) || !PyList_Check(args[2])) {
        PyErr_SetString(PyExc_TypeError, "arrow_stream(kinds: str, names: tuple[str, ...], chunks: list)");
        return NULL;
    }
    if ((kinds = PyUnicode_AsUTF8AndSize(args[0], &width)) == NULL) return NULL;
    if (PyTuple_GET_SIZE(args[1]) != width) {
        PyErr_SetString(PyExc_ValueError, "one name per kind");
        return NULL;
    }
    for (Py_ssize_t i = 0; i < width; i++)
        if (arrow_format(kinds[i]) == NULL) {
            PyErr_Format(PyExc_ValueError, "unknown column kind %c", kinds[i]);
            return NULL;
        }
    PyObject *chunks = PySequence_Tuple(args[2]);
    if (chunks == NULL) return NULL;
    Py_ssize_t count = PyTuple_GET_SIZE(chunks);
    struct ArrowArrayStream *stream = calloc(1, sizeof(struct ArrowArrayStream));
    StreamData *data = calloc(1, sizeof(StreamData));
    if (stream == NULL || data == NULL) goto no_memory;
    stream->private_data = data;
    stream->get_schema = stream_get_schema;
    stream->get_next = stream_get_next;
    stream->get_last_error = stream_get_last_error;
    stream->release = stream_release;
    data->kinds = malloc((size_t)width + 1);
    data->names = calloc((size_t)(width ? width : 1), sizeof(char *));
    data->chunks = calloc((size_t)(count ? count : 1), sizeof(struct ArrowArray));
    if (data->kinds == NULL || data->names == NULL || data->chunks == NULL) goto no_memory;
    memcpy(data->kinds, kinds, (size_t)width + 1);
    data->width = width;
    for (Py_ssize_t i = 0; i < width; i++) {
        Py_ssize_t length;
        const char *name = PyUnicode_Check(PyTuple_GET_ITEM(args[1], i))
                               ? PyUnicode_AsUTF8AndSize(PyTuple_GET_ITEM(args[1], i), &length)
                               : NULL;
        if (name == NULL) {
            if (!PyErr_Occurred()) PyErr_SetString(PyExc_TypeError, "column names are str");
            goto fail;
        }
        if ((data->names[i] = malloc((size_t)length + 1)) == NULL) goto no_memory;
        memcpy(data->names[i], name, (size_t)length + 1);
    }
    for (; data->count < count; data->count++)
        if (chunk_array(&data->chunks[data->count], kinds, width, PyTuple_GET_ITEM(chunks, data->count)) < 0)
            goto fail;
    Py_DECREF(chunks);
    PyObject *capsule = PyCapsule_New(stream, "arrow_array_stream", stream_capsule_destructor);
    if (capsule == NULL) {
        stream_release(stream);
        free(stream);
    }
    return capsule;
no_memory:
    PyErr_NoMemory();
fail:
    Py_DECREF(chunks);
    if (stream != NULL && data != NULL) {
        stream_release(stream);
    } else {
        free(data);
    }
    free(stream);
    return NULL;
}

/* estimate_builder(fact_type, width) -> with_estimate(fact, cost, currency, catalog_version, unpriced_reason):
 * ``fact`` (exactly a ``fact_type``, a tuple subclass, of ``width`` fields) with its last four fields, its
 * estimate, replaced. It runs for every priced usage fact; tuple.__new__(fact_type, fact[:-4] + estimate)
 * makes three tuples and parses its arguments, this makes one. The builder is a builtin function bound
 * to (fact_type, width), so a call finds them without a lookup. */
#define ESTIMATE_WIDTH 4

static PyObject *with_estimate(PyObject *bound, PyObject *const *args, Py_ssize_t nargs) {
    if (nargs != 1 + ESTIMATE_WIDTH) {
        PyErr_SetString(PyExc_TypeError, "with_estimate(fact, cost, currency, catalog_version, unpriced_reason)");
        return NULL;
    }
    PyTypeObject *type = (PyTypeObject *)PyTuple_GET_ITEM(bound, 0);
    Py_ssize_t width = PyLong_AsSsize_t(PyTuple_GET_ITEM(bound, 1));
    PyObject *fact = args[0];
    /* Anything else is refused rather than built into a record of the wrong shape. */
    if (!Py_IS_TYPE(fact, type) || PyTuple_GET_SIZE(fact) != width) {
        if (PyTuple_Check(fact))
            PyErr_Format(PyExc_TypeError, "with_estimate: expected a %s of %zd fields, got a %s of %zd fields",
                         type->tp_name, width, Py_TYPE(fact)->tp_name, PyTuple_GET_SIZE(fact));
        else
            PyErr_Format(PyExc_TypeError, "with_estimate: expected a %s of %zd fields, got a %s",
                         type->tp_name, width, Py_TYPE(fact)->tp_name);
        return NULL;
    }
    /* As tuple.__new__ allocates a tuple subclass (tuple_subtype_new). */
    PyObject *out = type->tp_alloc(type, width);
    if (out == NULL) return NULL;
    Py_ssize_t measured = width - ESTIMATE_WIDTH;
    for (Py_ssize_t i = 0; i < measured; i++) PyTuple_SET_ITEM(out, i, Py_NewRef(PyTuple_GET_ITEM(fact, i)));
    for (Py_ssize_t i = 0; i < ESTIMATE_WIDTH; i++) PyTuple_SET_ITEM(out, measured + i, Py_NewRef(args[1 + i]));
    return out;
}

static PyMethodDef with_estimate_def = {
    "with_estimate", (PyCFunction)(void (*)(void))with_estimate, METH_FASTCALL,
    "with_estimate(fact, cost, currency, catalog_version, unpriced_reason) -> fact with its estimate replaced"};

/* flat_pricer(with_estimate, key_fields, start_field, quantity_field, zero, zero_at_scale, exact, quantum)
 * -> price_flat(facts, rates): a list as long as ``facts`` (a list), each fact priced at its cached rate where
 * that rate is a flat one, or None where the caller must price it.
 *
 * The fast path of PriceCatalog.priced_all (_pricing/_catalog.py), whose Python loop is its reference: a
 * fact's rate is rates[tuple(fact[i] for i in key_fields)]; where rate.valid_from <= fact[start_field] <
 * rate.valid_until, the fact's quantity q = fact[quantity_field] is priced
 *   - where rate.slope is not None and q >= zero: with_estimate(fact, rate.slope.fma(q, zero_at_scale,
 *     exact).quantize(quantum), "USD", rate.version, None), as priced_all does;
 *   - where rate.slope is None and rate.steps is not None: q multiplied or divided by each of the steps'
 *     operands, quantized the same way, in the steps' currency, as the rate's priced() does (_rates.Steps).
 * Every other fact is left as None: no rate, not current, neither way, any error (an ArithmeticError from
 * fma, a NaN compared), which is cleared. So that the caller can price those as if this had not run, this
 * runs no Python code: it takes only exact facts of with_estimate's type with str or None key fields, naive
 * datetimes, exact Decimals and ints, reads the rate's slots (_rates.Rate's) and calls only Decimal's,
 * Context's and datetime's own C methods. A cost is the same Decimal as the reference's: the same methods and operators, in the same (the
 * thread's) context. The pricer is a builtin function bound to its constants, like with_estimate. */
enum { P_TYPE, P_WIDTH, P_KEY_FIELDS, P_START, P_QUANTITY, P_ZERO, P_ZERO_AT_SCALE, P_EXACT_FMA, P_QUANTUM, P_USD,
       P_COUNT };
static PyObject *decimal_getcontext, *decimal_context_type;
static PyObject *name_fma, *name_quantize, *name_valid_from, *name_valid_until, *name_slope, *name_steps,
    *name_version;

static inline int naive_datetime(PyObject *value) {
    return PyDateTime_CheckExact(value) && !((_PyDateTime_BaseTZInfo *)value)->hastzinfo;
}

/* The rate of the fact's price key (a new reference), or NULL, maybe with an error set. */
static PyObject *rate_of(PyObject *fact, PyObject *key_fields, PyObject *rates) {
    Py_ssize_t fields = PyTuple_GET_SIZE(key_fields);
    PyObject *key = PyTuple_New(fields);
    if (key == NULL) return NULL;
    for (Py_ssize_t i = 0; i < fields; i++) {
        PyObject *value = PyTuple_GET_ITEM(fact, PyLong_AsSsize_t(PyTuple_GET_ITEM(key_fields, i)));
        if (value != Py_None && !PyUnicode_CheckExact(value)) { /* its hash or equality might be Python code */
            Py_DECREF(key);
            return NULL;
        }
        PyTuple_SET_ITEM(key, i, Py_NewRef(value));
    }
    PyObject *rate = PyDict_GetItemWithError(rates, key);
    Py_DECREF(key);
    /* Held: a Decimal call below may run the collector (a finalizer) and another thread replace it. */
    return Py_XNewRef(rate);
}

/* quantity times or divided by each operand of the steps' operations (a new reference), or NULL. */
static PyObject *stepped(PyObject *quantity, PyObject *operations) {
    if (!PyTuple_CheckExact(operations)) return NULL;
    PyObject *cost = Py_NewRef(quantity);
    for (Py_ssize_t i = 0; cost != NULL && i < PyTuple_GET_SIZE(operations); i++) {
        PyObject *step = PyTuple_GET_ITEM(operations, i), *operator, *operand, *next = NULL;
        if (PyTuple_CheckExact(step) && PyTuple_GET_SIZE(step) == 2
            && PyUnicode_CheckExact(operator= PyTuple_GET_ITEM(step, 0)) && PyUnicode_GET_LENGTH(operator) == 1
            && (Py_IS_TYPE(operand = PyTuple_GET_ITEM(step, 1), (PyTypeObject *)decimal_type)
                || PyLong_CheckExact(operand))) {
            Py_UCS4 sign = PyUnicode_READ_CHAR(operator, 0);
            if (sign == '*') next = PyNumber_Multiply(cost, operand);
            else if (sign == '/') next = PyNumber_TrueDivide(cost, operand);
        }
        Py_SETREF(cost, next);
    }
    return cost;
}

/* A rate's slots, read once per call (no Python code runs meanwhile, so none changes): a request's facts
 * have a few price keys. Where a call sees more rates than RATES_READ, the last entry is read afresh. */
typedef struct {
    PyObject *rate, *valid_from, *valid_until, *slope, *steps, *version; /* new references */
} RateSlots;
#define RATES_READ 16

static void rate_slots_clear(RateSlots *slots) {
    Py_CLEAR(slots->rate);
    Py_CLEAR(slots->valid_from);
    Py_CLEAR(slots->valid_until);
    Py_CLEAR(slots->slope);
    Py_CLEAR(slots->steps);
    Py_CLEAR(slots->version);
}

/* The slots of ``rate`` (a new reference, which this takes), or NULL with an error set. */
static RateSlots *rate_slots(RateSlots *read, int *count, PyObject *rate) {
    for (int i = 0; i < *count; i++) {
        if (read[i].rate == rate) {
            Py_DECREF(rate);
            return &read[i];
        }
    }
    if (*count == RATES_READ) rate_slots_clear(&read[--*count]);
    RateSlots *slots = &read[*count];
    slots->rate = rate;
    if ((slots->valid_from = PyObject_GetAttr(rate, name_valid_from)) == NULL
        || (slots->valid_until = PyObject_GetAttr(rate, name_valid_until)) == NULL
        || (slots->slope = PyObject_GetAttr(rate, name_slope)) == NULL
        || (slots->steps = PyObject_GetAttr(rate, name_steps)) == NULL
        || (slots->version = PyObject_GetAttr(rate, name_version)) == NULL) {
        rate_slots_clear(slots);
        return NULL;
    }
    ++*count;
    return slots;
}

/* value.quantize(quantum) in the thread's context. quantize() returns an equal Decimal, with no signal, where
 * value is finite and has the quantum's exponent and at most ``as_is_digits`` digits: it is kept as it is
 * then, read in place (where decimal_layout_known), which a flat rate's cost at the cost's scale is. */
typedef struct {
    PyObject *quantize;       /* the thread's context's quantize method */
    int64_t exponent;         /* the quantum's */
    Py_ssize_t as_is_digits;  /* 0 where the context would change a value of that exponent (or not read) */
} Quantizer;

static int quantizer_init(Quantizer *quantizer, PyObject *quantum) {
    PyObject *context = PyObject_CallNoArgs(decimal_getcontext);
    if (context == NULL) return -1;
    quantizer->as_is_digits = 0;
    if (!Py_IS_TYPE(context, (PyTypeObject *)decimal_context_type)) { /* its methods could be Python code */
        Py_DECREF(context);
        return 0;
    }
    quantizer->quantize = PyObject_GetAttr(context, name_quantize);
    long limits[3]; /* prec, Emax, Emin */
    static const char *const names[] = {"prec", "Emax", "Emin"};
    for (int i = 0; quantizer->quantize != NULL && i < 3; i++) {
        PyObject *limit = PyObject_GetAttrString(context, names[i]);
        limits[i] = limit == NULL ? -1 : PyLong_AsLong(limit);
        Py_XDECREF(limit);
        if (limits[i] == -1 && PyErr_Occurred()) Py_CLEAR(quantizer->quantize);
    }
    Py_DECREF(context);
    if (quantizer->quantize == NULL) return -1;
    if (!decimal_layout_known || !Py_IS_TYPE(quantum, (PyTypeObject *)decimal_type)) return 1;
    const MpdNumber *q = &((const DecimalObject *)quantum)->number;
    long prec = limits[0], emax = limits[1], emin = limits[2];
    quantizer->exponent = q->exp;
    /* mpd_qquantize and mpd_qfinalize (libmpdec) leave a value of the quantum's exponent as it is, with no
     * signal, where the value has at most prec digits and its adjusted exponent (from exponent to exponent +
     * prec - 1) is in [Emin, Emax]: then it is not subnormal, does not overflow, and is not clamped (clamp
     * lowers exponents above Emax - prec + 1). */
    if (!(q->flags & MPD_SPECIAL) && emin <= q->exp && q->exp + prec - 1 <= emax) quantizer->as_is_digits = prec;
    return 1;
}

/* value quantized (a new reference; this takes ``value``), or NULL. */
static PyObject *quantized(const Quantizer *quantizer, PyObject *value, PyObject *quantum) {
    const MpdNumber *number = &((const DecimalObject *)value)->number;
    if (quantizer->as_is_digits && Py_IS_TYPE(value, (PyTypeObject *)decimal_type) && !(number->flags & MPD_SPECIAL)
        && number->exp == quantizer->exponent && number->digits <= quantizer->as_is_digits)
        return value;
    PyObject *args[] = {value, quantum};
    PyObject *cost = PyObject_Vectorcall(quantizer->quantize, args, 2, NULL);
    Py_DECREF(value);
    return cost;
}

/* The priced fact (a new reference), or NULL where the caller prices it. Leaves an error to clear. */
static PyObject *price_one(PyObject *const *bound, const Quantizer *quantizer, RateSlots *read, int *count,
                           PyObject *fact, PyObject *rates) {
    PyTypeObject *type = (PyTypeObject *)bound[P_TYPE];
    Py_ssize_t width = PyLong_AsSsize_t(bound[P_WIDTH]);
    if (!Py_IS_TYPE(fact, type) || PyTuple_GET_SIZE(fact) != width) return NULL;
    PyObject *start = PyTuple_GET_ITEM(fact, PyLong_AsSsize_t(bound[P_START]));
    PyObject *quantity = PyTuple_GET_ITEM(fact, PyLong_AsSsize_t(bound[P_QUANTITY]));
    if (!naive_datetime(start) || !Py_IS_TYPE(quantity, (PyTypeObject *)decimal_type)) return NULL;
    PyObject *rate = rate_of(fact, bound[P_KEY_FIELDS], rates);
    RateSlots *slots = rate == NULL ? NULL : rate_slots(read, count, rate);
    if (slots == NULL || !naive_datetime(slots->valid_from) || !naive_datetime(slots->valid_until)
        || PyObject_RichCompareBool(slots->valid_from, start, Py_LE) != 1
        || PyObject_RichCompareBool(start, slots->valid_until, Py_LT) != 1)
        return NULL;
    PyObject *exact, *currency = bound[P_USD];
    if (slots->slope != Py_None) {
        if (!Py_IS_TYPE(slots->slope, (PyTypeObject *)decimal_type)
            || PyObject_RichCompareBool(quantity, bound[P_ZERO], Py_GE) != 1)
            return NULL; /* the rate prices it */
        PyObject *fma_args[] = {slots->slope, quantity, bound[P_ZERO_AT_SCALE]};
        exact = PyObject_Vectorcall(bound[P_EXACT_FMA], fma_args, 3, NULL);
    } else {
        PyObject *steps = slots->steps;
        if (!PyTuple_Check(steps) || PyTuple_GET_SIZE(steps) != 2 || !PyUnicode_CheckExact(PyTuple_GET_ITEM(steps, 0)))
            return NULL; /* None: the rate prices it another way */
        currency = PyTuple_GET_ITEM(steps, 0);
        exact = stepped(quantity, PyTuple_GET_ITEM(steps, 1));
    }
    PyObject *cost = exact == NULL ? NULL : quantized(quantizer, exact, bound[P_QUANTUM]);
    if (cost == NULL) return NULL;
    PyObject *out = type->tp_alloc(type, width);
    if (out != NULL) { /* with_estimate(fact, cost, currency, version, None), as with_estimate above builds it */
        PyObject *estimate[ESTIMATE_WIDTH] = {cost, currency, slots->version, Py_None};
        Py_ssize_t measured = width - ESTIMATE_WIDTH;
        for (Py_ssize_t i = 0; i < measured; i++) PyTuple_SET_ITEM(out, i, Py_NewRef(PyTuple_GET_ITEM(fact, i)));
        for (Py_ssize_t i = 0; i < ESTIMATE_WIDTH; i++) PyTuple_SET_ITEM(out, measured + i, Py_NewRef(estimate[i]));
    }
    Py_DECREF(cost);
    return out;
}

static PyObject *price_flat(PyObject *bound, PyObject *const *args, Py_ssize_t nargs) {
    if (nargs != 2 || !PyList_CheckExact(args[0]) || !PyDict_CheckExact(args[1])) {
        PyErr_SetString(PyExc_TypeError, "price_flat(facts: list, rates: dict)");
        return NULL;
    }
    /* cost.quantize(quantum) quantizes in the thread's context, which only Python code changes. Where that
     * is a Context subclass, or cannot be read, the caller prices every fact. */
    Quantizer quantizer;
    int usable = quantizer_init(&quantizer, PyTuple_GET_ITEM(bound, P_QUANTUM));
    if (usable < 0) {
        PyErr_Clear();
        usable = 0;
    }
    RateSlots read[RATES_READ] = {{NULL}};
    int count = 0;
    PyObject *facts = args[0];
    Py_ssize_t length = PyList_GET_SIZE(facts);
    PyObject *out = PyList_New(length);
    for (Py_ssize_t i = 0; out != NULL && i < length; i++) {
        PyObject *priced = NULL;
        if (usable && i < PyList_GET_SIZE(facts)) { /* (a finalizer could shrink the list) */
            PyObject *fact = Py_NewRef(PyList_GET_ITEM(facts, i));
            priced = price_one(&PyTuple_GET_ITEM(bound, 0), &quantizer, read, &count, fact, args[1]);
            Py_DECREF(fact);
            if (priced == NULL) PyErr_Clear();
        }
        PyList_SET_ITEM(out, i, priced != NULL ? priced : Py_NewRef(Py_None));
    }
    for (int i = 0; i < count; i++) rate_slots_clear(&read[i]);
    if (usable) Py_DECREF(quantizer.quantize);
    return out;
}

static PyMethodDef price_flat_def = {"price_flat", (PyCFunction)(void (*)(void))price_flat, METH_FASTCALL,
                                     "price_flat(facts, rates) -> each fact priced at a flat rate, or None"};

static PyObject *flat_pricer(PyObject *module, PyObject *const *args, Py_ssize_t nargs) {
    static const char usage[] = "flat_pricer(with_estimate, key_fields: tuple[int, ...], start_field: int, "
                                "quantity_field: int, zero: Decimal, zero_at_scale: Decimal, exact: Context, quantum: Decimal)";
    PyTypeObject *decimal = (PyTypeObject *)decimal_type;
    if (nargs != 8 || !PyCFunction_Check(args[0])
        || PyCFunction_GET_FUNCTION(args[0]) != (PyCFunction)(void (*)(void))with_estimate
        || !PyTuple_CheckExact(args[1]) || !Py_IS_TYPE(args[4], decimal) || !Py_IS_TYPE(args[5], decimal)
        || !Py_IS_TYPE(args[6], (PyTypeObject *)decimal_context_type) || !Py_IS_TYPE(args[7], decimal)) {
        PyErr_SetString(PyExc_TypeError, usage);
        return NULL;
    }
    PyObject *estimated = PyCFunction_GET_SELF(args[0]); /* (fact_type, width) */
    Py_ssize_t measured = PyLong_AsSsize_t(PyTuple_GET_ITEM(estimated, 1)) - ESTIMATE_WIDTH;
    Py_ssize_t key_width = PyTuple_GET_SIZE(args[1]);
    for (Py_ssize_t i = -2; i < key_width; i++) {
        PyObject *index = i == -2 ? args[2] : i == -1 ? args[3] : PyTuple_GET_ITEM(args[1], i);
        Py_ssize_t at = PyLong_CheckExact(index) ? PyLong_AsSsize_t(index) : -1;
        if (at < 0 || at >= measured) {
            PyErr_Clear();
            PyErr_Format(PyExc_ValueError, "flat_pricer: field %R is not a measured field of a %s", index,
                         ((PyTypeObject *)PyTuple_GET_ITEM(estimated, 0))->tp_name);
            return NULL;
        }
    }
    PyObject *bound = PyTuple_New(P_COUNT);
    if (bound == NULL) return NULL;
    PyTuple_SET_ITEM(bound, P_TYPE, Py_NewRef(PyTuple_GET_ITEM(estimated, 0)));
    PyTuple_SET_ITEM(bound, P_WIDTH, Py_NewRef(PyTuple_GET_ITEM(estimated, 1)));
    PyTuple_SET_ITEM(bound, P_KEY_FIELDS, Py_NewRef(args[1]));
    PyTuple_SET_ITEM(bound, P_START, Py_NewRef(args[2]));
    PyTuple_SET_ITEM(bound, P_QUANTITY, Py_NewRef(args[3]));
    PyTuple_SET_ITEM(bound, P_ZERO, Py_NewRef(args[4]));
    PyTuple_SET_ITEM(bound, P_ZERO_AT_SCALE, Py_NewRef(args[5]));
    PyTuple_SET_ITEM(bound, P_EXACT_FMA, PyObject_GetAttr(args[6], name_fma)); /* exact.fma(a, b, c) is a.fma(b, c, exact) */
    PyTuple_SET_ITEM(bound, P_QUANTUM, Py_NewRef(args[7]));
    PyTuple_SET_ITEM(bound, P_USD, PyUnicode_InternFromString("USD"));
    PyObject *name = PyTuple_GET_ITEM(bound, P_EXACT_FMA) == NULL || PyTuple_GET_ITEM(bound, P_USD) == NULL
                         ? NULL
                         : PyModule_GetNameObject(module);
    PyObject *pricer = name == NULL ? NULL : PyCFunction_NewEx(&price_flat_def, bound, name);
    Py_XDECREF(name);
    Py_DECREF(bound);
    return pricer;
}

static PyObject *estimate_builder(PyObject *module, PyObject *const *args, Py_ssize_t nargs) {
    if (nargs != 2 || !PyType_Check(args[0]) || !PyLong_Check(args[1])
        || !PyType_FastSubclass((PyTypeObject *)args[0], Py_TPFLAGS_TUPLE_SUBCLASS)) {
        PyErr_SetString(PyExc_TypeError, "estimate_builder(fact_type: type[tuple], width: int)");
        return NULL;
    }
    Py_ssize_t width = PyLong_AsSsize_t(args[1]);
    if (width == -1 && PyErr_Occurred()) return NULL;
    if (width < ESTIMATE_WIDTH) {
        PyErr_Format(PyExc_ValueError, "estimate_builder: width %zd has no room for the %d estimate fields", width,
                     ESTIMATE_WIDTH);
        return NULL;
    }
    PyObject *bound = PyTuple_Pack(2, args[0], args[1]);
    if (bound == NULL) return NULL;
    PyObject *name = PyModule_GetNameObject(module);
    PyObject *builder = name == NULL ? NULL : PyCFunction_NewEx(&with_estimate_def, bound, name);
    Py_XDECREF(name);
    Py_DECREF(bound);
    return builder;
}

static PyMethodDef methods[] = {
    {"rows_to_buffers", (PyCFunction)(void (*)(void))rows_to_buffers, METH_FASTCALL,
     "rows_to_buffers(rows, kinds) -> [(null_count, validity, values, offsets)] per column, or None"},
    {"column_to_buffers", (PyCFunction)(void (*)(void))column_to_buffers, METH_FASTCALL,
     "column_to_buffers(values, kind) -> (null_count, validity, values, offsets), or None"},
    {"arrow_stream", (PyCFunction)(void (*)(void))arrow_stream, METH_FASTCALL,
     "arrow_stream(kinds, names, [(rows, [column buffers])]) -> an arrow_array_stream capsule over the chunks"},
    {"estimate_builder", (PyCFunction)(void (*)(void))estimate_builder, METH_FASTCALL,
     "estimate_builder(fact_type, width) -> with_estimate(fact, cost, currency, catalog_version, unpriced_reason)"},
    {"flat_pricer", (PyCFunction)(void (*)(void))flat_pricer, METH_FASTCALL,
     "flat_pricer(with_estimate, key_fields, start_field, quantity_field, zero, zero_at_scale, exact, quantum) "
     "-> price_flat(facts, rates)"},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module_def = {
    PyModuleDef_HEAD_INIT, "spanledger_collector._store._columns", "Python rows to Arrow buffers.", -1, methods,
};

PyMODINIT_FUNC PyInit__columns(void) {
    PyDateTime_IMPORT;
    if (PyDateTimeAPI == NULL) return NULL;
    PyObject *decimal = PyImport_ImportModule("decimal");
    if (decimal == NULL) return NULL;
    decimal_type = PyObject_GetAttrString(decimal, "Decimal");
    decimal_getcontext = decimal_type == NULL ? NULL : PyObject_GetAttrString(decimal, "getcontext");
    decimal_context_type = decimal_getcontext == NULL ? NULL : PyObject_GetAttrString(decimal, "Context");
    Py_DECREF(decimal);
    if (decimal_context_type == NULL) return NULL;
    int known = check_decimal_layout();
    if (known < 0) return NULL;
    decimal_layout_known = known;
    if ((name_fma = PyUnicode_InternFromString("fma")) == NULL
        || (name_quantize = PyUnicode_InternFromString("quantize")) == NULL
        || (name_valid_from = PyUnicode_InternFromString("valid_from")) == NULL
        || (name_valid_until = PyUnicode_InternFromString("valid_until")) == NULL
        || (name_slope = PyUnicode_InternFromString("slope")) == NULL
        || (name_steps = PyUnicode_InternFromString("steps")) == NULL
        || (name_version = PyUnicode_InternFromString("version")) == NULL)
        return NULL;
    PyObject *module = PyModule_Create(&module_def);
    if (module == NULL) return NULL;
    /* For the tests: whether this build reads Decimals in place (else it is only slower). */
    if (PyModule_AddObjectRef(module, "DECIMALS_IN_PLACE", known ? Py_True : Py_False) < 0) {
        Py_DECREF(module);
        return NULL;
    }
    return module;
}
