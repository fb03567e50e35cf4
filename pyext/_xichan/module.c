/*
 * module.c -- the _xichan module: state, the session, errors, timeouts.
 *
 * Decisions recorded here (the user-facing part is in xichan(7)):
 *
 *   - One xichan session per interpreter, opened lazily by xp_client() on the
 *     first call that needs it and closed in m_free.  How it closes follows
 *     xichan(7) "Items and sessions": a subinterpreter destroyed while its
 *     process lives on ends with xichan_client_close_unbind, so its items
 *     get their unbound ops and channels auto-close as in CPython; the
 *     main interpreter, or any interpreter while the runtime shuts down,
 *     ends with a plain close, as the end of the process would: what it
 *     put stays deliverable.  A forked child sees another pid and opens a fresh
 *     session (the parent's handle answers XICHAN_ESTALE there); the Python
 *     layer's at-fork hook then rebinds the live Queue/channel objects.
 *   - A call that may wait is first tried once with the GIL held (deadline
 *     XICHAN_NOWAIT), and the GIL is released only when it would have to
 *     wait (full, empty, not yet received) or the item is large
 *     (XP_HELD_MAX): releasing and taking the GIL back is a third of a
 *     small put/get's instructions and, worse, a thread switch when another
 *     thread wants the GIL.  Holding the GIL there is safe: a try takes only
 *     the object's lock, whose holders never need the GIL and keep it for a
 *     few loads and stores (a dead holder is recovered by the robust lock
 *     at once), and it never sleeps, so nothing needs interrupting.  The
 *     price: a lock holder stopped mid-section (SIGSTOP, a debugger)
 *     stalls this interpreter's other threads too, for the short bound of
 *     a nowait lock wait (XICHAN_LOCK_GRACE_MS, xichan.h); a try that gets
 *     XICHAN_ELOCKED then goes on to the blocking call, which waits for
 *     the lock until the caller's timeout with the GIL released.
 *   - Blocking calls release the GIL.  The client's interrupt callback
 *     (xp_interrupt) runs every 50 ms and when a signal arrives: it takes the
 *     thread state parked by xp_block_begin (a thread-local, because one
 *     session serves every thread of the interpreter and PyGILState does not
 *     work in subinterpreters), runs PyErr_CheckSignals and parks it again.
 *     A raised KeyboardInterrupt makes libxichan give up with XICHAN_EINTR
 *     (a channel send withdraws its item first) and the exception propagates.
 *   - Exceptions are Python classes handed over by _register() and kept in
 *     module state; raise_from_err() is the one place that maps XICHAN_E* codes to
 *     them, with CPython's messages.
 *   - The session is not closed in m_free while another thread is still
 *     blocked in a call (a daemon thread at interpreter exit): freeing the
 *     handle under it would crash; the daemon cleans up when the process ends.
 */
#include <math.h>
#include <pthread.h>
#include <stddef.h>
#include <string.h>
#include <unistd.h>

#include "xichan_py.h"

/* getpid() without a system call per operation; refreshed in forked children. */
static pid_t xp_pid;
static pthread_once_t xp_once = PTHREAD_ONCE_INIT;
static int xp_blocked; /* threads inside a blocking call, all interpreters */
static _Thread_local xp_block *xp_tls_block;

static void xp_atfork_child(void)
{
    xp_pid = getpid();
    __atomic_store_n(&xp_blocked, 0, __ATOMIC_RELAXED);
}

static void xp_process_init(void)
{
    xp_pid = getpid();
    pthread_atfork(NULL, NULL, xp_atfork_child);
}

/* ------------------------------------------------------------ state */

xp_state *xp_state_of(PyObject *module)
{
    return (xp_state *)PyModule_GetState(module);
}

xp_state *xp_state_from_type(PyTypeObject *tp)
{
    return (xp_state *)PyType_GetModuleState(tp);
}

/* ------------------------------------------------- blocking, interrupts */

