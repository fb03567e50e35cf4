/*
 * smallpickle.c -- pickles of small scalar items, written and read here.
 *
 * Why: a pickled 64-byte bytes costs about 3,000 instructions in
 * pickle.dumps and as many in pickle.loads (callgrind), nearly all of it
 * making and freeing a Pickler or Unpickler (its memo, its output buffer,
 * attribute lookups), against about 2,000 for the put and the get
 * themselves.  So for the exact built-in scalars -- None, True, False, an
 * int in 32 bits, a float, and a bytes or str of at most SMALL_MAX bytes --
 * this file writes the very bytes pickle.dumps(obj) writes (same protocol,
 * pickle.DEFAULT_PROTOCOL, 4 or 5; same opcodes, frame and MEMOIZE), and
 * reads back exactly those forms.  Everything else goes to pickle itself.
 *
 * The item on the segment is therefore an ordinary pickle, whoever wrote
 * it: any reader may pickle.loads it, and an item another pickler wrote is
 * read here only if it has one of these forms byte for byte, which decode
 * to what pickle.loads returns (tests/python/test_payloads.py compares
 * both ways against the pickle module, on every Python we support).  No
 * user code runs for these types: CPython's C pickler consults neither
 * reducer_override nor dispatch_table for exact None, bool, int, float,
 * bytes and str, and the forms read here call nothing.
 *
 * Opcodes (Lib/pickle.py names): PROTO 0x80; FRAME 0x95 with an 8-byte
 * little-endian length, present when what follows PROTO is at least 4
 * bytes; NONE 'N', NEWTRUE 0x88, NEWFALSE 0x89; BININT1 'K' (0..255),
 * BININT2 'M' (256..65535), BININT 'J' (other 32-bit values, little-endian);
 * BINFLOAT 'G' (8 bytes, big-endian); SHORT_BINBYTES 'C' / BINBYTES 'B' and
 * SHORT_BINUNICODE 0x8c / BINUNICODE 'X' (1- or 4-byte length: one byte up
 * to 255), each followed by MEMOIZE 0x94; STOP '.'.
 */
#include "xichan_py.h"

#include <string.h>

/* Payloads up to this size: far below pickle's 64 KiB frame target, so a
 * pickle of one of them is always a single frame. */
#define SMALL_MAX 4096
#define HDR_MAX 11 /* PROTO + protocol + FRAME + 8-byte length */

static void put_le(unsigned char *p, uint64_t v, int n)
{
    for (int i = 0; i < n; i++)
        p[i] = (unsigned char)(v >> (8 * i));
}

static uint64_t get_le(const unsigned char *p, int n)
{
    uint64_t v = 0;

    for (int i = n - 1; i >= 0; i--)
        v = v << 8 | p[i];
    return v;
}

/*
 * The body (the opcodes between the frame header and STOP) of a small
 * scalar, in op (at most 10 bytes) and, for bytes and str, the payload in
 * *data and *n.  0 if obj is not one of the forms handled here (no exception).
 */
static int body_of(PyObject *obj, unsigned char *op, size_t *oplen, const char **data,
                   Py_ssize_t *n)
{
    PyTypeObject *t = Py_TYPE(obj);

    *data = NULL;
    *n = 0;
    if (obj == Py_None) {
        op[0] = 'N', *oplen = 1;
    } else if (obj == Py_True || obj == Py_False) {
        op[0] = obj == Py_True ? 0x88 : 0x89, *oplen = 1;
    } else if (t == &PyLong_Type) {
        int overflow;
        long v = PyLong_AsLongAndOverflow(obj, &overflow);

        if (overflow || v < INT32_MIN || v > INT32_MAX)
            return 0; /* LONG1: left to pickle */
        if (v >= 0 && v <= 0xff) {
            op[0] = 'K', op[1] = (unsigned char)v, *oplen = 2;
        } else if (v >= 0 && v <= 0xffff) {
            op[0] = 'M', put_le(op + 1, (uint64_t)v, 2), *oplen = 3;
        } else {
            op[0] = 'J', put_le(op + 1, (uint32_t)(int32_t)v, 4), *oplen = 5;
        }
    } else if (t == &PyFloat_Type) {
        op[0] = 'G';
        if (PyFloat_Pack8(PyFloat_AS_DOUBLE(obj), (char *)op + 1, 0) < 0) {
            PyErr_Clear();
            return 0;
        }
        *oplen = 9;
    } else if (t == &PyBytes_Type || t == &PyUnicode_Type) {
        int is_bytes = t == &PyBytes_Type;

        if (is_bytes) {
            *data = PyBytes_AS_STRING(obj);
            *n = PyBytes_GET_SIZE(obj);
        } else if (PyUnicode_GET_LENGTH(obj) > SMALL_MAX ||
                   !(*data = PyUnicode_AsUTF8AndSize(obj, n))) {
            PyErr_Clear(); /* lone surrogates: pickle's surrogatepass path */
            return 0;
        }
        if (*n > SMALL_MAX)
            return 0;
        if (*n <= 0xff) {
            op[0] = is_bytes ? 'C' : 0x8c, op[1] = (unsigned char)*n, *oplen = 2;
        } else {
            op[0] = is_bytes ? 'B' : 'X', put_le(op + 1, (uint64_t)*n, 4), *oplen = 5;
        }
    } else {
        return 0;
    }
    return 1;
}

