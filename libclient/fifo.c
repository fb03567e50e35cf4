/*
 * fifo.c -- the item list shared by queues and channels.
 *
 * A singly linked list of heap blocks: fifo.head and each block's link are
 * unit offsets.  Items carry a 32-bit ticket stamped at push, increasing
 * along the list (modulo 2^32), so a channel sender can tell whether its item
 * is still queued by comparing its ticket with the head's.
 *
 * All functions need the object's lock (fifo state is "under lock" in
 * shm_layout.h); those that free blocks take heap_lock inside it, which the
 * lock order allows (tag-lock-order).
 *
 * CRASH ARGUMENT (tag-fifo-commit).  Authoritative: fifo.head, each block's
 * link, each item's header.  Derived (recomputed by xichan__fifo_repair):
 * tail, count, bytes, next_ticket, and the state of linked blocks, which is
 * always QUEUED once repaired.
 *
 *   push    the item is filled and RESERVED by its producer before the lock
 *           is taken.  Its link is zeroed, then one store (tail's link, or
 *           head when empty) makes it reachable: that is the commit.  The
 *           state store QUEUED follows.  Die before the commit: a RESERVED
 *           block of a dead session, reclaimed by the daemon; nothing was
 *           queued and put() had not returned.  Die after: the repair marks
 *           it QUEUED; the item is delivered.
 *   pop     the head is first LEASED to the popper, then head moves to its
 *           link (the commit).  Die before: the repair marks it QUEUED
 *           again and the next getter receives it.  Die after: a LEASED
 *           block of a dead session, reclaimed; the item was taken by the
 *           dead getter.
 *           last_popped is stored before the commit, so it never claims an
 *           item was received while the item is still gone-but-unreceived.
 *   take    (a middle item) the same, with the predecessor's link as commit.
 *   unbind  REMOVE leases then unlinks like take; ERROR and REPLACE set one
 *           flag bit in the item, each a single store, and are idempotent,
 *           so a cleanup that dies half-way is simply run again.
 *   keep    (the producer's process ended) one store sets KEPT in each of
 *           its items: nothing else changes, and no later unbind of a
 *           session that reuses the id touches them (tag-sid-reuse).
 *
 * A repair that finds a link outside the heap, a block in a state no
 * linked block can have, or more blocks than the heap can hold, fails:
 * the object is then marked broken (lock.c) rather than guessed at.
 *
 * UNTRUSTED SEGMENT (tag-fifo-trust).  Every offset read from the fifo --
 * head, a block's link, tail -- is resolved through linked() or
 * xichan__blk before anything is read or stored through it, and every walk
 * is capped by xichan__heap_max_blocks (from the geometry), never by count,
 * which is derived.  tail is derived too, and push is the one store through
 * it: push trusts it only if it names a QUEUED block that ends the list and
 * is not the block being pushed (else the new item could be linked into a
 * free block, another fifo, or itself).  Otherwise push recomputes tail,
 * count and bytes with the repair walk from head, which loses nothing since
 * they are derived, and goes on; and whether the fifo is empty is asked of
 * head, which is authoritative, so a zeroed tail cannot make a push drop
 * the list.  What fails the walk (a bad head or link) fails the operation
 * with XICHAN_ECORRUPT, with the caller's block still its own; the object
 * is not marked broken, since no holder died and every later call checks
 * again.
 */
#include "internal.h"

/* A linked block, validated; NULL if the offset or the block is not sane. */
static struct xichan_blk *linked(const struct xichan_shm *shm, uint32_t off)
{
    struct xichan_blk *b = xichan__blk(shm, off);
    uint32_t st;

    if (!b)
        return NULL;
    st = xichan__blk_state(xa_load_relaxed(&b->state));
    if (st == XICHAN_BLK_FREE || st > XICHAN_BLK_LEASED)
        return NULL;
    if (xichan__item(b)->len > ((uint64_t)b->size - 2) * XICHAN_UNIT)
        return NULL;
    return b;
}

/*
 * The block a push links b after: the last block of a non-empty fifo.  tail
 * is derived, so one that is not a QUEUED block ending the list (every
 * linked block is QUEUED while the lock is held by no one mid-operation),
 * or is b itself, which would make a cycle, is recomputed by the repair
 * walk from head, which loses nothing.  NULL if that walk finds the list
 * corrupt.
 */
