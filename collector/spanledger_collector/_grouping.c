/* A request's observations per series, for the usage metrics (spanledger_collector._grouping).
 *
 * group_columns(key, columns, items) and histogram_add(bounds, counts, values, total) do in one C loop what
 * _batch_metrics.py's Python references of the same names do (those are the fallback where this module is
 * not built); tests/test_collector_grouping.py compares the two on random input.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <math.h>
#include <string.h>

/* 2**53: an int of at most this magnitude is a double exactly, so comparing it as one is exact. */
#define EXACT_INT_LIMIT 9007199254740992LL
/* The buckets of a histogram counted on the stack; BatchHistogram adds to longer ones in Python. */
#define MAX_BUCKETS 64

static PyObject *builtin_sum; /* builtins.sum, looked up once */

static int read_indexes(PyObject *tuple, const char *what, Py_ssize_t *indexes, Py_ssize_t *count,
                        Py_ssize_t *smallest_width) {
    if (!PyTuple_Check(tuple) || PyTuple_GET_SIZE(tuple) > 32) {
        PyErr_Format(PyExc_TypeError, "group_columns: %s must be a tuple of at most 32 indexes", what);
        return -1;
    }
    *count = PyTuple_GET_SIZE(tuple);
    for (Py_ssize_t i = 0; i < *count; i++) {
        Py_ssize_t index = PyLong_AsSsize_t(PyTuple_GET_ITEM(tuple, i));
        if (index == -1 && PyErr_Occurred()) return -1;
        if (index < 0) {
            PyErr_Format(PyExc_ValueError, "group_columns: negative index in %s", what);
            return -1;
        }
        indexes[i] = index;
        if (index + 1 > *smallest_width) *smallest_width = index + 1;
    }
    return 0;
}

/* item's key fields equal to the labels of a group, as the groups' dict compares keys (element by element;
 * two str as str's == does it, inline) */
static int same_labels(PyObject *item, const Py_ssize_t *key, Py_ssize_t nkey, PyObject *labels) {
    for (Py_ssize_t i = 0; i < nkey; i++) {
        PyObject *value = PyTuple_GET_ITEM(item, key[i]), *label = PyTuple_GET_ITEM(labels, i);
        if (value == label) continue;
        if (PyUnicode_CheckExact(value) && PyUnicode_CheckExact(label)
#if PY_VERSION_HEX < 0x030C0000
            && PyUnicode_IS_READY(value) && PyUnicode_IS_READY(label)
#endif
        ) {
            Py_ssize_t length = PyUnicode_GET_LENGTH(value);
            int kind = PyUnicode_KIND(value);
            if (length != PyUnicode_GET_LENGTH(label) || kind != (int)PyUnicode_KIND(label) ||
                memcmp(PyUnicode_DATA(value), PyUnicode_DATA(label), (size_t)length * (size_t)kind) != 0)
                return 0;
            continue;
        }
        int equal = PyObject_RichCompareBool(value, label, Py_EQ);
        if (equal <= 0) return equal;
    }
    return 1;
}

/* group_columns(key, columns, items) -> {tuple(item[i] for i in key): tuple(list per column)}, groups in order
 * of first appearance, each column list holding item[c] of the group's items in order, None left out.
 *
 * A request's items fall into few groups, and their label strings are new objects, so hashing an item's
 * labels and comparing them with the found key's costs more than comparing them with each group's in turn
 * (the first label that differs ends a comparison). The first SCANNED groups are compared with; an item that
 * is in none of them is looked up in the dict once there are more. */
