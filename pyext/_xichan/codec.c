/*
 * codec.c -- shareable Python values <-> msgpack items (XICHAN_FMT_MSGPACK).
 *
 * Encoding (the shareable types of xichan.queues.Queue.put): exact types only.
 *
 *   None, True, False   nil, true, false
 *   int                 int64 (outside it: OverflowError('try sending as bytes'))
 *   float               float64
 *   str                 str (UTF-8; lone surrogates kept with surrogatepass)
 *   bytes               bin
 *   tuple               array, recursively
 *   memoryview          ext 2: a buffer item payload (buffers.c; at top level
 *                       the whole item is XICHAN_FMT_BUFFER instead)
 *   Queue, SendChannel, RecvChannel, ChannelID, SharedBuffer
 *                       ext 1: kind u8, flags u8 (XICHAN_HANDLE_*), id u64 little-endian
 *
 * Anything else raises NotShareableError('<repr> does not support
 * cross-interpreter data') naming the innermost offending object; the caller
 * then queues nothing.  Packing a handle takes an in-flight reference
 * (xichan_obj_inflight +1) so the object outlives the trip; the receiver binds
 * it for its own session, then gives the reference back (-1).  An item that
 * is not queued after all gives its references back in xp_enc_abort().
 *
 * Pickled items (queues with syncobj=False): xp_pickle_dumps pickles.  A
 * bytes or bytearray of XP_OOB_MIN bytes or more, any memoryview, and any
 * object whose own pickling gives pickle.PickleBuffer objects (numpy
 * arrays) are pickled with protocol 5, their buffers of XP_OOB_MIN bytes or
 * more out of band: the item (XICHAN_FMT_PICKLE_OOB, layout below and in
 * xichan.7) is the pickle and those buffers, each copied once, straight into
 * the segment (xichan_queue_putv).  The receiver hands the buffers to
 * pickle.loads(buffers=...).  A bare bytes or bytearray (the pickle is that
 * one buffer) comes back as that very object, so its buffer is copied once
 * into one; for anything else the buffers are views of the item where it
 * lies (xp_item_views: the views keep the item, no copy out), so a numpy
 * array is made over the segment's memory (numpy's own pickle-5 support)
 * and a memoryview is viewed over it with its format, shape and read-only
 * flag (xichan.queues._view_of).  Everything else is pickled
 * as before (pickle.dumps, XICHAN_FMT_PICKLE).
 *
 * Decoding is by each item's own format.  A msgpack item from a C client
 * decodes to natural values: map -> dict, array -> tuple, str -> str,
 * bin -> bytes, unknown ext -> (type, bytes); msgpack-c parses it (see
 * dec_msgpack for why, and the measurement).
 */
#include <string.h>

#include "xichan_py.h"

/* ------------------------------------------------------------ encoding */

/*
 * The packer's sink.  Small items stay in e->inl; a bigger one grows to at
 * least what it needs at once, so a large bytes/str costs one allocation
 * (msgpack_sbuffer started every item with an 8 KiB malloc and realloc).
 */
static int enc_write(void *data, const char *buf, size_t len)
{
    xp_enc *e = data;

    if (len > e->cap - e->len) {
        size_t cap = e->cap * 2 > e->len + len ? e->cap * 2 : e->len + len;
        char *n = e->buf == e->inl ? PyMem_Malloc(cap) : PyMem_Realloc(e->buf, cap);

        if (!n)
            return -1;
        if (e->buf == e->inl)
            memcpy(n, e->inl, e->len);
        e->buf = n;
        e->cap = cap;
    }
    memcpy(e->buf + e->len, buf, len);
    e->len += len;
    return 0;
}

void xp_enc_init(xp_enc *e, xp_state *st, xichan_client *cl)
{
    e->st = st;
    e->cl = cl;
    e->buf = e->inl;
    e->len = 0;
    e->cap = sizeof(e->inl);
    e->refs = NULL;
    e->nrefs = e->caprefs = 0;
    e->fmt = XICHAN_FMT_MSGPACK;
    e->raw = NULL;
    e->rawlen = 0;
    e->direct = 0;
    e->hold.mv = NULL;
    e->hold.tmp = NULL;
    msgpack_packer_init(&e->pk, e, enc_write);
}

