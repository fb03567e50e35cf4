/*
 * ops_queue.c -- the queue calls of _xichan (the low level of xichan.queues).
 *
 * Shapes follow CPython 3.13's _interpqueues where they can,
 * with xichan's differences:
 *   - queue_create binds the new queue once to the caller's session (the
 *     Python Queue object adopts that binding), so a queue nobody holds
 *     cannot linger between create and the first Queue object;
 *   - put/get take a timeout (None, 0 or float seconds), turned into one
 *     absolute deadline here; they try once with the GIL held and, if they
 *     must wait, block in libxichan with the GIL released (no polling; see
 *     module.c); put raises QueueFull and get QueueEmpty when it passes
 *     (a put that waited for room in a full segment: SegmentFullError);
 *   - get decodes by each item's own format (msgpack, buffer, pickle) and
 *     returns _xichan.UNBOUND_ITEM for an UNBOUND item.
 * fmt is XICHAN_FMT_MSGPACK (syncobj=True: obj is encoded here) or
 * XICHAN_FMT_PICKLE (obj is the bytes the Python layer pickled).
 */
#include "xichan_py.h"

static int nargs_ok(const char *name, Py_ssize_t nargs, Py_ssize_t lo, Py_ssize_t hi)
{
    if (nargs < lo || nargs > hi) {
        PyErr_Format(PyExc_TypeError, "%s() takes %zd to %zd arguments (%zd given)", name, lo, hi,
                     nargs);
        return -1;
    }
    return 0;
}

/* put and put_many: (qid, obj or seq, fmt, unboundop, timeout=None). */
static int put_args(const char *name, PyObject *const *args, Py_ssize_t nargs, xichan_queue_id *q,
                    long *fmt, int *op, int64_t *deadline)
{
    if (nargs_ok(name, nargs, 4, 5) || xp_id_arg(args[0], "queue ID", &q->id) ||
        xp_unboundop(args[3], 1, op) || xp_deadline(nargs > 4 ? args[4] : Py_None, deadline))
        return -1;
    *fmt = PyLong_AsLong(args[2]);
    return *fmt == -1 && PyErr_Occurred() ? -1 : 0;
}

/* queue_create(maxsize, fmt, unboundop, name=None) -> qid */
static PyObject *q_create(PyObject *m, PyObject *args, PyObject *kw)
{
    static char *kwlist[] = {"maxsize", "fmt", "unboundop", "name", NULL};
    xp_state *st = xp_state_of(m);
    xichan_queue_opts o = {0};
    xichan_queue_id q;
    xichan_client *cl;
    long long maxsize;
    const char *name = NULL;
    int err;

    if (!PyArg_ParseTupleAndKeywords(args, kw, "Lii|z:queue_create", kwlist, &maxsize, &o.fmt,
                                     &o.unboundop, &name))
        return NULL;
    if (xp_check_unboundop(o.unboundop, 0))
        return NULL;
    if (!(cl = xp_client(st)))
        return NULL;
    o.maxsize = maxsize;
    o.name = name;
    if ((err = xichan_queue_create(cl, &o, &q)))
        return raise_from_err(st, err, XP_QUEUE, 0);
    return PyLong_FromUnsignedLongLong(q.id);
}

static int do_open(xichan_client *cl, const char *name, uint64_t *id)
{
    xichan_queue_id q = {0};
    int err = xichan_queue_open(cl, name, &q);

    *id = q.id;
    return err;
}

static PyObject *q_open(PyObject *m, PyObject *arg) { return xp_open_call(m, arg, XP_QUEUE, do_open); }

/* The qid-only calls (xp_id_call): destroy, bind, release, count, full. */
#define QID(id) ((xichan_queue_id){id})
static int64_t do_destroy(xichan_client *cl, uint64_t id) { return xichan_queue_destroy(cl, QID(id)); }
static int64_t do_bind(xichan_client *cl, uint64_t id) { return xichan_queue_bind(cl, QID(id)); }
static int64_t do_release(xichan_client *cl, uint64_t id) { return xichan_queue_release(cl, QID(id)); }
static int64_t do_count(xichan_client *cl, uint64_t id) { return xichan_queue_count(cl, QID(id)); }
static int64_t do_full(xichan_client *cl, uint64_t id) { return xichan_queue_full(cl, QID(id)); }

