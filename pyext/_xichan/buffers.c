/*
 * buffers.c -- buffer items (XICHAN_FMT_BUFFER): memoryviews sent and
 * received, with their format, itemsize, shape and readonly kept.
 *
 * The payload is libxichan's (xichan_bufitem_encode/parse; layout in
 * xichan.7 and libclient/bufitem.c): a header with the buffer's metadata,
 * then by mode a reference to a shared buffer (SHARED), a copy of the bytes
 * (COPY), or a copy plus the sender's pid, a token and the address of its
 * memory (LOCAL).
 *
 * How the sender picks the mode for a memoryview (send_buffer*, a memoryview
 * sent, or put with syncobj=True, also inside a tuple):
 *   - C-contiguous memory inside a SharedBuffer this interpreter holds
 *     (sharedbuf.c): SHARED.  The item takes an in-flight reference on the
 *     buffer; the receiver attaches it (its view keeps that binding) and
 *     gives the reference back, so writes are seen both ways in every
 *     process.  A view received this way is itself inside a SharedBuffer, so
 *     forwarding it shares it again.
 *   - other C-contiguous memory: LOCAL.  The sender keeps an export of the
 *     source (so a bytearray cannot be resized, as in CPython) in a
 *     process-wide table under a token.  A receiver in the same process (pid
 *     equal: not a forked child) takes the token and views the sender's
 *     memory itself, so CPython's example of a shared buffer holds between
 *     interpreters.  A
 *     receiver in another process gets a view of the copy.  The export is
 *     given back, in the sender's interpreter, once the receiver's view dies
 *     (at the sender's next xichan call, or at once through a pending call
 *     when the sender is the main interpreter); after a blocking send
 *     returns with the token not taken and no receiver of this process busy
 *     on that channel (another process took the item); when the last
 *     receiver here that was busy on the channel then is done without
 *     taking it; after a put or a non-blocking send, once the item left its
 *     queue or channel with the token not taken (xp_exports_queued: the
 *     sender asks, at its calls, at most once a millisecond); or when the
 *     sending interpreter ends.
 *     Why the busy receivers: a receiver pops the item (which lets the
 *     blocking send return) before it decodes it and takes the token, and
 *     the two race for the GIL.  Each chan_recv here counts itself on its
 *     channel (a bucket of channels: no lock, no allocation) from before the
 *     pop until after the decode, so a send that returns while one is
 *     counted cannot tell who took its item and leaves the export SETTLING,
 *     for that receiver to take or to give up.
 *   - anything else (strided views): COPY, laid out in C order.
 *
 * The receiver's memoryview is exported by a _BufferView object that owns
 * what keeps the memory alive: the SharedBuffer, its own copy, the token,
 * or -- for a copied payload of XP_LEASE_MIN bytes or more received as a
 * whole item -- the item itself, left in the segment and freed when the view
 * dies (the segment then holds those bytes as long as the view lives, as a
 * private copy would hold the process's).
 *
 * Sending: a top-level COPY/LOCAL memoryview is described (xp_bufhold) and
 * put with xichan_queue_put_buffer/xichan_chan_send_buffer*, which copy its
 * bytes once, straight into the item; only a buffer inside a tuple (and the
 * few bytes of a SHARED one) goes through a payload block first.
 */
#include <pthread.h>
#include <string.h>
#include <unistd.h>

#include "xichan_py.h"

/* ------------------------------------------------ local export table */

/* SETTLING: a blocking send returned while receivers here were busy on
 * its channel; one of them may still take it (see the file comment). */
enum { EXP_EXPORTED = 1, EXP_TAKEN = 2, EXP_DONE = 3, EXP_SETTLING = 4 };

struct xexport {
    uint64_t token;
    int64_t interp;  /* the interpreter that must release the export */
    int state;
    uint64_t chan;   /* SETTLING: the channel it was sent on */
    int tkind;       /* XP_QUEUE or XP_CHAN: its item is queued there with ticket (tracked) */
    uint64_t obj;
    uint32_t ticket;
    Py_buffer view;  /* an export of the sender's memoryview */
    struct xexport *next;
};