/* kind 0 records a local buffer export (buffers.c) rather than a reference. */
int xp_enc_addref(xp_enc *e, int kind, uint64_t id)
{
    if (e->nrefs == e->caprefs) {
        size_t cap = e->caprefs ? e->caprefs * 2 : 4;
        void *n = PyMem_Realloc(e->refs, cap * sizeof(*e->refs));

        if (!n) {
            PyErr_NoMemory();
            return -1;
        }
        e->refs = n;
        e->caprefs = cap;
    }
    e->refs[e->nrefs].kind = kind;
    e->refs[e->nrefs].id = id;
    e->nrefs++;
    return 0;
}

void xp_enc_abort(xp_enc *e)
{
    for (size_t i = 0; i < e->nrefs; i++) {
        if (e->refs[i].kind == 0)
            xp_exports_drop(e->refs[i].id);
        else
            (void)xichan_obj_inflight(e->cl, e->refs[i].kind, e->refs[i].id, -1);
    }
    e->nrefs = 0;
}

void xp_enc_fini(xp_enc *e)
{
    if (e->buf != e->inl)
        PyMem_Free(e->buf);
    e->buf = e->inl;
    e->len = 0;
    e->cap = sizeof(e->inl);
    PyMem_Free(e->raw);
    e->raw = NULL;
    xp_bufhold_fini(&e->hold);
    e->direct = 0;
    PyMem_Free(e->refs);
    e->refs = NULL;
    e->nrefs = e->caprefs = 0;
}

static int nomem(int rc)
{
    if (rc) {
        PyErr_NoMemory();
        return -1;
    }
    return 0;
}

static int not_shareable(xp_state *st, PyObject *obj)
{
    PyObject *cls = st->NotShareableError ? st->NotShareableError : PyExc_ValueError;
    PyObject *r = PyObject_Repr(obj);

    if (!r) {
        PyErr_Clear();
        r = PyUnicode_FromFormat("<%s object>", Py_TYPE(obj)->tp_name);
        if (!r)
            return -1;
    }
    PyErr_Format(cls, "%U does not support cross-interpreter data", r);
    Py_DECREF(r);
    return -1;
}

static int pack_handle(xp_enc *e, int kind, int flags, uint64_t id)
{
    unsigned char p[10];
    int err;

    if ((err = xichan_obj_inflight(e->cl, kind, id, +1)))
        return raise_from_err_int(e->st, err, kind, id);
    if (xp_enc_addref(e, kind, id)) {
        (void)xichan_obj_inflight(e->cl, kind, id, -1);
        return -1;
    }
    p[0] = (unsigned char)kind;
    p[1] = (unsigned char)flags;
    for (int i = 0; i < 8; i++)
        p[2 + i] = (unsigned char)(id >> (8 * i));
    return nomem(msgpack_pack_ext(&e->pk, sizeof(p), XICHAN_EXT_HANDLE) ||
                 msgpack_pack_ext_body(&e->pk, p, sizeof(p)));
}

int xp_handle_of(xp_state *st, PyObject *obj, int *kind, int *flags, uint64_t *id)
{
    PyObject *tp = (PyObject *)Py_TYPE(obj), *v;
    int rc;

    *flags = 0;
    if (tp == st->QueueType) {
        *kind = XICHAN_KIND_QUEUE;
    } else if (tp == st->SendChannelType || tp == st->RecvChannelType) {
        *kind = XICHAN_KIND_CHANNEL;
        *flags = tp == st->SendChannelType ? XICHAN_HANDLE_SEND : XICHAN_HANDLE_RECV;
    } else if (tp == st->ChannelIDType) { /* an int itself; its end in _end */
        if (!(v = PyObject_GetAttr(obj, st->str_end)))
            return -1;
        *kind = XICHAN_KIND_CHANNEL;
        *flags = XICHAN_HANDLE_CHANID;
        if (PyUnicode_Check(v))
            *flags |= PyUnicode_CompareWithASCIIString(v, "send") == 0 ? XICHAN_HANDLE_SEND
                                                                      : XICHAN_HANDLE_RECV;
        Py_DECREF(v);
        return xp_index_id(obj, "id", id) ? -1 : 1;
    } else if (tp == (PyObject *)st->SharedBufferType) {
        *kind = XICHAN_KIND_BUFFER;
    } else {
        return 0;
    }
    if (!(v = PyObject_GetAttr(obj, st->str_id)))
        return -1;
    rc = xp_index_id(v, "id", id);
    Py_DECREF(v);
    return rc ? -1 : 1;
}