void xp_block_begin(xp_block *b)
{
    b->prev = xp_tls_block;
    xp_tls_block = b;
    __atomic_add_fetch(&xp_blocked, 1, __ATOMIC_RELAXED);
    b->ts = PyEval_SaveThread();
}

void xp_block_end(xp_block *b)
{
    PyEval_RestoreThread(b->ts);
    __atomic_sub_fetch(&xp_blocked, 1, __ATOMIC_RELAXED);
    xp_tls_block = b->prev;
}

/* libxichan calls this on the waiting thread; nonzero stops the wait. */
static int xp_interrupt(void *arg)
{
    xp_block *b = xp_tls_block;
    int stop;

    (void)arg;
    if (!b || !b->ts)
        return 0;
    PyEval_RestoreThread(b->ts);
    stop = PyErr_CheckSignals() < 0; /* the exception stays set for the caller */
    b->ts = PyEval_SaveThread();
    return stop;
}

/* ---------------------------------------------------------- session */

xichan_client *xp_client(xp_state *st)
{
    xichan_client_opts opts;
    xichan_client *cl = NULL, *stale = NULL;
    int err;

    if (st->cl && st->cl_pid == xp_pid)
        return st->cl;
    memset(&opts, 0, sizeof(opts));
    opts.autostart = XICHAN_AUTOSTART_DEFAULT;
    opts.kind = "python";
    Py_BEGIN_ALLOW_THREADS
    err = xichan_client_open(&cl, &opts);
    Py_END_ALLOW_THREADS
    if (err)
        return raise_from_err(st, err, XP_NONE, 0), NULL;
    xichan_client_set_interrupt(cl, xp_interrupt, NULL, 50);
    /* Another thread may have opened one while the GIL was released. */
    if (st->cl && st->cl_pid == xp_pid) {
        xichan_client_close(cl);
        return st->cl;
    }
    stale = st->cl; /* the parent's handle, in a forked child */
    st->cl = cl;
    st->cl_pid = xp_pid;
    if (stale)
        xichan_client_close(stale);
    return cl;
}

/* ------------------------------------------------------------ errors */

static PyObject *exc_or(PyObject *cls, PyObject *fallback)
{
    return cls ? cls : fallback;
}

static void set_exc(PyObject *cls, int err, const char *fmt, ...)
{
    va_list ap;
    PyObject *msg, *exc;

    va_start(ap, fmt);
    msg = PyUnicode_FromFormatV(fmt, ap);
    va_end(ap);
    if (!msg)
        return;
    exc = PyObject_CallOneArg(cls, msg);
    Py_DECREF(msg);
    if (!exc)
        return;
    if (err && PyObject_HasAttrString(cls, "code")) {
        PyObject *code = PyLong_FromLong(err);

        if (code)
            (void)PyObject_SetAttrString(exc, "code", code);
        Py_XDECREF(code);
        PyErr_Clear();
    }
    PyErr_SetObject(cls, exc);
    Py_DECREF(exc);
}

static int chan_is_released(xp_state *st, uint64_t id)
{
    xichan_chan_info info;
    xichan_chan_id c = {id};

    if (!st->cl || xichan_chan_info_get(st->cl, c, &info))
        return 0;
    return !info.closed && !info.closing && (info.send_released || info.recv_released);
}

/*
 * The translation of XICHAN_E* codes into exceptions, as a table: the
 * first row whose kind (XP_NONE: any) and code match decides.  cls is a
 * class of the module state (offsetof into xp_state) or a built-in one;
 * with neither, the kind's base (QueueError, ChannelError).  A class the
 * Python layer has not registered yet falls back to the base, and that to
 * RuntimeError.  msg is a format for PyUnicode_FromFormat with one %U, the
 * object ("queue 3", "channel named 'jobs'"), or with X_TEXT_LIB one %s,
 * the library's message, or with X_TEXT_BOTH both (%U then %s); NULL: the
 * library's message alone.  X_CODE: the
 * exception gets .code (XichanError's family).  X_RELEASED: a channel the
 * caller released reads "already closed", as CPython says.
 */
