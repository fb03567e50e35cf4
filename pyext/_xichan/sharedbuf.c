/*
 * sharedbuf.c -- xichan.SharedBuffer: a block of the segment exposed through
 * the buffer protocol.
 *
 * SharedBuffer(size) allocates zeroed bytes with xichan_buf_create and maps
 * them (xichan_buf_map): writable bytes ('B'), the same memory in every
 * process and interpreter that attaches the buffer, so writes are seen by
 * all with no copy.  The object holds one binding of its interpreter's
 * session for as long as it lives (and every memoryview of it keeps it
 * alive), so the memory stays mapped while anyone here can reach it.
 *
 * Pickling gives the id; unpickling, or receiving the buffer (or a view
 * into it) in an item, attaches the same memory with a binding of the
 * receiver's own.  One object per buffer id per interpreter: attaching an id
 * this interpreter already holds returns that object.
 *
 * Each interpreter keeps a registry of its SharedBuffer mappings (module
 * state), so buffers.c can tell whether a memoryview's memory lies inside
 * one (then it is sent by reference, not copied), and so a forked child can
 * bind them again in its own session.
 */
#include <string.h>

#include "xichan_py.h"

#if PY_VERSION_HEX < 0x030C0000
#include <structmember.h>
#define Py_T_PYSSIZET T_PYSSIZET
#define Py_READONLY READONLY
#endif

/* --------------------------------------------- SharedBuffer registry */

static int reg_add(xp_state *st, PyObject *obj, char *ptr, size_t size, uint64_t id)
{
    if (st->nbufs == st->capbufs) {
        size_t cap = st->capbufs ? st->capbufs * 2 : 8;
        void *n = PyMem_RawRealloc(st->bufs, cap * sizeof(*st->bufs));

        if (!n) {
            PyErr_NoMemory();
            return -1;
        }
        st->bufs = n;
        st->capbufs = cap;
    }
    st->bufs[st->nbufs++] = (xp_bufreg){obj, ptr, size, id};
    return 0;
}

static void reg_remove(xp_state *st, PyObject *obj)
{
    for (size_t i = 0; i < st->nbufs; i++) {
        if (st->bufs[i].obj == obj) {
            st->bufs[i] = st->bufs[--st->nbufs];
            return;
        }
    }
}

void xp_bufreg_clear(xp_state *st)
{
    PyMem_RawFree(st->bufs);
    st->bufs = NULL;
    st->nbufs = st->capbufs = 0;
}

const xp_bufreg *xp_bufreg_find(xp_state *st, const char *p, size_t len)
{
    for (size_t i = 0; i < st->nbufs; i++) {
        const xp_bufreg *r = &st->bufs[i];

        if (p >= r->ptr && len <= r->size && (size_t)(p - r->ptr) <= r->size - len)
            return r;
    }
    return NULL;
}

/* ------------------------------------------------------ SharedBuffer */


static PyObject *sb_make(PyTypeObject *tp, uint64_t id, int created)
{
    xp_state *st = xp_state_from_type(tp);
    xichan_client *cl = xp_client(st);
    SharedBufferObject *self;
    xichan_buf_id b = {id};
    void *p;
    size_t n;
    int err;

    if (!cl)
        return NULL;
    if (!created && (err = xichan_buf_bind(cl, b)))
        return raise_from_err(st, err, XP_BUF, id);
    if ((err = xichan_buf_map(cl, b, &p, &n))) {
        (void)xichan_buf_unbind(cl, b);
        return raise_from_err(st, err, XP_BUF, id);
    }
    self = (SharedBufferObject *)tp->tp_alloc(tp, 0);
    if (!self || reg_add(st, (PyObject *)self, p, n, id)) {
        (void)xichan_buf_unbind(cl, b);
        if (self) {
            self->bound = 0;
            Py_DECREF(self);
        }
        return NULL;
    }
    self->id = id;
    self->ptr = p;
    self->size = n;
    self->bound = 1;
    return (PyObject *)self;
}

static PyObject *sb_new(PyTypeObject *tp, PyObject *args, PyObject *kw)
{
    static char *kwlist[] = {"size", NULL};
    xp_state *st = xp_state_from_type(tp);
    xichan_client *cl;
    Py_ssize_t size;
    xichan_buf_id b;
    int err;

    if (!PyArg_ParseTupleAndKeywords(args, kw, "n:SharedBuffer", kwlist, &size))
        return NULL;
    if (size <= 0) {
        PyErr_SetString(PyExc_ValueError, "size must be positive");
        return NULL;
    }
    if (!(cl = xp_client(st)))
        return NULL;
    if ((err = xichan_buf_create(cl, (size_t)size, &b)))
        return raise_from_err(st, err, XP_BUF, 0);
    return sb_make(tp, b.id, 1);
}

PyObject *xp_sharedbuffer_attach(xp_state *st, uint64_t id)
{
    for (size_t i = 0; i < st->nbufs; i++)
        if (st->bufs[i].id == id)
            return Py_NewRef(st->bufs[i].obj);
    return sb_make(st->SharedBufferType, id, 0);
}