static PyObject *q_destroy(PyObject *m, PyObject *a) { return xp_id_call(m, a, XP_QUEUE, do_destroy, XP_RET_NONE); }
static PyObject *q_bind(PyObject *m, PyObject *a) { return xp_id_call(m, a, XP_QUEUE, do_bind, XP_RET_NONE); }
static PyObject *q_release(PyObject *m, PyObject *a) { return xp_id_call(m, a, XP_QUEUE, do_release, XP_RET_NONE); }
static PyObject *q_count(PyObject *m, PyObject *a) { return xp_id_call(m, a, XP_QUEUE, do_count, XP_RET_INT); }
static PyObject *q_full(PyObject *m, PyObject *a) { return xp_id_call(m, a, XP_QUEUE, do_full, XP_RET_BOOL); }

/* queue_defaults(qid) -> (maxsize, fmt, unboundop) */
static PyObject *q_defaults(PyObject *m, PyObject *arg)
{
    xp_state *st = xp_state_of(m);
    xichan_client *cl;
    xichan_queue_id q;
    int64_t maxsize;
    int fmt, op, err;

    if (xp_id_arg(arg, "queue ID", &q.id) || !(cl = xp_client(st)))
        return NULL;
    if ((err = xichan_queue_defaults(cl, q, &maxsize, &fmt, &op)))
        return raise_from_err(st, err, XP_QUEUE, q.id);
    return Py_BuildValue("(Lii)", (long long)maxsize, fmt, op);
}

/* queue_put(qid, obj, fmt, unboundop, timeout=None) */
static PyObject *q_put(PyObject *m, PyObject *const *args, Py_ssize_t nargs)
{
    xp_state *st = xp_state_of(m);
    xichan_client *cl;
    xichan_queue_id q;
    xp_enc e;
    xp_block b;
    const void *data;
    size_t len;
    int64_t deadline;
    long fmt;
    int op, err;

    if (put_args("queue_put", args, nargs, &q, &fmt, &op, &deadline) || !(cl = xp_client(st)))
        return NULL;
    XP_SWEEP(st);
    xp_enc_init(&e, st, cl);
    /* fmt | 0x100 (tests): these bytes as an item of format fmt & 0xff, as a C client would */
    if (fmt & 0x100 || fmt == XICHAN_FMT_PICKLE || fmt == XICHAN_FMT_RAW) {
        if (!PyBytes_Check(args[1])) {
            xp_enc_fini(&e);
            PyErr_SetString(PyExc_TypeError,
                            fmt & 0x100 ? "a raw item must be bytes" : "a pickled item must be bytes");
            return NULL;
        }
        fmt &= 0xff;
        data = PyBytes_AS_STRING(args[1]);
        len = (size_t)PyBytes_GET_SIZE(args[1]);
    } else {
        if (xp_encode(&e, args[1])) {
            xp_enc_abort(&e);
            xp_enc_fini(&e);
            return NULL;
        }
        fmt = e.fmt;
        data = xp_enc_data(&e);
        len = xp_enc_len(&e);
    }
    if (e.direct) { /* a buffer's bytes: one copy, with the GIL released */
        xp_block_begin(&b);
        err = xichan_queue_put_buffer(cl, q, &e.hold.d, op, deadline);
        xp_block_end(&b);
    } else {
        err = len <= XP_HELD_MAX ? xichan_queue_put(cl, q, (int)fmt, data, len, op, XICHAN_NOWAIT)
                                 : XICHAN_EFULL;
        /* Full queue, full segment or a stopped lock holder: each may wait,
         * with the GIL released. */
        if ((err == XICHAN_EFULL || err == XICHAN_ENOSPC || err == XICHAN_ELOCKED) &&
            (deadline != XICHAN_NOWAIT || len > XP_HELD_MAX)) {
            xp_block_begin(&b);
            err = xichan_queue_put(cl, q, (int)fmt, data, len, op, deadline);
            xp_block_end(&b);
        }
    }
    if (err) {
        xp_enc_abort(&e);
        xp_enc_fini(&e);
        return raise_from_err(st, err, XP_QUEUE, q.id);
    }
    xp_enc_fini(&e);
    Py_RETURN_NONE;
}

