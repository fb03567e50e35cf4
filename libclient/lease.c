/*
 * lease.c -- taking an item so that it goes back to its queue if the taker
 * ends before it commits; and waiting for getters (demand).
 *
 * A lease is a get whose item is not yet consumed.  xichan_queue_lease
 * unlinks the oldest item as a get does, but the block stays marked as
 * held (XICHAN_IF_HELD) and remembers its queue in its link word
 * (xichan__held_link: the slot and 8 bits of generation).  Then:
 *   commit  the taker is done (xichan-bridge: JetStream acknowledged the
 *           copy it published): the item is freed like a released one;
 *   abort   the item goes back into its queue, in ticket order, which is
 *           at the head unless newer held items were returned first;
 *   end     the taker's session ends (exit, kill -9, close) before either:
 *           the daemon's session cleanup returns it as abort would, before
 *           it frees the session's blocks (sessions.c step 0).
 * An item returned to a bounded queue does not wait for room: the queue
 * may then hold maxsize plus the items that were held.  A held item whose
 * queue was destroyed is freed.
 *
 * CRASH ARGUMENT (tag-lease-intent, with fifo.c's tag-fifo-commit).
 *   take    under the queue's lock, the queue's fifo.held names the head
 *           (the intent), the item's flags get HELD, the block is LEASED and
 *           unlinked (the commit, as a pop), its link gets the queue, the
 *           intent is cleared.  A taker that dies anywhere in there dies
 *           holding the queue's lock, and the next locker's repair reads the
 *           intent: a block still linked stays in the queue (and loses
 *           HELD); one already unlinked gets its link back.  So after the
 *           repair every HELD block knows its queue, and every item is
 *           either linked or HELD.  The daemon's return step locks every
 *           queue with an intent before it looks for held blocks, so the
 *           repair has run when it reads a link.
 *   commit  one store clears HELD: before it, a death returns the item;
 *           after it, the block is an ordinary LEASED one that the cleanup
 *           frees.  A commit is a consumption, as a get is.
 *   return  (abort, or the daemon for a dead holder) under the queue's
 *           lock, intent, link, then one store makes the block reachable
 *           (the commit), then count, flags, QUEUED, intent cleared.  A
 *           returner that dies before the commit leaves a held block that
 *           the repair gives its link back to, and the next run of the
 *           cleanup (or the holder's own retry) returns it; after the
 *           commit the repair finishes it.  The cleanup step is idempotent:
 *           it acts only on blocks that are still LEASED and HELD by the
 *           ended session, and the slot stays CLEANING until it succeeded.
 * What is lost: nothing committed.  What may be doubled: an item whose
 * taker acted on it (published it) and died before the commit is returned
 * and taken again; xichan-bridge gives such items the same message id, so
 * JetStream drops the second copy.
 *
 * DEMAND.  xichan_queue_wait_getters marks the queue (XICHAN_OF_DEMAND) and
 * sleeps on get_seq until a getter waits on the empty queue: a getter about
 * to sleep counts the items it wants in o->receivers under the lock (1 for
 * a get, up to XICHAN_DEMAND_MAX for a get_many) and, on a marked queue,
 * bumps get_seq and wakes the watcher (queue.c).  No polling.  The
 * count runs high after a getter is killed while it sleeps, which costs a
 * watcher one item brought for nobody (it stays queued for the next getter).
 */
#include <string.h>

#include "internal.h"

#define RETURN_BATCH 64

static struct xichan_blk *held_blk(xichan_client *cl, const xichan_item *item)
{
    struct xichan_blk *b;
    uint32_t w;

    if (!item || !item->cl_ || !item->blk_ || item->cl_ != cl)
        return NULL;
    if (!(b = xichan__blk(cl->shm, (uint32_t)item->blk_)))
        return NULL;
    w = xa_load_acquire(&b->state);
    if (w != xichan__blk_word(XICHAN_BLK_LEASED, cl->sid) ||
        !(xa_load_relaxed(&xichan__item(b)->flags) & XICHAN_IF_HELD))
        return NULL;
    return b;
}