static PyObject *sb_attach(PyObject *cls, PyObject *arg)
{
    xp_state *st = xp_state_from_type((PyTypeObject *)cls);
    uint64_t id;

    if (xp_id_arg(arg, "buffer id", &id))
        return NULL;
    return xp_sharedbuffer_attach(st, id);
}

static void sb_dealloc(SharedBufferObject *self)
{
    PyTypeObject *tp = Py_TYPE(self);
    xp_state *st = xp_state_from_type(tp);

    if (self->weakreflist)
        PyObject_ClearWeakRefs((PyObject *)self);
    if (st) {
        reg_remove(st, (PyObject *)self);
        if (self->bound && st->cl) {
            xichan_buf_id b = {self->id};

            (void)xichan_buf_unbind(st->cl, b);
        }
    }
    tp->tp_free((PyObject *)self);
    Py_DECREF(tp);
}

int xp_buffers_rebind(xp_state *st)
{
    for (size_t i = 0; i < st->nbufs; i++) {
        SharedBufferObject *sb = (SharedBufferObject *)st->bufs[i].obj;
        xichan_buf_id b = {st->bufs[i].id};
        void *p;
        size_t n;

        sb->bound = xichan_buf_bind(st->cl, b) == 0;
        /* The child's session may map the segment elsewhere; the parent's
         * mapping stays valid for views made before the fork. */
        if (sb->bound && xichan_buf_map(st->cl, b, &p, &n) == 0 && n == sb->size) {
            sb->ptr = p;
            st->bufs[i].ptr = p;
        }
    }
    return 0;
}

static int sb_getbuffer(SharedBufferObject *self, Py_buffer *view, int flags)
{
    return PyBuffer_FillInfo(view, (PyObject *)self, self->ptr, (Py_ssize_t)self->size, 0, flags);
}

static Py_ssize_t sb_len(SharedBufferObject *self)
{
    return (Py_ssize_t)self->size;
}

static PyObject *sb_repr(SharedBufferObject *self)
{
    return PyUnicode_FromFormat("SharedBuffer(id=%llu, size=%zu)", (unsigned long long)self->id,
                                self->size);
}

static PyObject *sb_reduce(SharedBufferObject *self, PyObject *unused)
{
    PyObject *attach = PyObject_GetAttrString((PyObject *)Py_TYPE(self), "_attach");

    if (!attach)
        return NULL;
    return Py_BuildValue("(N(K))", attach, (unsigned long long)self->id);
}

static PyObject *sb_get_id(SharedBufferObject *self, void *c)
{
    return PyLong_FromUnsignedLongLong(self->id);
}

static PyObject *sb_get_size(SharedBufferObject *self, void *c)
{
    return PyLong_FromSize_t(self->size);
}

static PyMethodDef sb_methods[] = {
    {"_attach", sb_attach, METH_O | METH_CLASS, "Attach the shared buffer with this id."},
    {"__reduce__", (PyCFunction)sb_reduce, METH_NOARGS, NULL},
    {NULL, NULL, 0, NULL},
};

static PyGetSetDef sb_getset[] = {
    {"id", (getter)sb_get_id, NULL, "The buffer's id in the namespace.", NULL},
    {"_id", (getter)sb_get_id, NULL, NULL, NULL},
    {"size", (getter)sb_get_size, NULL, "Size in bytes.", NULL},
    {NULL, NULL, NULL, NULL, NULL},
};

static PyMemberDef sb_members[] = {
    {"__weaklistoffset__", Py_T_PYSSIZET, offsetof(SharedBufferObject, weakreflist), Py_READONLY},
    {NULL, 0, 0, 0, NULL},
};

static PyType_Slot sb_slots[] = {
    {Py_tp_new, sb_new},
    {Py_tp_dealloc, sb_dealloc},
    {Py_tp_repr, sb_repr},
    {Py_tp_methods, sb_methods},
    {Py_tp_getset, sb_getset},
    {Py_tp_members, sb_members},
    {Py_bf_getbuffer, sb_getbuffer},
    {Py_sq_length, sb_len},
    /* The first line is the signature inspect.signature() reads. */
    {Py_tp_doc, "SharedBuffer(size)\n--\n\n"
                "Zeroed bytes in the xichan segment, shared with every process and "
                "interpreter that attaches it (writes are seen by all).  Pickle it, send "
                "it or put it to share it; memoryview(buf) reads and writes it."},
    {0, NULL},
};

static PyType_Spec sb_spec = {
    .name = "xichan.SharedBuffer",
    .basicsize = sizeof(SharedBufferObject),
    .flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_IMMUTABLETYPE,
    .slots = sb_slots,
};

int xp_sharedbuf_init(PyObject *m, xp_state *st)
{
    st->SharedBufferType = (PyTypeObject *)PyType_FromModuleAndSpec(m, &sb_spec, NULL);
    if (!st->SharedBufferType)
        return -1;
    return PyModule_AddType(m, st->SharedBufferType);
}
