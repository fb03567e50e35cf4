/*
 * ops_misc.c -- the other calls of _xichan: the session id, timeouts,
 * error names, the at-fork hook, and inspection: every object of the
 * namespace (creation order), one object's info, the sessions bound to or
 * associated with it, in-flight references, segment statistics.  Thin
 * wrappers over libxichan (xichan_list, xichan_info, ...); queues.py and
 * channels.py build list_all() on list_objects.  Also the shapes
 * ops_queue.c and ops_chan.c share: an object's id argument, the calls that
 * take only an id, open by name, and their list_objects views.
 */
#include "xichan_py.h"

#include <string.h>

static PyObject *mod_session_id(PyObject *m, PyObject *unused)
{
    xp_state *st = xp_state_of(m);
    xichan_client *cl = xp_client(st);

    return cl ? PyLong_FromUnsignedLong(xichan_client_session(cl)) : NULL;
}

static PyObject *mod_deadline(PyObject *m, PyObject *timeout)
{
    int64_t dl;

    if (xp_deadline(timeout, &dl))
        return NULL;
    return PyLong_FromLongLong(dl);
}

static PyObject *mod_now_ns(PyObject *m, PyObject *unused)
{
    return PyLong_FromLongLong(xichan_now_ns());
}

/* Called by the Python layer's os.register_at_fork(after_in_child=...). */
static PyObject *mod_after_fork_child(PyObject *m, PyObject *live)
{
    xp_state *st = xp_state_of(m);
    int any = PyObject_IsTrue(live);

    if (any < 0)
        return NULL;
    if (!any && st->nbufs == 0) /* nothing to rebind: open lazily later */
        Py_RETURN_NONE;
    if (!xp_client(st)) /* the fresh session of the child */
        return NULL;
    if (xp_buffers_rebind(st))
        return NULL;
    Py_RETURN_NONE;
}

static PyObject *mod_strerror(PyObject *m, PyObject *arg)
{
    int err = PyLong_AsLong(arg);

    if (err == -1 && PyErr_Occurred())
        return NULL;
    return Py_BuildValue("(ss)", xichan_err_name(err), xichan_strerror(err));
}

static PyObject *info_tuple(const xichan_obj_info *i)
{
    /*
     * Names are checked when created, but a segment may hold one written by
     * something else: never fail a listing over it, show it escaped.
     */
    PyObject *name = PyUnicode_DecodeUTF8(i->name, (Py_ssize_t)strnlen(i->name, sizeof(i->name)),
                                          "backslashreplace");

    if (!name)
        return NULL;
    return Py_BuildValue("(KiiLKKIIiiN)", (unsigned long long)i->id, i->kind, i->state,
                         (long long)i->maxsize, (unsigned long long)i->count,
                         (unsigned long long)i->bytes, i->nbound, i->nsessions, i->fmt,
                         i->unboundop, name);
}

/* list_objects(kind=0) -> [(id, kind, state, maxsize, count, bytes, nbound,
 * nsessions, fmt, unboundop, name)], oldest first. */
static PyObject *mod_list_objects(PyObject *m, PyObject *args)
{
    xp_state *st = xp_state_of(m);
    xichan_client *cl = xp_client(st);
    xichan_obj_info *buf = NULL;
    PyObject *res;
    int kind = 0, n, cap = 64;

    if (!cl || !PyArg_ParseTuple(args, "|i:list_objects", &kind))
        return NULL;
    for (;;) {
        xichan_obj_info *nb = PyMem_Realloc(buf, (size_t)cap * sizeof(*buf));

        if (!nb) {
            PyMem_Free(buf);
            return PyErr_NoMemory();
        }
        buf = nb;
        n = xichan_list(cl, buf, (size_t)cap);
        if (n < 0) {
            PyMem_Free(buf);
            return raise_from_err(st, n, XP_NONE, 0);
        }
        if (n <= cap)
            break;
        cap = n + 16;
    }
    res = PyList_New(0);
    for (int i = 0; res && i < n; i++) {
        PyObject *t;

        if (kind && buf[i].kind != kind)
            continue;
        t = info_tuple(&buf[i]);
        if (!t || PyList_Append(res, t)) {
            Py_XDECREF(t);
            Py_CLEAR(res);
            break;
        }
        Py_DECREF(t);
    }
    PyMem_Free(buf);
    return res;
}

