/*
 * ops_waitset.c -- _xichan.WaitSet over xichan_waitset_* (libclient/waitset.c),
 * and the two-step channel send for send_async.
 *
 *   WaitSet()                      a wait set of this interpreter's session
 *   ws.add(kind, id, events, user) -> member
 *   ws.remove(member)
 *   ws.wait(timeout=None)          -> [(member, events, user), ...]; [] when
 *                                    timeout=0 finds nothing; TimeoutError
 *   ws.fileno()                    the eventfd (xichan_waitset_fd)
 *   ws.close()
 *
 * A blocking wait runs with the GIL released, between xp_block_begin/end,
 * so Ctrl-C ends it (XICHAN_EINTR -> the signal handler's exception).
 * xichan.select and the asyncio layer (xichan/_aio.py) are built on it.
 */
#include "xichan_py.h"

typedef struct {
    PyObject_HEAD
    xichan_waitset *ws;
    xichan_client *cl;
} WaitSetObject;

static int ws_ok(WaitSetObject *self)
{
    if (!self->ws) {
        PyErr_SetString(PyExc_ValueError, "wait set is closed");
        return -1;
    }
    return 0;
}

static PyObject *ws_new(PyTypeObject *tp, PyObject *args, PyObject *kw)
{
    xp_state *st = xp_state_from_type(tp);
    WaitSetObject *self;
    xichan_client *cl;
    int err;

    if (PyTuple_GET_SIZE(args) || (kw && PyDict_GET_SIZE(kw))) {
        PyErr_SetString(PyExc_TypeError, "WaitSet() takes no arguments");
        return NULL;
    }
    if (!(cl = xp_client(st)))
        return NULL;
    if (!(self = (WaitSetObject *)tp->tp_alloc(tp, 0)))
        return NULL;
    if ((err = xichan_waitset_create(cl, &self->ws))) {
        Py_DECREF(self);
        return raise_from_err(st, err, XP_NONE, 0);
    }
    self->cl = cl;
    return (PyObject *)self;
}

static void ws_dealloc(WaitSetObject *self)
{
    PyTypeObject *tp = Py_TYPE(self);

    xichan_waitset_destroy(self->ws);
    tp->tp_free(self);
    Py_DECREF(tp);
}

static PyObject *ws_add(WaitSetObject *self, PyObject *const *args, Py_ssize_t nargs)
{
    xp_state *st = xp_state_from_type(Py_TYPE(self));
    unsigned long long id, user;
    long kind, events;
    int m;

    if (nargs != 4) {
        PyErr_SetString(PyExc_TypeError, "add(kind, id, events, user)");
        return NULL;
    }
    if (ws_ok(self))
        return NULL;
    kind = PyLong_AsLong(args[0]);
    id = PyLong_AsUnsignedLongLong(args[1]);
    events = PyLong_AsLong(args[2]);
    user = PyLong_AsUnsignedLongLong(args[3]);
    if (PyErr_Occurred())
        return NULL;
    if (kind == XICHAN_KIND_QUEUE)
        m = xichan_waitset_add_queue(self->ws, (xichan_queue_id){id}, (unsigned)events, user);
    else if (kind == XICHAN_KIND_CHANNEL)
        m = xichan_waitset_add_chan(self->ws, (xichan_chan_id){id}, (unsigned)events, user);
    else
        m = XICHAN_EINVAL;
    if (m < 0)
        return raise_from_err(st, m, (int)kind, id);
    return PyLong_FromLong(m);
}

static PyObject *ws_remove(WaitSetObject *self, PyObject *arg)
{
    xp_state *st = xp_state_from_type(Py_TYPE(self));
    long m = PyLong_AsLong(arg);
    int err;

    if (m == -1 && PyErr_Occurred())
        return NULL;
    if (ws_ok(self))
        return NULL;
    if ((err = xichan_waitset_remove(self->ws, (int)m)) == XICHAN_ENOTFOUND) {
        PyErr_Format(PyExc_KeyError, "no member %ld", m);
        return NULL;
    }
    if (err)
        return raise_from_err(st, err, XP_NONE, 0);
    Py_RETURN_NONE;
}

#define WS_BATCH 256