#define ST(f) offsetof(xp_state, f)
enum { X_TEXT_LIB = 1, X_CODE = 2, X_RELEASED = 4, X_TEXT_BOTH = 8 };
static const struct xlat {
    int kind, err;
    size_t cls;          /* 0: builtin, or the kind's base */
    PyObject **builtin;
    const char *msg;
    int flags;
} xlat[] = {
    {XP_QUEUE, XICHAN_ENOTFOUND, ST(QueueNotFoundError), NULL, "%U not found", 0},
    {XP_QUEUE, XICHAN_EEMPTY, ST(QueueEmpty), NULL, "%U is empty", 0},
    {XP_QUEUE, XICHAN_EFULL, ST(QueueFull), NULL, "%U is full", 0},
    {XP_QUEUE, XICHAN_EUNBOUND, ST(QueueItemDestroyed), NULL,
     "item's original interpreter destroyed", 0},
    {XP_QUEUE, XICHAN_ENOTBOUND, 0, NULL, "%U never bound", 0},
    {XP_QUEUE, XICHAN_EEXIST, 0, NULL, "a queue with that name already exists", 0},
    {XP_CHAN, XICHAN_ENOTFOUND, ST(ChannelNotFoundError), NULL, "%U not found", 0},
    {XP_CHAN, XICHAN_ECLOSED, ST(ChannelClosedError), NULL, "%U is closed", X_RELEASED},
    {XP_CHAN, XICHAN_EEMPTY, ST(ChannelEmptyError), NULL, "%U is empty", 0},
    {XP_CHAN, XICHAN_ENOTEMPTY, ST(ChannelNotEmptyError), NULL,
     "%U may not be closed if not empty (try force=True)", 0},
    {XP_CHAN, XICHAN_EUNBOUND, ST(ChannelItemDestroyed), NULL,
     "item's original interpreter destroyed", 0},
    {XP_CHAN, XICHAN_ENOTBOUND, 0, NULL, "%U never bound", 0},
    {XP_CHAN, XICHAN_EEXIST, 0, NULL, "a channel with that name already exists", 0},
    {XP_BUF, XICHAN_ENOTFOUND, ST(XichanError), NULL, "%U not found", X_CODE},
    /* The message names the holder's pid (xichan_strerror, this thread). */
    {XP_QUEUE, XICHAN_ELOCKED, ST(ObjectLockedError), &PyExc_TimeoutError, "%U: %s",
     X_CODE | X_TEXT_BOTH},
    {XP_CHAN, XICHAN_ELOCKED, ST(ObjectLockedError), &PyExc_TimeoutError, "%U: %s",
     X_CODE | X_TEXT_BOTH},
    {XP_NONE, XICHAN_ELOCKED, ST(ObjectLockedError), &PyExc_TimeoutError, NULL, X_CODE},
    {XP_NONE, XICHAN_EINTR, 0, &PyExc_InterruptedError, "interrupted", 0},
    {XP_NONE, XICHAN_ETIMEDOUT, 0, &PyExc_TimeoutError, "timed out", 0},
    {XP_NONE, XICHAN_ENOMEM, 0, &PyExc_MemoryError, NULL, 0},
    {XP_NONE, XICHAN_EINVAL, 0, &PyExc_ValueError, NULL, 0},
    {XP_NONE, XICHAN_ENAMETOOLONG, 0, &PyExc_ValueError, NULL, 0},
    {XP_NONE, XICHAN_EBADNAME, 0, &PyExc_ValueError, NULL, 0},
    {XP_NONE, XICHAN_E2BIG, 0, &PyExc_ValueError, "item too large: %s", X_TEXT_LIB},
    {XP_NONE, XICHAN_ENOSPC, ST(SegmentFullError), &PyExc_MemoryError, NULL, X_CODE},
    {XP_NONE, XICHAN_EACCES, ST(AccessDeniedError), &PyExc_PermissionError, NULL, X_CODE},
    {XP_NONE, XICHAN_EPERM, ST(AccessDeniedError), &PyExc_PermissionError, NULL, X_CODE},
    /* Anything else: XichanError("XICHAN_E...: message"), with .code. */
    {XP_NONE, 0, ST(XichanError), &PyExc_RuntimeError, NULL, X_CODE},
};
#undef ST