static PyObject *mod_obj_info(PyObject *m, PyObject *args)
{
    xp_state *st = xp_state_of(m);
    xichan_client *cl = xp_client(st);
    xichan_obj_info info;
    unsigned long long id;
    int kind, err;

    if (!cl || !PyArg_ParseTuple(args, "iK:obj_info", &kind, &id))
        return NULL;
    if ((err = xichan_info(cl, kind, id, &info)))
        return raise_from_err(st, err, kind, id);
    return info_tuple(&info);
}

static PyObject *mod_obj_sessions(PyObject *m, PyObject *args)
{
    xp_state *st = xp_state_of(m);
    xichan_client *cl = xp_client(st);
    uint32_t sids[XP_SIDS_MAX];
    unsigned long long id;
    int kind;

    if (!cl || !PyArg_ParseTuple(args, "iK:obj_sessions", &kind, &id))
        return NULL;
    return xp_sids_list(st, xichan_obj_sessions(cl, kind, id, sids, XP_SIDS_MAX), sids, kind, id);
}

static PyObject *mod_obj_inflight(PyObject *m, PyObject *args)
{
    xp_state *st = xp_state_of(m);
    xichan_client *cl = xp_client(st);
    unsigned long long id;
    int kind, delta, err;

    if (!cl || !PyArg_ParseTuple(args, "iKi:obj_inflight", &kind, &id, &delta))
        return NULL;
    if ((err = xichan_obj_inflight(cl, kind, id, delta)))
        return raise_from_err(st, err, kind, id);
    Py_RETURN_NONE;
}

static PyObject *mod_stats(PyObject *m, PyObject *unused)
{
    xp_state *st = xp_state_of(m);
    xichan_client *cl = xp_client(st);
    xichan_stats s;
    int err;

    if (!cl)
        return NULL;
    if ((err = xichan_stats_get(cl, &s)))
        return raise_from_err(st, err, XP_NONE, 0);
    return Py_BuildValue("{sKsKsKsKsIsIsIsIsIss}", "segment_size",
                         (unsigned long long)s.segment_size, "heap_size",
                         (unsigned long long)s.heap_size, "heap_used",
                         (unsigned long long)s.heap_used, "heap_free",
                         (unsigned long long)s.heap_free, "objects", s.objects, "sessions",
                         s.sessions, "max_objects", s.max_objects, "max_sessions", s.max_sessions,
                         "daemon_pid", s.daemon_pid, "segment_name", s.segment_name);
}

/* ------------------------------------ shared by ops_queue.c and ops_chan.c */

int xp_index_id(PyObject *v, const char *what, uint64_t *id)
{
    PyObject *n = PyNumber_Index(v);
    int rc;

    if (!n)
        return -1;
    rc = xp_id_arg(n, what, id);
    Py_DECREF(n);
    return rc;
}

int xp_obj_id(int kind, PyObject *arg, uint64_t *id)
{
    if (kind != XP_CHAN)
        return xp_id_arg(arg, "queue ID", id);
    return xp_index_id(arg, "channel ID", id); /* a ChannelID too, as _interpchannels takes */
}

PyObject *xp_id_call(PyObject *m, PyObject *arg, int kind, xp_id_fn fn, int ret)
{
    xp_state *st = xp_state_of(m);
    xichan_client *cl;
    uint64_t id;
    int64_t r;

    if (xp_obj_id(kind, arg, &id) || !(cl = xp_client(st)))
        return NULL;
    Py_BEGIN_ALLOW_THREADS /* takes robust locks another process may hold */
    r = fn(cl, id);
    Py_END_ALLOW_THREADS
    if (r < 0)
        return raise_from_err(st, (int)r, kind, id);
    if (ret == XP_RET_INT)
        return PyLong_FromLongLong(r);
    if (ret == XP_RET_BOOL)
        return PyBool_FromLong(r != 0);
    Py_RETURN_NONE;
}