static int enc_value(xp_enc *e, PyObject *obj)
{
    xp_state *st = e->st;
    PyTypeObject *tp = Py_TYPE(obj);
    uint64_t id;
    int kind, flags;

    if (obj == Py_None)
        return nomem(msgpack_pack_nil(&e->pk));
    if (obj == Py_True)
        return nomem(msgpack_pack_true(&e->pk));
    if (obj == Py_False)
        return nomem(msgpack_pack_false(&e->pk));
    if (tp == &PyLong_Type) {
        int overflow;
        long long v = PyLong_AsLongLongAndOverflow(obj, &overflow);

        if (overflow) {
            PyErr_SetString(PyExc_OverflowError, "try sending as bytes");
            return -1;
        }
        if (v == -1 && PyErr_Occurred())
            return -1;
        return nomem(msgpack_pack_int64(&e->pk, v));
    }
    if (tp == &PyFloat_Type)
        return nomem(msgpack_pack_double(&e->pk, PyFloat_AS_DOUBLE(obj)));
    if (tp == &PyUnicode_Type) {
        Py_ssize_t n;
        const char *s = PyUnicode_AsUTF8AndSize(obj, &n);
        PyObject *tmp = NULL;
        int rc;

        if (!s) { /* lone surrogates */
            PyErr_Clear();
            if (!(tmp = PyUnicode_AsEncodedString(obj, "utf-8", "surrogatepass")))
                return -1;
            s = PyBytes_AS_STRING(tmp);
            n = PyBytes_GET_SIZE(tmp);
        }
        if (n > UINT32_MAX) {
            Py_XDECREF(tmp);
            PyErr_SetString(PyExc_OverflowError, "str too long for one item");
            return -1;
        }
        rc = nomem(msgpack_pack_str(&e->pk, (size_t)n) ||
                   msgpack_pack_str_body(&e->pk, s, (size_t)n));
        Py_XDECREF(tmp);
        return rc;
    }
    if (tp == &PyBytes_Type) {
        Py_ssize_t n = PyBytes_GET_SIZE(obj);

        if (n > UINT32_MAX) {
            PyErr_SetString(PyExc_OverflowError, "bytes too long for one item");
            return -1;
        }
        return nomem(msgpack_pack_bin(&e->pk, (size_t)n) ||
                     msgpack_pack_bin_body(&e->pk, PyBytes_AS_STRING(obj), (size_t)n));
    }
    if (tp == &PyTuple_Type) {
        Py_ssize_t n = PyTuple_GET_SIZE(obj);
        int rc = 0;

        if (Py_EnterRecursiveCall(" while encoding a tuple"))
            return -1;
        if (nomem(msgpack_pack_array(&e->pk, (size_t)n)))
            rc = -1;
        for (Py_ssize_t i = 0; rc == 0 && i < n; i++)
            rc = enc_value(e, PyTuple_GET_ITEM(obj, i));
        Py_LeaveRecursiveCall();
        return rc;
    }
    if (tp == &PyMemoryView_Type) {
        char *p;
        size_t n;
        int rc;

        if (xp_buffer_encode(e, obj, &p, &n))
            return -1;
        rc = nomem(msgpack_pack_ext(&e->pk, n, XICHAN_EXT_BUFFER) ||
                   msgpack_pack_ext_body(&e->pk, p, n));
        PyMem_Free(p);
        return rc;
    }
    switch (xp_handle_of(st, obj, &kind, &flags, &id)) {
    case 1:
        return pack_handle(e, kind, flags, id);
    case 0:
        return not_shareable(st, obj);
    default:
        return -1;
    }
}

int xp_encode(xp_enc *e, PyObject *obj)
{
    if (Py_TYPE(obj) == &PyMemoryView_Type) {
        e->fmt = XICHAN_FMT_BUFFER;
        if (xp_buffer_describe(e, obj, &e->hold))
            return -1;
        /* SHARED is a few bytes and its reference is already taken here. */
        if (e->hold.d.mode == XICHAN_BUF_SHARED) {
            return xp_buffer_payload(e, &e->hold, &e->raw, &e->rawlen);
        }
        e->direct = 1;
        return 0;
    }
    e->fmt = XICHAN_FMT_MSGPACK;
    return enc_value(e, obj);
}

