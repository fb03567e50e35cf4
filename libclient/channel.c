/*
 * channel.c -- the public channel API: rendezvous send, recv, close,
 * per-session end associations.
 *
 * A channel is an object of kind XICHAN_KIND_CHANNEL: the same slot, lock,
 * fifo, item blocks and futex words as a queue (objects.c, fifo.c, items.c,
 * wait.c), with three differences:
 *
 *   - send waits for its own item to be received.  Items carry tickets in
 *     fifo order; the sender sleeps on get_seq until its ticket is no longer
 *     queued, then reads fifo.last_popped to tell "a receiver took it" from
 *     "it was dropped by a forced close".  A timeout or interrupt withdraws
 *     the item (xichan__fifo_take) under the lock, so a receiver never sees
 *     an item whose send failed.
 *   - close/closing/closed flags, under the object's lock, with the error
 *     matrix of CPython 3.13 (xichan(7), Channels).
 *   - each session's association with the send and recv ends lives in its
 *     binding entry (objects.c); losing the last open association closes
 *     the channel (auto-close).  A lock-free per-client cache spares the
 *     table lock on every send and recv.
 *
 * Wakeups: senders blocked in a rendezvous all sleep on get_seq, each for
 * its own item, so a receive wakes all of them (INT32_MAX); receivers sleep
 * on put_seq and a send wakes one, which passes the wake on if items remain.
 *
 * This file changes shared state only through fifo.c and objects.c, whose
 * crash arguments cover it.  Its own windows: a sender killed while it
 * waits leaves its item queued, as CPython does for a destroyed sender, and
 * the daemon then applies the item's unbound op; a receiver killed after
 * taking an item leaves a leased block, reclaimed by the daemon (the item
 * counts as received: the sender returned).
 */
#include <string.h>

#include "internal.h"

static int chan_ref(xichan_client *cl, xichan_chan_id c, struct xichan_objref *ref)
{
    return xichan__resolve(cl, XICHAN_KIND_CHANNEL, c.id, ref);
}

static uint32_t flags_of(const struct xichan_obj *o)
{
    return xa_load_relaxed(&o->flags);
}

/* ------------------------------------------------------- associations */

static uint64_t cache_word(const struct xichan_objref *ref, uint16_t flags)
{
    return (uint64_t)ref->gen << 32 | (uint64_t)ref->slot << 4 | (flags & 0xFu);
}

static void cache_put(xichan_client *cl, const struct xichan_objref *ref, uint16_t flags)
{
    xa_store_relaxed(&cl->assoc_cache[ref->slot % 64], cache_word(ref, flags));
}

/* Associates this session with end, unless it released that end. */
static int ensure_assoc(xichan_client *cl, const struct xichan_objref *ref, uint16_t end)
{
    uint16_t rel = end == XICHAN_BF_SEND ? XICHAN_BF_SEND_REL : XICHAN_BF_RECV_REL;
    uint64_t w = xa_load_relaxed(&cl->assoc_cache[ref->slot % 64]);
    uint16_t flags;
    int err;

    if ((w & ~(uint64_t)0xF) == cache_word(ref, 0)) {
        flags = (uint16_t)(w & 0xF);
        if (flags & rel)
            return XICHAN_ECLOSED;
        if (flags & end)
            return 0;
    }
    err = xichan__chan_assoc(cl->shm, ref, cl->sid, end, &flags);
    if (err == 0 || err == XICHAN_ECLOSED)
        cache_put(cl, ref, flags);
    return err;
}

/* ---------------------------------------------------------- lifetime */

int xichan_chan_create(xichan_client *cl, const xichan_chan_opts *opts, xichan_chan_id *out)
{
    xichan_chan_opts def = {0};

    if (!opts)
        opts = &def;
    return xichan__create(cl, XICHAN_KIND_CHANNEL, 0, XICHAN_FMT_MSGPACK, opts->unboundop,
                          opts->name, out ? &out->id : NULL);
}

int xichan_chan_open(xichan_client *cl, const char *name, xichan_chan_id *out)
{
    return xichan__open_named(cl, XICHAN_KIND_CHANNEL, name, out ? &out->id : NULL);
}

int xichan_chan_destroy(xichan_client *cl, xichan_chan_id c)
{
    return xichan__lifecycle(cl, XICHAN_KIND_CHANNEL, c.id, XICHAN__DESTROY);
}

int xichan_chan_bind(xichan_client *cl, xichan_chan_id c)
{
    return xichan__lifecycle(cl, XICHAN_KIND_CHANNEL, c.id, XICHAN__BIND);
}