#define SCANNED 8
static PyObject *group_columns(PyObject *self, PyObject *const *args, Py_ssize_t nargs) {
    if (nargs != 3) {
        PyErr_SetString(PyExc_TypeError, "group_columns takes key, columns, items");
        return NULL;
    }
    Py_ssize_t key[32], columns[32], nkey, ncolumns, width = 0;
    if (read_indexes(args[0], "key", key, &nkey, &width) < 0) return NULL;
    if (read_indexes(args[1], "columns", columns, &ncolumns, &width) < 0) return NULL;
    /* A tuple (a list is copied): an __eq__ that runs Python code cannot change what is being walked. */
    PyObject *items = PySequence_Tuple(args[2]);
    if (items == NULL) return NULL;
    PyObject *groups = PyDict_New();
    if (groups == NULL) goto error;
    /* Borrowed: the dict holds them. */
    PyObject *scanned_labels[SCANNED], *scanned_groups[SCANNED];
    Py_ssize_t nscanned = 0, ngroups = 0;
    Py_ssize_t nitems = PyTuple_GET_SIZE(items);
    for (Py_ssize_t n = 0; n < nitems; n++) {
        PyObject *item = PyTuple_GET_ITEM(items, n);
        if (!PyTuple_Check(item) || PyTuple_GET_SIZE(item) < width) {
            PyErr_Format(PyExc_TypeError, "group_columns: item %zd is not a tuple of at least %zd fields", n, width);
            goto error;
        }
        PyObject *group = NULL;
        for (Py_ssize_t g = 0; g < nscanned; g++) {
            int same = same_labels(item, key, nkey, scanned_labels[g]);
            if (same < 0) goto error;
            if (same) {
                group = scanned_groups[g];
                break;
            }
        }
        if (group == NULL) {
            PyObject *labels = PyTuple_New(nkey);
            if (labels == NULL) goto error;
            for (Py_ssize_t i = 0; i < nkey; i++) {
                PyObject *value = PyTuple_GET_ITEM(item, key[i]);
                Py_INCREF(value);
                PyTuple_SET_ITEM(labels, i, value);
            }
            if (ngroups > nscanned && (group = PyDict_GetItemWithError(groups, labels)) == NULL && PyErr_Occurred()) {
                Py_DECREF(labels);
                goto error;
            }
            if (group == NULL) {
                if ((group = PyTuple_New(ncolumns)) == NULL) {
                    Py_DECREF(labels);
                    goto error;
                }
                for (Py_ssize_t c = 0; c < ncolumns; c++) {
                    PyObject *column = PyList_New(0);
                    if (column == NULL) {
                        Py_DECREF(labels);
                        Py_DECREF(group);
                        goto error;
                    }
                    PyTuple_SET_ITEM(group, c, column);
                }
                int set = PyDict_SetItem(groups, labels, group);
                Py_DECREF(group); /* the dict holds it, and labels */
                if (set < 0) {
                    Py_DECREF(labels);
                    goto error;
                }
                ngroups++;
                if (nscanned < SCANNED) {
                    scanned_labels[nscanned] = labels;
                    scanned_groups[nscanned++] = group;
                }
            }
            Py_DECREF(labels);
        }
        for (Py_ssize_t c = 0; c < ncolumns; c++) {
            PyObject *value = PyTuple_GET_ITEM(item, columns[c]);
            if (value != Py_None && PyList_Append(PyTuple_GET_ITEM(group, c), value) < 0) goto error;
        }
    }
    Py_DECREF(items);
    return groups;
error:
    Py_DECREF(items);
    Py_XDECREF(groups);
    return NULL;
}

/* bisect_left(bounds, value) on objects, as the bisect module does it (value not NaN-checked here). */
static Py_ssize_t bisect_object(PyObject *bounds, Py_ssize_t nbounds, PyObject *value) {
    Py_ssize_t low = 0, high = nbounds;
    while (low < high) {
        Py_ssize_t middle = low + (high - low) / 2;
        int below = PyObject_RichCompareBool(PyTuple_GET_ITEM(bounds, middle), value, Py_LT);
        if (below < 0) return -1;
        if (below)
            low = middle + 1;
        else
            high = middle;
    }
    return low;
}

/* value == value as Python's == operator says it (no identity shortcut: a NaN object is not equal to itself). */
static int equals_itself(PyObject *value) {
    PyObject *equal = PyObject_RichCompare(value, value, Py_EQ);
    if (equal == NULL) return -1;
    int truth = PyObject_IsTrue(equal);
    Py_DECREF(equal);
    return truth;
}

/* histogram_add(bounds, counts, values, total) -> sum(values, total); each value that is not NaN adds one to
 * counts[bisect_left(bounds, value)] (the first bound at or above it). bounds: a tuple of floats, sorted,
 * the last one inf; counts: a list of ints as long. Nothing is changed when it raises. */