/* ------------------------------------------ pickles with out-of-band buffers
 * (the payload's layout: libclient/pickleitem.c and xichan.7) */

/* pickle's buffer_callback: big contiguous buffers out of band (into the
 * list that is self), the rest in band (a true result). */
static PyObject *oob_take(PyObject *list, PyObject *pb)
{
    Py_buffer v;
    int big;

    if (PyObject_GetBuffer(pb, &v, PyBUF_FULL_RO))
        return NULL;
    big = v.len >= XP_OOB_MIN && PyBuffer_IsContiguous(&v, 'A');
    PyBuffer_Release(&v);
    if (!big)
        Py_RETURN_TRUE;
    if (PyList_Append(list, pb))
        return NULL;
    Py_RETURN_FALSE;
}

static PyMethodDef oob_take_def = {"buffer_callback", oob_take, METH_O, NULL};

PyObject *xp_pickle_dumps(xp_state *st, PyObject *obj, PyObject *viewtype)
{
    PyTypeObject *tp = Py_TYPE(obj);
    PyObject *target, *list = NULL, *cb = NULL, *r = NULL, *argv[3];

    /* The common small values: pickled as they always were. */
    if (obj == Py_None || tp == &PyLong_Type || tp == &PyUnicode_Type || tp == &PyFloat_Type ||
        tp == &PyBool_Type || (tp == &PyBytes_Type && PyBytes_GET_SIZE(obj) < XP_OOB_MIN) ||
        (tp == &PyByteArray_Type && PyByteArray_GET_SIZE(obj) < XP_OOB_MIN))
        return xp_pickle_small_dumps(st, obj);
    if (tp == &PyBytes_Type || tp == &PyByteArray_Type)
        target = PyPickleBuffer_FromObject(obj); /* loads gives back the very buffer */
    else if (tp == &PyMemoryView_Type)
        target = PyObject_CallOneArg(viewtype, obj);
    else
        target = Py_NewRef(obj);
    if (!target || !(list = PyList_New(0)) || !(cb = PyCFunction_New(&oob_take_def, list)))
        goto out;
    argv[0] = target;
    argv[1] = st->int5;
    argv[2] = cb;
    if (!(r = PyObject_Vectorcall(st->pickle_dumps, argv, 2, st->kw_buffer_callback)))
        goto out;
    if (PyList_GET_SIZE(list))
        Py_SETREF(r, PyTuple_Pack(2, r, list));
out:
    Py_XDECREF(target);
    Py_XDECREF(list);
    Py_XDECREF(cb);
    return r;
}

static const char pkb_zeros[XICHAN_PICKLEITEM_ALIGN];