static pthread_mutex_t exp_mu = PTHREAD_MUTEX_INITIALIZER;
static struct xexport *exp_head;

/* Receivers of this process between their pop and their decode, per bucket
 * of channels (a collision only delays a release), and the number of
 * SETTLING exports.  Atomic (seq_cst): the receive path takes no lock. */
#define RECV_BUCKETS 64
static int recv_busy[RECV_BUCKETS];
static int exp_settling;
static uint64_t exp_next = 1;
volatile int xp_exports_done_pending;
/* EXPORTED entries whose item's queue and ticket are known (tracked), and
 * when the sweep next asks whether their items left (CLOCK_MONOTONIC ns). */
volatile int xp_exports_tracked;
static int64_t exp_next_check;

/* A fork() while another thread holds exp_mu must not leave it locked. */
static pthread_once_t exp_once = PTHREAD_ONCE_INIT;
static void exp_lock_prepare(void) { pthread_mutex_lock(&exp_mu); }
static void exp_lock_after(void) { pthread_mutex_unlock(&exp_mu); }
static void exp_init(void) { pthread_atfork(exp_lock_prepare, exp_lock_after, exp_lock_after); }

/* An entry whose interpreter ended while a receiver still used it. */
#define EXP_ORPHAN INT64_MIN

static int64_t cur_interp(void)
{
    return PyInterpreterState_GetID(PyInterpreterState_Get());
}

/* The entry no longer waits for its item to leave.  needs exp_mu */
static void exp_untrack(struct xexport *x)
{
    if (x->tkind) {
        x->tkind = 0;
        __atomic_sub_fetch(&xp_exports_tracked, 1, __ATOMIC_RELAXED);
    }
}