int xichan_chan_unbind(xichan_client *cl, xichan_chan_id c)
{
    return xichan__lifecycle(cl, XICHAN_KIND_CHANNEL, c.id, XICHAN__UNBIND);
}

/* -------------------------------------------------------------- send */

/* 1 if the item with ticket was received: tickets are serial numbers
 * (they wrap) and fifo.last_popped is the last one a receiver took; an item
 * gone from the fifo with a later ticket was dropped.  needs the lock */
static int ticket_taken(const struct xichan_obj *o, uint32_t ticket)
{
    return (int32_t)(ticket - o->fifo.last_popped) <= 0;
}

/* Withdraws our item if it is still queued.  needs the lock */
static int withdraw(xichan_client *cl, struct xichan_obj *o, uint32_t ticket)
{
    struct xichan_blk *b;

    if (xichan__fifo_take(cl->shm, o, ticket, cl->sid, &b) != 0)
        return 0; /* already taken by a receiver: the send succeeded */
    xichan__obj_unlock(o);
    xichan__item_discard(cl, xichan__blk_off(cl->shm, b));
    /* Let other senders and receivers see the new state. */
    xichan__obj_signal(cl->shm, o, XICHAN__EV_WRITABLE, INT32_MAX);
    return 1;
}

/*
 * Waits for ticket to be received.  Called unlocked; returns unlocked.
 * Its lock waits take no interrupt: withdrawing the item needs the lock.
 * One that gives up (XICHAN_ELOCKED: a stopped holder) leaves the item
 * queued, to be received -- the one case where a failed send did send.
 */
static int await_receipt(xichan_client *cl, const struct xichan_objref *ref, uint32_t ticket,
                         int64_t deadline_ns)
{
    struct xichan_obj *o = ref->o;
    int err, timed_out = 0;

    for (;;) {
        if ((err = xichan__obj_lock_until(cl->shm, ref, cl->sid, deadline_ns, NULL)))
            return err == XICHAN_ENOTFOUND ? XICHAN_ECLOSED : err; /* destroyed: "has closed" */
        if (!xichan__fifo_has(cl->shm, o, ticket)) {
            /* Gone: received, or dropped by a forced close. */
            err = ticket_taken(o, ticket) ? 0 : XICHAN_ECLOSED;
            xichan__obj_unlock(o);
            return err;
        }
        if (timed_out || deadline_ns == XICHAN_NOWAIT || xichan_now_ns() >= deadline_ns) {
            if (withdraw(cl, o, ticket))
                return XICHAN_ETIMEDOUT;
            xichan__obj_unlock(o);
            return 0;
        }
        err = xichan__obj_sleep(cl, o, &o->get_seq, &o->putters, deadline_ns);
        if (err == XICHAN_ETIMEDOUT) {
            timed_out = 1;
        } else if (err) {
            int e2 = xichan__obj_lock_until(cl->shm, ref, cl->sid, XICHAN_NOWAIT, NULL);
            if (e2)
                return e2 == XICHAN_ENOTFOUND ? XICHAN_ECLOSED : e2;
            if (withdraw(cl, o, ticket))
                return err;
            xichan__obj_unlock(o); /* received just in time */
            return 0;
        }
    }
}

/* Sends the made item at off on the channel ref names, whose send end this
 * session is associated with; discards the item on failure. */
static int send_made(xichan_client *cl, const struct xichan_objref *rp, uint32_t off,
                     int rendezvous, int64_t deadline_ns, uint32_t *ticket_out)
{
    struct xichan_objref ref = *rp;
    struct xichan_obj *o = ref.o;
    struct xichan_blk *b = xichan__blk(cl->shm, off);
    uint32_t ticket, waiting, queued;
    int err;

    if (!b) {
        err = XICHAN_ECORRUPT;
        goto fail;
    }
    if ((err = xichan__obj_lock_until(cl->shm, &ref, cl->sid, deadline_ns, &cl->waiter)))
        goto fail;
    if (flags_of(o) & (XICHAN_OF_CLOSED | XICHAN_OF_CLOSING)) {
        xichan__obj_unlock(o);
        err = XICHAN_ECLOSED;
        goto fail;
    }
    queued = o->fifo.count;
    waiting = xa_load_relaxed(&o->receivers);
    if ((err = xichan__item_publish(cl, o, off))) {
        xichan__obj_unlock(o);
        goto fail;
    }
    ticket = xichan__item(b)->ticket;
    if (ticket_out)
        *ticket_out = ticket;
    xichan__obj_unlock(o);
    xichan__obj_signal(cl->shm, o, XICHAN__EV_READABLE, 1);
    xichan__fault(XICHAN_FAULT_CHAN_SEND_PUBLISHED);
    if (!rendezvous)
        return waiting > queued; /* a blocked receiver is there for this item */
    return await_receipt(cl, &ref, ticket, deadline_ns);

fail:
    xichan__item_discard(cl, off);
    return err;
}

