/*
 * ops_chan.c -- the channel calls of _xichan (the low level of
 * xichan.channels), after CPython 3.13's _interpchannels.
 *
 * Differences from _interpchannels:
 *   - chan_create binds the new channel once to the caller (the recv end's
 *     ChannelID adopts that binding); every ChannelID object holds one
 *     binding, which is CPython's ChannelID refcount across sessions;
 *   - send is a rendezvous in libxichan: it returns once a receiver took this
 *     very item, and on timeout or Ctrl-C the item is withdrawn;
 *     send_nowait returns True when a receiver was already waiting for it;
 *   - recv blocks in libxichan (no polling) and raises TimeoutError('timed
 *     out') at its deadline; recv with nowait=True returns the default or
 *     raises ChannelEmptyError.
 */
#include "xichan_py.h"

static int get_cid(PyObject *arg, xichan_chan_id *c)
{
    return xp_obj_id(XP_CHAN, arg, &c->id);
}

/* chan_create(unboundop, name=None) -> cid */
static PyObject *c_create(PyObject *m, PyObject *args, PyObject *kw)
{
    static char *kwlist[] = {"unboundop", "name", NULL};
    xp_state *st = xp_state_of(m);
    xichan_chan_opts o = {0};
    xichan_client *cl;
    xichan_chan_id c;
    int err;

    if (!PyArg_ParseTupleAndKeywords(args, kw, "i|z:chan_create", kwlist, &o.unboundop, &o.name))
        return NULL;
    if (xp_check_unboundop(o.unboundop, 0))
        return NULL;
    if (!(cl = xp_client(st)))
        return NULL;
    if ((err = xichan_chan_create(cl, &o, &c)))
        return raise_from_err(st, err, XP_CHAN, 0);
    return PyLong_FromUnsignedLongLong(c.id);
}

static int do_open(xichan_client *cl, const char *name, uint64_t *id)
{
    xichan_chan_id c = {0};
    int err = xichan_chan_open(cl, name, &c);

    *id = c.id;
    return err;
}

static PyObject *c_open(PyObject *m, PyObject *arg) { return xp_open_call(m, arg, XP_CHAN, do_open); }

/* The cid-only calls (xp_id_call): destroy, bind, unbind, count. */
#define CID(id) ((xichan_chan_id){id})
static int64_t do_destroy(xichan_client *cl, uint64_t id) { return xichan_chan_destroy(cl, CID(id)); }
static int64_t do_bind(xichan_client *cl, uint64_t id) { return xichan_chan_bind(cl, CID(id)); }
static int64_t do_unbind(xichan_client *cl, uint64_t id) { return xichan_chan_unbind(cl, CID(id)); }
static int64_t do_count(xichan_client *cl, uint64_t id) { return xichan_chan_count(cl, CID(id)); }

static PyObject *c_destroy(PyObject *m, PyObject *a) { return xp_id_call(m, a, XP_CHAN, do_destroy, XP_RET_NONE); }
static PyObject *c_bind(PyObject *m, PyObject *a) { return xp_id_call(m, a, XP_CHAN, do_bind, XP_RET_NONE); }
static PyObject *c_unbind(PyObject *m, PyObject *a) { return xp_id_call(m, a, XP_CHAN, do_unbind, XP_RET_NONE); }
static PyObject *c_count(PyObject *m, PyObject *a) { return xp_id_call(m, a, XP_CHAN, do_count, XP_RET_INT); }

static PyObject *c_defaults(PyObject *m, PyObject *arg)
{
    xp_state *st = xp_state_of(m);
    xichan_client *cl;
    xichan_chan_id c;
    int op, err;

    if (get_cid(arg, &c) || !(cl = xp_client(st)))
        return NULL;
    if ((err = xichan_chan_defaults(cl, c, &op)))
        return raise_from_err(st, err, XP_CHAN, c.id);
    return PyLong_FromLong(op);
}

/*
 * What send, send_buffer and send_start do first: obj (with buffer, as
 * memoryview(obj) -- CPython takes that: a str or int is a TypeError)
 * encoded into e, initialized here.  0: the caller owns e (xp_enc_fini) and
 * *mv (NULL without buffer); -1 with an exception set and nothing to undo.
 */