int xp_oob_init(xp_oob *o, PyObject *pickled)
{
    PyObject *stream, *bufs;
    size_t n, off, *lens;
    int *rdonly;

    memset(o, 0, sizeof(*o));
    if (!PyTuple_CheckExact(pickled) || PyTuple_GET_SIZE(pickled) != 2 ||
        !PyBytes_CheckExact(stream = PyTuple_GET_ITEM(pickled, 0)) ||
        !PyList_CheckExact(bufs = PyTuple_GET_ITEM(pickled, 1))) {
        PyErr_SetString(PyExc_TypeError, "a pickled item must be bytes or (bytes, [buffers])");
        return -1;
    }
    n = (size_t)PyList_GET_SIZE(bufs);
    if (n > INT32_MAX / XICHAN_PICKLEITEM_ENT) {
        PyErr_SetString(PyExc_OverflowError, "too many buffers for one item");
        return -1;
    }
    o->hdrlen = XICHAN_PICKLEITEM_HDR + n * XICHAN_PICKLEITEM_ENT;
    o->hdr = PyMem_Malloc(o->hdrlen);
    o->views = PyMem_Calloc(n ? n : 1, sizeof(Py_buffer));
    o->iov = PyMem_Calloc(2 + 2 * n, sizeof(struct iovec));
    lens = PyMem_Calloc(n ? n : 1, sizeof(*lens));
    rdonly = PyMem_Calloc(n ? n : 1, sizeof(*rdonly));
    o->n = n;
    if (!o->hdr || !o->views || !o->iov || !lens || !rdonly) {
        PyMem_Free(lens);
        PyMem_Free(rdonly);
        PyErr_NoMemory();
        return -1;
    }
    for (size_t i = 0; i < n; i++) {
        Py_buffer *v = &o->views[i];

        if (PyObject_GetBuffer(PyList_GET_ITEM(bufs, i), v, PyBUF_FULL_RO))
            break;
        o->got = i + 1;
        if (!PyBuffer_IsContiguous(v, 'A')) {
            PyErr_SetString(PyExc_BufferError, "an out-of-band buffer is not contiguous");
            break;
        }
        lens[i] = (size_t)v->len;
        rdonly[i] = v->readonly;
    }
    if (!PyErr_Occurred())
        xichan_pickleitem_header((size_t)PyBytes_GET_SIZE(stream), lens, rdonly, n, o->hdr,
                                 o->hdrlen);
    PyMem_Free(lens);
    PyMem_Free(rdonly);
    if (PyErr_Occurred())
        return -1;
    /* The pieces: header, pickle, then each buffer after the zeros that put
     * it at its aligned offset (as the header says). */
    o->iov[o->niov++] = (struct iovec){o->hdr, o->hdrlen};
    o->iov[o->niov++] = (struct iovec){PyBytes_AS_STRING(stream), (size_t)PyBytes_GET_SIZE(stream)};
    off = o->hdrlen + (size_t)PyBytes_GET_SIZE(stream);
    for (size_t i = 0; i < n; i++) {
        size_t pad = (XICHAN_PICKLEITEM_ALIGN - off % XICHAN_PICKLEITEM_ALIGN) % XICHAN_PICKLEITEM_ALIGN;

        if (pad)
            o->iov[o->niov++] = (struct iovec){(void *)pkb_zeros, pad};
        o->iov[o->niov++] = (struct iovec){o->views[i].buf, (size_t)o->views[i].len};
        off += pad + (size_t)o->views[i].len;
    }
    o->len = off;
    return 0;
}

void xp_oob_fini(xp_oob *o)
{
    for (size_t i = 0; i < o->got; i++)
        PyBuffer_Release(&o->views[i]);
    PyMem_Free(o->views);
    PyMem_Free(o->hdr);
    PyMem_Free(o->iov);
    memset(o, 0, sizeof(*o));
}

/* A bytes object (or a bytearray: writable) holding a copy of n bytes at p;
 * a big copy runs with the GIL released (the item stays held meanwhile). */
static PyObject *copy_out(const char *p, size_t n, int writable)
{
    PyObject *r;
    char *dst;

    if (n < XP_OOB_MIN)
        return writable ? PyByteArray_FromStringAndSize(p, (Py_ssize_t)n)
                        : PyBytes_FromStringAndSize(p, (Py_ssize_t)n);
    if (n > PY_SSIZE_T_MAX)
        return PyErr_NoMemory();
    r = writable ? PyByteArray_FromStringAndSize(NULL, (Py_ssize_t)n)
                 : PyBytes_FromStringAndSize(NULL, (Py_ssize_t)n);
    if (!r)
        return NULL;
    dst = writable ? PyByteArray_AS_STRING(r) : PyBytes_AS_STRING(r);
    Py_BEGIN_ALLOW_THREADS
    memcpy(dst, p, n);
    Py_END_ALLOW_THREADS
    return r;
}

/* The item's (pickle, [buffers]) for xp_unpickle, each copied out once. */
/*
 * 1 if the pickle is one out-of-band buffer and nothing else (PROTO,
 * perhaps a FRAME, NEXT_BUFFER, perhaps READONLY_BUFFER, STOP): what a big
 * bytes or bytearray put on its own pickles to, which pickle.loads gives
 * back as the buffer object itself -- so that one must be a bytes or a
 * bytearray, a copy.
 */
static int bare_buffer(const unsigned char *p, size_t n)
{
    size_t i = 0;

    if (n < 2 || p[0] != 0x80)
        return 0;
    i = 2;
    if (i < n && p[i] == 0x95) /* FRAME and its 8-byte length */
        i += 9;
    if (i >= n || p[i++] != 0x97) /* NEXT_BUFFER */
        return 0;
    if (i < n && p[i] == 0x98) /* READONLY_BUFFER */
        i++;
    return i + 1 == n && p[i] == '.';
}