int xichan__chan_send_made(xichan_client *cl, xichan_chan_id c, uint32_t off, int rendezvous,
                           int64_t deadline_ns)
{
    struct xichan_objref ref;
    int err;

    if ((err = chan_ref(cl, c, &ref)) || (err = ensure_assoc(cl, &ref, XICHAN_BF_SEND))) {
        xichan__item_discard(cl, off);
        return err;
    }
    return send_made(cl, &ref, off, rendezvous, deadline_ns, NULL);
}

static int chan_send(xichan_client *cl, xichan_chan_id c, int fmt, const void *data, size_t len,
                     int unboundop, int rendezvous, int64_t deadline_ns)
{
    struct xichan_objref ref;
    uint32_t off;
    int err;

    /* Check the channel and our end first: a refusal must not cost a copy. */
    if ((err = chan_ref(cl, c, &ref)) || (err = ensure_assoc(cl, &ref, XICHAN_BF_SEND)) ||
        (err = xichan__item_make(cl, fmt, data, len, unboundop, deadline_ns, &off)))
        return err;
    return send_made(cl, &ref, off, rendezvous, deadline_ns, NULL);
}

int xichan_chan_send(xichan_client *cl, xichan_chan_id c, int fmt, const void *data, size_t len,
                     int unboundop, int64_t deadline_ns)
{
    return chan_send(cl, c, fmt, data, len, unboundop, 1, deadline_ns);
}

int xichan_chan_send_nowait(xichan_client *cl, xichan_chan_id c, int fmt, const void *data,
                            size_t len, int unboundop)
{
    return chan_send(cl, c, fmt, data, len, unboundop, 0, XICHAN_NOWAIT);
}

/* ------------------------------------------------- send in two steps */

/*
 * For event loops (xichan.h): the rendezvous of xichan_chan_send cut at
 * its wait.  The ticket is the item's fifo stamp; whether it was received
 * is read as await_receipt reads it, and a cancel withdraws as a timed-out
 * send does.
 */
int xichan_chan_send_start(xichan_client *cl, xichan_chan_id c, int fmt, const void *data,
                           size_t len, int unboundop, uint64_t *ticket)
{
    struct xichan_objref ref;
    uint32_t off, t = 0;
    int err;

    if (!ticket)
        return XICHAN_EINVAL;
    if ((err = chan_ref(cl, c, &ref)) || (err = ensure_assoc(cl, &ref, XICHAN_BF_SEND)) ||
        (err = xichan__item_make(cl, fmt, data, len, unboundop, XICHAN_NOWAIT, &off)))
        return err;
    err = send_made(cl, &ref, off, 0, XICHAN_NOWAIT, &t);
    if (err >= 0)
        *ticket = t;
    return err;
}

/* The channel of a ticket send_start gave, locked: 0, or XICHAN_EINVAL
 * (no such ticket), XICHAN_ENOTFOUND (destroyed) or a lock's error. */
static int lock_for_ticket(xichan_client *cl, xichan_chan_id c, uint64_t ticket,
                           struct xichan_objref *ref)
{
    int err;

    if (ticket > UINT32_MAX)
        return XICHAN_EINVAL;
    if ((err = chan_ref(cl, c, ref)))
        return err;
    return xichan__obj_lock(cl->shm, ref, cl->sid);
}

int xichan_chan_send_check(xichan_client *cl, xichan_chan_id c, uint64_t ticket)
{
    struct xichan_objref ref;
    int err;

    if ((err = lock_for_ticket(cl, c, ticket, &ref)))
        return err == XICHAN_ENOTFOUND ? XICHAN_ECLOSED : err; /* destroyed: dropped */
    if (xichan__fifo_has(cl->shm, ref.o, (uint32_t)ticket))
        err = XICHAN_EEMPTY;
    else
        err = ticket_taken(ref.o, (uint32_t)ticket) ? 0 : XICHAN_ECLOSED;
    xichan__obj_unlock(ref.o);
    return err;
}

