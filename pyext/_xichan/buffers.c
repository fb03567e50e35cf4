/*
 * buffers.c -- xichan.SharedBuffer and buffer items (XICHAN_FMT_BUFFER).
 *
 * SharedBuffer(size) is a block of the segment (xichan_buf_create) exposed
 * through the buffer protocol: writable bytes ('B'), the same memory in every
 * process and interpreter that attaches it.  The object holds one binding of
 * its session; pickling gives its id, and unpickling (or receiving it in an
 * item) attaches the same memory with a binding of the receiver's own.
 *
 * BUFFER ITEM PAYLOAD (also in xichan.7).  Native byte order (client and
 * daemon share a machine), every field 8-aligned:
 *
 *   offset  size        field
 *   0       4           magic 0x31465842 ("BXF1")
 *   4       1           mode: 0 COPY, 1 SHARED, 2 LOCAL
 *   5       1           readonly (0/1)
 *   6       1           ndim (0..64)
 *   7       1           fmtlen: length of the struct format string (0..255)
 *   8       8           itemsize
 *   16      8           nbytes = itemsize * prod(shape)
 *   24      8*ndim      shape
 *   ...     fmtlen      format (no NUL), zero-padded to a multiple of 8
 *   then by mode:
 *     SHARED  u64 buffer id, u64 byte offset into it     (no bytes follow)
 *     LOCAL   u64 pid, u64 token, u64 address; nbytes bytes (a copy)
 *     COPY    nbytes bytes, C order
 *
 * How the sender picks the mode for a memoryview (send_buffer*, a memoryview
 * sent or put with syncobj=True):
 *   - C-contiguous memory inside a SharedBuffer this interpreter holds:
 *     SHARED.  The item takes an in-flight reference on the buffer; the
 *     receiver attaches it (a binding kept by its view) and gives the
 *     reference back, so writes are seen both ways in every process.
 *   - other C-contiguous memory: LOCAL.  The sender keeps an export of the
 *     source (so a bytearray cannot be resized, as in CPython) in a
 *     process-wide table under a token.  A receiver in the same process
 *     (pid equal) takes the token and views the sender's memory directly, so
 *     the seed's example holds between interpreters; a receiver in another
 *     process (or a forked child) gets a view of the copy.  The export is
 *     given back, in the sender's interpreter, once the receiver's view dies;
 *     after a blocking send returns with the token not taken (another process
 *     took the item); or when the sending interpreter ends.
 *   - anything else (strided views): COPY.
 * Format, itemsize, shape and readonly are kept: array('i') stays 'i',
 * bytes arrive read-only.  Every field is checked on receipt.
 */
#include <pthread.h>
#include <string.h>
#include <unistd.h>

#include "xichan_py.h"

#if PY_VERSION_HEX < 0x030C0000
#include <structmember.h>
#define Py_T_PYSSIZET T_PYSSIZET
#define Py_READONLY READONLY
#endif

#define XBUF_MAGIC 0x31465842u
enum { XBUF_COPY = 0, XBUF_SHARED = 1, XBUF_LOCAL = 2 };

struct xbuf_hdr {
    uint32_t magic;
    uint8_t mode, readonly, ndim, fmtlen;
    uint64_t itemsize;
    uint64_t nbytes;
};

#define PAD8(n) (((n) + 7u) & ~(size_t)7u)

/* ------------------------------------------------ local export table */

enum { EXP_EXPORTED = 1, EXP_TAKEN = 2, EXP_DONE = 3 };

struct xexport {
    uint64_t token;
    int64_t interp;  /* the interpreter that must release the export */
    int state;
    Py_buffer view;  /* an export of the sender's memoryview */
    struct xexport *next;
};

static pthread_mutex_t exp_mu = PTHREAD_MUTEX_INITIALIZER;
static struct xexport *exp_head;
static uint64_t exp_next = 1;
volatile int xp_exports_done_pending;

static int64_t cur_interp(void)
{
    return PyInterpreterState_GetID(PyInterpreterState_Get());
}

/* Unlinks the entry for token; NULL if none.  needs exp_mu */
static struct xexport *exp_unlink(uint64_t token)
{
    for (struct xexport **pp = &exp_head; *pp; pp = &(*pp)->next) {
        if ((*pp)->token == token) {
            struct xexport *x = *pp;

            *pp = x->next;
            return x;
        }
    }
    return NULL;
}