static int send_encode(xp_state *st, PyObject *obj, int buffer, xichan_client **cl, xp_enc *e,
                       PyObject **mv)
{
    *mv = NULL;
    if (buffer && !(obj = *mv = PyMemoryView_FromObject(obj)))
        return -1;
    if (!(*cl = xp_client(st))) {
        Py_CLEAR(*mv);
        return -1;
    }
    XP_SWEEP(st);
    xp_enc_init(e, st, *cl);
    if (xp_encode(e, obj)) {
        xp_enc_abort(e);
        xp_enc_fini(e);
        Py_CLEAR(*mv);
        return -1;
    }
    return 0;
}

/* Shared by send and send_buffer: (cid, obj, unboundop, timeout, nowait). */
static PyObject *send_common(PyObject *m, PyObject *const *args, Py_ssize_t nargs, int buffer)
{
    xp_state *st = xp_state_of(m);
    xichan_client *cl;
    xichan_chan_id c;
    PyObject *mv;
    xp_enc e;
    xp_block b;
    int64_t deadline;
    int op, nowait, err;

    if (nargs != 5) {
        PyErr_SetString(PyExc_TypeError, "chan_send(cid, obj, unboundop, timeout, nowait)");
        return NULL;
    }
    if (get_cid(args[0], &c) || xp_unboundop(args[2], 1, &op) || (nowait = PyObject_IsTrue(args[4])) < 0)
        return NULL;
    if (nowait)
        deadline = XICHAN_NOWAIT;
    else if (xp_deadline(args[3], &deadline))
        return NULL;
    if (send_encode(st, args[1], buffer, &cl, &e, &mv))
        return NULL;
    /* A non-blocking send never waits: a small one keeps the GIL (module.c). */
    if (nowait && xp_enc_len(&e) <= XP_HELD_MAX && !e.direct) {
        err = xichan_chan_send_nowait(cl, c, e.fmt, xp_enc_data(&e), xp_enc_len(&e), op);
    } else {
        xp_block_begin(&b);
        if (e.direct && nowait) /* a buffer's bytes: copied once, into the item */
            err = xichan_chan_send_buffer_nowait(cl, c, &e.hold.d, op);
        else if (e.direct)
            err = xichan_chan_send_buffer(cl, c, &e.hold.d, op, deadline);
        else if (nowait)
            err = xichan_chan_send_nowait(cl, c, e.fmt, xp_enc_data(&e), xp_enc_len(&e), op);
        else
            err = xichan_chan_send(cl, c, e.fmt, xp_enc_data(&e), xp_enc_len(&e), op, deadline);
        xp_block_end(&b);
    }
    Py_XDECREF(mv);
    if (err < 0) {
        xp_enc_abort(&e);
        xp_enc_fini(&e);
        return raise_from_err(st, err, XP_CHAN, c.id);
    }
    if (!nowait) /* taken: an export nobody here claimed went to another process */
        for (size_t i = 0; i < e.nrefs; i++)
            if (e.refs[i].kind == 0)
                xp_export_settle(st, e.refs[i].id, c.id);
    xp_enc_fini(&e);
    if (nowait)
        return PyBool_FromLong(err == 1);
    Py_RETURN_NONE;
}

/*
 * The two-step send of send_async (xichan_chan_send_start, xichan.h):
 * chan_send_start(cid, obj, unboundop, buffer) -> (ticket, exports) queues
 * the item; chan_send_check(cid, ticket) -> True (received), False
 * (waiting), or ChannelClosedError (dropped); chan_send_cancel(cid, ticket)
 * -> True if a receiver had taken it, False if it was withdrawn.  The local
 * exports the item refers to are settled once it was received
 * (chan_send_settle, as a blocking send does when it returns) or dropped
 * once it was withdrawn (chan_send_drop).
 */