/* queue_get(qid, timeout=None) -> obj (UNBOUND_ITEM for an unbound item) */
static PyObject *q_get(PyObject *m, PyObject *const *args, Py_ssize_t nargs)
{
    xp_state *st = xp_state_of(m);
    xichan_client *cl;
    xichan_queue_id q;
    xichan_item item;
    xp_block b;
    int64_t deadline;
    int err;

    if (nargs_ok("queue_get", nargs, 1, 2) || xp_id_arg(args[0], "queue ID", &q.id) ||
        xp_deadline(nargs > 1 ? args[1] : Py_None, &deadline) || !(cl = xp_client(st)))
        return NULL;
    XP_SWEEP(st);
    err = xichan_queue_get(cl, q, &item, XICHAN_NOWAIT);
    if ((err == XICHAN_EEMPTY || err == XICHAN_ELOCKED) && deadline != XICHAN_NOWAIT) {
        xp_block_begin(&b);
        err = xichan_queue_get(cl, q, &item, deadline);
        xp_block_end(&b);
    }
    if (err)
        return raise_from_err(st, err, XP_QUEUE, q.id);
    return xp_decode_item(st, &item);
}

/* ----------------------------------------------------------- batches
 *
 * Decisions (xichan.queues.Queue.put_many's docstring has the user-facing part):
 *   - put_many encodes every item first, with the GIL, into one buffer (one
 *     xp_enc for the whole batch: no allocation per item), and only then
 *     calls xichan_queue_put_many, which allocates the blocks in one pass,
 *     copies with no lock held, publishes under one lock and wakes once.
 *     An item that cannot be encoded raises before anything is queued.
 *   - It returns how many items were put, in order: all of them, or the
 *     first k when the deadline passed with the queue full (the Python layer
 *     raises QueueFull with .count = k).  The references of items not put
 *     are given back.
 *   - get_many takes up to max_items in one xichan_queue_get_many per
 *     BATCH_CHUNK (waiting, until the deadline, only for the first), decodes
 *     them holding the blocks, releases all the blocks at once and unpickles
 *     last.  An item that fails to decode is consumed (as get() consumes
 *     it); the others are not lost: the first error is raised with .items,
 *     the list of the items that decoded.  The same for an UNBOUND_ERROR
 *     item met after the first chunk (its own call consumes it).
 */
#define BATCH_CHUNK 256

struct batch_ent {
    size_t off, len, ref0; /* in the shared xp_enc: bytes and references */
    const char *ext;       /* a pickled/raw item's bytes (the caller's bytes object) */
    int fmt;
};

/* Encodes seq[i] as entry i (see the batch decision). */
static int batch_encode(xp_enc *e, PyObject *obj, long fmt, struct batch_ent *b)
{
    b->ref0 = e->nrefs;
    b->ext = NULL;
    if (fmt == XICHAN_FMT_PICKLE || fmt == XICHAN_FMT_RAW) {
        if (!PyBytes_Check(obj)) {
            PyErr_SetString(PyExc_TypeError, "a pickled item must be bytes");
            return -1;
        }
        b->fmt = (int)fmt;
        b->ext = PyBytes_AS_STRING(obj);
        b->len = (size_t)PyBytes_GET_SIZE(obj);
        return 0;
    }
    b->off = e->len;
    if (Py_TYPE(obj) == &PyMemoryView_Type) {
        char *payload;
        size_t n;
        int rc;

        if (xp_buffer_encode(e, obj, &payload, &n))
            return -1;
        rc = e->pk.callback(e, payload, n);
        PyMem_Free(payload);
        if (rc) {
            PyErr_NoMemory();
            return -1;
        }
        b->fmt = XICHAN_FMT_BUFFER;
    } else {
        if (xp_encode(e, obj))
            return -1;
        b->fmt = XICHAN_FMT_MSGPACK;
    }
    b->len = e->len - b->off;
    return 0;
}

/* Gives back the references of entries from..n (not queued). */
static void batch_abort(xp_enc *e, const struct batch_ent *b, size_t from, size_t n)
{
    size_t keep = from < n ? b[from].ref0 : e->nrefs;

    for (size_t i = keep; i < e->nrefs; i++) {
        if (e->refs[i].kind == 0)
            xp_exports_drop(e->refs[i].id);
        else
            (void)xichan_obj_inflight(e->cl, e->refs[i].kind, e->refs[i].id, -1);
    }
    e->nrefs = keep;
}