static PyObject *state_cls(xp_state *st, size_t off)
{
    return *(PyObject **)((char *)st + off);
}

/* The one translator; name (a str) describes the object instead of id. */
static PyObject *translate(xp_state *st, int err, int kind, uint64_t id, PyObject *name)
{
    static const char *kind_names[] = {"object", "queue", "channel", "shared buffer"};
    const struct xlat *x = xlat;
    PyObject *pending = NULL, *cls, *base, *what, *text;

    /* An interrupt callback that raised (KeyboardInterrupt from a signal
     * handler) ends the wait with XICHAN_EINTR: its exception is the
     * answer.  Any other exception still set is a bug of the caller: ours
     * is raised with it as __context__, never dropped. */
    if (PyErr_Occurred()) {
        if (err == XICHAN_EINTR)
            return NULL;
        xp_err_keep(&pending);
    }
    while (x->err && !(x->err == err && (x->kind == XP_NONE || x->kind == kind)))
        x++;
    base = kind == XP_QUEUE  ? exc_or(st->QueueError, PyExc_RuntimeError)
           : kind == XP_CHAN ? exc_or(st->ChannelError, PyExc_RuntimeError)
                             : PyExc_RuntimeError;
    cls = x->cls ? exc_or(state_cls(st, x->cls), x->builtin ? *x->builtin : base)
          : x->builtin ? *x->builtin
                       : base;
    what = name ? PyUnicode_FromFormat("%s named %R", kind_names[kind & 3], name)
                : PyUnicode_FromFormat("%s %llu", kind_names[kind & 3], (unsigned long long)id);
    if (!what)
        goto chain;
    if (x->flags & X_RELEASED && !name && chan_is_released(st, id))
        text = PyUnicode_FromFormat("%U is already closed", what);
    else if (!x->msg)
        text = x->err ? PyUnicode_FromString(xichan_strerror(err))
                      : PyUnicode_FromFormat("%s: %s", xichan_err_name(err), xichan_strerror(err));
    else if (x->flags & X_TEXT_LIB) /* msg's one %s is the library's message */
        text = PyUnicode_FromFormat(x->msg, xichan_strerror(err));
    else if (x->flags & X_TEXT_BOTH) /* %U the object, %s the library's message */
        text = PyUnicode_FromFormat(x->msg, what, xichan_strerror(err));
    else
        text = PyUnicode_FromFormat(x->msg, what);
    Py_DECREF(what);
    if (!text)
        goto chain;
    set_exc(cls, (x->flags & X_CODE) ? err : 0, "%U", text);
    Py_DECREF(text);
chain:
    if (pending) {
        PyObject *now = NULL;
        xp_err_keep(&now);
        if (now) {
            PyException_SetContext(now, pending); /* steals pending */
            xp_err_restore(now);
        } else {
            xp_err_restore(pending);
        }
    }
    return NULL;
}

PyObject *raise_from_err(xp_state *st, int err, int kind, uint64_t id)
{
    return translate(st, err, kind, id, NULL);
}

PyObject *raise_from_err_named(xp_state *st, int err, int kind, PyObject *name)
{
    return translate(st, err, kind, 0, name);
}

int raise_from_err_int(xp_state *st, int err, int kind, uint64_t id)
{
    raise_from_err(st, err, kind, id);
    return -1;
}

void xp_err_keep(PyObject **first)
{
#if PY_VERSION_HEX >= 0x030C0000
    PyObject *exc = PyErr_GetRaisedException();
#else
    PyObject *t, *exc, *tb;

    PyErr_Fetch(&t, &exc, &tb);
    PyErr_NormalizeException(&t, &exc, &tb);
    if (exc && tb)
        PyException_SetTraceback(exc, tb);
    Py_XDECREF(t);
    Py_XDECREF(tb);
#endif
    if (*first)
        Py_XDECREF(exc);
    else
        *first = exc;
}