static PyObject *c_send_start(PyObject *m, PyObject *const *args, Py_ssize_t nargs)
{
    xp_state *st = xp_state_of(m);
    xichan_client *cl;
    xichan_chan_id c;
    PyObject *mv;
    uint64_t ticket = 0;
    xp_enc e;
    int op, buffer, err;

    if (nargs != 4) {
        PyErr_SetString(PyExc_TypeError, "chan_send_start(cid, obj, unboundop, buffer)");
        return NULL;
    }
    if (get_cid(args[0], &c) || xp_unboundop(args[2], 1, &op) ||
        (buffer = PyObject_IsTrue(args[3])) < 0)
        return NULL;
    if (send_encode(st, args[1], buffer, &cl, &e, &mv))
        return NULL;
    if (e.direct) { /* one payload, as a nested buffer is sent */
        char *payload;
        size_t n;
        if (xp_buffer_payload(&e, &e.hold, &payload, &n)) {
            err = -1;
            goto fail;
        }
        e.direct = 0;
        e.raw = payload;
        e.rawlen = n;
        e.fmt = XICHAN_FMT_BUFFER;
    }
    err = xichan_chan_send_start(cl, c, e.fmt, xp_enc_data(&e), xp_enc_len(&e), op, &ticket);
    if (err < 0) {
        raise_from_err(st, err, XP_CHAN, c.id);
        goto fail;
    }
    {
        PyObject *exports = PyList_New(0), *t;
        for (size_t i = 0; exports && i < e.nrefs; i++) {
            if (e.refs[i].kind != 0)
                continue;
            if (!(t = PyLong_FromUnsignedLongLong(e.refs[i].id)) || PyList_Append(exports, t)) {
                Py_XDECREF(t);
                Py_CLEAR(exports);
                break;
            }
            Py_DECREF(t);
        }
        xp_enc_fini(&e);
        Py_XDECREF(mv);
        if (!exports) { /* queued all the same: take it back */
            (void)xichan_chan_send_cancel(cl, c, ticket);
            return NULL;
        }
        return Py_BuildValue("(KN)", (unsigned long long)ticket, exports);
    }

fail:
    xp_enc_abort(&e);
    xp_enc_fini(&e);
    Py_XDECREF(mv);
    return NULL;
}

/* chan_send_check and chan_send_cancel: (cid, ticket) -> a bool, see above. */
static PyObject *ticket_call(PyObject *m, PyObject *const *args, Py_ssize_t nargs, int cancel)
{
    xp_state *st = xp_state_of(m);
    xichan_client *cl;
    xichan_chan_id c;
    unsigned long long t;
    int err;

    if (nargs != 2) {
        PyErr_SetString(PyExc_TypeError, "expected (cid, ticket)");
        return NULL;
    }
    if (get_cid(args[0], &c))
        return NULL;
    t = PyLong_AsUnsignedLongLong(args[1]);
    if (PyErr_Occurred() || !(cl = xp_client(st)))
        return NULL;
    if (cancel) /* 1: a receiver had taken it; 0: withdrawn */
        err = xichan_chan_send_cancel(cl, c, t);
    else if ((err = xichan_chan_send_check(cl, c, t)) == 0) /* received */
        err = 1;
    else if (err == XICHAN_EEMPTY) /* still waiting */
        err = 0;
    if (err < 0)
        return raise_from_err(st, err, XP_CHAN, c.id);
    return PyBool_FromLong(err == 1);
}

static PyObject *c_send_check(PyObject *m, PyObject *const *args, Py_ssize_t nargs)
{
    return ticket_call(m, args, nargs, 0);
}

static PyObject *c_send_cancel(PyObject *m, PyObject *const *args, Py_ssize_t nargs)
{
    return ticket_call(m, args, nargs, 1);
}

/* chan_send_settle(cid, exports) / chan_send_drop(exports): see above.
 * Each export token of the list is settled as received on c, or without
 * c dropped. */
static PyObject *each_export(xp_state *st, PyObject *list, const xichan_chan_id *c)
{
    for (Py_ssize_t i = 0; i < PyList_GET_SIZE(list); i++) {
        unsigned long long t = PyLong_AsUnsignedLongLong(PyList_GET_ITEM(list, i));

        if (PyErr_Occurred())
            return NULL;
        if (c)
            xp_export_settle(st, t, c->id);
        else
            xp_exports_drop(t);
    }
    Py_RETURN_NONE;
}

static PyObject *c_send_settle(PyObject *m, PyObject *const *args, Py_ssize_t nargs)
{
    xichan_chan_id c;

    if (nargs != 2 || !PyList_Check(args[1])) {
        PyErr_SetString(PyExc_TypeError, "chan_send_settle(cid, exports)");
        return NULL;
    }
    if (get_cid(args[0], &c))
        return NULL;
    return each_export(xp_state_of(m), args[1], &c);
}

static PyObject *c_send_drop(PyObject *m, PyObject *arg)
{
    if (!PyList_Check(arg)) {
        PyErr_SetString(PyExc_TypeError, "chan_send_drop(exports)");
        return NULL;
    }
    return each_export(xp_state_of(m), arg, NULL);
}

static PyObject *c_send(PyObject *m, PyObject *const *args, Py_ssize_t nargs)
{
    return send_common(m, args, nargs, 0);
}

static PyObject *c_send_buffer(PyObject *m, PyObject *const *args, Py_ssize_t nargs)
{
    return send_common(m, args, nargs, 1);
}