static struct xexport *exp_find(uint64_t token)
{
    for (struct xexport *x = exp_head; x; x = x->next)
        if (x->token == token)
            return x;
    return NULL;
}

static void exp_free(struct xexport *x)
{
    PyBuffer_Release(&x->view);
    PyMem_RawFree(x);
}

static int exp_new(PyObject *mv, uint64_t *token, void **ptr)
{
    struct xexport *x = PyMem_RawCalloc(1, sizeof(*x));

    if (!x) {
        PyErr_NoMemory();
        return -1;
    }
    if (PyObject_GetBuffer(mv, &x->view, PyBUF_FULL_RO)) {
        PyMem_RawFree(x);
        return -1;
    }
    x->interp = cur_interp();
    x->state = EXP_EXPORTED;
    pthread_mutex_lock(&exp_mu);
    x->token = exp_next++;
    x->next = exp_head;
    exp_head = x;
    pthread_mutex_unlock(&exp_mu);
    *token = x->token;
    *ptr = x->view.buf;
    return 0;
}

/* A receiver in this process claims the sender's memory. */
static void *exp_take(uint64_t token, uint64_t addr)
{
    void *p = NULL;

    pthread_mutex_lock(&exp_mu);
    struct xexport *x = exp_find(token);
    if (x && x->state == EXP_EXPORTED && (uint64_t)(uintptr_t)x->view.buf == addr) {
        x->state = EXP_TAKEN;
        p = x->view.buf;
    }
    pthread_mutex_unlock(&exp_mu);
    return p;
}

static int sweep_main(void *unused)
{
    xp_exports_sweep(NULL, 0);
    return 0;
}

/* The receiver's view died. */
static void exp_done(uint64_t token)
{
    struct xexport *x;
    int64_t me = cur_interp();

    pthread_mutex_lock(&exp_mu);
    x = exp_find(token);
    if (x && x->interp == me) {
        exp_unlink(token);
    } else {
        if (x) {
            x->state = EXP_DONE;
            __atomic_add_fetch(&xp_exports_done_pending, 1, __ATOMIC_RELAXED);
            if (x->interp == 0) /* the main interpreter: wake its sweep now */
                (void)Py_AddPendingCall(sweep_main, NULL);
        }
        x = NULL;
    }
    pthread_mutex_unlock(&exp_mu);
    if (x)
        exp_free(x);
}

void xp_exports_drop(uint64_t token)
{
    struct xexport *x;

    pthread_mutex_lock(&exp_mu);
    x = exp_unlink(token);
    pthread_mutex_unlock(&exp_mu);
    if (x)
        exp_free(x);
}

void xp_export_settle(xp_state *st, uint64_t token)
{
    struct xexport *x = NULL;

    pthread_mutex_lock(&exp_mu);
    struct xexport *f = exp_find(token);
    if (f && f->state == EXP_EXPORTED)
        x = exp_unlink(token);
    pthread_mutex_unlock(&exp_mu);
    if (x)
        exp_free(x);
}

void xp_exports_sweep(xp_state *st, int all)
{
    int64_t me = cur_interp();
    struct xexport *freed = NULL;

    pthread_mutex_lock(&exp_mu);
    for (struct xexport **pp = &exp_head; *pp;) {
        struct xexport *x = *pp;

        /* At module free, a view still alive elsewhere keeps its export
         * (leaked on purpose rather than released under it). */
        if (x->interp == me && (x->state == EXP_DONE || (all && x->state == EXP_EXPORTED))) {
            if (x->state == EXP_DONE)
                __atomic_sub_fetch(&xp_exports_done_pending, 1, __ATOMIC_RELAXED);
            *pp = x->next;
            x->next = freed;
            freed = x;
        } else {
            pp = &x->next;
        }
    }
    pthread_mutex_unlock(&exp_mu);
    while (freed) {
        struct xexport *x = freed;

        freed = x->next;
        exp_free(x);
    }
}

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

static const xp_bufreg *reg_find_ptr(xp_state *st, const char *p, size_t len)
{
    for (size_t i = 0; i < st->nbufs; i++) {
        const xp_bufreg *r = &st->bufs[i];

        if (p >= r->ptr && len <= r->size && (size_t)(p - r->ptr) <= r->size - len)
            return r;
    }
    return NULL;
}