/* The live queue a held link names, or ENOTFOUND. */
static int held_queue(struct xichan_shm *shm, uint32_t link, struct xichan_objref *ref)
{
    uint32_t slot = link & ((1u << XICHAN_HELD_SLOT_BITS) - 1), gen8 = link >> XICHAN_HELD_SLOT_BITS;
    struct xichan_obj *o;
    uint32_t gen;

    if (slot >= shm->nobjects)
        return XICHAN_ENOTFOUND;
    o = &shm->objects[slot];
    gen = xa_load_acquire(&o->gen);
    if ((gen & 0xffu) != gen8 || xa_load_acquire(&o->state) != XICHAN_OBJ_LIVE ||
        o->kind != XICHAN_KIND_QUEUE)
        return XICHAN_ENOTFOUND;
    ref->o = o;
    ref->slot = slot;
    ref->gen = gen;
    return 0;
}

/*
 * Returns the held block at off, owned by sid, to its queue.  0 if it went
 * back or is no longer held by sid; XICHAN_ENOTFOUND if its queue is gone
 * (the block is left as it is); a lock error otherwise.
 */
static int return_one(struct xichan_shm *shm, uint32_t off, uint32_t sid, uint32_t my_sid,
                      int64_t deadline_ns, const struct xichan_waiter *w)
{
    struct xichan_blk *b = xichan__blk(shm, off);
    struct xichan_objref ref;
    int err;

    if (!b)
        return XICHAN_ECORRUPT;
    if ((err = held_queue(shm, b->link, &ref)))
        return err;
    if ((err = xichan__obj_lock_until(shm, &ref, my_sid, deadline_ns, w)))
        return err;
    /* Checked again under the lock: a rerun may find it returned already. */
    if (xa_load_relaxed(&b->state) == xichan__blk_word(XICHAN_BLK_LEASED, sid) &&
        (xa_load_relaxed(&xichan__item(b)->flags) & XICHAN_IF_HELD) &&
        b->link == xichan__held_link(shm, ref.o))
        err = xichan__fifo_unhold(shm, ref.o, b);
    xichan__obj_unlock(ref.o);
    if (err == 0)
        xichan__obj_signal(shm, ref.o, XICHAN__EV_READABLE, 1); /* it is back in line */
    return err;
}

/* ------------------------------------------------------------- the API */

int xichan_queue_lease(xichan_client *cl, xichan_queue_id q, xichan_item *item, int64_t deadline_ns)
{
    int err = xichan__client_ok(cl);

    if (err)
        return err;
    if (cl->shm->nobjects > 1u << XICHAN_HELD_SLOT_BITS)
        return XICHAN_ELIMIT; /* slots must fit the held link */
    err = xichan__queue_take(cl, q, item, deadline_ns, 1);
    if (err == 0)
        xichan__fault(XICHAN_FAULT_LEASE_TAKEN);
    return err;
}

int xichan_queue_lease_commit(xichan_item *item)
{
    struct xichan_blk *b;
    struct xichan_itemhdr *it;

    if (!item || !item->cl_ || xichan__client_ok(item->cl_))
        return XICHAN_EINVAL;
    if (!(b = held_blk(item->cl_, item)))
        return XICHAN_EINVAL;
    it = xichan__item(b);
    /* The commit: from here on a plain leased block, freed by its owner. */
    xa_store_release(&it->flags, (uint16_t)(xa_load_relaxed(&it->flags) & ~XICHAN_IF_HELD));
    xichan__fault(XICHAN_FAULT_LEASE_COMMITTED);
    xichan_item_release(item);
    return 0;
}

int xichan_queue_lease_abort(xichan_item *item)
{
    xichan_client *cl;
    int err;

    if (!item || !item->cl_ || xichan__client_ok(item->cl_))
        return XICHAN_EINVAL;
    cl = item->cl_;
    if (!held_blk(cl, item))
        return XICHAN_EINVAL;
    err = return_one(cl->shm, (uint32_t)item->blk_, cl->sid, cl->sid, XICHAN_FOREVER, &cl->waiter);
    if (err == XICHAN_ENOTFOUND) {
        /* Its queue is gone: nothing to go back to. */
        (void)xichan__heap_free(cl->shm, (uint32_t)item->blk_, cl->sid);
        memset(item, 0, sizeof(*item));
        return err;
    }
    if (err == 0)
        memset(item, 0, sizeof(*item));
    return err;
}