void xp_err_restore(PyObject *exc)
{
#if PY_VERSION_HEX >= 0x030C0000
    PyErr_SetRaisedException(exc);
#else
    PyErr_Restore(Py_NewRef((PyObject *)Py_TYPE(exc)), exc, PyException_GetTraceback(exc));
#endif
}

void xp_exc_setattr(const char *name, PyObject *value)
{
#if PY_VERSION_HEX >= 0x030C0000
    PyObject *exc = PyErr_GetRaisedException();

    if (exc && value && PyObject_SetAttrString(exc, name, value))
        PyErr_Clear();
    PyErr_SetRaisedException(exc);
#else
    PyObject *t, *v, *tb;

    PyErr_Fetch(&t, &v, &tb);
    PyErr_NormalizeException(&t, &v, &tb);
    if (v && value && PyObject_SetAttrString(v, name, value))
        PyErr_Clear();
    PyErr_Restore(t, v, tb);
#endif
}

/* -------------------------------------------------- argument helpers */

int xp_check_unboundop(long op, int default_ok)
{
    if (!XICHAN_UNBOUND_OK(op) || (!default_ok && op == XICHAN_UNBOUND_DEFAULT)) {
        PyErr_Format(PyExc_ValueError, "unsupported unboundop %ld", op);
        return -1;
    }
    return 0;
}

int xp_unboundop(PyObject *arg, int default_ok, int *op)
{
    long v = PyLong_AsLong(arg);

    if ((v == -1 && PyErr_Occurred()) || xp_check_unboundop(v, default_ok))
        return -1;
    *op = (int)v;
    return 0;
}

int xp_deadline(PyObject *timeout, int64_t *deadline)
{
    double s;

    if (timeout == Py_None) {
        *deadline = XICHAN_FOREVER;
        return 0;
    }
    if (PyFloat_Check(timeout)) {
        s = PyFloat_AS_DOUBLE(timeout);
    } else if (PyLong_Check(timeout) || (PyNumber_Check(timeout) && !PyUnicode_Check(timeout) &&
                                         !PyBytes_Check(timeout) && !PyComplex_Check(timeout))) {
        s = PyFloat_AsDouble(timeout);
        if (s == -1.0 && PyErr_Occurred())
            return -1;
    } else {
        PyErr_Format(PyExc_TypeError, "timeout must be a number (int or float), not '%.100s'",
                     Py_TYPE(timeout)->tp_name);
        return -1;
    }
    if (isnan(s) || s < 0) {
        PyErr_SetString(PyExc_ValueError, "timeout value must be a non-negative number");
        return -1;
    }
    *deadline = s == 0 ? XICHAN_NOWAIT : xichan_deadline(s);
    return 0;
}

int xp_id_arg(PyObject *arg, const char *what, uint64_t *out)
{
    unsigned long long v;
    long long sv;
    int overflow;

    if (!PyLong_Check(arg)) {
        PyErr_Format(PyExc_TypeError, "%s must be an int, got %.100s", what,
                     Py_TYPE(arg)->tp_name);
        return -1;
    }
#if PY_VERSION_HEX >= 0x030C0000
    /* Every put/get passes an id: read a small int directly (a tenth of
     * PyLong_AsLongLongAndOverflow's instructions). */
    if (PyLong_CheckExact(arg) && PyUnstable_Long_IsCompact((PyLongObject *)arg)) {
        Py_ssize_t c = PyUnstable_Long_CompactValue((PyLongObject *)arg);

        if (c >= 0) {
            *out = (uint64_t)c;
            return 0;
        }
    }
#endif
    sv = PyLong_AsLongLongAndOverflow(arg, &overflow);
    if (sv == -1 && PyErr_Occurred())
        return -1;
    if (overflow < 0 || (!overflow && sv < 0)) {
        PyErr_Format(PyExc_ValueError, "%s must be a non-negative int, got %R", what, arg);
        return -1;
    }
    if (!overflow) {
        *out = (uint64_t)sv;
        return 0;
    }
    v = PyLong_AsUnsignedLongLong(arg);
    if (v == (unsigned long long)-1 && PyErr_Occurred())
        return -1;
    *out = v;
    return 0;
}