/* ------------------------------------------------------ SharedBuffer */

typedef struct {
    PyObject_HEAD
    uint64_t id;
    char *ptr;
    size_t size;
    int bound;
    PyObject *weakreflist;
} SharedBufferObject;

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
        return xp_raise(st, err, XP_BUF, id);
    if ((err = xichan_buf_map(cl, b, &p, &n))) {
        (void)xichan_buf_unbind(cl, b);
        return xp_raise(st, err, XP_BUF, id);
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
        return xp_raise(st, err, XP_BUF, 0);
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
        xichan_buf_id b = {st->bufs[i].id};

        (void)xichan_buf_bind(st->cl, b);
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
    {Py_tp_doc, "SharedBuffer(size): zeroed bytes in the xichan segment, shared with every "
                "process and interpreter that attaches it (writes are seen by all)."},
    {0, NULL},
};

static PyType_Spec sb_spec = {
    .name = "xichan.SharedBuffer",
    .basicsize = sizeof(SharedBufferObject),
    .flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_IMMUTABLETYPE,
    .slots = sb_slots,
};

/* -------------------------------------------------------- BufferView */

/* The exporter behind a received memoryview. */
typedef struct {
    PyObject_HEAD
    char *buf;
    Py_ssize_t len, itemsize;
    int readonly, ndim;
    PyObject *owner;    /* SharedBuffer (SHARED) or NULL */
    void *copy;         /* PyMem memory we own (COPY) */
    uint64_t token;     /* LOCAL: the sender's export, 0 if none */
    char *format;       /* PyMem, NUL-terminated */
    Py_ssize_t *shape;  /* ndim entries, then ndim strides */
} BufferViewObject;

static int bv_getbuffer(BufferViewObject *self, Py_buffer *view, int flags)
{
    if ((flags & PyBUF_WRITABLE) && self->readonly) {
        PyErr_SetString(PyExc_BufferError, "the received buffer is read-only");
        return -1;
    }
    view->obj = Py_NewRef(self);
    view->buf = self->buf;
    view->len = self->len;
    view->readonly = self->readonly;
    view->itemsize = self->itemsize;
    view->format = (flags & PyBUF_FORMAT) ? self->format : NULL;
    view->ndim = (flags & PyBUF_ND) ? self->ndim : 1;
    view->shape = (flags & PyBUF_ND) ? self->shape : NULL;
    view->strides = (flags & PyBUF_STRIDES) == PyBUF_STRIDES ? self->shape + self->ndim : NULL;
    view->suboffsets = NULL;
    view->internal = NULL;
    if (!(flags & PyBUF_ND) && self->itemsize != 1 && (flags & PyBUF_FORMAT) == 0) {
        view->itemsize = 1; /* a plain bytes view of the whole memory */
    }
    return 0;
}

static void bv_dealloc(BufferViewObject *self)
{
    PyTypeObject *tp = Py_TYPE(self);

    Py_CLEAR(self->owner);
    PyMem_Free(self->copy);
    PyMem_Free(self->format);
    PyMem_Free(self->shape);
    if (self->token)
        exp_done(self->token);
    tp->tp_free((PyObject *)self);
    Py_DECREF(tp);
}

static PyType_Slot bv_slots[] = {
    {Py_tp_dealloc, bv_dealloc},
    {Py_bf_getbuffer, bv_getbuffer},
    {Py_tp_doc, "The memory behind a buffer received from xichan."},
    {0, NULL},
};

static PyType_Spec bv_spec = {
    .name = "xichan._BufferView",
    .basicsize = sizeof(BufferViewObject),
    .flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_IMMUTABLETYPE | Py_TPFLAGS_DISALLOW_INSTANTIATION,
    .slots = bv_slots,
};

/* ---------------------------------------------------- encode / decode */

static int sb_put(msgpack_sbuffer *out, const void *p, size_t n)
{
    if (msgpack_sbuffer_write(out, p, n)) {
        PyErr_NoMemory();
        return -1;
    }
    return 0;
}

