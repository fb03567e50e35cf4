/*
 * bufitem.c -- the payload of XICHAN_FMT_BUFFER items: typed buffers,
 * copied or shared.
 *
 * PAYLOAD LAYOUT (xichan.7).  Native byte order (all parties share a
 * machine); every field 8-aligned:
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
 * A SHARED item holds an in-flight reference on its buffer (objects.c)
 * from the put until the receiver has bound the buffer for itself, so the
 * memory cannot vanish while the item is queued.  Parsing trusts nothing:
 * every length and product is checked against the payload and for overflow.
 */
#include <string.h>

#include "internal.h"

#define BXF_MAGIC 0x31465842u
#define PAD8(n) (((n) + 7u) & ~(size_t)7u)

struct bxf_hdr {
    uint32_t magic;
    uint8_t mode, readonly, ndim, fmtlen;
    uint64_t itemsize;
    uint64_t nbytes;
};

_Static_assert(sizeof(struct bxf_hdr) == 24, "buffer item header is 24 bytes");

static const char *fmt_of(const xichan_bufdesc *d)
{
    return d->format && d->format[0] ? d->format : "B";
}

/* itemsize * prod(shape) == nbytes, without overflow. */
static int shape_ok(size_t itemsize, int ndim, const int64_t *shape, uint64_t nbytes)
{
    uint64_t n = itemsize;

    for (int i = 0; i < ndim; i++) {
        if (shape[i] < 0 || (shape[i] && n > UINT64_MAX / (uint64_t)shape[i]))
            return 0;
        n *= (uint64_t)shape[i];
    }
    return n == nbytes;
}

size_t xichan_bufitem_size(const xichan_bufdesc *d)
{
    size_t n, fl;

    if (!d || d->mode < XICHAN_BUF_COPY || d->mode > XICHAN_BUF_LOCAL || d->itemsize < 1 ||
        d->ndim < 0 || d->ndim > XICHAN_BUF_MAXDIM || (d->ndim && !d->shape) ||
        !shape_ok(d->itemsize, d->ndim, d->shape, d->nbytes))
        return 0;
    fl = strlen(fmt_of(d));
    if (fl > 255)
        return 0;
    n = sizeof(struct bxf_hdr) + 8u * (size_t)d->ndim + PAD8(fl);
    if (d->mode == XICHAN_BUF_SHARED)
        return n + 16;
    if (!d->data && d->nbytes)
        return 0;
    if (d->nbytes > SIZE_MAX - n - 24)
        return 0;
    return n + (d->mode == XICHAN_BUF_LOCAL ? 24 : 0) + d->nbytes;
}

int xichan_bufitem_encode(const xichan_bufdesc *d, void *out, size_t cap)
{
    size_t need = xichan_bufitem_size(d), fl;
    struct bxf_hdr h;
    uint8_t *p = out;
    uint64_t w[3];

    if (!need || !out || cap < need)
        return XICHAN_EINVAL;
    fl = strlen(fmt_of(d));
    h.magic = BXF_MAGIC;
    h.mode = (uint8_t)d->mode;
    h.readonly = !!d->readonly;
    h.ndim = (uint8_t)d->ndim;
    h.fmtlen = (uint8_t)fl;
    h.itemsize = d->itemsize;
    h.nbytes = d->nbytes;
    memcpy(p, &h, sizeof(h));
    p += sizeof(h);
    if (d->ndim)
        memcpy(p, d->shape, 8u * (size_t)d->ndim);
    p += 8u * (size_t)d->ndim;
    memset(p, 0, PAD8(fl));
    memcpy(p, fmt_of(d), fl);
    p += PAD8(fl);
    switch (d->mode) {
    case XICHAN_BUF_SHARED:
        w[0] = d->buf.id;
        w[1] = d->offset;
        memcpy(p, w, 16);
        break;
    case XICHAN_BUF_LOCAL:
        w[0] = d->local_pid;
        w[1] = d->local_token;
        w[2] = d->local_addr;
        memcpy(p, w, 24);
        p += 24;
        __attribute__((fallthrough)); /* a copy follows */
    default:
        if (d->nbytes)
            memcpy(p, d->data, d->nbytes);
    }
    return 0;
}