int xichan_queue_wait_getters(xichan_client *cl, xichan_queue_id q, int64_t deadline_ns)
{
    struct xichan_objref ref;
    struct xichan_obj *o;
    int err, timed_out = 0;

    if ((err = xichan__resolve(cl, XICHAN_KIND_QUEUE, q.id, &ref)))
        return err;
    o = ref.o;
    for (;;) {
        uint32_t n;

        if ((err = xichan__obj_lock_until(cl->shm, &ref, cl->sid, deadline_ns, &cl->waiter)))
            return err;
        if (!(xa_load_relaxed(&o->flags) & XICHAN_OF_DEMAND))
            xa_or_release(&o->flags, XICHAN_OF_DEMAND);
        n = xa_load_relaxed(&o->receivers);
        if (n > 0 && o->fifo.count == 0) {
            xichan__obj_unlock(o);
            return n > INT32_MAX ? INT32_MAX : (int)n;
        }
        if (timed_out || deadline_ns == XICHAN_NOWAIT || xichan_now_ns() >= deadline_ns) {
            xichan__obj_unlock(o);
            return XICHAN_ETIMEDOUT;
        }
        err = xichan__obj_sleep(cl, o, &o->get_seq, &o->putters, deadline_ns);
        /* A wake from a pop may have been meant for a putter waiting for
         * room, which shares get_seq: pass it on. */
        if (err == 0 && o->maxsize > 0 && xa_load_relaxed(&o->putters))
            xichan__wake(&o->get_seq, 1);
        if (err == XICHAN_ETIMEDOUT)
            timed_out = 1;
        else if (err)
            return err;
    }
}

/* ------------------------------------------------------ session cleanup */

/* Locks and unlocks every queue whose intent names a block sid holds, so
 * that a repair owed by a holder that died mid-step has run. */
static int settle_intents(struct xichan_shm *shm, uint32_t sid, int64_t deadline_ns)
{
    for (uint32_t i = 0; i < shm->nobjects; i++) {
        struct xichan_obj *o = &shm->objects[i];
        struct xichan_objref ref = {o, i, xa_load_acquire(&o->gen)};
        struct xichan_blk *b;
        int err;

        if (xa_load_acquire(&o->state) != XICHAN_OBJ_LIVE || o->kind != XICHAN_KIND_QUEUE ||
            !o->fifo.held || !(b = xichan__blk(shm, o->fifo.held)) ||
            xichan__blk_owner(xa_load_relaxed(&b->state)) != sid)
            continue;
        if ((err = xichan__obj_lock_until(shm, &ref, 0, deadline_ns, NULL)) == 0)
            xichan__obj_unlock(o);
        else if (err != XICHAN_ENOTFOUND && err != XICHAN_EBROKEN)
            return err;
    }
    return 0;
}

/* Up to max held blocks of sid at offsets >= from, under heap_lock. */
static int find_held(struct xichan_shm *shm, uint32_t sid, uint32_t from, uint32_t *offs,
                     size_t max, size_t *n)
{
    uint32_t guard = xichan__heap_max_blocks(shm);
    struct xichan_blk *b;
    int err;

    *n = 0;
    if ((err = xichan__heap_lock(shm, 0, XICHAN_NOWAIT)))
        return err;
    for (uint32_t off = XICHAN_HEAP_FIRST_UNIT; *n < max && (b = xichan__blk(shm, off));
         off += b->size) {
        if (guard-- == 0) {
            err = XICHAN_ECORRUPT;
            break;
        }
        if (off >= from && xa_load_relaxed(&b->state) == xichan__blk_word(XICHAN_BLK_LEASED, sid) &&
            (xa_load_relaxed(&xichan__item(b)->flags) & XICHAN_IF_HELD))
            offs[(*n)++] = off;
    }
    xichan__heap_unlock(shm);
    return err;
}

int xichan__leases_return(struct xichan_shm *shm, uint32_t sid)
{
    /* As the rest of the cleanup: a lock held by a stopped process is not
     * waited for; XICHAN_ELOCKED makes the daemon try again later, and
     * nothing held is freed meanwhile (sessions.c). */
    int64_t deadline = XICHAN_NOWAIT;
    uint32_t offs[RETURN_BATCH], from = 0;
    size_t n;
    int err;

    if ((err = settle_intents(shm, sid, deadline)))
        return err;
    do {
        if ((err = find_held(shm, sid, from, offs, RETURN_BATCH, &n)))
            return err;
        /* Any order: each goes back in ticket order (fifo.c). */
        for (size_t i = 0; i < n; i++) {
            err = return_one(shm, offs[i], sid, sid, deadline, NULL);
            /* A gone or broken queue: the block is freed with the session's. */
            if (err && err != XICHAN_ENOTFOUND && err != XICHAN_EBROKEN)
                return err;
        }
        if (n)
            from = offs[n - 1] + 1;
    } while (n == RETURN_BATCH);
    return 0;
}