static PyObject *histogram_add(PyObject *self, PyObject *const *args, Py_ssize_t nargs) {
    if (nargs != 4) {
        PyErr_SetString(PyExc_TypeError, "histogram_add takes bounds, counts, values, total");
        return NULL;
    }
    PyObject *bounds = args[0], *counts = args[1];
    if (!PyTuple_Check(bounds) || !PyList_Check(counts) || PyTuple_GET_SIZE(bounds) != PyList_GET_SIZE(counts)) {
        PyErr_SetString(PyExc_TypeError, "histogram_add: bounds (tuple) and counts (list) of one length");
        return NULL;
    }
    Py_ssize_t nbounds = PyTuple_GET_SIZE(bounds);
    if (nbounds == 0 || nbounds > MAX_BUCKETS) {
        PyErr_Format(PyExc_ValueError, "histogram_add: 1 to %d buckets", MAX_BUCKETS);
        return NULL;
    }
    double limits[MAX_BUCKETS];
    Py_ssize_t added[MAX_BUCKETS] = {0};
    for (Py_ssize_t b = 0; b < nbounds; b++) {
        PyObject *bound = PyTuple_GET_ITEM(bounds, b);
        if (!PyFloat_CheckExact(bound)) {
            PyErr_SetString(PyExc_TypeError, "histogram_add: bounds must be floats");
            return NULL;
        }
        limits[b] = PyFloat_AS_DOUBLE(bound);
    }
    /* The builtin sum, so that the total is what the Python path gets on every Python version (3.12's sum of
     * floats compensates rounding). It raises before anything is counted, as the Python path does. */
    PyObject *sum = PyObject_CallFunctionObjArgs(builtin_sum, args[2], args[3], NULL);
    if (sum == NULL) return NULL;
    PyObject *values = NULL;
    /* As the Python path: NaN values are left out of the buckets when the total is NaN (a NaN float always
     * makes it NaN; other values are asked value == value only then). */
    int leave_out = equals_itself(sum);
    if (leave_out < 0) goto error;
    leave_out = !leave_out;
    values = PySequence_Tuple(args[2]); /* compared values may run Python code: see group_columns */
    if (values == NULL) goto error;
    Py_ssize_t nvalues = PyTuple_GET_SIZE(values);
    for (Py_ssize_t n = 0; n < nvalues; n++) {
        PyObject *value = PyTuple_GET_ITEM(values, n);
        double number;
        Py_ssize_t bucket;
        if (PyFloat_CheckExact(value)) {
            number = PyFloat_AS_DOUBLE(value);
            if (isnan(number)) continue;
        } else if (PyLong_CheckExact(value)) {
            int overflow;
            long long integer = PyLong_AsLongLongAndOverflow(value, &overflow);
            if (integer == -1 && PyErr_Occurred()) goto error;
            if (overflow || integer > EXACT_INT_LIMIT || integer < -EXACT_INT_LIMIT) goto compare;
            number = (double)integer;
        } else {
            if (leave_out) {
                int equal = equals_itself(value);
                if (equal < 0) goto error;
                if (!equal) continue;
            }
            goto compare;
        }
        {
            Py_ssize_t low = 0, high = nbounds;
            while (low < high) {
                Py_ssize_t middle = low + (high - low) / 2;
                if (limits[middle] < number)
                    low = middle + 1;
                else
                    high = middle;
            }
            bucket = low;
        }
        goto count;
    compare:
        if ((bucket = bisect_object(bounds, nbounds, value)) < 0) goto error;
    count:
        if (bucket == nbounds) {
            PyErr_SetString(PyExc_ValueError, "histogram_add: a value above the last bound");
            goto error;
        }
        added[bucket]++;
    }
    if (PyList_GET_SIZE(counts) != nbounds) { /* changed by a comparison's Python code */
        PyErr_SetString(PyExc_RuntimeError, "histogram_add: counts changed size");
        goto error;
    }
    for (Py_ssize_t b = 0; b < nbounds; b++) {
        if (added[b] == 0) continue;
        PyObject *more = PyLong_FromSsize_t(added[b]);
        if (more == NULL) goto error;
        PyObject *count = PyNumber_Add(PyList_GET_ITEM(counts, b), more);
        Py_DECREF(more);
        if (count == NULL) goto error;
        PyList_SetItem(counts, b, count);
    }
    Py_DECREF(values);
    return sum;
error:
    Py_XDECREF(values);
    Py_DECREF(sum);
    return NULL;
}

static PyMethodDef methods[] = {
    {"group_columns", (PyCFunction)(void (*)(void))group_columns, METH_FASTCALL,
     "group_columns(key, columns, items): items grouped by the key fields, each group's column values."},
    {"histogram_add", (PyCFunction)(void (*)(void))histogram_add, METH_FASTCALL,
     "histogram_add(bounds, counts, values, total): values counted into their buckets; returns the new sum."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module_def = {
    PyModuleDef_HEAD_INIT, "spanledger_collector._grouping", "A request's observations per series.", -1, methods,
};

PyMODINIT_FUNC PyInit__grouping(void) {
    PyObject *builtins = PyImport_ImportModule("builtins");
    if (builtins == NULL) return NULL;
    builtin_sum = PyObject_GetAttrString(builtins, "sum");
    Py_DECREF(builtins);
    if (builtin_sum == NULL) return NULL;
    PyObject *module = PyModule_Create(&module_def);
    if (module != NULL && PyModule_AddIntConstant(module, "MAX_BUCKETS", MAX_BUCKETS) < 0) Py_CLEAR(module);
    return module;
}