int xichan_bufitem_parse(const void *payload, size_t len, xichan_bufdesc *out, char fmtbuf[256],
                         int64_t shapebuf[XICHAN_BUF_MAXDIM])
{
    const uint8_t *p = payload;
    struct bxf_hdr h;
    size_t off, rest;
    uint64_t w[3];

    if (!payload || !out || !fmtbuf || !shapebuf)
        return XICHAN_EINVAL;
    memset(out, 0, sizeof(*out));
    if (len < sizeof(h))
        return XICHAN_ECORRUPT;
    memcpy(&h, p, sizeof(h));
    if (h.magic != BXF_MAGIC || h.mode > XICHAN_BUF_LOCAL || h.readonly > 1 ||
        h.ndim > XICHAN_BUF_MAXDIM || h.itemsize < 1 || h.itemsize > SIZE_MAX)
        return XICHAN_ECORRUPT;
    off = sizeof(h);
    if (len - off < 8u * h.ndim + PAD8(h.fmtlen))
        return XICHAN_ECORRUPT;
    memcpy(shapebuf, p + off, 8u * h.ndim);
    off += 8u * h.ndim;
    memcpy(fmtbuf, p + off, h.fmtlen);
    fmtbuf[h.fmtlen] = '\0';
    off += PAD8(h.fmtlen);
    if (!shape_ok((size_t)h.itemsize, h.ndim, shapebuf, h.nbytes) ||
        strlen(fmtbuf) != h.fmtlen)
        return XICHAN_ECORRUPT;
    rest = len - off;
    out->mode = h.mode;
    out->format = fmtbuf;
    out->itemsize = (size_t)h.itemsize;
    out->ndim = h.ndim;
    out->shape = shapebuf;
    out->readonly = h.readonly;
    out->nbytes = (size_t)h.nbytes;
    switch (h.mode) {
    case XICHAN_BUF_SHARED:
        if (rest != 16)
            return XICHAN_ECORRUPT;
        memcpy(w, p + off, 16);
        out->buf.id = w[0];
        out->offset = w[1];
        return 0;
    case XICHAN_BUF_LOCAL:
        if (rest < 24)
            return XICHAN_ECORRUPT;
        memcpy(w, p + off, 24);
        out->local_pid = w[0];
        out->local_token = w[1];
        out->local_addr = w[2];
        off += 24;
        rest -= 24;
        __attribute__((fallthrough));
    default:
        if (rest != h.nbytes)
            return XICHAN_ECORRUPT;
        out->data = p + off;
        return 0;
    }
}

/* ------------------------------------------------------- put / send */

/* Makes the payload in a new item block, waiting for room in a full heap
 * until deadline_ns; SHARED takes its in-flight ref. */
static int make(xichan_client *cl, const xichan_bufdesc *d, int unboundop, int64_t deadline_ns,
                uint32_t *off)
{
    size_t n = xichan_bufitem_size(d);
    struct xichan_blk *b;
    int err;

    if (!n || !XICHAN_UNBOUND_OK(unboundop))
        return XICHAN_EINVAL;
    if (n > UINT32_MAX) {
        xichan__set_refusal(XICHAN_E2BIG, "item of %llu bytes is over the 4 GiB limit of an item",
                            (unsigned long long)n);
        return XICHAN_E2BIG;
    }
    if (d->mode == XICHAN_BUF_SHARED) {
        void *ptr;
        size_t size;
        /* The referenced range must lie inside the buffer. */
        if ((err = xichan_buf_map(cl, d->buf, &ptr, &size)))
            return err;
        if (d->offset > size || d->nbytes > size - d->offset)
            return XICHAN_EINVAL;
    }
    /* Reserve the real size and encode in place: no intermediate copy. */
    {
        uint64_t n64 = n;
        if ((err = xichan__heap_reserve(cl->shm, cl->sid, &n64, 1, off, 1, deadline_ns,
                                        &cl->waiter)) < 0)
            return err;
    }
    if (!(b = xichan__blk(cl->shm, *off))) /* scribbled since it was reserved */
        return XICHAN_ECORRUPT;
    memset(xichan__item(b), 0, sizeof(struct xichan_itemhdr));
    xichan__item(b)->len = (uint32_t)n;
    xichan__item(b)->producer = cl->sid;
    xichan__item(b)->fmt = XICHAN_FMT_BUFFER;
    xichan__item(b)->unboundop = (uint8_t)unboundop;
    xichan_bufitem_encode(d, xichan__item_data(b), n);
    if (d->mode == XICHAN_BUF_SHARED &&
        (err = xichan_obj_inflight(cl, XICHAN_KIND_BUFFER, d->buf.id, +1))) {
        xichan__item_discard(cl, *off);
        return err;
    }
    return 0;
}