PyObject *xp_open_call(PyObject *m, PyObject *arg, int kind, xp_open_fn fn)
{
    xp_state *st = xp_state_of(m);
    xichan_client *cl = xp_client(st);
    const char *name = PyUnicode_AsUTF8(arg);
    uint64_t id;
    int err;

    if (!cl || !name)
        return NULL;
    if ((err = fn(cl, name, &id)))
        return raise_from_err_named(st, err, kind, arg);
    return PyLong_FromUnsignedLongLong(id);
}

PyObject *xp_sids_list(xp_state *st, int n, const uint32_t *sids, int kind, uint64_t id)
{
    PyObject *res, *v;

    if (n < 0)
        return raise_from_err(st, n, kind, id);
    if (n > XP_SIDS_MAX) /* more than fit: the first ones */
        n = XP_SIDS_MAX;
    if (!(res = PyList_New(n)))
        return NULL;
    for (int i = 0; i < n; i++) {
        if (!(v = PyLong_FromUnsignedLong(sids[i]))) {
            Py_DECREF(res);
            return NULL;
        }
        PyList_SET_ITEM(res, i, v);
    }
    return res;
}

PyObject *xp_list_fields(PyObject *m, int kind, const int *pick, int npick, int open_only)
{
    PyObject *all, *res, *args = Py_BuildValue("(i)", kind);

    if (!args)
        return NULL;
    all = mod_list_objects(m, args);
    Py_DECREF(args);
    if (!all)
        return NULL;
    res = PyList_New(0);
    for (Py_ssize_t i = 0; res && i < PyList_GET_SIZE(all); i++) {
        PyObject *t = PyList_GET_ITEM(all, i), *r;
        long state = PyLong_AsLong(PyTuple_GET_ITEM(t, 2));

        /* An object whose lock a stopped process holds is still open. */
        if (open_only && state != XICHAN_STATE_OPEN && state != XICHAN_STATE_LOCKED)
            continue;
        if (!(r = PyTuple_New(npick)))
            Py_CLEAR(res);
        for (int j = 0; r && j < npick; j++)
            PyTuple_SET_ITEM(r, j, Py_NewRef(PyTuple_GET_ITEM(t, pick[j])));
        if (r && PyList_Append(res, r))
            Py_CLEAR(res);
        Py_XDECREF(r);
    }
    Py_DECREF(all);
    return res;
}

PyMethodDef xp_misc_methods[] = {
    {"session_id", mod_session_id, METH_NOARGS, "This interpreter's session id (opens it)."},
    {"deadline", mod_deadline, METH_O, "timeout -> absolute CLOCK_MONOTONIC deadline (ns)."},
    {"now_ns", mod_now_ns, METH_NOARGS, "CLOCK_MONOTONIC now, in ns."},
    {"strerror", mod_strerror, METH_O, "code -> (name, message)."},
    {"_after_fork_child", mod_after_fork_child, METH_O, "Re-attach in a forked child."},
    {"list_objects", mod_list_objects, METH_VARARGS,
     "list_objects(kind=0) -> [(id, kind, state, maxsize, count, bytes, nbound, nsessions, fmt, "
     "unboundop, name)], oldest first."},
    {"obj_info", mod_obj_info, METH_VARARGS, "obj_info(kind, id) -> info tuple."},
    {"obj_sessions", mod_obj_sessions, METH_VARARGS, "Sessions bound to or associated with it."},
    {"obj_inflight", mod_obj_inflight, METH_VARARGS, "obj_inflight(kind, id, delta)."},
    {"stats", mod_stats, METH_NOARGS, "Segment statistics."},
    {NULL, NULL, 0, NULL},
};