static int import_for(PyObject *have, const char *name)
{
    PyObject *m;

    if (have)
        return 0;
    m = PyImport_ImportModule(name);
    if (!m)
        return -1;
    Py_DECREF(m);
    return 0;
}

int xp_need_queues(xp_state *st)
{
    if (import_for(st->QueueType, "xichan.queues"))
        return -1;
    if (!st->QueueType) {
        PyErr_SetString(PyExc_RuntimeError, "xichan.queues did not register its classes");
        return -1;
    }
    return 0;
}

int xp_need_channels(xp_state *st)
{
    if (import_for(st->make_channel_id, "xichan.channels"))
        return -1;
    if (!st->make_channel_id || !st->SendChannelType || !st->RecvChannelType) {
        PyErr_SetString(PyExc_RuntimeError, "xichan.channels did not register its classes");
        return -1;
    }
    return 0;
}

/* ----------------------------------------------------- registration */

#define REG(name) {#name, offsetof(xp_state, name)}
static const struct { const char *name; size_t off; } reg_fields[] = {
    REG(QueueError), REG(QueueNotFoundError), REG(QueueEmpty), REG(QueueFull),
    REG(QueueItemDestroyed), REG(ChannelError), REG(ChannelNotFoundError),
    REG(ChannelClosedError), REG(ChannelEmptyError), REG(ChannelNotEmptyError),
    REG(ChannelItemDestroyed), REG(NotShareableError), REG(XichanError), REG(SegmentFullError),
    REG(AccessDeniedError), REG(ObjectLockedError),
    REG(QueueType), REG(SendChannelType), REG(RecvChannelType), REG(ChannelIDType),
    REG(make_channel_id),
};
#undef REG
#define NREG (sizeof(reg_fields) / sizeof(reg_fields[0]))

static PyObject *mod_register(PyObject *m, PyObject *args, PyObject *kw)
{
    xp_state *st = xp_state_of(m);
    PyObject *key, *val;
    Py_ssize_t pos = 0;

    if (PyTuple_GET_SIZE(args) != 0) {
        PyErr_SetString(PyExc_TypeError, "_register() takes keyword arguments only");
        return NULL;
    }
    while (kw && PyDict_Next(kw, &pos, &key, &val)) {
        const char *k = PyUnicode_AsUTF8(key);
        size_t i;

        if (!k)
            return NULL;
        for (i = 0; i < NREG; i++)
            if (strcmp(k, reg_fields[i].name) == 0)
                break;
        if (i == NREG) {
            PyErr_Format(PyExc_TypeError, "_register(): unknown name %R", key);
            return NULL;
        }
        Py_XSETREF(*(PyObject **)((char *)st + reg_fields[i].off), Py_NewRef(val));
    }
    Py_RETURN_NONE;
}

/*
 * _end_session(unbind): ends this interpreter's session now, as its end
 * would: unbind=True as a destroyed subinterpreter (the unbound ops
 * apply), False as the end of the process.  For tests of those rules in
 * processes, on Pythons without subinterpreters; the interpreter's objects
 * are not usable afterwards (the next call opens a new, unbound session).
 */