/*
 * (pickle, buffers) for pickle.loads(pickle, buffers=buffers).  The buffers
 * are views of the item where it lies (the views keep it: *lease is
 * zeroed) -- numpy then makes its array over the segment's memory, with no
 * copy out -- except for a bare bytes or bytearray, which gets its copy.
 */
static PyObject *dec_pickle_oob(xp_state *st, xichan_item *lease)
{
    const char *data = lease->data;
    size_t len = lease->len;
    const void *pickle;
    size_t picklen;
    int n = xichan_pickleitem_parse(data, len, &pickle, &picklen, NULL, 0);
    xichan_picklebuf *bufs;
    PyObject *list = NULL, *stream = NULL, *r = NULL;

    if (n < 0) {
        PyErr_SetString(PyExc_ValueError, "malformed pickled item (out-of-band buffers)");
        return NULL;
    }
    if (!(bufs = PyMem_Calloc(n ? (size_t)n : 1, sizeof(*bufs))))
        return PyErr_NoMemory();
    (void)xichan_pickleitem_parse(data, len, &pickle, &picklen, bufs, (size_t)n);
    if (!(stream = PyBytes_FromStringAndSize(pickle, (Py_ssize_t)picklen)))
        goto out;
    if (n > 0 && !bare_buffer(pickle, picklen)) {
        if (!(list = xp_item_views(st, lease, bufs, n)))
            goto out;
    } else {
        if (!(list = PyList_New(n)))
            goto out;
        for (int i = 0; i < n; i++) {
            PyObject *b = copy_out(bufs[i].data, bufs[i].len, !bufs[i].readonly);

            if (!b)
                goto out;
            PyList_SET_ITEM(list, i, b);
        }
    }
    r = PyTuple_Pack(2, stream, list);
out:
    PyMem_Free(bufs);
    Py_XDECREF(stream);
    Py_XDECREF(list);
    return r;
}

/* ------------------------------------------------------------ decoding */

PyObject *xp_handle_new(xp_state *st, int kind, int flags, uint64_t id)
{
    switch (kind) {
    case XICHAN_KIND_QUEUE:
        if (xp_need_queues(st))
            return NULL;
        return PyObject_CallFunction(st->QueueType, "K", (unsigned long long)id);
    case XICHAN_KIND_CHANNEL:
        if (xp_need_channels(st))
            return NULL;
        if (flags & XICHAN_HANDLE_CHANID)
            return PyObject_CallFunction(st->make_channel_id, "Ks", (unsigned long long)id,
                                         (flags & XICHAN_HANDLE_SEND) ? "send" : "recv");
        return PyObject_CallFunction((flags & XICHAN_HANDLE_SEND) ? st->SendChannelType
                                                          : st->RecvChannelType,
                                     "K", (unsigned long long)id);
    case XICHAN_KIND_BUFFER:
        return xp_sharedbuffer_attach(st, id);
    }
    PyErr_Format(PyExc_ValueError, "unknown handle kind %d", kind);
    return NULL;
}

static PyObject *dec_handle(xp_state *st, const unsigned char *p, size_t n)
{
    uint64_t id = 0;
    PyObject *obj;

    if (n != 10) {
        PyErr_SetString(PyExc_ValueError, "malformed xichan handle in item");
        return NULL;
    }
    for (int i = 0; i < 8; i++)
        id |= (uint64_t)p[2 + i] << (8 * i);
    obj = xp_handle_new(st, p[0], p[1], id);
    /* Bound for this session now (or failed): the trip's reference goes. */
    if (st->cl)
        (void)xichan_obj_inflight(st->cl, p[0], id, -1);
    return obj;
}

/*
 * Decoding goes through msgpack-c: msgpack_unpack() into a zone the
 * interpreter keeps (xp_state.zone, cleared after each item, so a small
 * item costs no malloc), then one walk of the object tree.  Measured with
 * callgrind against the hand-written decoder this file had before, per
 * put+get pair (syncobj=True) on Python 3.13, instructions of N and 2N
 * pairs differenced: 64-byte bytes 6,029 -> 6,106 (+1.3%), a 3-tuple
 * (1, 'ab', 2.5) 7,159 -> 7,435 (+3.9%), the header scan below included --
 * under the 10% that would justify keeping a decoder of our own.
 *
 * msgpack-c decides what is malformed: nesting deeper than its 32 levels,
 * a truncated value, or bytes after the value are the one ValueError below.
 * A container that claims more elements than the item has bytes left is
 * refused first (dec_claims_ok), so a few-byte item cannot make msgpack-c
 * reserve gigabytes for it.  A decode that runs Python code (a handle's
 * class, a buffer's view) and so re-enters here while the interpreter's
 * zone is in use takes a zone of its own.
 */