/* chan_recv(cid, timeout=None, nowait=False[, default]) */
static PyObject *c_recv(PyObject *m, PyObject *const *args, Py_ssize_t nargs)
{
    xp_state *st = xp_state_of(m);
    xichan_client *cl;
    xichan_chan_id c;
    xichan_item item;
    xp_block b;
    int64_t deadline;
    int nowait = 0, err;
    PyObject *res;

    if (nargs < 1 || nargs > 4) {
        PyErr_SetString(PyExc_TypeError, "chan_recv(cid, timeout=None, nowait=False[, default])");
        return NULL;
    }
    if (get_cid(args[0], &c) || (nargs > 2 && (nowait = PyObject_IsTrue(args[2])) < 0))
        return NULL;
    if (nowait)
        deadline = XICHAN_NOWAIT;
    else if (xp_deadline(nargs > 1 ? args[1] : Py_None, &deadline))
        return NULL;
    if (!(cl = xp_client(st)))
        return NULL;
    XP_SWEEP(st);
    /* Counted from before the pop until the decode took any local export
     * (a blocking sender here must not give it back meanwhile: buffers.c). */
    xp_recv_begin(c.id);
    err = xichan_chan_recv(cl, c, &item, XICHAN_NOWAIT);
    if ((err == XICHAN_EEMPTY || err == XICHAN_ELOCKED) && deadline != XICHAN_NOWAIT) {
        xp_block_begin(&b);
        err = xichan_chan_recv(cl, c, &item, deadline);
        xp_block_end(&b);
    }
    if (err == XICHAN_EEMPTY && !PyErr_Occurred()) {
        if (nowait && nargs > 3) {
            xp_recv_end(c.id);
            return Py_NewRef(args[3]);
        }
        if (!nowait)
            err = XICHAN_ETIMEDOUT;
    }
    res = err ? raise_from_err(st, err, XP_CHAN, c.id) : xp_decode_item(st, &item);
    xp_recv_end(c.id);
    return res;
}

/* chan_close / chan_release(cid, *, send=False, recv=False, force=False):
 * the ends as XICHAN_END_* flags, XICHAN_CLOSE_FORCE with force. */
static PyObject *c_ends(PyObject *m, PyObject *args, PyObject *kw, const char *fmt, int release)
{
    static char *kwlist[] = {"", "send", "recv", "force", NULL};
    xp_state *st = xp_state_of(m);
    PyObject *id;
    xichan_client *cl;
    xichan_chan_id c;
    int send = 0, recv = 0, force = 0, err, ends;

    if (!PyArg_ParseTupleAndKeywords(args, kw, fmt, kwlist, &id, &send, &recv, &force))
        return NULL;
    if (get_cid(id, &c) || !(cl = xp_client(st)))
        return NULL;
    ends = (send ? XICHAN_END_SEND : 0) | (recv ? XICHAN_END_RECV : 0);
    err = release ? xichan_chan_release(cl, c, ends)
                  : xichan_chan_close(cl, c, ends | (force ? XICHAN_CLOSE_FORCE : 0));
    if (err)
        return raise_from_err(st, err, XP_CHAN, c.id);
    Py_RETURN_NONE;
}

static PyObject *c_close(PyObject *m, PyObject *args, PyObject *kw)
{
    return c_ends(m, args, kw, "O|$ppp:chan_close", 0);
}

static PyObject *c_release(PyObject *m, PyObject *args, PyObject *kw)
{
    return c_ends(m, args, kw, "O|$ppp:chan_release", 1);
}

/* chan_info(cid) -> the 16 fields of CPython's ChannelInfo, in its order */
static PyObject *c_info(PyObject *m, PyObject *arg)
{
    xp_state *st = xp_state_of(m);
    xichan_client *cl;
    xichan_chan_id c;
    xichan_chan_info i;
    int err;

    if (get_cid(arg, &c) || !(cl = xp_client(st)))
        return NULL;
    if ((err = xichan_chan_info_get(cl, c, &i)))
        return raise_from_err(st, err, XP_CHAN, c.id);
    return Py_BuildValue("(NNNKIIIIIIIINNNN)", PyBool_FromLong(i.open), PyBool_FromLong(i.closing),
                         PyBool_FromLong(i.closed), (unsigned long long)i.count, i.num_send,
                         i.num_send_released, i.num_recv, i.num_recv_released, i.num_both,
                         i.num_both_released, i.num_both_send_released, i.num_both_recv_released,
                         PyBool_FromLong(i.send_associated), PyBool_FromLong(i.send_released),
                         PyBool_FromLong(i.recv_associated), PyBool_FromLong(i.recv_released));
}