/* queue_put_many(qid, seq, fmt, unboundop, timeout=None) -> number put */
static PyObject *q_put_many(PyObject *m, PyObject *const *args, Py_ssize_t nargs)
{
    xp_state *st = xp_state_of(m);
    xichan_client *cl;
    xichan_queue_id q;
    PyObject *seq, *res = NULL;
    struct batch_ent *ents = NULL;
    xichan_iov *iov = NULL;
    xp_enc e;
    xp_block b;
    int64_t deadline;
    size_t n, done = 0, total = 0;
    long fmt;
    int op, err = 0;

    if (put_args("queue_put_many", args, nargs, &q, &fmt, &op, &deadline) || !(cl = xp_client(st)))
        return NULL;
    if (!(seq = PySequence_Fast(args[1], "put_many() needs an iterable")))
        return NULL;
    n = (size_t)PySequence_Fast_GET_SIZE(seq);
    XP_SWEEP(st);
    xp_enc_init(&e, st, cl);
    if (n == 0) {
        res = PyLong_FromLong(0);
        goto out;
    }
    ents = PyMem_Malloc(n * sizeof(*ents));
    iov = PyMem_Malloc(n * sizeof(*iov));
    if (!ents || !iov) {
        PyErr_NoMemory();
        goto out;
    }
    for (size_t i = 0; i < n; i++) {
        if (batch_encode(&e, PySequence_Fast_GET_ITEM(seq, (Py_ssize_t)i), fmt, &ents[i])) {
            batch_abort(&e, ents, 0, 0);
            goto out;
        }
    }
    /* The buffer has stopped moving: point the iovs into it. */
    for (size_t i = 0; i < n; i++) {
        iov[i].fmt = ents[i].fmt;
        iov[i].data = ents[i].ext ? ents[i].ext : e.buf + ents[i].off;
        iov[i].len = ents[i].len;
        total += ents[i].len;
    }
    if (total <= XP_HELD_MAX) {
        int r = xichan_queue_put_many(cl, q, iov, n, op, XICHAN_NOWAIT);

        if (r > 0)
            done = (size_t)r;
        else
            err = r;
    }
    if (done < n &&
        (err == 0 || err == XICHAN_EFULL || err == XICHAN_ENOSPC || err == XICHAN_ELOCKED) &&
        (deadline != XICHAN_NOWAIT || total > XP_HELD_MAX)) {
        int r;

        xp_block_begin(&b);
        r = xichan_queue_put_many(cl, q, iov + done, n - done, op, deadline);
        xp_block_end(&b);
        if (r > 0)
            done += (size_t)r, err = 0;
        else
            err = r;
    }
    if (done < n)
        batch_abort(&e, ents, done, n);
    /* Full at the deadline is a count; anything else (or an interrupt) raises. */
    if ((err && err != XICHAN_EFULL) || PyErr_Occurred())
        raise_from_err(st, err ? err : XICHAN_EINTR, XP_QUEUE, q.id);
    else
        res = PyLong_FromSize_t(done);
out:
    xp_enc_fini(&e);
    PyMem_Free(ents);
    PyMem_Free(iov);
    Py_DECREF(seq);
    return res;
}

/* Decodes k taken items onto list, releasing them; *first keeps the first
 * decoding error (see the batch decision).  -1 only if the list fails. */
static int batch_decode(xp_state *st, xichan_item *items, size_t k, PyObject *list,
                        PyObject *unbound, PyObject **first)
{
    PyObject *vals[BATCH_CHUNK];
    unsigned char pickled[BATCH_CHUNK];
    int rc = 0;

    for (size_t i = 0; i < k; i++) {
        int unpickle;

        vals[i] = xp_decode_held(st, &items[i], &unpickle);
        pickled[i] = (unsigned char)unpickle;
        if (!vals[i])
            xp_err_keep(first);
    }
    xichan_items_release(items, k);
    for (size_t i = 0; i < k; i++) {
        PyObject *v = vals[i];

        if (v && pickled[i] && !(v = xp_unpickle(st, v)))
            xp_err_keep(first);
        if (!v)
            continue;
        if (v == st->unbound_item)
            Py_SETREF(v, Py_NewRef(unbound));
        if (rc == 0 && PyList_Append(list, v))
            rc = -1;
        Py_DECREF(v);
    }
    return rc;
}