static PyObject *dec_bad(void)
{
    PyErr_SetString(PyExc_ValueError, "item is not one complete msgpack value");
    return NULL;
}

/*
 * 1 if no array or map header claims more elements than bytes remain after
 * it (every element takes a byte at least): a scan of the headers only,
 * skipping payloads; msgpack_unpack checks the rest.
 */
static int dec_claims_ok(const unsigned char *p, size_t len)
{
    /* c4..db: bytes after the marker (> 0), or the width of a big-endian
     * length that follows it (< 0): bin/ext 8,16,32, float32/64, uint and
     * int 8..64, fixext 1..16 (their type byte included), str 8,16,32. */
    static const signed char after[] = {-1, -2, -4, -1, -2, -4, 4, 8, 1, 2, 4, 8,
                                        1,  2,  4,  8,  2,  3,  5, 9, 17, -1, -2, -4};
    const unsigned char *end = p + len;

    while (p < end) {
        unsigned c = *p++;
        uint64_t n = 0, skip = 0;

        if (c <= 0x7f || c >= 0xe0 || (c >= 0xc0 && c <= 0xc3))
            continue;
        if (c <= 0x9f) { /* fixmap (2 per entry), fixarray */
            n = (uint64_t)(c & 0x0f) * (c <= 0x8f ? 2 : 1);
        } else if (c <= 0xbf) { /* fixstr */
            skip = c & 0x1f;
        } else if (c >= 0xdc) { /* array 16/32, map 16/32 */
            int w = (c & 1) ? 4 : 2;
            if (end - p < w)
                return 0;
            for (int i = 0; i < w; i++)
                n = n << 8 | p[i];
            p += w;
            n *= c >= 0xde ? 2 : 1;
        } else if (after[c - 0xc4] > 0) {
            skip = (uint64_t)after[c - 0xc4];
        } else {
            int w = -after[c - 0xc4];
            if (end - p < w)
                return 0;
            for (int i = 0; i < w; i++)
                skip = skip << 8 | p[i];
            p += w;
            skip += c >= 0xc7 && c <= 0xc9; /* ext 8/16/32: the type byte */
        }
        if (n > (uint64_t)(end - p) || skip > (uint64_t)(end - p))
            return 0;
        p += skip;
    }
    return 1;
}

static PyObject *dec_obj(xp_state *st, const msgpack_object *o)
{
    PyObject *r;

    switch (o->type) {
    case MSGPACK_OBJECT_NIL:
        Py_RETURN_NONE;
    case MSGPACK_OBJECT_BOOLEAN:
        return PyBool_FromLong(o->via.boolean);
    case MSGPACK_OBJECT_POSITIVE_INTEGER:
        return PyLong_FromUnsignedLongLong(o->via.u64);
    case MSGPACK_OBJECT_NEGATIVE_INTEGER:
        return PyLong_FromLongLong(o->via.i64);
    case MSGPACK_OBJECT_FLOAT32:
    case MSGPACK_OBJECT_FLOAT64:
        return PyFloat_FromDouble(o->via.f64);
    case MSGPACK_OBJECT_STR:
        return PyUnicode_DecodeUTF8(o->via.str.ptr, o->via.str.size, "surrogatepass");
    case MSGPACK_OBJECT_BIN:
        return copy_out(o->via.bin.ptr, o->via.bin.size, 0);
    case MSGPACK_OBJECT_EXT:
        if (o->via.ext.type == XICHAN_EXT_HANDLE)
            return dec_handle(st, (const unsigned char *)o->via.ext.ptr, o->via.ext.size);
        if (o->via.ext.type == XICHAN_EXT_BUFFER)
            return xp_buffer_decode(st, o->via.ext.ptr, o->via.ext.size, NULL);
        return Py_BuildValue("(iy#)", o->via.ext.type, o->via.ext.ptr,
                             (Py_ssize_t)o->via.ext.size);
    case MSGPACK_OBJECT_ARRAY:
        if (!(r = PyTuple_New(o->via.array.size)))
            return NULL;
        for (uint32_t i = 0; i < o->via.array.size; i++) {
            PyObject *v = dec_obj(st, &o->via.array.ptr[i]);

            if (!v) {
                Py_DECREF(r);
                return NULL;
            }
            PyTuple_SET_ITEM(r, i, v);
        }
        return r;
    case MSGPACK_OBJECT_MAP:
        if (!(r = PyDict_New()))
            return NULL;
        for (uint32_t i = 0; i < o->via.map.size; i++) {
            PyObject *k = dec_obj(st, &o->via.map.ptr[i].key);
            PyObject *v = k ? dec_obj(st, &o->via.map.ptr[i].val) : NULL;
            int bad = !v || PyDict_SetItem(r, k, v);

            Py_XDECREF(k);
            Py_XDECREF(v);
            if (bad) {
                Py_DECREF(r);
                return NULL;
            }
        }
        return r;
    }
    return dec_bad();
}