/* Unlinks the entry for token; NULL if none.  needs exp_mu */
static struct xexport *exp_unlink(uint64_t token)
{
    for (struct xexport **pp = &exp_head; *pp; pp = &(*pp)->next) {
        if ((*pp)->token == token) {
            struct xexport *x = *pp;

            *pp = x->next;
            exp_untrack(x);
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
    if (x && (x->state == EXP_EXPORTED || x->state == EXP_SETTLING) &&
        (uint64_t)(uintptr_t)x->view.buf == addr) {
        if (x->state == EXP_SETTLING)
            __atomic_sub_fetch(&exp_settling, 1, __ATOMIC_SEQ_CST);
        exp_untrack(x);
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
    if (x && x->interp == EXP_ORPHAN) {
        /* Its interpreter is gone: nobody can release the export; free the entry. */
        exp_unlink(token);
        pthread_mutex_unlock(&exp_mu);
        PyMem_RawFree(x);
        return;
    }
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

/* Gives back the SETTLING exports of bucket b if no receiver here is busy
 * on it any more: whoever took them was another process. */
static void settle_bucket(unsigned b)
{
    int64_t me = cur_interp();
    struct xexport *freed = NULL;
    int wake_main = 0;

    pthread_mutex_lock(&exp_mu);
    if (__atomic_load_n(&recv_busy[b], __ATOMIC_SEQ_CST) == 0) {
        for (struct xexport **pp = &exp_head; *pp;) {
            struct xexport *x = *pp;

            if (x->state != EXP_SETTLING || x->chan % RECV_BUCKETS != b) {
                pp = &x->next;
                continue;
            }
            __atomic_sub_fetch(&exp_settling, 1, __ATOMIC_SEQ_CST);
            if (x->interp == me) {
                *pp = x->next;
                x->next = freed;
                freed = x;
            } else { /* its own interpreter releases it (xp_exports_sweep) */
                x->state = EXP_DONE;
                __atomic_add_fetch(&xp_exports_done_pending, 1, __ATOMIC_RELAXED);
                wake_main |= x->interp == 0;
                pp = &x->next;
            }
        }
    }
    if (wake_main)
        (void)Py_AddPendingCall(sweep_main, NULL);
    pthread_mutex_unlock(&exp_mu);
    while (freed) {
        struct xexport *x = freed;

        freed = x->next;
        exp_free(x);
    }
}

void xp_export_settle(xp_state *st, uint64_t token, uint64_t chan)
{
    unsigned b = (unsigned)(chan % RECV_BUCKETS);
    struct xexport *x = NULL;
    int settling = 0;

    pthread_mutex_lock(&exp_mu);
    struct xexport *f = exp_find(token);
    if (f && f->state == EXP_EXPORTED) {
        if (__atomic_load_n(&recv_busy[b], __ATOMIC_SEQ_CST) == 0) {
            x = exp_unlink(token);
        } else { /* a receiver here may hold it, undecoded */
            exp_untrack(f);
            f->state = EXP_SETTLING;
            f->chan = chan;
            __atomic_add_fetch(&exp_settling, 1, __ATOMIC_SEQ_CST);
            settling = 1;
        }
    }
    pthread_mutex_unlock(&exp_mu);
    if (x)
        exp_free(x);
    /* The receivers may all have finished since (and, having seen no
     * SETTLING export, not looked): see again (xp_recv_end's pair). */
    if (settling && __atomic_load_n(&recv_busy[b], __ATOMIC_SEQ_CST) == 0)
        settle_bucket(b);
}

void xp_recv_begin(uint64_t chan)
{
    __atomic_add_fetch(&recv_busy[chan % RECV_BUCKETS], 1, __ATOMIC_SEQ_CST);
}

void xp_recv_end(uint64_t chan)
{
    unsigned b = (unsigned)(chan % RECV_BUCKETS);

    /* seq_cst against xp_export_settle: it marks then reads recv_busy, this
     * decrements then reads exp_settling, so one of the two sees the other. */
    if (__atomic_sub_fetch(&recv_busy[b], 1, __ATOMIC_SEQ_CST) == 0 &&
        __atomic_load_n(&exp_settling, __ATOMIC_SEQ_CST) > 0)
        settle_bucket(b);
}

/*
 * After a put or a non-blocking send queued the item the encoder e built,
 * on kind's obj with ticket (xichan_last_ticket): its local exports wait
 * for the item to leave.  Whoever takes it in this process claims them
 * (exp_take); once it left and nobody here did, it went to another
 * process, which read the copy the item carries, and the sweep gives them
 * back (check_tracked).  Without this they would live as long as the
 * interpreter: a producer putting memoryviews for other processes would
 * keep every one of them.
 */
void xp_exports_queued(xp_enc *e, int kind, uint64_t obj, uint64_t ticket)
{
    int64_t me = cur_interp();

    pthread_mutex_lock(&exp_mu);
    for (size_t i = 0; i < e->nrefs; i++) {
        struct xexport *x;

        if (e->refs[i].kind != 0 || !(x = exp_find(e->refs[i].id)) || x->tkind ||
            x->state != EXP_EXPORTED || x->interp != me)
            continue;
        x->tkind = kind;
        x->obj = obj;
        x->ticket = (uint32_t)ticket;
        __atomic_add_fetch(&xp_exports_tracked, 1, __ATOMIC_RELAXED);
    }
    pthread_mutex_unlock(&exp_mu);
}

/*
 * Asks whether the items of tracked exports left their queue or channel,
 * and settles those that did (xp_export_settle: at once, or once the
 * receivers here busy on it are done).  At most every CHECK_EVERY_NS, the
 * CHECK_MAX oldest entries, oldest first; a queue that still holds an
 * older item holds the newer ones too (tickets are in fifo order), so each
 * queue costs one check until items leave.  A receiver here that popped
 * the item and has not yet claimed the export when it goes gets the copy
 * the item carries: the same bytes, not shared.
 */
#define CHECK_EVERY_NS 1000000
#define CHECK_MAX 64
static void check_tracked(xp_state *st)
{
    struct cand { uint64_t token, obj; uint32_t ticket; int kind; } c[CHECK_MAX];
    int64_t me = cur_interp(), now = xichan_now_ns();
    size_t n = 0, seen = 0, np = 0;
    struct cand present[CHECK_MAX];
    xichan_client *cl;

    if (now < __atomic_load_n(&exp_next_check, __ATOMIC_RELAXED))
        return;
    __atomic_store_n(&exp_next_check, now + CHECK_EVERY_NS, __ATOMIC_RELAXED);
    /* The list is newest first: a ring keeps the CHECK_MAX oldest. */
    pthread_mutex_lock(&exp_mu);
    for (struct xexport *x = exp_head; x; x = x->next)
        if (x->tkind && x->interp == me && x->state == EXP_EXPORTED)
            c[seen++ % CHECK_MAX] = (struct cand){x->token, x->obj, x->ticket, x->tkind};
    pthread_mutex_unlock(&exp_mu);
    n = seen < CHECK_MAX ? seen : CHECK_MAX;
    if (!n || !st->cl || st->cl_pid != getpid()) /* none, or the parent's (a forked child) */
        return;
    cl = st->cl;
    for (size_t k = 0; k < n; k++) {
        /* oldest first: the last one stored, going back around the ring */
        struct cand *x = &c[(seen - 1 - k) % CHECK_MAX];
        int r, left, held = 0;

        for (size_t j = 0; j < np && !held; j++)
            held = present[j].kind == x->kind && present[j].obj == x->obj;
        if (held)
            continue;
        if (x->kind == XP_QUEUE) {
            r = xichan_queue_put_check(cl, (xichan_queue_id){x->obj}, x->ticket);
            left = r == 0;
        } else {
            r = xichan_chan_send_check(cl, (xichan_chan_id){x->obj}, x->ticket);
            left = r == 0 || r == XICHAN_ECLOSED;
        }
        if (left)
            xp_export_settle(st, x->token, x->obj);
        else /* still there, or no answer now (a stopped holder): later */
            present[np++] = *x;
    }
}

void xp_exports_sweep(xp_state *st, int all)
{
    int64_t me = cur_interp();
    struct xexport *freed = NULL;

    if (!all && st && __atomic_load_n(&xp_exports_tracked, __ATOMIC_RELAXED) > 0)
        check_tracked(st);

    pthread_mutex_lock(&exp_mu);
    for (struct xexport **pp = &exp_head; *pp;) {
        struct xexport *x = *pp;

        /* At module free, a view still alive elsewhere keeps its export
         * (leaked on purpose rather than released under it). */
        if (all && x->interp == me && x->state == EXP_TAKEN)
            x->interp = EXP_ORPHAN;
        if (x->interp == me && (x->state == EXP_DONE ||
                                (all && (x->state == EXP_EXPORTED || x->state == EXP_SETTLING)))) {
            if (x->state == EXP_DONE)
                __atomic_sub_fetch(&xp_exports_done_pending, 1, __ATOMIC_RELAXED);
            else if (x->state == EXP_SETTLING)
                __atomic_sub_fetch(&exp_settling, 1, __ATOMIC_SEQ_CST);
            exp_untrack(x);
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
    xichan_item item;   /* a leased item the bytes are in (zeroed if none) */
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
    xichan_item_release(&self->item);
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

void xp_bufhold_fini(xp_bufhold *h)
{
    PyMem_Free(h->tmp);
    h->tmp = NULL;
    Py_CLEAR(h->mv);
}

int xp_buffer_describe(xp_enc *e, PyObject *obj, xp_bufhold *h)
{
    const xp_bufreg *reg = NULL;
    xichan_bufdesc *d = &h->d;
    Py_buffer *v;
    int err;

    h->tmp = NULL;
    if (!(h->mv = PyMemoryView_FromObject(obj)))
        return -1;
    v = PyMemoryView_GET_BUFFER(h->mv);
    if (v->ndim > XICHAN_BUF_MAXDIM || (v->format && strlen(v->format) > 255)) {
        PyErr_SetString(PyExc_ValueError, "buffer format or dimensions not supported");
        goto fail;
    }
    memset(d, 0, sizeof(*d));
    d->format = v->format;
    d->itemsize = (size_t)v->itemsize;
    d->ndim = v->ndim;
    for (int i = 0; i < v->ndim; i++)
        h->shape[i] = (int64_t)v->shape[i];
    d->shape = h->shape;
    d->readonly = v->readonly;
    d->nbytes = (size_t)v->len;
    d->data = v->buf;
    if (PyBuffer_IsContiguous(v, 'C'))
        reg = xp_bufreg_find(e->st, v->buf, (size_t)v->len);
    if (reg) {
        d->mode = XICHAN_BUF_SHARED;
        d->buf.id = reg->id;
        d->offset = (uint64_t)((const char *)v->buf - reg->ptr);
        if ((err = xichan_obj_inflight(e->cl, XICHAN_KIND_BUFFER, reg->id, +1))) {
            raise_from_err(e->st, err, XP_BUF, reg->id);
            goto fail;
        }
        if (xp_enc_addref(e, XICHAN_KIND_BUFFER, reg->id)) {
            (void)xichan_obj_inflight(e->cl, XICHAN_KIND_BUFFER, reg->id, -1);
            goto fail;
        }
    } else if (PyBuffer_IsContiguous(v, 'C')) {
        void *p;

        d->mode = XICHAN_BUF_LOCAL;
        d->local_pid = (uint64_t)getpid();
        if (exp_new(h->mv, &d->local_token, &p))
            goto fail;
        d->local_addr = (uint64_t)(uintptr_t)p;
        if (xp_enc_addref(e, 0, d->local_token)) {
            xp_exports_drop(d->local_token);
            goto fail;
        }
    } else {
        d->mode = XICHAN_BUF_COPY;
        if (!(h->tmp = PyMem_Malloc(v->len ? (size_t)v->len : 1))) {
            PyErr_NoMemory();
            goto fail;
        }
        if (PyBuffer_ToContiguous(h->tmp, v, v->len, 'C'))
            goto fail;
        d->data = h->tmp;
    }
    if (!xichan_bufitem_size(d)) {
        PyErr_SetString(PyExc_ValueError, "buffer cannot be described in an item");
        goto fail;
    }
    return 0;
fail:
    xp_bufhold_fini(h);
    return -1;
}

int xp_buffer_payload(xp_enc *e, xp_bufhold *h, char **out, size_t *outlen)
{
    size_t n = xichan_bufitem_size(&h->d);
    char *payload = PyMem_Malloc(n);
    int err;

    if (!payload) {
        xp_bufhold_fini(h);
        PyErr_NoMemory();
        return -1;
    }
    /* Nested in a tuple (or SHARED): a copy before the one into the segment. */
    err = xichan_bufitem_encode(&h->d, payload, n);
    xp_bufhold_fini(h);
    if (err) {
        PyMem_Free(payload);
        raise_from_err(e->st, err, XP_NONE, 0);
        return -1;
    }
    *out = payload;
    *outlen = n;
    return 0;
}

int xp_buffer_encode(xp_enc *e, PyObject *obj, char **out, size_t *outlen)
{
    xp_bufhold h;

    if (xp_buffer_describe(e, obj, &h))
        return -1;
    return xp_buffer_payload(e, &h, out, outlen);
}

static BufferViewObject *bv_new(xp_state *st, const xichan_bufdesc *d)
{
    BufferViewObject *bv = PyObject_New(BufferViewObject, st->BufferViewType);
    size_t fl = strlen(d->format);

    if (!bv)
        return NULL;
    bv->owner = NULL;
    bv->copy = NULL;
    bv->token = 0;
    memset(&bv->item, 0, sizeof(bv->item));
    bv->buf = NULL;
    bv->ndim = d->ndim;
    bv->itemsize = (Py_ssize_t)d->itemsize;
    bv->readonly = d->readonly != 0;
    bv->len = (Py_ssize_t)d->nbytes;
    bv->format = PyMem_Malloc(fl + 1);
    bv->shape = PyMem_Malloc(sizeof(Py_ssize_t) * 2u * (size_t)(d->ndim ? d->ndim : 1));
    if (!bv->format || !bv->shape) {
        Py_DECREF(bv);
        PyErr_NoMemory();
        return NULL;
    }
    memcpy(bv->format, d->format, fl + 1);
    for (int i = 0; i < d->ndim; i++)
        bv->shape[i] = (Py_ssize_t)d->shape[i];
    /* C-order strides after the shape. */
    for (int i = d->ndim - 1; i >= 0; i--)
        bv->shape[d->ndim + i] = i == d->ndim - 1 ? bv->itemsize
                                                  : bv->shape[d->ndim + i + 1] * bv->shape[i + 1];
    return bv;
}

PyObject *xp_buffer_decode(xp_state *st, const char *data, size_t len, xichan_item *lease)
{
    char fmtbuf[256];
    int64_t shapebuf[XICHAN_BUF_MAXDIM];
    xichan_bufdesc d;
    BufferViewObject *bv;
    PyObject *mv;

    if (xichan_bufitem_parse(data, len, &d, fmtbuf, shapebuf) || d.nbytes > PY_SSIZE_T_MAX) {
        PyErr_SetString(PyExc_ValueError, "malformed buffer item");
        return NULL;
    }
    if (!(bv = bv_new(st, &d)))
        return NULL;
    if (d.mode == XICHAN_BUF_SHARED) {
        PyObject *sb = xp_sharedbuffer_attach(st, d.buf.id);
        SharedBufferObject *o = (SharedBufferObject *)sb;

        /* Bound for this interpreter now (or failed): the trip's reference goes. */
        if (st->cl)
            (void)xichan_obj_inflight(st->cl, XICHAN_KIND_BUFFER, d.buf.id, -1);
        if (!sb) {
            Py_DECREF(bv);
            return NULL;
        }
        if (d.offset > o->size || d.nbytes > o->size - d.offset) {
            Py_DECREF(sb);
            Py_DECREF(bv);
            PyErr_SetString(PyExc_ValueError, "buffer item outside its shared buffer");
            return NULL;
        }
        bv->buf = o->ptr + d.offset;
        bv->owner = sb;
    } else {
        if (d.mode == XICHAN_BUF_LOCAL && d.local_pid == (uint64_t)getpid() &&
            (bv->buf = exp_take(d.local_token, d.local_addr)) != NULL)
            bv->token = d.local_token;
        if (!bv->buf && lease && d.nbytes >= XP_LEASE_MIN) {
            /* Viewed where it lies: a copy out would double the cost (and
             * fault in fresh pages); the block is freed with the view. */
            bv->item = *lease;
            memset(lease, 0, sizeof(*lease));
            bv->buf = (char *)d.data;
        }
        if (!bv->buf) {
            bv->copy = PyMem_Malloc(d.nbytes ? d.nbytes : 1);
            if (!bv->copy) {
                Py_DECREF(bv);
                return PyErr_NoMemory();
            }
            memcpy(bv->copy, d.data, d.nbytes);
            bv->buf = bv->copy;
        }
    }
    mv = PyMemoryView_FromObject((PyObject *)bv);
    Py_DECREF(bv);
    return mv;
}

/*
 * Views of the n buffers of a leased pickled item (xichan_pickleitem_parse),
 * where they lie: a list of 1-D memoryviews of format "B",
 * read-only where range i is.  One _BufferView takes the item over (*lease
 * is zeroed) and the views hold it, so the block goes back to the heap
 * when the last of them dies.
 */
PyObject *xp_item_views(xp_state *st, xichan_item *lease, const xichan_picklebuf *bufs, int n)
{
    int64_t shape[1] = {0};
    xichan_bufdesc d;
    BufferViewObject *whole, *bv;
    PyObject *list, *mv;

    memset(&d, 0, sizeof(d));
    d.format = "B";
    d.itemsize = 1;
    d.ndim = 1;
    d.shape = shape;
    d.readonly = 1;
    shape[0] = (int64_t)lease->len;
    d.nbytes = lease->len;
    if (!(list = PyList_New(n)) || !(whole = bv_new(st, &d))) {
        Py_XDECREF(list);
        return NULL;
    }
    whole->item = *lease;
    memset(lease, 0, sizeof(*lease));
    whole->buf = (char *)whole->item.data;
    for (int i = 0; i < n; i++) {
        shape[0] = (int64_t)bufs[i].len;
        d.nbytes = bufs[i].len;
        d.readonly = bufs[i].readonly;
        if (!(bv = bv_new(st, &d))) {
            Py_DECREF(list);
            Py_DECREF(whole);
            return NULL;
        }
        bv->buf = (char *)bufs[i].data;
        bv->owner = Py_NewRef((PyObject *)whole);
        mv = PyMemoryView_FromObject((PyObject *)bv);
        Py_DECREF(bv);
        if (!mv) {
            Py_DECREF(list);
            Py_DECREF(whole);
            return NULL;
        }
        PyList_SET_ITEM(list, i, mv);
    }
    Py_DECREF(whole);
    return list;
}

/*
 * buffer_view(buf, format, itemsize, shape) -> a memoryview of buf's bytes
 * with that format and shape (C order), read-only if buf is: how a pickled
 * memoryview is rebuilt over the copy the receiver owns (codec.c).
 */
static PyObject *mod_buffer_view(PyObject *m, PyObject *const *args, Py_ssize_t nargs)
{
    xp_state *st = xp_state_of(m);
    int64_t shape[XICHAN_BUF_MAXDIM];
    xichan_bufdesc d;
    BufferViewObject *bv;
    Py_buffer v;
    PyObject *mv;
    Py_ssize_t ndim, itemsize;
    const char *fmt;

    if (nargs != 4 || !PyTuple_Check(args[3])) {
        PyErr_SetString(PyExc_TypeError, "buffer_view(buf, format, itemsize, shape: tuple)");
        return NULL;
    }
    if (!(fmt = PyUnicode_AsUTF8(args[1])) || ((itemsize = PyLong_AsSsize_t(args[2])) == -1 &&
                                               PyErr_Occurred()))
        return NULL;
    ndim = PyTuple_GET_SIZE(args[3]);
    if (ndim > XICHAN_BUF_MAXDIM || itemsize < 1 || strlen(fmt) > 255) {
        PyErr_SetString(PyExc_ValueError, "buffer format, itemsize or dimensions not supported");
        return NULL;
    }
    for (Py_ssize_t i = 0; i < ndim; i++) {
        shape[i] = PyLong_AsLongLong(PyTuple_GET_ITEM(args[3], i));
        if (shape[i] == -1 && PyErr_Occurred())
            return NULL;
    }
    if (PyObject_GetBuffer(args[0], &v, PyBUF_SIMPLE))
        return NULL;
    memset(&d, 0, sizeof(d));
    d.format = fmt;
    d.itemsize = (size_t)itemsize;
    d.ndim = (int)ndim;
    d.shape = shape;
    d.readonly = v.readonly;
    d.nbytes = (size_t)v.len;
    d.data = v.buf;
    if (!xichan_bufitem_size(&d)) { /* itemsize * prod(shape) != the bytes there are */
        PyBuffer_Release(&v);
        PyErr_SetString(PyExc_ValueError, "buffer shape does not match its bytes");
        return NULL;
    }
    if (!(bv = bv_new(st, &d))) {
        PyBuffer_Release(&v);
        return NULL;
    }
    bv->buf = v.buf;
    bv->owner = Py_NewRef(args[0]); /* a bytes or bytearray: its memory stays */
    PyBuffer_Release(&v);
    mv = PyMemoryView_FromObject((PyObject *)bv);
    Py_DECREF(bv);
    return mv;
}

static PyMethodDef buffer_methods[] = {
    {"buffer_view", (PyCFunction)(void (*)(void))mod_buffer_view, METH_FASTCALL,
     "buffer_view(buf, format, itemsize, shape) -> memoryview over buf (a pickled memoryview)."},
    {NULL, NULL, 0, NULL},
};

/* ------------------------------------------------------------- init */

int xp_buffers_init(PyObject *m, xp_state *st)
{
    pthread_once(&exp_once, exp_init);
    if (xp_sharedbuf_init(m, st))
        return -1;
    st->BufferViewType = (PyTypeObject *)PyType_FromModuleAndSpec(m, &bv_spec, NULL);
    if (!st->BufferViewType)
        return -1;
    return PyModule_AddFunctions(m, buffer_methods);
}