int xichan_chan_send_cancel(xichan_client *cl, xichan_chan_id c, uint64_t ticket)
{
    struct xichan_objref ref;
    int err;

    if ((err = lock_for_ticket(cl, c, ticket, &ref)))
        return err == XICHAN_ENOTFOUND ? 0 : err; /* destroyed: not delivered */
    if (withdraw(cl, ref.o, (uint32_t)ticket))
        return 0;
    err = ticket_taken(ref.o, (uint32_t)ticket);
    xichan__obj_unlock(ref.o);
    return err;
}

/* -------------------------------------------------------------- recv */

int xichan_chan_recv(xichan_client *cl, xichan_chan_id c, xichan_item *item, int64_t deadline_ns)
{
    struct xichan_objref ref;
    struct xichan_obj *o;
    struct xichan_blk *b;
    uint32_t left;
    int err, timed_out = 0;

    if (!item)
        return XICHAN_EINVAL;
    *item = (xichan_item){0};
    if ((err = chan_ref(cl, c, &ref)))
        return err;
    o = ref.o;
    /* Any attempt associates the recv end, even on an empty channel. */
    if ((err = ensure_assoc(cl, &ref, XICHAN_BF_RECV)))
        return err;
    for (;;) {
        if ((err = xichan__obj_lock_until(cl->shm, &ref, cl->sid, deadline_ns, &cl->waiter)))
            return err;
        if (flags_of(o) & XICHAN_OF_CLOSED) {
            xichan__obj_unlock(o);
            return XICHAN_ECLOSED;
        }
        err = xichan__fifo_pop(cl->shm, o, cl->sid, &b);
        if (err == 0) {
            left = o->fifo.count;
            /* A closing channel closes once its last item is received. */
            if (!left && (flags_of(o) & XICHAN_OF_CLOSING))
                xichan__chan_mark_closed(cl->shm, o);
            xichan__obj_unlock(o);
            /* Every blocked sender checks whether this was its item. */
            xichan__obj_signal(cl->shm, o, XICHAN__EV_WRITABLE | (left ? XICHAN__EV_MORE : 0),
                               INT32_MAX);
            return xichan__item_deliver(cl, b, item);
        }
        if (err == XICHAN_EEMPTY && (flags_of(o) & XICHAN_OF_CLOSING)) {
            xichan__chan_mark_closed(cl->shm, o);
            err = XICHAN_ECLOSED;
        }
        if (err != XICHAN_EEMPTY || timed_out || deadline_ns == XICHAN_NOWAIT ||
            xichan_now_ns() >= deadline_ns) {
            xichan__obj_unlock(o);
            return err;
        }
        xa_add_relaxed(&o->receivers, 1); /* under the lock: send_nowait reads it */
        err = xichan__obj_sleep(cl, o, &o->put_seq, &o->getters, deadline_ns);
        xa_sub_relaxed(&o->receivers, 1);
        if (err == XICHAN_ETIMEDOUT)
            timed_out = 1;
        else if (err)
            return err;
    }
}

/* ------------------------------------------------------ close/release */

int xichan_chan_close(xichan_client *cl, xichan_chan_id c, int flags)
{
    struct xichan_objref ref;
    struct xichan_obj *o;
    uint32_t f;
    int err;

    if (flags & ~(XICHAN_END_SEND | XICHAN_END_RECV | XICHAN_CLOSE_FORCE))
        return XICHAN_EINVAL;
    if ((err = chan_ref(cl, c, &ref)) || (err = xichan__obj_lock(cl->shm, &ref, cl->sid)))
        return err;
    o = ref.o;
    f = flags_of(o);
    if (f & XICHAN_OF_CLOSED) {
        err = XICHAN_ECLOSED;
    } else if (o->fifo.count == 0) {
        xichan__chan_mark_closed(cl->shm, o);
    } else if (flags & XICHAN_CLOSE_FORCE) {
        /* A heap_lock it could not have dropped nothing: the channel stays open. */
        if ((err = xichan__fifo_drop_all(cl->shm, o, cl->sid)) != XICHAN_ELOCKED) {
            xichan__fault(XICHAN_FAULT_CHAN_CLOSE_DROPPED);
            xichan__chan_mark_closed(cl->shm, o);
        }
    } else if ((flags & (XICHAN_END_SEND | XICHAN_END_RECV)) == XICHAN_END_SEND) {
        if (f & XICHAN_OF_CLOSING) {
            err = XICHAN_ECLOSED;
        } else {
            xa_or_release(&o->flags, XICHAN_OF_CLOSING);
            xichan__obj_signal(cl->shm, o, XICHAN__EV_READABLE | XICHAN__EV_LOCKED, INT32_MAX);
        }
    } else {
        err = XICHAN_ENOTEMPTY;
    }
    xichan__obj_unlock(o);
    return err;
}