static PyObject *ws_wait(WaitSetObject *self, PyObject *const *args, Py_ssize_t nargs)
{
    xp_state *st = xp_state_from_type(Py_TYPE(self));
    xichan_ready r[WS_BATCH];
    PyObject *list;
    int64_t deadline = XICHAN_FOREVER;
    xp_block b;
    int n;

    if (nargs > 1) {
        PyErr_SetString(PyExc_TypeError, "wait(timeout=None)");
        return NULL;
    }
    if (ws_ok(self) || (nargs == 1 && xp_deadline(args[0], &deadline)))
        return NULL;
    /* A try is cheap: keep the GIL (the event loops call this on every wake). */
    n = xichan_waitset_wait(self->ws, r, WS_BATCH, XICHAN_NOWAIT);
    if (n == 0 && deadline != XICHAN_NOWAIT) {
        xp_block_begin(&b);
        n = xichan_waitset_wait(self->ws, r, WS_BATCH, deadline);
        xp_block_end(&b);
    }
    if (n == XICHAN_ETIMEDOUT) {
        PyErr_SetString(PyExc_TimeoutError, "timed out");
        return NULL;
    }
    if (n < 0) {
        if (n == XICHAN_EINTR && PyErr_Occurred())
            return NULL;
        return raise_from_err(st, n, XP_NONE, 0);
    }
    if (!(list = PyList_New(n)))
        return NULL;
    for (int i = 0; i < n; i++) {
        PyObject *t = Py_BuildValue("(iIK)", r[i].member, r[i].events,
                                    (unsigned long long)r[i].user);
        if (!t) {
            Py_DECREF(list);
            return NULL;
        }
        PyList_SET_ITEM(list, i, t);
    }
    return list;
}

static PyObject *ws_fileno(WaitSetObject *self, PyObject *unused)
{
    xp_state *st = xp_state_from_type(Py_TYPE(self));
    int fd;

    if (ws_ok(self))
        return NULL;
    if ((fd = xichan_waitset_fd(self->ws)) < 0)
        return raise_from_err(st, fd, XP_NONE, 0);
    return PyLong_FromLong(fd);
}

static PyObject *ws_close(WaitSetObject *self, PyObject *unused)
{
    xichan_waitset *ws = self->ws;

    self->ws = NULL;
    xichan_waitset_destroy(ws);
    Py_RETURN_NONE;
}

static PyMethodDef ws_methods[] = {
    {"add", (PyCFunction)(void (*)(void))ws_add, METH_FASTCALL,
     "add(kind, id, events, user) -> member"},
    {"remove", (PyCFunction)ws_remove, METH_O, "remove(member)"},
    {"wait", (PyCFunction)(void (*)(void))ws_wait, METH_FASTCALL,
     "wait(timeout=None) -> [(member, events, user)]"},
    {"fileno", (PyCFunction)ws_fileno, METH_NOARGS,
     "A file descriptor that polls readable while a member may be ready."},
    {"close", (PyCFunction)ws_close, METH_NOARGS, "Remove every member and free the set."},
    {NULL, NULL, 0, NULL},
};

static PyType_Slot ws_slots[] = {
    {Py_tp_new, ws_new},
    {Py_tp_dealloc, ws_dealloc},
    {Py_tp_methods, ws_methods},
    {Py_tp_doc, "WaitSet(): wait for the first of many queues and channel ends (low level)."},
    {0, NULL},
};

static PyType_Spec ws_spec = {
    .name = "xichan._xichan.WaitSet",
    .basicsize = sizeof(WaitSetObject),
    .flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_IMMUTABLETYPE,
    .slots = ws_slots,
};

int xp_waitset_init(PyObject *m, xp_state *st)
{
    PyTypeObject *tp = (PyTypeObject *)PyType_FromModuleAndSpec(m, &ws_spec, NULL);
    int rc;

    if (!tp)
        return -1;
    rc = PyModule_AddType(m, tp);
    Py_DECREF(tp);
    if (rc)
        return -1;
#define ADDINT(n, v) if (PyModule_AddIntConstant(m, n, v)) return -1
    ADDINT("EV_READABLE", XICHAN_EV_READABLE);
    ADDINT("EV_WRITABLE", XICHAN_EV_WRITABLE);
    ADDINT("EV_CLOSED", XICHAN_EV_CLOSED);
#undef ADDINT
    return 0;
}
