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
 *
 * Block cache.  A small block that an item is done with goes to the
 * client's cache instead of the heap, and the next small item of that size
 * takes it from there: in a hand-off of small items each side then reuses
 * the blocks it received, and neither takes heap_lock, whose cache line and
 * free lists would otherwise cross between the CPUs on every item (the
 * lock pair and the bin updates were a third of a put+get's instructions).
 * The cache is bounded (internal.h: 64 blocks of at most 144 bytes), sized
 * per class so a block is reused only for its own size, and flushed back
 * to the heap before an allocation reports XICHAN_ENOSPC.
 *
 * CRASH ARGUMENT.  A cached block stays RESERVED to the session in the
 * segment (one release store of its state word, LEASED -> RESERVED, by its
 * owner, before the process-local list takes it), exactly like a block
 * being filled: if the process dies, the daemon's cleanup frees every
 * block the session reserved (sessions.c step 3), cached or not; if the
 * session ends cleanly, the same cleanup frees them.  No state of the
 * segment's heap changes, so no lock is needed for it.  A cached offset is
 * checked again (size and state word) before reuse, so a segment scribbled
 * meanwhile costs a cached block, never a wrong one.
 */
#include <string.h>

#include "internal.h"

/*
 * Finding an object by id scans the object table (objects.c); the client
 * remembers where each id was, so that a session using many objects pays
 * the scan once per object, not once per call.
 */
int xichan__resolve(xichan_client *cl, int kind, uint64_t id, struct xichan_objref *ref)
{
    uint64_t key = id << 2 | (uint64_t)(kind & 3), r;
    uint32_t h = (uint32_t)((id ^ (id >> 6)) & 63);
    int err = xichan__client_ok(cl);

    if (err)
        return err;
    if (xa_load_relaxed(&cl->find_key[h]) == key) {
        r = xa_load_relaxed(&cl->find_ref[h]);
        if (xichan__obj_check(cl->shm, kind, id, (uint32_t)(r >> 32), (uint32_t)r, ref) == 0)
            return 0;
    }
    if ((err = xichan__obj_find(cl->shm, kind, id, ref)))
        return err;
    xa_store_relaxed(&cl->find_key[h], key);
    xa_store_relaxed(&cl->find_ref[h], (uint64_t)ref->slot << 32 | ref->gen);
    return 0;
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

/* ------------------------------------------------------- block cache */

static int cache_lock(xichan_client *cl)
{
    return xa_exchange_acquire(&cl->cache_busy, 1) == 0;
}

static void cache_unlock(xichan_client *cl)
{
    xa_store_release(&cl->cache_busy, 0);
}

/* A cached block of exactly units units into *off; 0 if there is none. */
static int cache_take(xichan_client *cl, uint32_t units, uint32_t *off)
{
    uint32_t k = units - XICHAN_CACHE_MIN_UNITS, o = 0;
    struct xichan_blk *b;

    if (k >= XICHAN_CACHE_CLASSES || !cache_lock(cl))
        return 0;
    if (cl->cache_n[k])
        o = cl->cache[k][--cl->cache_n[k]];
    cache_unlock(cl);
    b = o ? xichan__blk(cl->shm, o) : NULL;
    if (!b || b->size != units ||
        xa_load_relaxed(&b->state) != xichan__blk_word(XICHAN_BLK_RESERVED, cl->sid))
        return 0; /* gone bad in the segment: left for the daemon's sweep */
    *off = o;
    return 1;
}

/* Keeps the block at off, which this session reserved or leased; 0 if not. */
static int cache_keep(xichan_client *cl, uint32_t off)
{
    struct xichan_blk *b = xichan__blk(cl->shm, off);
    uint32_t k, w;
    int kept = 0;

    if (!b)
        return 0;
    k = b->size - XICHAN_CACHE_MIN_UNITS;
    w = xa_load_relaxed(&b->state);
    if (k >= XICHAN_CACHE_CLASSES || xichan__blk_owner(w) != cl->sid ||
        (xichan__blk_state(w) != XICHAN_BLK_LEASED && xichan__blk_state(w) != XICHAN_BLK_RESERVED) ||
        !cache_lock(cl))
        return 0;
    if (cl->cache_n[k] < XICHAN_CACHE_DEPTH) {
        /* The commit: ours again, as if just allocated. */
        xa_store_release(&b->state, xichan__blk_word(XICHAN_BLK_RESERVED, cl->sid));
        cl->cache[k][cl->cache_n[k]++] = off;
        kept = 1;
    }
    cache_unlock(cl);
    return kept;
}

/* Returns how many blocks went back, or an error. */
int xichan__cache_flush(xichan_client *cl)
{
    uint32_t offs[XICHAN_CACHE_CLASSES * XICHAN_CACHE_DEPTH];
    size_t n = 0;
    int err;

    if (!cache_lock(cl))
        return 0;
    for (uint32_t k = 0; k < XICHAN_CACHE_CLASSES; k++) {
        while (cl->cache_n[k])
            offs[n++] = cl->cache[k][--cl->cache_n[k]];
    }
    cache_unlock(cl);
    if (!n)
        return 0;
    err = xichan__heap_free_many(cl->shm, offs, n, cl->sid);
    return err ? err : (int)n;
}

/* --------------------------------------------------------------- items */

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
    if (!cache_take(cl, xichan__item_units(len), off)) {
        err = xichan__heap_alloc(cl->shm, cl->sid, len, off);
        /* What this session keeps aside must not make a put fail. */
        if (err == XICHAN_ENOSPC && xichan__cache_flush(cl) > 0)
            err = xichan__heap_alloc(cl->shm, cl->sid, len, off);
        if (err)
            return err;
    }
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
    if (!cache_keep(cl, off))
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
    xa_add_relaxed(&cl->refs, 1); /* dropped by the release */
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
    xichan_client *cl;

    if (!item || !item->cl_ || !item->blk_)
        return;
    cl = item->cl_;
    /* In a forked child the block is the parent's to free; after a close,
     * the daemon's (the session's blocks went back with it). */
    if (xichan__client_ok(cl) == 0) {
        if (!(xa_load_relaxed(&cl->refs) & XICHAN__CL_CLOSED))
            xichan__item_discard(cl, (uint32_t)item->blk_);
        xichan__client_unref(cl, 1);
    }
    memset(item, 0, sizeof(*item));
}