static struct xichan_blk *last_blk(struct xichan_shm *shm, struct xichan_obj *o,
                                   struct xichan_blk *b)
{
    struct xichan_blk *t = xichan__blk(shm, o->fifo.tail);

    if (t && !t->link && t != b &&
        xichan__blk_state(xa_load_relaxed(&t->state)) == XICHAN_BLK_QUEUED)
        return t;
    if (xichan__fifo_repair(shm, o))
        return NULL;
    t = linked(shm, o->fifo.tail);
    return t != b ? t : NULL;
}

int xichan__fifo_push(struct xichan_shm *shm, struct xichan_obj *o, struct xichan_blk *b)
{
    struct xichan_fifo *f = &o->fifo;
    struct xichan_itemhdr *it = xichan__item(b);
    uint32_t off = xichan__blk_off(shm, b);
    struct xichan_blk *t = NULL;

    /* head, not tail, says whether the fifo is empty: it is authoritative.
     * A head that is no block fails the push too: no get could reach the
     * item, so accepting it would lose it. */
    if (f->head && (!xichan__blk(shm, f->head) || !(t = last_blk(shm, o, b))))
        return XICHAN_ECORRUPT;
    it->ticket = f->next_ticket++;
    b->link = 0;
    if (t)
        t->link = off; /* commit (tag-fifo-commit) */
    else
        f->head = off; /* commit */
    xichan__fault(XICHAN_FAULT_PUSH_LINKED);
    f->tail = off;
    f->count++;
    f->bytes += it->len;
    /* The block now belongs to the fifo; it keeps the producer as owner. */
    xa_store_release(&b->state, xichan__blk_word(XICHAN_BLK_QUEUED, it->producer));
    xichan__fault(XICHAN_FAULT_PUSH_DONE);
    return 0;
}

/* Unlinks b (whose predecessor is prev, or none) after leasing it to sid. */
static void unlink_leased(struct xichan_shm *shm, struct xichan_obj *o, struct xichan_blk *prev,
                          struct xichan_blk *b, uint32_t sid, enum xichan_fault fault)
{
    struct xichan_fifo *f = &o->fifo;

    xa_store_release(&b->state, xichan__blk_word(XICHAN_BLK_LEASED, sid));
    xichan__fault(XICHAN_FAULT_POP_LEASED);
    if (prev)
        prev->link = b->link; /* commit */
    else
        f->head = b->link;    /* commit */
    xichan__fault(fault);
    /* Fixing the tail when the tail goes is what CPython forgot (gh-146427). */
    if (f->tail == xichan__blk_off(shm, b))
        f->tail = prev ? xichan__blk_off(shm, prev) : 0;
    f->count--;
    f->bytes -= xichan__item(b)->len;
    b->link = 0;
}

int xichan__fifo_pop(struct xichan_shm *shm, struct xichan_obj *o, uint32_t sid,
                     struct xichan_blk **out)
{
    struct xichan_blk *b;

    *out = NULL;
    if (!o->fifo.head)
        return XICHAN_EEMPTY;
    if (!(b = linked(shm, o->fifo.head)))
        return XICHAN_ECORRUPT;
    /* Before the unlink: a sender that finds its item gone reads this to
     * tell "received" from "dropped"; while the item is still linked it
     * looks no further (xichan__fifo_has). */
    o->fifo.last_popped = xichan__item(b)->ticket;
    unlink_leased(shm, o, NULL, b, sid, XICHAN_FAULT_POP_UNLINKED);
    *out = b;
    return 0;
}

int xichan__fifo_take(struct xichan_shm *shm, struct xichan_obj *o, uint32_t ticket, uint32_t sid,
                      struct xichan_blk **out)
{
    struct xichan_blk *prev = NULL, *b;
    uint32_t guard = xichan__heap_max_blocks(shm); /* count is derived: no cap */

    *out = NULL;
    for (uint32_t off = o->fifo.head; off; off = b->link) {
        if (!(b = linked(shm, off)) || guard-- == 0)
            return XICHAN_ECORRUPT;
        if (xichan__item(b)->ticket == ticket) {
            unlink_leased(shm, o, prev, b, sid, XICHAN_FAULT_REMOVE_UNLINKED);
            *out = b;
            return 0;
        }
        prev = b;
    }
    return XICHAN_ENOTFOUND;
}