static PyObject *mod_end_session(PyObject *m, PyObject *unbind)
{
    xp_state *st = xp_state_of(m);
    int how = PyObject_IsTrue(unbind);

    if (how < 0)
        return NULL;
    if (__atomic_load_n(&xp_blocked, __ATOMIC_RELAXED)) {
        PyErr_SetString(PyExc_RuntimeError, "another thread is blocked in a call");
        return NULL;
    }
    if (st->cl && st->cl_pid == xp_pid) {
        xichan_client *cl = st->cl;
        xp_exports_sweep(st, 1);
        st->cl = NULL;
        Py_BEGIN_ALLOW_THREADS
        (how ? xichan_client_close_unbind : xichan_client_close)(cl);
        Py_END_ALLOW_THREADS
    }
    Py_RETURN_NONE;
}

static PyMethodDef mod_methods[] = {
    {"_register", (PyCFunction)(void (*)(void))mod_register, METH_VARARGS | METH_KEYWORDS,
     "Hand the Python layer's classes to C (like CPython's _register_heap_types)."},
    {"_end_session", mod_end_session, METH_O,
     "_end_session(unbind): end this interpreter's session now (tests only)."},
    {NULL, NULL, 0, NULL},
};

/* -------------------------------------------------- module lifecycle */

static int mod_exec(PyObject *m)
{
    xp_state *st = xp_state_of(m);
    PyInterpreterState *interp = PyInterpreterState_Get();

    pthread_once(&xp_once, xp_process_init);
    st->interp_id = PyInterpreterState_GetID(interp);
    st->unbound_item = PyObject_CallNoArgs((PyObject *)&PyBaseObject_Type);
    st->str_id = PyUnicode_InternFromString("_id");
    st->str_end = PyUnicode_InternFromString("_end");
    if (!st->unbound_item || !st->str_id || !st->str_end)
        return -1;
    if (PyModule_AddObjectRef(m, "UNBOUND_ITEM", st->unbound_item))
        return -1;
    {
        PyObject *pickle = PyImport_ImportModule("pickle");

        if (!pickle)
            return -1;
        st->pickle_loads = PyObject_GetAttrString(pickle, "loads");
        st->pickle_dumps = PyObject_GetAttrString(pickle, "dumps");
        Py_DECREF(pickle);
        if (!st->pickle_loads || !st->pickle_dumps ||
            !(st->kw_buffers = Py_BuildValue("(s)", "buffers")) ||
            !(st->kw_buffer_callback = Py_BuildValue("(s)", "buffer_callback")) ||
            !(st->int5 = PyLong_FromLong(5)))
            return -1;
    }
    if (PyModule_AddFunctions(m, xp_queue_methods) || PyModule_AddFunctions(m, xp_chan_methods) ||
        PyModule_AddFunctions(m, xp_misc_methods) || PyModule_AddFunctions(m, xp_xid_methods))
        return -1;
    if (xp_buffers_init(m, st) || xp_xid_init(m, st) || xp_waitset_init(m, st))
        return -1;
#define ADDINT(n, v) if (PyModule_AddIntConstant(m, n, v)) return -1
    ADDINT("FMT_RAW", XICHAN_FMT_RAW);
    ADDINT("FMT_MSGPACK", XICHAN_FMT_MSGPACK);
    ADDINT("FMT_PICKLE", XICHAN_FMT_PICKLE);
    ADDINT("FMT_BUFFER", XICHAN_FMT_BUFFER);
    ADDINT("FMT_PICKLE_OOB", XICHAN_FMT_PICKLE_OOB);
    ADDINT("KIND_QUEUE", XICHAN_KIND_QUEUE);
    ADDINT("KIND_CHANNEL", XICHAN_KIND_CHANNEL);
    ADDINT("KIND_BUFFER", XICHAN_KIND_BUFFER);
    ADDINT("STATE_OPEN", XICHAN_STATE_OPEN);
    ADDINT("STATE_CLOSING", XICHAN_STATE_CLOSING);
    ADDINT("STATE_CLOSED", XICHAN_STATE_CLOSED);
    ADDINT("STATE_BROKEN", XICHAN_STATE_BROKEN);
    ADDINT("STATE_LOCKED", XICHAN_STATE_LOCKED);
    ADDINT("UNBOUND_REMOVE", XICHAN_UNBOUND_REMOVE);
    ADDINT("UNBOUND_ERROR", XICHAN_UNBOUND_ERROR);
    ADDINT("UNBOUND_REPLACE", XICHAN_UNBOUND_REPLACE);
#define XX(name, value, msg) ADDINT(#name, value);
    XICHAN_ERRNO_MAP(XX)
#undef XX
#undef ADDINT
    return 0;
}