int xp_buffer_encode(xp_enc *e, msgpack_sbuffer *out, PyObject *obj)
{
    static const char zeros[8];
    PyObject *mv = PyMemoryView_FromObject(obj);
    Py_buffer *v;
    struct xbuf_hdr h;
    const char *fmt;
    const xp_bufreg *reg = NULL;
    size_t fmtlen;
    int rc = -1, contig;

    if (!mv)
        return -1;
    v = PyMemoryView_GET_BUFFER(mv);
    fmt = v->format ? v->format : "B";
    fmtlen = strlen(fmt);
    if (fmtlen > 255 || v->ndim > 64) {
        PyErr_SetString(PyExc_ValueError, "buffer format or dimensions not supported");
        goto done;
    }
    contig = PyBuffer_IsContiguous(v, 'C');
    if (contig)
        reg = reg_find_ptr(e->st, v->buf, (size_t)v->len);
    memset(&h, 0, sizeof(h));
    h.magic = XBUF_MAGIC;
    h.mode = reg ? XBUF_SHARED : contig ? XBUF_LOCAL : XBUF_COPY;
    h.readonly = v->readonly ? 1 : 0;
    h.ndim = (uint8_t)v->ndim;
    h.fmtlen = (uint8_t)fmtlen;
    h.itemsize = (uint64_t)v->itemsize;
    h.nbytes = (uint64_t)v->len;
    if (sb_put(out, &h, sizeof(h)))
        goto done;
    for (int i = 0; i < v->ndim; i++) {
        uint64_t d = (uint64_t)v->shape[i];

        if (sb_put(out, &d, 8))
            goto done;
    }
    if (sb_put(out, fmt, fmtlen) || sb_put(out, zeros, PAD8(fmtlen) - fmtlen))
        goto done;
    if (h.mode == XBUF_SHARED) {
        uint64_t w[2] = {reg->id, (uint64_t)((const char *)v->buf - reg->ptr)};
        int err;

        if ((err = xichan_obj_inflight(e->cl, XICHAN_KIND_BUFFER, reg->id, +1))) {
            xp_raise(e->st, err, XP_BUF, reg->id);
            goto done;
        }
        if (xp_enc_addref(e, XICHAN_KIND_BUFFER, reg->id)) {
            (void)xichan_obj_inflight(e->cl, XICHAN_KIND_BUFFER, reg->id, -1);
            goto done;
        }
        rc = sb_put(out, w, sizeof(w));
    } else if (h.mode == XBUF_LOCAL) {
        uint64_t w[3] = {(uint64_t)getpid(), 0, 0};
        void *p;

        if (exp_new(mv, &w[1], &p))
            goto done;
        w[2] = (uint64_t)(uintptr_t)p;
        if (xp_enc_addref(e, 0, w[1])) {
            xp_exports_drop(w[1]);
            goto done;
        }
        rc = sb_put(out, w, sizeof(w)) || sb_put(out, v->buf, (size_t)v->len) ? -1 : 0;
    } else {
        char *tmp = PyMem_Malloc(v->len ? (size_t)v->len : 1);

        if (!tmp) {
            PyErr_NoMemory();
            goto done;
        }
        rc = PyBuffer_ToContiguous(tmp, v, v->len, 'C');
        if (rc == 0)
            rc = sb_put(out, tmp, (size_t)v->len);
        PyMem_Free(tmp);
    }
done:
    Py_DECREF(mv);
    return rc;
}

static PyObject *bad_payload(void)
{
    PyErr_SetString(PyExc_ValueError, "malformed buffer item");
    return NULL;
}

