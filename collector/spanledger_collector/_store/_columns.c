/* Python rows to Arrow buffers, for the store's inserts (spanledger_collector._store._columns).
 *
 * rows_to_buffers(rows, kinds) transposes a list of tuples (usage facts, data reads) and
 * column_to_buffers(values, kind) converts one list into the buffers of an Arrow array, which
 * _duckdb.py wraps with pyarrow.Array.from_buffers without copying. pyarrow.array() does the same from
 * Python objects, but asks each value for its type first; here each column has one declared kind.
 * A value this code does not convert exactly as pyarrow.array() would (an aware datetime, a Decimal with
 * more places than the column's scale, a value of another type) makes it return None, and _duckdb.py
 * converts those rows with pyarrow.array(), which then converts them or raises as before.
 *
 * Kinds: 's' string, 't' timestamp[us] from naive datetimes, 'n' timestamp[us] from int nanoseconds,
 * 'b' int8, 'i' int32, 'l' int64, 'f' float64, 'q' decimal128(38, 9), 'c' decimal128(38, 12) (from exact
 * decimal.Decimal instances, whose str() runs no Python code).
 * Each column comes back as (null_count, validity or None, values, offsets or None).
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <datetime.h>
#include <stdint.h>
#include <string.h>

typedef struct {
    char *data;
    Py_ssize_t length;
    Py_ssize_t capacity;
} Buffer;

static int buffer_reserve(Buffer *b, Py_ssize_t extra) {
    if (b->length + extra <= b->capacity) return 0;
    Py_ssize_t capacity = b->capacity ? b->capacity : 256;
    while (capacity < b->length + extra) capacity *= 2;
    char *data = PyMem_Realloc(b->data, (size_t)capacity);
    if (data == NULL) {
        PyErr_NoMemory();
        return -1;
    }
    b->data = data;
    b->capacity = capacity;
    return 0;
}

static int buffer_append(Buffer *b, const void *bytes, Py_ssize_t n) {
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

/* A Decimal as an integer scaled by 10**scale, from its str(); DECLINE if not exact or beyond 38 digits. */
static int decimal_scaled(PyObject *value, int scale, __int128 *out) {
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
    if (coefficient == 0 && exponent - fraction > 0) goto done; /* 0E+30: pyarrow checks its precision */
    long shift = exponent - fraction + scale;
    for (; shift > 0; shift--) {
        if (coefficient >= DECIMAL_LIMIT / 10) goto done;
        coefficient *= 10;
    }
    for (; shift < 0; shift++) {
        if (coefficient % 10 != 0) goto done; /* more places than the scale: pyarrow decides */
        coefficient /= 10;
    }
    *out = negative ? -coefficient : coefficient;
    result = 0;
done:
    Py_DECREF(text);
    return result;
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
        const char *utf8 = PyUnicode_AsUTF8AndSize(value, &n);
        if (utf8 == NULL) {
            PyErr_Clear();
            return DECLINE;
        }
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
    PyMem_Free(c->values.data);
    PyMem_Free(c->offsets.data);
    PyMem_Free(c->validity.data);
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
        return buffer_append(&c->offsets, &zero, sizeof zero);
    }
    return 0;
}

static PyObject *as_bytes(Buffer *b) {
    return PyBytes_FromStringAndSize(b->data ? b->data : "", b->length);
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

static PyMethodDef methods[] = {
    {"rows_to_buffers", (PyCFunction)(void (*)(void))rows_to_buffers, METH_FASTCALL,
     "rows_to_buffers(rows, kinds) -> [(null_count, validity, values, offsets)] per column, or None"},
    {"column_to_buffers", (PyCFunction)(void (*)(void))column_to_buffers, METH_FASTCALL,
     "column_to_buffers(values, kind) -> (null_count, validity, values, offsets), or None"},
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
    Py_DECREF(decimal);
    if (decimal_type == NULL) return NULL;
    return PyModule_Create(&module_def);
}
