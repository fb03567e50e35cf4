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
 * The cache is bounded (internal.h: 64 blocks of at most 144 bytes) and
 * sized per class so a block is reused only for its own size.  It is the
 * session's, not the segment's: an allocation that finds the heap full
 * takes the blocks of idle caches back, and a cache in use empties itself
 * into the heap when it finds that a full heap asked for it (alloc.c,
 * tag-cache-steal, which also gives the protocol of the session's
 * cache_gate that every use below holds).
 *
 * CRASH ARGUMENT.  A cached block is CACHED to the session's slot in the
 * segment: one store of its state word (LEASED or RESERVED -> CACHED|slot,
 * by its owner, holding the gate, before the process-local list takes it;
 * back to RESERVED|sid when taken, still holding the gate).  If the process
 * dies anywhere, gate held or not, the daemon's cleanup frees every block
 * the session reserved, leased or cached (sessions.c step 3); if the
 * session ends cleanly, the same cleanup frees them.  A thief frees them
 * only holding the gate.  No derived state of the heap changes, so no
 * heap_lock is needed.  A cached offset is checked again (size and state
 * word) before reuse, so a segment scribbled meanwhile costs a cached
 * block, never a wrong one.
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

int xichan__create(xichan_client *cl, int kind, int64_t maxsize, int fmt, int unboundop,
                   const char *name, uint64_t *id)
{
    int err = xichan__client_ok(cl);

    if (err)
        return err;
    if (!id)
        return XICHAN_EINVAL;
    return xichan__obj_create(cl->shm, cl->sid, kind, maxsize, fmt, unboundop, name, id);
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

#define GATE_ONE (1ull << XICHAN_GATE_COUNT_SHIFT) /* one block in the gate's count */
enum { GATE_HELD = 1, GATE_WANTED = 2 };

/* Empties the cache into the heap, each block RESERVED to us again for
 * heap_free_many, then gives the gate back with a count of 0, and WANT
 * again if want: what a full heap's WANT asks for (tag-cache-steal).
 * Called holding the gate; out of line, as it is rare.  Returns how many
 * blocks went back, or an error. */
static __attribute__((noinline)) int gate_give_back(xichan_client *cl, int want)
{
    uint32_t offs[XICHAN_CACHE_CLASSES * XICHAN_CACHE_DEPTH];
    size_t n = 0;
    int err;

    for (uint32_t k = 0; k < XICHAN_CACHE_CLASSES; k++) {
        while (cl->cache_n[k]) {
            uint32_t o = cl->cache[k][--cl->cache_n[k]];
            struct xichan_blk *b = xichan__blk(cl->shm, o);

            /* A block scribbled meanwhile is left for the daemon's sweep. */
            if (b && xa_load_relaxed(&b->state) == xichan__blk_word(XICHAN_BLK_CACHED, cl->slot)) {
                xa_store_relaxed(&b->state, xichan__blk_word(XICHAN_BLK_RESERVED, cl->sid));
                offs[n++] = o;
            }
        }
    }
    cl->gate &= ~XICHAN_GATE_COUNT_MASK;
    /* Release, as in gate_release.  WANT left set fails our next CAS. */
    xa_store_release(cl->gate_word, cl->gate | (want ? XICHAN_GATE_WANT : 0));
    if (!n)
        return 0;
    err = xichan__heap_free_many(cl->shm, offs, n, cl->sid);
    return err ? err : (int)n;
}

static __attribute__((noinline)) int gate_take_slow(xichan_client *cl, uint64_t w)
{
    if (!cl->gate_word) { /* first use (a client made by hand, in tests, starts so) */
        if (cl->slot >= cl->shm->nsessions)
            return 0; /* a session in no slot has no cache */
        cl->gate_word = &cl->shm->sessions[cl->slot].cache_gate;
        w = cl->gate;
    }
    /* Bounded: each failed CAS means a thief or our other thread moved it. */
    for (int tries = 0; tries < 8; tries++) {
        if (w & (XICHAN_GATE_OWNER | XICHAN_GATE_THIEF))
            return 0; /* busy: the caller goes to the heap */
        uint64_t keep = ~(uint64_t)XICHAN_GATE_WANT;

        if ((w ^ cl->gate) >> XICHAN_GATE_GEN_SHIFT) { /* a thief (or the daemon) freed them all */
            memset(cl->cache_n, 0, sizeof(cl->cache_n));
            keep &= ~XICHAN_GATE_COUNT_MASK; /* 0 already, unless scribbled */
        }
        int waiting = 0, locked = 0, got;

        /*
         * Asked for the blocks: whether anyone still waits for room is read
         * under heap_lock, where no steal pass is half done, and if no one
         * does, WANT is cleared before the lock is given up, so that no
         * pass comes in between (alloc.c, tag-cache-steal).
         */
        if (w & XICHAN_GATE_WANT) {
            if (xichan__heap_lock(cl->shm, cl->sid, XICHAN_NOWAIT))
                return 0;
            waiting = xa_load_relaxed(&cl->shm->hdr->heap_waiters) != 0;
            if (waiting)
                xichan__heap_unlock(cl->shm);
            else
                locked = 1;
        }
        /* Acquire, as in gate_take. */
        got = atomic_compare_exchange_strong_explicit(cl->gate_word, &w,
                                                      (w & keep) | XICHAN_GATE_OWNER,
                                                      memory_order_acquire, memory_order_relaxed);
        if (locked)
            xichan__heap_unlock(cl->shm);
        if (got) {
            cl->gate = w & keep;
            return waiting ? GATE_WANTED : GATE_HELD;
        }
    }
    return 0;
}

/*
 * Takes this session's cache gate (tag-cache-steal): GATE_HELD, or 0 if it
 * is busy (our other thread, or a thief) and the caller uses the heap, or
 * GATE_WANTED: held, but an allocation waits for room and asked for the
 * blocks back; the caller then caches nothing and calls gate_give_back
 * instead of gate_release.
 */
static inline int gate_take(xichan_client *cl)
{
    uint64_t w = cl->gate;

    /* Acquire: pairs with a thief's release of the gate (alloc.c,
     * finish_steal).  It fails on any change a thief made: a WANT, a
     * THIEF, a new generation. */
    if (__builtin_expect(cl->gate_word != NULL, 1) &&
        __builtin_expect(atomic_compare_exchange_strong_explicit(cl->gate_word, &w,
                                                                 w | XICHAN_GATE_OWNER,
                                                                 memory_order_acquire,
                                                                 memory_order_relaxed),
                         1))
        return GATE_HELD;
    return gate_take_slow(cl, w);
}

/* Gives the gate back with the cache's new count (cl->gate + delta).  A
 * plain store: no one else writes a gate its owner holds (a thief waits
 * for it, alloc.c steal_cached). */
static inline void gate_release(xichan_client *cl, uint64_t delta)
{
    cl->gate += delta;
    /* Release: a thief's acquire load of the gate then sees the block
     * state stores made under it. */
    xa_store_release(cl->gate_word, cl->gate);
}

/* A cached block of exactly units units into *off; 0 if there is none. */
static inline int cache_take(xichan_client *cl, uint32_t units, uint32_t *off)
{
    uint32_t k = units - XICHAN_CACHE_MIN_UNITS, o;
    struct xichan_blk *b;
    int g;

    if (k >= XICHAN_CACHE_CLASSES || !(g = gate_take(cl)))
        return 0;
    if (__builtin_expect(g == GATE_WANTED, 0)) {
        (void)gate_give_back(cl, 1);
        return 0;
    }
    if (!cl->cache_n[k]) {
        gate_release(cl, 0);
        return 0;
    }
    o = cl->cache[k][--cl->cache_n[k]];
    b = xichan__blk(cl->shm, o);
    /* The gate kept thieves away, so only a scribble can have changed it;
     * such a block is left for the daemon's sweep. */
    if (b && b->size == units &&
        xa_load_relaxed(&b->state) == xichan__blk_word(XICHAN_BLK_CACHED, cl->slot)) {
        xa_store_relaxed(&b->state, xichan__blk_word(XICHAN_BLK_RESERVED, cl->sid));
        *off = o;
        gate_release(cl, -GATE_ONE);
        return 1;
    }
    gate_release(cl, -GATE_ONE);
    return 0;
}

/* Keeps the block at off, which this session reserved or leased; 0 if not. */
static inline int cache_keep(xichan_client *cl, uint32_t off)
{
    struct xichan_blk *b = xichan__blk(cl->shm, off);
    uint32_t k, w;
    int g;

    if (!b)
        return 0;
    k = b->size - XICHAN_CACHE_MIN_UNITS;
    w = xa_load_relaxed(&b->state);
    if (k >= XICHAN_CACHE_CLASSES || xichan__blk_owner(w) != cl->sid ||
        (xichan__blk_state(w) != XICHAN_BLK_LEASED && xichan__blk_state(w) != XICHAN_BLK_RESERVED) ||
        !(g = gate_take(cl)))
        return 0;
    if (__builtin_expect(g == GATE_WANTED, 0)) {
        (void)gate_give_back(cl, 1);
        return 0; /* the caller frees it: that free wakes the heap's waiters */
    }
    if (cl->cache_n[k] >= XICHAN_CACHE_DEPTH) {
        gate_release(cl, 0);
        return 0;
    }
    /* The commit: CACHED to our slot, published by the gate's release. */
    xa_store_relaxed(&b->state, xichan__blk_word(XICHAN_BLK_CACHED, cl->slot));
    xichan__fault(XICHAN_FAULT_CACHE_GATED);
    cl->cache[k][cl->cache_n[k]++] = off;
    gate_release(cl, GATE_ONE);
    return 1;
}

/* Returns how many blocks went back, or an error. */
int xichan__cache_flush(xichan_client *cl)
{
    int g = gate_take(cl);

    return g ? gate_give_back(cl, g == GATE_WANTED) : 0;
}

/* --------------------------------------------------------------- items */

int xichan__item_make(xichan_client *cl, int fmt, const void *data, size_t len, int unboundop,
                      int64_t deadline_ns, uint32_t *off)
{
    struct xichan_blk *b;
    struct xichan_itemhdr *it;
    int err;

    if (fmt < 0 || fmt > 255 || !XICHAN_UNBOUND_OK(unboundop) || (!data && len))
        return XICHAN_EINVAL;
    if (len > UINT32_MAX) {
        xichan__set_refusal(XICHAN_E2BIG, "item of %llu bytes is over the 4 GiB limit of an item",
                            (unsigned long long)len);
        return XICHAN_E2BIG;
    }
    if (!cache_take(cl, xichan__item_units(len), off)) {
        uint64_t len64 = len;
        /* Waits for room until the deadline; every cache, ours too, is
         * given back before the heap is reported full (alloc.c). */
        err = xichan__heap_reserve(cl->shm, cl->sid, &len64, 1, off, 1, deadline_ns, &cl->waiter);
        if (err < 0)
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