int xichan_chan_release(xichan_client *cl, xichan_chan_id c, int ends)
{
    struct xichan_objref ref;
    uint16_t flags, e = 0;
    int err;

    if (ends & ~(XICHAN_END_SEND | XICHAN_END_RECV))
        return XICHAN_EINVAL;
    if (!ends)
        ends = XICHAN_END_SEND | XICHAN_END_RECV;
    if (ends & XICHAN_END_SEND)
        e |= XICHAN_BF_SEND;
    if (ends & XICHAN_END_RECV)
        e |= XICHAN_BF_RECV;
    if ((err = chan_ref(cl, c, &ref)))
        return err;
    err = xichan__chan_release_ends(cl->shm, &ref, cl->sid, e, &flags);
    if (!err)
        cache_put(cl, &ref, flags);
    return err;
}

/* -------------------------------------------------------------- state */

/* Locks a channel that must not be closed (XICHAN_ECLOSED otherwise). */
static int lock_open(xichan_client *cl, xichan_chan_id c, struct xichan_objref *ref)
{
    int err;

    if ((err = chan_ref(cl, c, ref)) || (err = xichan__obj_lock(cl->shm, ref, cl->sid)))
        return err;
    if (flags_of(ref->o) & XICHAN_OF_CLOSED) {
        xichan__obj_unlock(ref->o);
        return XICHAN_ECLOSED;
    }
    return 0;
}

int64_t xichan_chan_count(xichan_client *cl, xichan_chan_id c)
{
    struct xichan_objref ref;
    int64_t n;
    int err;

    if ((err = lock_open(cl, c, &ref)))
        return err;
    n = ref.o->fifo.count;
    xichan__obj_unlock(ref.o);
    return n;
}

int xichan_chan_defaults(xichan_client *cl, xichan_chan_id c, int *unboundop)
{
    struct xichan_objref ref;
    int err;

    if ((err = chan_ref(cl, c, &ref)))
        return err;
    if (unboundop)
        *unboundop = ref.o->unboundop;
    return 0;
}

int xichan_chan_info_get(xichan_client *cl, xichan_chan_id c, xichan_chan_info *out)
{
    struct xichan_objref ref;
    uint32_t f;
    int err;

    if (!out)
        return XICHAN_EINVAL;
    memset(out, 0, sizeof(*out));
    if ((err = chan_ref(cl, c, &ref)))
        return err;
    if ((err = xichan__table_lock(cl->shm, cl->sid, XICHAN_NOWAIT)))
        return err;
    if ((err = xichan__obj_lock(cl->shm, &ref, cl->sid)) == 0) {
        f = flags_of(ref.o);
        out->closed = !!(f & XICHAN_OF_CLOSED);
        out->closing = !out->closed && (f & XICHAN_OF_CLOSING);
        out->open = !out->closed && !out->closing;
        out->count = out->closed ? 0 : ref.o->fifo.count;
        xichan__obj_unlock(ref.o);
        xichan__chan_count_ends(cl->shm, &ref, cl->sid, out);
    }
    xichan__table_unlock(cl->shm);
    return err;
}

int xichan_chan_sessions(xichan_client *cl, xichan_chan_id c, int end, uint32_t *sids, size_t cap)
{
    struct xichan_objref ref;
    uint32_t n = 0;
    int err;

    if ((end != XICHAN_END_SEND && end != XICHAN_END_RECV) || (!sids && cap))
        return XICHAN_EINVAL;
    if ((err = chan_ref(cl, c, &ref)))
        return err;
    if ((err = xichan__table_lock(cl->shm, cl->sid, XICHAN_NOWAIT)))
        return err;
    if ((err = xichan__obj_lock(cl->shm, &ref, cl->sid)) == 0) {
        if (flags_of(ref.o) & XICHAN_OF_CLOSED)
            err = XICHAN_ECLOSED;
        xichan__obj_unlock(ref.o);
    }
    if (!err)
        n = xichan__chan_end_sessions(cl->shm, &ref,
                                      end == XICHAN_END_SEND ? XICHAN_BF_SEND : XICHAN_BF_RECV,
                                      sids, cap);
    xichan__table_unlock(cl->shm);
    return err ? err : (int)n;
}