static PyObject *dec_msgpack(xp_state *st, const char *data, size_t len)
{
    msgpack_zone own, *zone;
    msgpack_object obj;
    size_t off = 0;
    PyObject *r;

    if (!dec_claims_ok((const unsigned char *)data, len))
        return dec_bad();
    if (!st->zone && !(st->zone = msgpack_zone_new(MSGPACK_ZONE_CHUNK_SIZE)))
        return PyErr_NoMemory();
    if (!st->zone_busy) {
        zone = st->zone;
        st->zone_busy = 1;
    } else if (msgpack_zone_init(&own, 256)) {
        zone = &own; /* nested in another decode */
    } else {
        return PyErr_NoMemory();
    }
    if (msgpack_unpack(data, len, &off, zone, &obj) != MSGPACK_UNPACK_SUCCESS || off != len)
        r = dec_bad();
    else
        r = dec_obj(st, &obj);
    if (zone == st->zone) {
        msgpack_zone_clear(zone);
        st->zone_busy = 0;
    } else {
        msgpack_zone_destroy(zone);
    }
    return r;
}

PyObject *xp_decode_held(xp_state *st, xichan_item *item, int *unpickle)
{
    *unpickle = 0;
    if (item->unbound)
        return Py_NewRef(st->unbound_item);
    switch (item->fmt) {
    case XICHAN_FMT_MSGPACK:
        return dec_msgpack(st, item->data, item->len);
    case XICHAN_FMT_BUFFER:
        return xp_buffer_decode(st, item->data, item->len, item);
    case XICHAN_FMT_PICKLE: {
        /* A small scalar's pickle is read in place (it runs no code). */
        int done;
        PyObject *r = xp_pickle_small_loads(item->data, item->len, &done);

        if (done)
            return r;
        /* Only copied here: unpickling runs arbitrary code, so the caller
         * releases the item first (xp_unpickle). */
        *unpickle = 1;
        return PyBytes_FromStringAndSize(item->data, (Py_ssize_t)item->len);
    }
    case XICHAN_FMT_PICKLE_OOB:
        *unpickle = 1;
        return dec_pickle_oob(st, item);
    default: /* XICHAN_FMT_RAW and formats of other clients: the bytes */
        return PyBytes_FromStringAndSize(item->data, (Py_ssize_t)item->len);
    }
}

PyObject *xp_unpickle(xp_state *st, PyObject *b)
{
    PyObject *r;

    if (!b)
        return NULL;
    if (PyTuple_CheckExact(b)) { /* (pickle, buffers) */
        PyObject *argv[2] = {PyTuple_GET_ITEM(b, 0), PyTuple_GET_ITEM(b, 1)};

        r = PyObject_Vectorcall(st->pickle_loads, argv, 1, st->kw_buffers);
    } else {
        r = PyObject_CallOneArg(st->pickle_loads, b);
    }
    Py_DECREF(b);
    return r;
}

PyObject *xp_decode_item(xp_state *st, xichan_item *item)
{
    int unpickle;
    PyObject *r = xp_decode_held(st, item, &unpickle);

    xichan_item_release(item);
    return unpickle ? xp_unpickle(st, r) : r;
}