/* queue_get_many(qid, max_items, timeout, unbound) -> [obj, ...] */
static PyObject *q_get_many(PyObject *m, PyObject *const *args, Py_ssize_t nargs)
{
    xp_state *st = xp_state_of(m);
    xichan_client *cl;
    xichan_queue_id q;
    xichan_item items[BATCH_CHUNK];
    PyObject *list, *first = NULL;
    xp_block b;
    int64_t deadline;
    Py_ssize_t max;
    size_t got = 0;
    int r;

    if (nargs_ok("queue_get_many", nargs, 4, 4) || xp_id_arg(args[0], "queue ID", &q.id))
        return NULL;
    if ((max = PyNumber_AsSsize_t(args[1], PyExc_OverflowError)) == -1 && PyErr_Occurred())
        return NULL;
    if (max < 1) {
        PyErr_SetString(PyExc_ValueError, "max_items must be at least 1");
        return NULL;
    }
    if (xp_deadline(args[2], &deadline) || !(cl = xp_client(st)))
        return NULL;
    XP_SWEEP(st);
    if (!(list = PyList_New(0)))
        return NULL;
    for (;;) {
        size_t want = (size_t)max - got < BATCH_CHUNK ? (size_t)max - got : BATCH_CHUNK;

        r = xichan_queue_get_many(cl, q, items, want, XICHAN_NOWAIT);
        /* Only the first call waits: after it, what is there is taken. */
        if ((r == XICHAN_EEMPTY || r == XICHAN_ELOCKED) && got == 0 && deadline != XICHAN_NOWAIT) {
            xp_block_begin(&b);
            r = xichan_queue_get_many(cl, q, items, want, deadline);
            xp_block_end(&b);
        }
        if (r < 0)
            break;
        got += (size_t)r;
        if (batch_decode(st, items, (size_t)r, list, args[3], &first)) {
            Py_XDECREF(first);
            Py_DECREF(list);
            return NULL;
        }
        if ((size_t)r < want || got == (size_t)max)
            break;
    }
    if (r < 0 && (got == 0 || r != XICHAN_EEMPTY)) {
        /* An error, or an UNBOUND_ERROR item consumed by a later chunk: it
         * is raised, and what was taken before it rides on .items. */
        raise_from_err(st, r, XP_QUEUE, q.id);
        if (got == 0) {
            Py_XDECREF(first);
            Py_DECREF(list);
            return NULL;
        }
        Py_XSETREF(first, NULL);
        xp_err_keep(&first);
    }
    if (first) {
        xp_err_restore(first);
        xp_exc_setattr("items", list);
        Py_DECREF(list);
        return NULL;
    }
    return list;
}

/* queue_list() -> [(qid, fmt, unboundop, maxsize, name)], oldest first, open ones */
static PyObject *q_list(PyObject *m, PyObject *unused)
{
    static const int pick[] = {0, 8, 9, 3, 10}; /* list_objects' fields */

    return xp_list_fields(m, XP_QUEUE, pick, 5, 1);
}

PyMethodDef xp_queue_methods[] = {
    {"queue_create", (PyCFunction)(void (*)(void))q_create, METH_VARARGS | METH_KEYWORDS,
     "queue_create(maxsize, fmt, unboundop, name=None) -> qid, bound once to the caller."},
    {"queue_open", q_open, METH_O, "queue_open(name) -> qid of a named queue (not bound)."},
    {"queue_destroy", q_destroy, METH_O, "Destroy at once; items are dropped."},
    {"queue_bind", q_bind, METH_O, "Add a binding of this interpreter."},
    {"queue_release", q_release, METH_O, "Drop a binding; the last one destroys the queue."},
    {"queue_count", q_count, METH_O, "Number of queued items."},
    {"queue_full", q_full, METH_O, "True if bounded and at capacity."},
    {"queue_defaults", q_defaults, METH_O, "(maxsize, fmt, unboundop) given at creation."},
    {"queue_put", (PyCFunction)(void (*)(void))q_put, METH_FASTCALL,
     "queue_put(qid, obj, fmt, unboundop, timeout=None)"},
    {"queue_get", (PyCFunction)(void (*)(void))q_get, METH_FASTCALL,
     "queue_get(qid, timeout=None) -> obj"},
    {"queue_put_many", (PyCFunction)(void (*)(void))q_put_many, METH_FASTCALL,
     "queue_put_many(qid, seq, fmt, unboundop, timeout=None) -> how many were put"},
    {"queue_get_many", (PyCFunction)(void (*)(void))q_get_many, METH_FASTCALL,
     "queue_get_many(qid, max_items, timeout, unbound) -> [obj, ...]"},
    {"queue_list", q_list, METH_NOARGS, "[(qid, fmt, unboundop, maxsize, name)], oldest first."},
    {NULL, NULL, 0, NULL},
};