PyObject *xp_pickle_small_dumps(xp_state *st, PyObject *obj)
{
    unsigned char op[10];
    const char *data;
    Py_ssize_t n;
    size_t oplen, memo, body, hdr;
    PyObject *r;
    unsigned char *p;

    if (!st->pickle_proto || !body_of(obj, op, &oplen, &data, &n))
        return PyObject_CallOneArg(st->pickle_dumps, obj);
    memo = data ? 1 : 0;
    body = oplen + (size_t)n + memo + 1; /* ... STOP */
    hdr = body >= 4 ? HDR_MAX : 2;
    if (!(r = PyBytes_FromStringAndSize(NULL, (Py_ssize_t)(hdr + body))))
        return NULL;
    p = (unsigned char *)PyBytes_AS_STRING(r);
    p[0] = 0x80;
    p[1] = (unsigned char)st->pickle_proto;
    if (hdr == HDR_MAX) {
        p[2] = 0x95;
        put_le(p + 3, body, 8);
    }
    p += hdr;
    memcpy(p, op, oplen);
    p += oplen;
    if (n)
        memcpy(p, data, (size_t)n);
    p += n;
    if (memo)
        *p++ = 0x94;
    *p = '.';
    return r;
}

PyObject *xp_pickle_small_loads(const char *data, size_t len, int *done)
{
    const unsigned char *p = (const unsigned char *)data, *end = p + len;
    uint64_t n = 0;
    PyObject *r;
    int memo = 0;

    *done = 0;
    if (len < 4 || p[0] != 0x80 || (p[1] != 4 && p[1] != 5) || end[-1] != '.')
        return NULL;
    p += 2;
    if (*p == 0x95) {
        if (end - p < 9 || get_le(p + 1, 8) != (uint64_t)(end - p - 9))
            return NULL;
        p += 9;
    } else if (end - p >= 4) {
        return NULL; /* pickle would have framed it: not one of ours */
    }
    end--; /* STOP */
    if (p >= end)
        return NULL;
    switch (*p++) {
    case 'N':
        r = Py_NewRef(Py_None);
        break;
    case 0x88:
        r = Py_NewRef(Py_True);
        break;
    case 0x89:
        r = Py_NewRef(Py_False);
        break;
    case 'K':
    case 'M':
    case 'J': {
        int w = p[-1] == 'K' ? 1 : p[-1] == 'M' ? 2 : 4;
        if (end - p != w)
            return NULL;
        n = get_le(p, w);
        r = PyLong_FromLong(w == 4 ? (long)(int32_t)(uint32_t)n : (long)n);
        p += w;
        break;
    }
    case 'G': {
        double v;
        if (end - p != 8 || ((v = PyFloat_Unpack8((const char *)p, 0)) == -1.0 && PyErr_Occurred())) {
            PyErr_Clear();
            return NULL;
        }
        r = PyFloat_FromDouble(v);
        p += 8;
        break;
    }
    case 'C':
    case 0x8c:
    case 'B':
    case 'X': {
        unsigned c = p[-1];
        int w = c == 'C' || c == 0x8c ? 1 : 4;
        if (end - p < w)
            return NULL;
        n = get_le(p, w);
        p += w;
        if (n != (uint64_t)(end - p - 1) || end[-1] != 0x94)
            return NULL;
        if (c == 'C' || c == 'B') {
            r = PyBytes_FromStringAndSize((const char *)p, (Py_ssize_t)n);
        } else if (!(r = PyUnicode_DecodeUTF8((const char *)p, (Py_ssize_t)n, "surrogatepass"))) {
            if (!PyErr_ExceptionMatches(PyExc_UnicodeDecodeError))
                break;
            PyErr_Clear(); /* pickle.loads raises its own error for it */
            return NULL;
        }
        p += n;
        memo = 1;
        break;
    }
    default:
        return NULL;
    }
    if (r && p + memo != end) { /* unreachable: every case checked its length */
        Py_DECREF(r);
        return NULL;
    }
    *done = 1;
    return r;
}