static int mod_traverse(PyObject *m, visitproc visit, void *arg)
{
    xp_state *st = xp_state_of(m);

    if (!st)
        return 0;
    for (size_t i = 0; i < NREG; i++)
        Py_VISIT(*(PyObject **)((char *)st + reg_fields[i].off));
    Py_VISIT(st->pickle_loads);
    Py_VISIT(st->pickle_dumps);
    Py_VISIT(st->unbound_item);
    Py_VISIT(st->SharedBufferType);
    Py_VISIT(st->BufferViewType);
    return 0;
}

static int mod_clear(PyObject *m)
{
    xp_state *st = xp_state_of(m);

    if (!st)
        return 0;
    for (size_t i = 0; i < NREG; i++)
        Py_CLEAR(*(PyObject **)((char *)st + reg_fields[i].off));
    Py_CLEAR(st->pickle_loads);
    Py_CLEAR(st->pickle_dumps);
    Py_CLEAR(st->kw_buffers);
    Py_CLEAR(st->kw_buffer_callback);
    Py_CLEAR(st->int5);
    Py_CLEAR(st->unbound_item);
    Py_CLEAR(st->str_id);
    Py_CLEAR(st->str_end);
    Py_CLEAR(st->SharedBufferType);
    Py_CLEAR(st->BufferViewType);
    return 0;
}

/* 1 if the interpreter being finalized is a subinterpreter whose process
 * goes on (not the main one, and the runtime is not shutting down). */
static int xp_subinterp_ending(void)
{
    PyInterpreterState *me = PyInterpreterState_Get();

    if (me == PyInterpreterState_Main())
        return 0;
#if PY_VERSION_HEX >= 0x030D0000
    return !Py_IsFinalizing();
#else
    return !_Py_IsFinalizing();
#endif
}

static void mod_free(void *m)
{
    xp_state *st = xp_state_of((PyObject *)m);

    if (!st)
        return;
    mod_clear((PyObject *)m);
    xp_exports_sweep(st, 1);
    xp_bufreg_clear(st);
    if (st->zone) {
        msgpack_zone_free(st->zone);
        st->zone = NULL;
    }
    if (st->cl) {
        /* A thread still blocked in a call uses the handle: leave it to
         * process exit (the daemon then ends the session). */
        if (st->cl_pid != xp_pid)
            xichan_client_close(st->cl); /* a forked child's copy: closes the socket only */
        else if (__atomic_load_n(&xp_blocked, __ATOMIC_RELAXED) == 0)
            (xp_subinterp_ending() ? xichan_client_close_unbind : xichan_client_close)(st->cl);
        st->cl = NULL;
    }
}

static PyModuleDef_Slot mod_slots[] = {
    {Py_mod_exec, mod_exec},
#if PY_VERSION_HEX >= 0x030C0000
    {Py_mod_multiple_interpreters, Py_MOD_PER_INTERPRETER_GIL_SUPPORTED},
#endif
    {0, NULL},
};

static struct PyModuleDef xichan_module = {
    PyModuleDef_HEAD_INIT,
    .m_name = "_xichan",
    .m_doc = "Low-level access to libxichan: queues, channels and shared buffers "
             "in a segment shared by processes and interpreters.",
    .m_size = sizeof(xp_state),
    .m_methods = mod_methods,
    .m_slots = mod_slots,
    .m_traverse = mod_traverse,
    .m_clear = mod_clear,
    .m_free = mod_free,
};

PyMODINIT_FUNC PyInit__xichan(void)
{
    return PyModuleDef_Init(&xichan_module);
}