static void unmake(xichan_client *cl, const xichan_bufdesc *d)
{
    if (d->mode == XICHAN_BUF_SHARED)
        (void)xichan_obj_inflight(cl, XICHAN_KIND_BUFFER, d->buf.id, -1);
}

int xichan_queue_put_buffer(xichan_client *cl, xichan_queue_id q, const xichan_bufdesc *d,
                            int unboundop, int64_t deadline_ns)
{
    uint32_t off;
    int err = xichan__client_ok(cl);

    if (err || (err = make(cl, d, unboundop, deadline_ns, &off)))
        return err;
    err = xichan__queue_put_made(cl, q, off, deadline_ns);
    if (err)
        unmake(cl, d);
    return err;
}

/* A send (wait: until taken or deadline_ns) or send_nowait of a buffer. */
static int chan_send_buffer(xichan_client *cl, xichan_chan_id c, const xichan_bufdesc *d,
                            int unboundop, int wait, int64_t deadline_ns)
{
    uint32_t off;
    int err = xichan__client_ok(cl);

    if (err || (err = make(cl, d, unboundop, deadline_ns, &off)))
        return err;
    err = xichan__chan_send_made(cl, c, off, wait, deadline_ns);
    /* A send that failed withdrew the item, reference and all. */
    if (err < 0)
        unmake(cl, d);
    return err;
}

int xichan_chan_send_buffer(xichan_client *cl, xichan_chan_id c, const xichan_bufdesc *d,
                            int unboundop, int64_t deadline_ns)
{
    return chan_send_buffer(cl, c, d, unboundop, 1, deadline_ns);
}

int xichan_chan_send_buffer_nowait(xichan_client *cl, xichan_chan_id c, const xichan_bufdesc *d,
                                   int unboundop)
{
    return chan_send_buffer(cl, c, d, unboundop, 0, XICHAN_NOWAIT);
}

int xichan_item_buffer(xichan_client *cl, const xichan_item *item, xichan_bufdesc *out,
                       char fmtbuf[256], int64_t shapebuf[XICHAN_BUF_MAXDIM], void **ptr)
{
    void *base;
    size_t size;
    int err = xichan__client_ok(cl);

    if (err)
        return err;
    if (!item || !ptr || item->fmt != XICHAN_FMT_BUFFER || item->unbound)
        return XICHAN_EINVAL;
    if ((err = xichan_bufitem_parse(item->data, item->len, out, fmtbuf, shapebuf)))
        return err;
    if (out->mode != XICHAN_BUF_SHARED) {
        *ptr = (void *)out->data;
        return 0;
    }
    if ((err = xichan_buf_bind(cl, out->buf)))
        return err;
    if ((err = xichan_buf_map(cl, out->buf, &base, &size)) || out->offset > size ||
        out->nbytes > size - out->offset) {
        (void)xichan_buf_unbind(cl, out->buf);
        return err ? err : XICHAN_ECORRUPT;
    }
    (void)xichan_obj_inflight(cl, XICHAN_KIND_BUFFER, out->buf.id, -1);
    *ptr = (uint8_t *)base + out->offset;
    return 0;
}