/* chan_sessions(cid, *, send) -> [session ids] associated with that end */
static PyObject *c_sessions(PyObject *m, PyObject *args, PyObject *kw)
{
    static char *kwlist[] = {"", "send", NULL};
    xp_state *st = xp_state_of(m);
    PyObject *id;
    xichan_client *cl;
    xichan_chan_id c;
    uint32_t sids[XP_SIDS_MAX];
    int send, n;

    if (!PyArg_ParseTupleAndKeywords(args, kw, "O$p:chan_sessions", kwlist, &id, &send))
        return NULL;
    if (get_cid(id, &c) || !(cl = xp_client(st)))
        return NULL;
    n = xichan_chan_sessions(cl, c, send ? XICHAN_END_SEND : XICHAN_END_RECV, sids, XP_SIDS_MAX);
    return xp_sids_list(st, n, sids, XP_CHAN, c.id);
}

/* chan_list() -> [(cid, unboundop, state, name)], oldest first, closed ones too */
static PyObject *c_list(PyObject *m, PyObject *unused)
{
    static const int pick[] = {0, 9, 2, 10}; /* list_objects' fields */

    return xp_list_fields(m, XP_CHAN, pick, 4, 0);
}

PyMethodDef xp_chan_methods[] = {
    {"chan_create", (PyCFunction)(void (*)(void))c_create, METH_VARARGS | METH_KEYWORDS,
     "chan_create(unboundop, name=None) -> cid, bound once to the caller."},
    {"chan_open", c_open, METH_O, "chan_open(name) -> cid of a named channel (not bound)."},
    {"chan_destroy", c_destroy, METH_O, "Destroy at once; items are dropped."},
    {"chan_bind", c_bind, METH_O, "Add a binding of this interpreter."},
    {"chan_unbind", c_unbind, METH_O, "Drop a binding; the last one destroys the channel."},
    {"chan_count", c_count, METH_O, "Number of queued items."},
    {"chan_defaults", c_defaults, METH_O, "The default unbound op."},
    {"chan_send", (PyCFunction)(void (*)(void))c_send, METH_FASTCALL,
     "chan_send(cid, obj, unboundop, timeout, nowait)"},
    {"chan_send_buffer", (PyCFunction)(void (*)(void))c_send_buffer, METH_FASTCALL,
     "chan_send_buffer(cid, obj, unboundop, timeout, nowait)"},
    {"chan_send_start", (PyCFunction)(void (*)(void))c_send_start, METH_FASTCALL,
     "chan_send_start(cid, obj, unboundop, buffer) -> (ticket, exports): queued, as send_nowait."},
    {"chan_send_settle", (PyCFunction)(void (*)(void))c_send_settle, METH_FASTCALL,
     "chan_send_settle(cid, exports): the item was received."},
    {"chan_send_drop", c_send_drop, METH_O, "chan_send_drop(exports): the item was withdrawn."},
    {"chan_send_check", (PyCFunction)(void (*)(void))c_send_check, METH_FASTCALL,
     "chan_send_check(cid, ticket) -> True if received, False while it waits."},
    {"chan_send_cancel", (PyCFunction)(void (*)(void))c_send_cancel, METH_FASTCALL,
     "chan_send_cancel(cid, ticket) -> True if already received, else withdrawn: False."},
    {"chan_recv", (PyCFunction)(void (*)(void))c_recv, METH_FASTCALL,
     "chan_recv(cid, timeout=None, nowait=False[, default])"},
    {"chan_close", (PyCFunction)(void (*)(void))c_close, METH_VARARGS | METH_KEYWORDS,
     "chan_close(cid, *, send=False, recv=False, force=False)"},
    {"chan_release", (PyCFunction)(void (*)(void))c_release, METH_VARARGS | METH_KEYWORDS,
     "chan_release(cid, *, send=False, recv=False, force=False)"},
    {"chan_info", c_info, METH_O, "ChannelInfo fields as a tuple."},
    {"chan_sessions", (PyCFunction)(void (*)(void))c_sessions, METH_VARARGS | METH_KEYWORDS,
     "chan_sessions(cid, *, send) -> session ids associated with that end."},
    {"chan_list", c_list, METH_NOARGS, "[(cid, unboundop, state, name)], oldest first."},
    {NULL, NULL, 0, NULL},
};