PyObject *xp_buffer_decode(xp_state *st, const char *data, size_t len)
{
    struct xbuf_hdr h;
    BufferViewObject *bv;
    const char *p = data, *end = data + len;
    uint64_t prod = 1;
    PyObject *mv;
    size_t need;

    if (len < sizeof(h))
        return bad_payload();
    memcpy(&h, p, sizeof(h));
    p += sizeof(h);
    if (h.magic != XBUF_MAGIC || h.ndim > 64 || h.mode > XBUF_LOCAL || h.itemsize == 0 ||
        h.itemsize > (1u << 20) || h.nbytes > PY_SSIZE_T_MAX)
        return bad_payload();
    need = 8u * h.ndim + PAD8(h.fmtlen);
    if ((size_t)(end - p) < need)
        return bad_payload();
    bv = PyObject_New(BufferViewObject, st->BufferViewType);
    if (!bv)
        return NULL;
    bv->owner = NULL;
    bv->copy = NULL;
    bv->token = 0;
    bv->buf = NULL;
    bv->format = PyMem_Malloc(h.fmtlen + 1u);
    bv->shape = PyMem_Malloc(sizeof(Py_ssize_t) * 2u * (h.ndim ? h.ndim : 1));
    bv->ndim = h.ndim;
    bv->itemsize = (Py_ssize_t)h.itemsize;
    bv->readonly = h.readonly != 0;
    bv->len = (Py_ssize_t)h.nbytes;
    if (!bv->format || !bv->shape) {
        Py_DECREF(bv);
        return PyErr_NoMemory();
    }
    for (int i = 0; i < h.ndim; i++) {
        uint64_t d;

        memcpy(&d, p, 8);
        p += 8;
        if (d > PY_SSIZE_T_MAX || (d && prod > UINT64_MAX / d)) {
            Py_DECREF(bv);
            return bad_payload();
        }
        prod *= d;
        bv->shape[i] = (Py_ssize_t)d;
    }
    memcpy(bv->format, p, h.fmtlen);
    bv->format[h.fmtlen] = '\0';
    p += PAD8(h.fmtlen);
    if ((h.ndim ? prod * h.itemsize : h.itemsize) != h.nbytes) {
        Py_DECREF(bv);
        return bad_payload();
    }
    /* C-order strides after the shape. */
    for (int i = h.ndim - 1; i >= 0; i--)
        bv->shape[h.ndim + i] = i == h.ndim - 1 ? bv->itemsize
                                                 : bv->shape[h.ndim + i + 1] * bv->shape[i + 1];
    if (h.mode == XBUF_SHARED) {
        uint64_t w[2];
        PyObject *sb;

        if ((size_t)(end - p) < sizeof(w)) {
            Py_DECREF(bv);
            return bad_payload();
        }
        memcpy(w, p, sizeof(w));
        sb = xp_sharedbuffer_attach(st, w[0]);
        if (st->cl)
            (void)xichan_obj_inflight(st->cl, XICHAN_KIND_BUFFER, w[0], -1);
        if (!sb) {
            Py_DECREF(bv);
            return NULL;
        }
        if (w[1] > ((SharedBufferObject *)sb)->size ||
            h.nbytes > ((SharedBufferObject *)sb)->size - w[1]) {
            Py_DECREF(sb);
            Py_DECREF(bv);
            return bad_payload();
        }
        bv->buf = ((SharedBufferObject *)sb)->ptr + w[1];
        bv->owner = sb;
    } else {
        if (h.mode == XBUF_LOCAL) {
            uint64_t w[3];

            if ((size_t)(end - p) < sizeof(w)) {
                Py_DECREF(bv);
                return bad_payload();
            }
            memcpy(w, p, sizeof(w));
            p += sizeof(w);
            if (w[0] == (uint64_t)getpid() && (bv->buf = exp_take(w[1], w[2])) != NULL)
                bv->token = w[1];
        }
        if (!bv->buf) {
            if ((uint64_t)(end - p) < h.nbytes) {
                Py_DECREF(bv);
                return bad_payload();
            }
            bv->copy = PyMem_Malloc(h.nbytes ? (size_t)h.nbytes : 1);
            if (!bv->copy) {
                Py_DECREF(bv);
                return PyErr_NoMemory();
            }
            memcpy(bv->copy, p, (size_t)h.nbytes);
            bv->buf = bv->copy;
        }
    }
    mv = PyMemoryView_FromObject((PyObject *)bv);
    Py_DECREF(bv);
    return mv;
}

/* ------------------------------------------------------------- init */

int xp_buffers_init(PyObject *m, xp_state *st)
{
    st->SharedBufferType = (PyTypeObject *)PyType_FromModuleAndSpec(m, &sb_spec, NULL);
    if (!st->SharedBufferType)
        return -1;
    st->BufferViewType = (PyTypeObject *)PyType_FromModuleAndSpec(m, &bv_spec, NULL);
    if (!st->BufferViewType)
        return -1;
    if (PyModule_AddType(m, st->SharedBufferType))
        return -1;
    return 0;
}