int xichan__fifo_has(struct xichan_shm *shm, struct xichan_obj *o, uint32_t ticket)
{
    struct xichan_blk *h;

    if (!o->fifo.head || !(h = linked(shm, o->fifo.head)))
        return 0;
    /* Tickets wrap: compare by signed distance. */
    return (int32_t)(ticket - xichan__item(h)->ticket) >= 0 &&
           (int32_t)(o->fifo.next_ticket - ticket) > 0;
}

int xichan__fifo_repair(struct xichan_shm *shm, struct xichan_obj *o)
{
    struct xichan_fifo *f = &o->fifo;
    struct xichan_blk *b = NULL;
    uint32_t count = 0, tail = 0, guard = xichan__heap_max_blocks(shm);
    uint64_t bytes = 0;

    for (uint32_t off = f->head; off; off = b->link) {
        struct xichan_itemhdr *it;

        if (!(b = linked(shm, off)) || count >= guard)
            return XICHAN_ECORRUPT;
        it = xichan__item(b);
        xa_store_relaxed(&b->state, xichan__blk_word(XICHAN_BLK_QUEUED, it->producer));
        count++;
        bytes += it->len;
        tail = off;
    }
    f->tail = tail;
    f->count = count;
    f->bytes = bytes;
    if (b && (int32_t)(f->next_ticket - xichan__item(b)->ticket) <= 0)
        f->next_ticket = xichan__item(b)->ticket + 1;
    return 0;
}

int xichan__fifo_drop_all_locked(struct xichan_shm *shm, struct xichan_obj *o, uint32_t sid)
{
    uint32_t guard = xichan__heap_max_blocks(shm);
    struct xichan_blk *b;

    while (o->fifo.head) {
        if (!(b = linked(shm, o->fifo.head)) || guard-- == 0)
            return XICHAN_ECORRUPT;
        unlink_leased(shm, o, NULL, b, sid, XICHAN_FAULT_POP_UNLINKED);
        (void)xichan__heap_free_locked(shm, b); /* freed either way */
    }
    return 0;
}

int xichan__fifo_drop_all(struct xichan_shm *shm, struct xichan_obj *o, uint32_t sid)
{
    int err;

    if (!o->fifo.head)
        return 0;
    if ((err = xichan__heap_lock(shm, sid, XICHAN_NOWAIT)))
        return err; /* nothing dropped */
    err = xichan__fifo_drop_all_locked(shm, o, sid);
    xichan__heap_unlock(shm);
    return err;
}

int xichan__fifo_unbind(struct xichan_shm *shm, struct xichan_obj *o, uint32_t ended_sid,
                        uint32_t my_sid, int apply_ops)
{
    struct xichan_blk *prev = NULL, *b;
    uint32_t off = o->fifo.head, guard = xichan__heap_max_blocks(shm);
    int changed = 0, err;

    while (off) {
        struct xichan_itemhdr *it;
        uint16_t flags;

        if (!(b = linked(shm, off)) || guard-- == 0)
            return XICHAN_ECORRUPT;
        it = xichan__item(b);
        off = b->link;
        flags = xa_load_relaxed(&it->flags);
        if (it->producer != ended_sid || (flags & XICHAN_IF_SETTLED)) {
            prev = b;
            continue;
        }
        if (!apply_ops) {
            /* Its process ended: the item stays deliverable, for good. */
            xa_store_release(&it->flags, (uint16_t)(flags | XICHAN_IF_KEPT));
            prev = b;
            changed++;
            xichan__fault(XICHAN_FAULT_CLEANUP_KEPT);
            continue;
        }
        switch (it->unboundop) {
        case XICHAN_UNBOUND_REMOVE:
            /* The lock first: giving up on it must leave b linked. */
            if ((err = xichan__heap_lock(shm, my_sid, XICHAN_NOWAIT)))
                return err;
            unlink_leased(shm, o, prev, b, my_sid, XICHAN_FAULT_REMOVE_UNLINKED);
            (void)xichan__heap_free_locked(shm, b); /* freed either way */
            xichan__heap_unlock(shm);
            break; /* prev stays: b is gone */
        case XICHAN_UNBOUND_ERROR:
            xa_store_release(&it->flags, (uint16_t)(flags | XICHAN_IF_UNBOUND_ERR));
            prev = b;
            break;
        default: /* REPLACE, and anything unknown: the safest is the marker */
            xa_store_release(&it->flags, (uint16_t)(flags | XICHAN_IF_UNBOUND));
            prev = b;
            break;
        }
        changed++;
        xichan__fault(XICHAN_FAULT_CLEANUP_UNBOUND);
    }
    return changed;
}
