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
 *                       ext 1: kind u8, flags u8 (XP_HF_*), id u64 little-endian
 *
 * Anything else raises NotShareableError('<repr> does not support
 * cross-interpreter data') naming the innermost offending object; the caller
 * then queues nothing.  Packing a handle takes an in-flight reference
 * (xichan_obj_inflight +1) so the object outlives the trip; the receiver binds
 * it for its own session, then gives the reference back (-1).  An item that
 * is not queued after all gives its references back in xp_enc_abort().
 *
 * Decoding is by each item's own format.  A msgpack item from a C client
 * decodes to natural values: map -> dict, array -> tuple, str -> str,
 * bin -> bytes, unknown ext -> (type, bytes).
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

/* The int id behind a handle object's _id attribute (an int or ChannelID). */
static int handle_id(xp_state *st, PyObject *obj, uint64_t *id)
{
    PyObject *v = PyObject_GetAttr(obj, st->str_id), *n;
    int rc;

    if (!v)
        return -1;
    n = PyNumber_Index(v);
    Py_DECREF(v);
    if (!n)
        return -1;
    rc = xp_id_arg(n, "id", id);
    Py_DECREF(n);
    return rc;
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
    return nomem(msgpack_pack_ext(&e->pk, sizeof(p), XP_EXT_HANDLE) ||
                 msgpack_pack_ext_body(&e->pk, p, sizeof(p)));
}

static int chanid_end_flags(xp_state *st, PyObject *cid)
{
    PyObject *end = PyObject_GetAttr(cid, st->str_end);
    int flags = 0;

    if (!end)
        return -1;
    if (PyUnicode_Check(end))
        flags = PyUnicode_CompareWithASCIIString(end, "send") == 0 ? XP_HF_SEND : XP_HF_RECV;
    Py_DECREF(end);
    return flags;
}

static int enc_value(xp_enc *e, PyObject *obj)
{
    xp_state *st = e->st;
    PyTypeObject *tp = Py_TYPE(obj);
    uint64_t id;

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
        rc = nomem(msgpack_pack_ext(&e->pk, n, XP_EXT_BUFFER) ||
                   msgpack_pack_ext_body(&e->pk, p, n));
        PyMem_Free(p);
        return rc;
    }
    if (st->QueueType && (PyObject *)tp == st->QueueType)
        return handle_id(st, obj, &id) ? -1 : pack_handle(e, XICHAN_KIND_QUEUE, 0, id);
    if (st->SendChannelType && (PyObject *)tp == st->SendChannelType)
        return handle_id(st, obj, &id) ? -1 : pack_handle(e, XICHAN_KIND_CHANNEL, XP_HF_SEND, id);
    if (st->RecvChannelType && (PyObject *)tp == st->RecvChannelType)
        return handle_id(st, obj, &id) ? -1 : pack_handle(e, XICHAN_KIND_CHANNEL, XP_HF_RECV, id);
    if (st->ChannelIDType && (PyObject *)tp == st->ChannelIDType) {
        int flags = chanid_end_flags(st, obj);
        PyObject *n;

        if (flags < 0 || !(n = PyNumber_Index(obj)))
            return -1;
        if (xp_id_arg(n, "id", &id)) {
            Py_DECREF(n);
            return -1;
        }
        Py_DECREF(n);
        return pack_handle(e, XICHAN_KIND_CHANNEL, XP_HF_CHANID | flags, id);
    }
    if (st->SharedBufferType && tp == st->SharedBufferType)
        return handle_id(st, obj, &id) ? -1 : pack_handle(e, XICHAN_KIND_BUFFER, 0, id);
    return not_shareable(st, obj);
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
        if (flags & XP_HF_CHANID)
            return PyObject_CallFunction(st->make_channel_id, "Ks", (unsigned long long)id,
                                         (flags & XP_HF_SEND) ? "send" : "recv");
        return PyObject_CallFunction((flags & XP_HF_SEND) ? st->SendChannelType
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
 * The decoder reads the msgpack bytes itself rather than through
 * msgpack_unpack_next: that builds a msgpack_object tree in a zone (two
 * mallocs and a free per item, two thirds of decoding a small item) only for
 * us to walk it once.  It trusts nothing: every length is checked against
 * what is left, a container claims no more elements than bytes remain, and
 * any malformed, truncated or over-long item is the one ValueError below.
 */
typedef struct {
    const unsigned char *p, *end;
} dec_in;

static PyObject *dec_bad(void)
{
    PyErr_SetString(PyExc_ValueError, "item is not one complete msgpack value");
    return NULL;
}

/* Big-endian unsigned of n bytes; 0 with nothing consumed if too short. */
static int dec_uint(dec_in *in, int n, uint64_t *v)
{
    if (in->end - in->p < n)
        return -1;
    *v = 0;
    for (int i = 0; i < n; i++)
        *v = *v << 8 | in->p[i];
    in->p += n;
    return 0;
}

static PyObject *dec_value(xp_state *st, dec_in *in);

static PyObject *dec_array(xp_state *st, dec_in *in, uint64_t n)
{
    PyObject *r;

    if (n > (uint64_t)(in->end - in->p))
        return dec_bad();
    if (Py_EnterRecursiveCall(" while decoding an item"))
        return NULL;
    r = PyTuple_New((Py_ssize_t)n);
    for (uint64_t i = 0; r && i < n; i++) {
        PyObject *v = dec_value(st, in);

        if (!v)
            Py_CLEAR(r);
        else
            PyTuple_SET_ITEM(r, (Py_ssize_t)i, v);
    }
    Py_LeaveRecursiveCall();
    return r;
}

static PyObject *dec_map(xp_state *st, dec_in *in, uint64_t n)
{
    PyObject *r;

    if (n > (uint64_t)(in->end - in->p) / 2)
        return dec_bad();
    if (Py_EnterRecursiveCall(" while decoding an item"))
        return NULL;
    r = PyDict_New();
    for (uint64_t i = 0; r && i < n; i++) {
        PyObject *k = dec_value(st, in);
        PyObject *v = k ? dec_value(st, in) : NULL;

        if (!v || PyDict_SetItem(r, k, v))
            Py_CLEAR(r);
        Py_XDECREF(k);
        Py_XDECREF(v);
    }
    Py_LeaveRecursiveCall();
    return r;
}

/* kind 's' str, 'b' bin, 'x' ext (a type byte first) of n bytes. */
static PyObject *dec_bytes(xp_state *st, dec_in *in, int kind, uint64_t n)
{
    const char *d;
    int type = 0;

    if (kind == 'x') {
        if (in->p >= in->end)
            return dec_bad();
        type = (signed char)*in->p++;
    }
    if (n > (uint64_t)(in->end - in->p))
        return dec_bad();
    d = (const char *)in->p;
    in->p += n;
    if (kind == 's')
        return PyUnicode_DecodeUTF8(d, (Py_ssize_t)n, "surrogatepass");
    if (kind == 'b')
        return PyBytes_FromStringAndSize(d, (Py_ssize_t)n);
    if (type == XP_EXT_HANDLE)
        return dec_handle(st, (const unsigned char *)d, (size_t)n);
    if (type == XP_EXT_BUFFER)
        return xp_buffer_decode(st, d, (size_t)n, NULL);
    return Py_BuildValue("(iy#)", type, d, (Py_ssize_t)n);
}

static PyObject *dec_value(xp_state *st, dec_in *in)
{
    unsigned c;
    uint64_t v;

    if (in->p >= in->end)
        return dec_bad();
    c = *in->p++;
    if (c <= 0x7f)
        return PyLong_FromLong((long)c);
    if (c >= 0xe0)
        return PyLong_FromLong((long)(signed char)c);
    if (c <= 0x8f)
        return dec_map(st, in, c & 0x0f);
    if (c <= 0x9f)
        return dec_array(st, in, c & 0x0f);
    if (c <= 0xbf)
        return dec_bytes(st, in, 's', c & 0x1f);
    switch (c) {
    case 0xc0:
        Py_RETURN_NONE;
    case 0xc2:
        Py_RETURN_FALSE;
    case 0xc3:
        Py_RETURN_TRUE;
    case 0xc4: case 0xc5: case 0xc6: /* bin 8/16/32 */
        return dec_uint(in, 1 << (c - 0xc4), &v) ? dec_bad() : dec_bytes(st, in, 'b', v);
    case 0xc7: case 0xc8: case 0xc9: /* ext 8/16/32 */
        return dec_uint(in, 1 << (c - 0xc7), &v) ? dec_bad() : dec_bytes(st, in, 'x', v);
    case 0xca: {
        uint32_t u;
        float f;

        if (dec_uint(in, 4, &v))
            return dec_bad();
        u = (uint32_t)v;
        memcpy(&f, &u, sizeof(f));
        return PyFloat_FromDouble(f);
    }
    case 0xcb: {
        double d;

        if (dec_uint(in, 8, &v))
            return dec_bad();
        memcpy(&d, &v, sizeof(d));
        return PyFloat_FromDouble(d);
    }
    case 0xcc: case 0xcd: case 0xce: case 0xcf: /* uint 8..64 */
        return dec_uint(in, 1 << (c - 0xcc), &v) ? dec_bad()
                                                 : PyLong_FromUnsignedLongLong(v);
    case 0xd0: case 0xd1: case 0xd2: case 0xd3: { /* int 8..64, sign-extended */
        int n = 1 << (c - 0xd0);

        if (dec_uint(in, n, &v))
            return dec_bad();
        if (n < 8 && (v >> (8 * n - 1)) & 1)
            v |= ~(uint64_t)0 << (8 * n);
        return PyLong_FromLongLong((long long)v);
    }
    case 0xd4: case 0xd5: case 0xd6: case 0xd7: case 0xd8: /* fixext 1..16 */
        return dec_bytes(st, in, 'x', (uint64_t)1 << (c - 0xd4));
    case 0xd9: case 0xda: case 0xdb: /* str 8/16/32 */
        return dec_uint(in, 1 << (c - 0xd9), &v) ? dec_bad() : dec_bytes(st, in, 's', v);
    case 0xdc: case 0xdd: /* array 16/32 */
        return dec_uint(in, 2 << (c - 0xdc), &v) ? dec_bad() : dec_array(st, in, v);
    case 0xde: case 0xdf: /* map 16/32 */
        return dec_uint(in, 2 << (c - 0xde), &v) ? dec_bad() : dec_map(st, in, v);
    }
    return dec_bad(); /* 0xc1, never used */
}

static PyObject *dec_msgpack(xp_state *st, const char *data, size_t len)
{
    dec_in in = {(const unsigned char *)data, (const unsigned char *)data + len};
    PyObject *r = dec_value(st, &in);

    if (r && in.p != in.end) {
        Py_DECREF(r);
        return dec_bad();
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
    case XICHAN_FMT_PICKLE:
        /* Only copied here: unpickling runs arbitrary code, so the caller
         * releases the item first (xp_unpickle). */
        *unpickle = 1;
        return PyBytes_FromStringAndSize(item->data, (Py_ssize_t)item->len);
    default: /* XICHAN_FMT_RAW and formats of other clients: the bytes */
        return PyBytes_FromStringAndSize(item->data, (Py_ssize_t)item->len);
    }
}

PyObject *xp_unpickle(xp_state *st, PyObject *b)
{
    PyObject *r;

    if (!b)
        return NULL;
    r = PyObject_CallOneArg(st->pickle_loads, b);
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
