/*
 * items.c -- making, handing out and freeing items; shared by queues and
 * channels so that both store, wait for and deliver items the same way.
 *
 * An item is made outside every object lock: a block is reserved (heap_lock
 * only), its header and payload filled with no lock held, and only then
 * published into a fifo under the object's lock (reserve -> fill ->
 * publish).  Delivery is the mirror image: the block is leased and unlinked
 * under the object's lock, read with no lock held, and freed by
 * xichan_item_release.  A process that dies holding a reserved or leased
 * block loses only that block, which the daemon reclaims (alloc.c).
 */
#include <string.h>

#include "internal.h"

int xichan__resolve(xichan_client *cl, int kind, uint64_t id, struct xichan_objref *ref)
{
    int err = xichan__client_ok(cl);

    if (err)
        return err;
    return xichan__obj_find(cl->shm, kind, id, ref);
}

int xichan__open_named(xichan_client *cl, int kind, const char *name, uint64_t *id)
{
    int err = xichan__client_ok(cl);

    if (err)
        return err;
    if (!name || !id)
        return XICHAN_EINVAL;
    return xichan__obj_find_name(cl->shm, kind, name, id);
}

int xichan__lifecycle(xichan_client *cl, int kind, uint64_t id, int op)
{
    struct xichan_objref ref;
    int err = xichan__resolve(cl, kind, id, &ref);

    if (err)
        return err;
    if (op == XICHAN__DESTROY)
        return xichan__obj_destroy(cl->shm, &ref, cl->sid);
    return xichan__obj_bind(cl->shm, &ref, cl->sid, op == XICHAN__BIND ? +1 : -1);
}

int xichan__item_make(xichan_client *cl, int fmt, const void *data, size_t len, int unboundop,
                      uint32_t *off)
{
    struct xichan_blk *b;
    struct xichan_itemhdr *it;
    int err;

    if (fmt < 0 || fmt > 255 || unboundop < XICHAN_UNBOUND_DEFAULT ||
        unboundop > XICHAN_UNBOUND_REPLACE || (!data && len))
        return XICHAN_EINVAL;
    if (len > UINT32_MAX)
        return XICHAN_E2BIG;
    if ((err = xichan__heap_alloc(cl->shm, cl->sid, len, off)))
        return err;
    if (!(b = xichan__blk(cl->shm, *off))) /* scribbled since it was reserved */
        return XICHAN_ECORRUPT;
    it = xichan__item(b);
    it->len = (uint32_t)len;
    it->producer = cl->sid;
    it->fmt = (uint8_t)fmt;
    it->unboundop = (uint8_t)unboundop; /* 0 is resolved at publish */
    xa_store_relaxed(&it->flags, 0);
    it->ticket = 0;
    if (len)
        memcpy(xichan__item_data(b), data, len);
    return 0;
}

void xichan__item_discard(xichan_client *cl, uint32_t off)
{
    (void)xichan__heap_free(cl->shm, off, cl->sid);
}

/* Publishes a made item.  needs the object's lock */
int xichan__item_publish(xichan_client *cl, struct xichan_obj *o, uint32_t off)
{
    struct xichan_blk *b = xichan__blk(cl->shm, off);
    struct xichan_itemhdr *it;

    if (!b) /* our own block, scribbled since we reserved it */
        return XICHAN_ECORRUPT;
    it = xichan__item(b);
    if (it->unboundop == XICHAN_UNBOUND_DEFAULT)
        it->unboundop = o->unboundop;
    return xichan__fifo_push(cl->shm, o, b);
}

int xichan__item_deliver(xichan_client *cl, struct xichan_blk *b, xichan_item *out)
{
    struct xichan_itemhdr *it = xichan__item(b);
    uint16_t flags = xa_load_acquire(&it->flags);

    memset(out, 0, sizeof(*out));
    if (flags & XICHAN_IF_UNBOUND_ERR) {
        /* CPython: the error consumes the item. */
        xichan__item_discard(cl, xichan__blk_off(cl->shm, b));
        return XICHAN_EUNBOUND;
    }
    out->producer = it->producer;
    out->fmt = it->fmt;
    out->cl_ = cl;
    out->blk_ = xichan__blk_off(cl->shm, b);
    if (flags & XICHAN_IF_UNBOUND) {
        out->unbound = 1;
        out->data = NULL;
        out->len = 0;
    } else {
        out->data = xichan__item_data(b);
        out->len = it->len;
    }
    return 0;
}

int xichan__obj_sleep(xichan_client *cl, struct xichan_obj *o, xichan_atomic_u32 *seq,
                      xichan_atomic_u32 *hint, int64_t deadline_ns)
{
    /* Read under the lock: any later change bumps it (tag-wait-protocol). */
    uint32_t v = xa_load_relaxed(seq);

    xichan__obj_unlock(o);
    return xichan__wait_hinted(seq, v, deadline_ns, &cl->waiter, hint);
}

void xichan_item_release(xichan_item *item)
{
    if (!item || !item->cl_ || !item->blk_)
        return;
    /* In a forked child the block is the parent's to free. */
    if (xichan__client_ok(item->cl_) == 0)
        xichan__item_discard(item->cl_, (uint32_t)item->blk_);
    memset(item, 0, sizeof(*item));
}
