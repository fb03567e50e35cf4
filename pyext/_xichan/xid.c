/*
 * xid.c -- Queue, SendChannel, RecvChannel, ChannelID and SharedBuffer as
 * CPython cross-interpreter data (3.12 and 3.13), so that
 * interp.prepare_main(rch=rch) and putting a xichan Queue into a CPython
 * queue with syncobj=True work as in the seeds.
 *
 * CPython has no public API for this.  3.12 declares the registry in
 * cpython/pystate.h; 3.13 moved it to internal/pycore_crossinterp.h, which
 * needs Py_BUILD_CORE, so the (unchanged) struct and the exported functions
 * are declared here.  3.14 renamed everything (_PyXIData_*): not supported,
 * registration is then skipped and _register_xid() returns False.
 *
 * The data is (kind, flags, id).  Making it takes an in-flight reference in
 * the sender's session (the object outlives the trip, as in an item); the
 * receiving interpreter imports xichan, builds its own object (bound for its
 * own session) and gives the reference back.  The receiver may not have
 * xichan on sys.path (a subinterpreter's path is fixed at its creation), so
 * the package's parent directory recorded by _set_path() is added on an
 * ImportError.
 */
#include <limits.h>
#include <pthread.h>
#include <string.h>

#include "xichan_py.h"

static pthread_mutex_t path_mu = PTHREAD_MUTEX_INITIALIZER;
static char pkg_parent[PATH_MAX];

static PyObject *x_set_path(PyObject *m, PyObject *arg)
{
    const char *p = PyUnicode_AsUTF8(arg);

    if (!p)
        return NULL;
    pthread_mutex_lock(&path_mu);
    if (!pkg_parent[0] && strlen(p) < sizeof(pkg_parent))
        strcpy(pkg_parent, p);
    pthread_mutex_unlock(&path_mu);
    Py_RETURN_NONE;
}

#if PY_VERSION_HEX >= 0x030C0000 && PY_VERSION_HEX < 0x030E0000

#if PY_VERSION_HEX >= 0x030D0000
typedef struct _xid _PyCrossInterpreterData;
typedef PyObject *(*xid_newobjectfunc)(_PyCrossInterpreterData *);
typedef void (*xid_freefunc)(void *);
struct _xid {
    void *data;
    PyObject *obj;
    int64_t interpid;
    xid_newobjectfunc new_object;
    xid_freefunc free;
};
typedef int (*crossinterpdatafunc)(PyThreadState *, PyObject *, _PyCrossInterpreterData *);
PyAPI_FUNC(int) _PyCrossInterpreterData_RegisterClass(PyTypeObject *, crossinterpdatafunc);
PyAPI_FUNC(int) _PyCrossInterpreterData_InitWithSize(_PyCrossInterpreterData *,
                                                     PyInterpreterState *, const size_t,
                                                     PyObject *, xid_newobjectfunc);
#endif

/* The _xichan module of the current interpreter, imported if need be. */
static PyObject *import_self(void)
{
    PyObject *mod = PyImport_ImportModule("xichan._xichan"), *syspath, *dir;
    char p[PATH_MAX];

    if (mod || !PyErr_ExceptionMatches(PyExc_ImportError))
        return mod;
    pthread_mutex_lock(&path_mu);
    memcpy(p, pkg_parent, sizeof(p));
    pthread_mutex_unlock(&path_mu);
    if (!p[0])
        return NULL;
    PyErr_Clear();
    syspath = PySys_GetObject("path"); /* borrowed */
    dir = PyUnicode_DecodeFSDefault(p);
    if (!syspath || !dir || PyList_Insert(syspath, 0, dir)) {
        Py_XDECREF(dir);
        return NULL;
    }
    Py_DECREF(dir);
    return PyImport_ImportModule("xichan._xichan");
}

struct xp_xid {
    int kind, flags;
    uint64_t id;
};

static PyObject *xid_new_object(_PyCrossInterpreterData *data)
{
    struct xp_xid *x = (struct xp_xid *)data->data;
    PyObject *mod = import_self(), *obj;
    xp_state *st;

    if (!mod)
        return NULL;
    st = xp_state_of(mod);
    obj = xp_handle_new(st, x->kind, x->flags, x->id);
    if (obj && st->cl)
        (void)xichan_obj_inflight(st->cl, x->kind, x->id, -1);
    Py_DECREF(mod);
    return obj;
}

static int xid_getdata(PyThreadState *ts, PyObject *obj, _PyCrossInterpreterData *data)
{
    PyObject *mod = import_self();
    xp_state *st;
    xichan_client *cl;
    struct xp_xid x = {0, 0, 0};
    int err;

    if (!mod)
        return -1;
    st = xp_state_of(mod);
    Py_DECREF(mod); /* sys.modules keeps it */
    if ((err = xp_handle_of(st, obj, &x.kind, &x.flags, &x.id)) == 0) {
        PyErr_Format(PyExc_TypeError, "%R is not a xichan object", obj);
        return -1;
    }
    if (err < 0 || !(cl = xp_client(st)))
        return -1;
    if ((err = xichan_obj_inflight(cl, x.kind, x.id, +1)))
        return raise_from_err_int(st, err, x.kind, x.id);
    if (_PyCrossInterpreterData_InitWithSize(data, PyThreadState_GetInterpreter(ts),
                                             sizeof(struct xp_xid), NULL, xid_new_object) < 0) {
        (void)xichan_obj_inflight(cl, x.kind, x.id, -1);
        return -1;
    }
    memcpy(data->data, &x, sizeof(x));
    return 0;
}

static int xid_register(PyObject *cls)
{
    if (!PyType_Check(cls)) {
        PyErr_SetString(PyExc_TypeError, "expected a class");
        return -1;
    }
    return _PyCrossInterpreterData_RegisterClass((PyTypeObject *)cls, xid_getdata);
}

#define XID_SUPPORTED 1
#else
#define XID_SUPPORTED 0
static int xid_register(PyObject *cls)
{
    return 0;
}
#endif

/* _register_xid(*classes) -> True if registered, False where unsupported */
static PyObject *x_register(PyObject *m, PyObject *args)
{
    for (Py_ssize_t i = 0; i < PyTuple_GET_SIZE(args); i++)
        if (xid_register(PyTuple_GET_ITEM(args, i)) < 0)
            return NULL;
    return PyBool_FromLong(XID_SUPPORTED);
}

int xp_xid_init(PyObject *m, xp_state *st)
{
    return xid_register((PyObject *)st->SharedBufferType);
}

PyMethodDef xp_xid_methods[] = {
    {"_register_xid", x_register, METH_VARARGS,
     "Register classes as cross-interpreter shareable (CPython 3.12/3.13)."},
    {"_set_path", x_set_path, METH_O, "Record the directory that holds the xichan package."},
    {NULL, NULL, 0, NULL},
};
