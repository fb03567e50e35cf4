/*
 * queue.c -- the public queue API over the object table (objects.c), the
 * shared item code (items.c, fifo.c) and the futex waits (wait.c).
 *
 * Waiting follows tag-wait-protocol (wait.c): a getter reads put_seq under
 * the queue's lock, raises the getters hint, unlocks and sleeps on put_seq;
 * a putter pushes under the lock and then notifies put_seq.  Putters of a
 * bounded queue wait on get_seq the same way.  A woken getter that leaves
 * items behind passes the wake on, so one wake per put is enough even when
 * a woken waiter times out or is killed before it takes the item; the
 * daemon also wakes every waiter after a session dies (sessions.c).
 *
 * This file mutates shared state only through fifo.c and objects.c, whose
 * crash arguments cover it.  One window of its own: a put that dies after
 * making its item and before publishing it leaves a RESERVED block, which
 * the daemon reclaims; put() had not returned, so nothing committed is lost.
 */
#include <stdint.h>
#include <string.h>

#include "internal.h"

static int queue_ref(xichan_client *cl, xichan_queue_id q, struct xichan_objref *ref)
{
    return xichan__resolve(cl, XICHAN_KIND_QUEUE, q.id, ref);
}

/* The queue, resolved and locked (unlock with xichan__obj_unlock). */
static int queue_lock(xichan_client *cl, xichan_queue_id q, struct xichan_objref *ref)
{
    int err = queue_ref(cl, q, ref);

    return err ? err : xichan__obj_lock(cl->shm, ref, cl->sid);
}

/* The same, and its item count: a negative code, or the count with the
 * queue locked. */
static int64_t queue_lock_count(xichan_client *cl, xichan_queue_id q, struct xichan_objref *ref)
{
    int err = queue_lock(cl, q, ref);

    return err ? err : (int64_t)ref->o->fifo.count;
}

static int is_full(const struct xichan_obj *o)
{
    return o->maxsize > 0 && (int64_t)o->fifo.count >= o->maxsize;
}

/* ---------------------------------------------------------- lifetime */

int xichan_queue_create(xichan_client *cl, const xichan_queue_opts *opts, xichan_queue_id *out)
{
    xichan_queue_opts def = {0};

    if (!opts)
        opts = &def;
    return xichan__create(cl, XICHAN_KIND_QUEUE, opts->maxsize, opts->fmt, opts->unboundop,
                          opts->name, out ? &out->id : NULL);
}

int xichan_queue_open(xichan_client *cl, const char *name, xichan_queue_id *out)
{
    return xichan__open_named(cl, XICHAN_KIND_QUEUE, name, out ? &out->id : NULL);
}

int xichan_queue_destroy(xichan_client *cl, xichan_queue_id q)
{
    return xichan__lifecycle(cl, XICHAN_KIND_QUEUE, q.id, XICHAN__DESTROY);
}

int xichan_queue_bind(xichan_client *cl, xichan_queue_id q)
{
    return xichan__lifecycle(cl, XICHAN_KIND_QUEUE, q.id, XICHAN__BIND);
}

int xichan_queue_unbind(xichan_client *cl, xichan_queue_id q)
{
    return xichan__lifecycle(cl, XICHAN_KIND_QUEUE, q.id, XICHAN__UNBIND);
}

int xichan_queue_release(xichan_client *cl, xichan_queue_id q)
{
    return xichan_queue_unbind(cl, q);
}

/* --------------------------------------------------------------- put */

/* Publishes the made item at off into the queue ref names; discards it on
 * failure.  ticket (may be NULL) gets the item's fifo ticket. */
static int put_made(xichan_client *cl, const struct xichan_objref *rp, uint32_t off,
                    int64_t deadline_ns, uint32_t *ticket)
{
    struct xichan_objref ref = *rp;
    struct xichan_obj *o = ref.o;
    int err, timed_out = 0;

    xichan__fault(XICHAN_FAULT_PUT_RESERVED);
    for (;;) {
        if ((err = xichan__obj_lock_until(cl->shm, &ref, cl->sid, deadline_ns, &cl->waiter)))
            break;
        if (!is_full(o)) {
            if ((err = xichan__item_publish(cl, o, off))) {
                xichan__obj_unlock(o);
                break;
            }
            if (ticket) /* stamped by the push, under the lock */
                *ticket = xichan__item(xichan__blk(cl->shm, off))->ticket;
            xichan__obj_unlock(o);
            xichan__obj_signal(cl->shm, o, XICHAN__EV_READABLE, 1);
            return 0;
        }
        if (timed_out || deadline_ns == XICHAN_NOWAIT || xichan_now_ns() >= deadline_ns) {
            xichan__obj_unlock(o);
            err = XICHAN_EFULL;
            break;
        }
        err = xichan__obj_sleep(cl, o, &o->get_seq, &o->putters, deadline_ns);
        if (err == XICHAN_ETIMEDOUT)
            timed_out = 1; /* look once more, then give up */
        else if (err)
            break;
    }
    xichan__item_discard(cl, off);
    return err;
}

int xichan__queue_put_made(xichan_client *cl, xichan_queue_id q, uint32_t off, int64_t deadline_ns)
{
    struct xichan_objref ref;
    int err;

    if ((err = queue_ref(cl, q, &ref))) {
        xichan__item_discard(cl, off);
        return err;
    }
    return put_made(cl, &ref, off, deadline_ns, NULL);
}

int xichan_queue_put(xichan_client *cl, xichan_queue_id q, int fmt, const void *data, size_t len,
                     int unboundop, int64_t deadline_ns)
{
    struct xichan_objref ref;
    uint32_t off;
    int err;

    /* Check the queue first: a bad id must not cost a copy of the item. */
    if ((err = queue_ref(cl, q, &ref)) ||
        (err = xichan__item_make(cl, fmt, data, len, unboundop, deadline_ns, &off)))
        return err;
    return put_made(cl, &ref, off, deadline_ns, NULL);
}

/* ----------------------------------------------------------- hand-off */

#define HANDOFF_POLL_MS 10

/*
 * The put, then a wait until the item is no longer queued.  The item's
 * ticket comes from its own header, read under the lock right after the
 * push, so nothing has to look for "our" item.  "No longer queued" is exact
 * for a queue (xichan__fifo_has): items leave from the head, by a purge or
 * destroy, or by their producer's withdrawal -- ours, here.  The wait polls
 * every HANDOFF_POLL_MS (xichan__wait on a private word, and the interrupt
 * callback asked after each period) rather than sleeping on get_seq: a getter wakes
 * one waiter there (n = 1), and a hand-off waiter must not swallow the wake
 * a putter blocked on a full queue needs.
 *
 * Crash: the put commits as any put does; a hand-off killed while it waits
 * leaves an ordinary queued item, and a withdrawal is fifo.c's take.
 */
int xichan_queue_handoff(xichan_client *cl, xichan_queue_id q, int fmt, const void *data,
                         size_t len, int unboundop, int64_t deadline_ns)
{
    struct xichan_objref ref;
    struct xichan_blk *b;
    xichan_atomic_u32 never = 0; /* nothing bumps it: xichan__wait is the timer */
    uint32_t off, ticket = 0;
    int err, stop = 0; /* XICHAN_EINTR once the interrupt callback asked */

    if ((err = queue_ref(cl, q, &ref)) ||
        (err = xichan__item_make(cl, fmt, data, len, unboundop, deadline_ns, &off)) ||
        (err = put_made(cl, &ref, off, deadline_ns, &ticket)))
        return err;
    for (;;) {
        int64_t now = xichan_now_ns(), until;

        if ((err = xichan__obj_lock(cl->shm, &ref, cl->sid)))
            return err; /* destroyed (with the item), or broken */
        if (!xichan__fifo_has(cl->shm, ref.o, ticket)) {
            xichan__obj_unlock(ref.o);
            return 0;
        }
        if (stop || now >= deadline_ns) {
            /* Withdraw it, unless a getter took it after all. */
            if (xichan__fifo_take(cl->shm, ref.o, ticket, cl->sid, &b) != 0) {
                xichan__obj_unlock(ref.o);
                return 0;
            }
            xichan__obj_unlock(ref.o);
            xichan__item_discard(cl, xichan__blk_off(cl->shm, b));
            xichan__obj_signal(cl->shm, ref.o, XICHAN__EV_WRITABLE, 1); /* a slot came free */
            return stop ? stop : XICHAN_ETIMEDOUT;
        }
        xichan__obj_unlock(ref.o);
        until = deadline_ns - now > HANDOFF_POLL_MS * 1000000ll ? now + HANDOFF_POLL_MS * 1000000ll
                                                                : deadline_ns;
        /* Ends after the poll period (or at the deadline): look again.  A
         * period that ends at our own deadline skips the callback in
         * xichan__wait, so it is asked here. */
        if (xichan__wait(&never, 0, until, &cl->waiter) == XICHAN_EINTR ||
            (cl->waiter.check && cl->waiter.check(cl->waiter.arg)))
            stop = XICHAN_EINTR;
    }
}

/* --------------------------------------------------------------- get */

/*
 * Takes the oldest item, waiting until the deadline: a get, or with hold a
 * lease (lease.c), whose item goes back if this session ends first.
 * A getter that sleeps is counted in o->receivers, and on a queue a
 * session watches for demand (XICHAN_OF_DEMAND, lease.c) it wakes that
 * watcher first.
 */
int xichan__queue_take(xichan_client *cl, xichan_queue_id q, xichan_item *item,
                       int64_t deadline_ns, int hold)
{
    struct xichan_objref ref;
    struct xichan_obj *o;
    struct xichan_blk *b;
    uint32_t left;
    int err, timed_out = 0;

    if (!item)
        return XICHAN_EINVAL;
    *item = (xichan_item){0};
    if ((err = queue_ref(cl, q, &ref)))
        return err;
    o = ref.o;
    for (;;) {
        if ((err = xichan__obj_lock_until(cl->shm, &ref, cl->sid, deadline_ns, &cl->waiter)))
            return err;
        err = hold ? xichan__fifo_hold(cl->shm, o, cl->sid, &b)
                   : xichan__fifo_pop(cl->shm, o, cl->sid, &b);
        if (err == 0) {
            left = o->fifo.count;
            xichan__fault(XICHAN_FAULT_GET_LEASED);
            xichan__obj_unlock(o);
            xichan__obj_signal(cl->shm, o, XICHAN__EV_WRITABLE | (left ? XICHAN__EV_MORE : 0), 1);
            return xichan__item_deliver(cl, b, item);
        }
        if (err != XICHAN_EEMPTY || timed_out || deadline_ns == XICHAN_NOWAIT ||
            xichan_now_ns() >= deadline_ns) {
            xichan__obj_unlock(o);
            return err;
        }
        if (hold) {
            /* Only our own items are queued: a wake we took was for a getter. */
            if (o->fifo.count && xa_load_relaxed(&o->getters))
                xichan__wake(&o->put_seq, 1);
        } else {
            xa_add_relaxed(&o->receivers, 1); /* under the lock: lease.c's demand reads it */
            if (xa_load_relaxed(&o->flags) & XICHAN_OF_DEMAND) {
                xa_add_release(&o->get_seq, 1); /* pairs with the watcher's read under the lock */
                xichan__wake(&o->get_seq, INT32_MAX);
            }
        }
        err = xichan__obj_sleep(cl, o, &o->put_seq, &o->getters, deadline_ns);
        if (!hold)
            xa_sub_relaxed(&o->receivers, 1);
        if (err == XICHAN_ETIMEDOUT)
            timed_out = 1;
        else if (err)
            return err;
    }
}

int xichan_queue_get(xichan_client *cl, xichan_queue_id q, xichan_item *item, int64_t deadline_ns)
{
    return xichan__queue_take(cl, q, item, deadline_ns, 0);
}

/* ----------------------------------------------------------- batches */

#define BATCH_CHUNK 256 /* blocks allocated per heap_lock */

int xichan_queue_put_many(xichan_client *cl, xichan_queue_id q, const xichan_iov *items, size_t n,
                          int unboundop, int64_t deadline_ns)
{
    struct xichan_objref ref;
    struct xichan_obj *o;
    uint64_t lens[BATCH_CHUNK];
    uint32_t offs[BATCH_CHUNK];
    size_t done = 0;
    int err, r, timed_out = 0;

    if ((err = queue_ref(cl, q, &ref)))
        return err;
    if ((!items && n) || n > INT32_MAX || !XICHAN_UNBOUND_OK(unboundop))
        return XICHAN_EINVAL;
    o = ref.o;
    while (done < n) {
        size_t k = n - done < BATCH_CHUNK ? n - done : BATCH_CHUNK, pushed = 0;

        for (size_t i = 0; i < k; i++) {
            const xichan_iov *v = &items[done + i];
            if (v->fmt < 0 || v->fmt > 255 || (!v->data && v->len) || v->len > UINT32_MAX) {
                err = XICHAN_EINVAL;
                goto out;
            }
            lens[i] = v->len;
        }
        /* Room for the whole chunk, or else for as many of its first items
         * as fit (at least one), waiting in a full heap until the deadline:
         * a chunk too big for the heap at once still goes in piece by piece. */
        if ((r = xichan__heap_reserve(cl->shm, cl->sid, lens, k, offs, 1, XICHAN_NOWAIT, NULL)) ==
            XICHAN_ENOSPC)
            r = xichan__heap_reserve(cl->shm, cl->sid, lens, k, offs, 0, deadline_ns, &cl->waiter);
        if (r < 0) {
            err = r;
            goto out;
        }
        k = (size_t)r;
        /* Fill with no lock held (reserve -> fill -> publish). */
        for (size_t i = 0; i < k; i++) {
            struct xichan_blk *b = xichan__blk(cl->shm, offs[i]);
            struct xichan_itemhdr *it;
            if (!b) { /* scribbled since it was reserved */
                (void)xichan__heap_free_many(cl->shm, offs, k, cl->sid);
                err = XICHAN_ECORRUPT;
                goto out;
            }
            it = xichan__item(b);
            it->len = (uint32_t)lens[i];
            it->producer = cl->sid;
            it->fmt = (uint8_t)items[done + i].fmt;
            it->unboundop = (uint8_t)unboundop;
            xa_store_relaxed(&it->flags, 0);
            if (lens[i])
                memcpy(xichan__item_data(b), items[done + i].data, lens[i]);
        }
        while (pushed < k) {
            if ((err = xichan__obj_lock_until(cl->shm, &ref, cl->sid, deadline_ns, &cl->waiter)))
                break;
            while (pushed < k && !is_full(o) && !(err = xichan__item_publish(cl, o, offs[pushed])))
                pushed++;
            if (err) {
                xichan__obj_unlock(o);
                xichan__obj_signal(cl->shm, o, XICHAN__EV_READABLE, (int)k);
                break;
            }
            if (pushed == k || !is_full(o)) {
                xichan__obj_unlock(o);
                xichan__obj_signal(cl->shm, o, XICHAN__EV_READABLE, (int)k);
                continue;
            }
            if (timed_out || deadline_ns == XICHAN_NOWAIT || xichan_now_ns() >= deadline_ns) {
                xichan__obj_unlock(o);
                xichan__obj_signal(cl->shm, o, XICHAN__EV_READABLE, (int)k);
                err = XICHAN_EFULL;
                break;
            }
            xichan__obj_signal(cl->shm, o, XICHAN__EV_READABLE, (int)k); /* wake getters for what is in */
            err = xichan__obj_sleep(cl, o, &o->get_seq, &o->putters, deadline_ns);
            if (err == XICHAN_ETIMEDOUT)
                timed_out = 1, err = 0;
            else if (err)
                break;
        }
        done += pushed;
        if (pushed < k) {
            (void)xichan__heap_free_many(cl->shm, offs + pushed, k - pushed, cl->sid);
            break;
        }
    }
out:
    return done ? (int)done : err;
}

int xichan_queue_get_many(xichan_client *cl, xichan_queue_id q, xichan_item *items, size_t max,
                          int64_t deadline_ns)
{
    struct xichan_objref ref;
    struct xichan_obj *o;
    struct xichan_blk *b;
    size_t k = 0;
    int err, timed_out = 0, unbound_err = 0;
    uint32_t want = max > XICHAN_DEMAND_MAX ? XICHAN_DEMAND_MAX : (uint32_t)max;

    if (!items || max == 0 || max > INT32_MAX)
        return XICHAN_EINVAL;
    if ((err = queue_ref(cl, q, &ref)))
        return err;
    o = ref.o;
    for (;;) {
        if ((err = xichan__obj_lock_until(cl->shm, &ref, cl->sid, deadline_ns, &cl->waiter)))
            return err;
        while (k < max && o->fifo.head) {
            struct xichan_blk *h = xichan__blk(cl->shm, o->fifo.head);
            /* An UNBOUND_ERROR item is reported alone, by the call it heads. */
            if (h && (xa_load_relaxed(&xichan__item(h)->flags) & XICHAN_IF_UNBOUND_ERR)) {
                if (k)
                    break;
                unbound_err = 1;
            }
            if ((err = xichan__fifo_pop(cl->shm, o, cl->sid, &b)))
                break;
            items[k].blk_ = xichan__blk_off(cl->shm, b);
            k++;
            if (unbound_err)
                break;
        }
        if (k || err != 0 || timed_out || deadline_ns == XICHAN_NOWAIT ||
            xichan_now_ns() >= deadline_ns) {
            uint32_t left = o->fifo.count;
            xichan__obj_unlock(o);
            if (!k)
                return err ? err : XICHAN_EEMPTY;
            xichan__obj_signal(cl->shm, o, XICHAN__EV_WRITABLE | (left ? XICHAN__EV_MORE : 0),
                               (int)k);
            break;
        }
        /* As in xichan__queue_take, counting the items it wants (lease.c). */
        xa_add_relaxed(&o->receivers, want);
        if (xa_load_relaxed(&o->flags) & XICHAN_OF_DEMAND) {
            xa_add_release(&o->get_seq, 1);
            xichan__wake(&o->get_seq, INT32_MAX);
        }
        err = xichan__obj_sleep(cl, o, &o->put_seq, &o->getters, deadline_ns);
        xa_sub_relaxed(&o->receivers, want);
        if (err == XICHAN_ETIMEDOUT)
            timed_out = 1;
        else if (err)
            return err;
    }
    for (size_t i = 0; i < k; i++) {
        err = xichan__item_deliver(cl, xichan__blk(cl->shm, (uint32_t)items[i].blk_), &items[i]);
        if (err) /* only an UNBOUND_ERROR item, alone in its batch */
            return err;
    }
    return (int)k;
}

void xichan_items_release(xichan_item *items, size_t n)
{
    uint32_t offs[BATCH_CHUNK];
    xichan_client *cl = NULL;
    size_t k = 0;

    for (size_t i = 0; i <= n; i++) {
        /* Flush a chunk when it is full, at the end, or when the client changes. */
        if (k && (i == n || k == BATCH_CHUNK || (items[i].cl_ && items[i].cl_ != cl))) {
            /* As xichan_item_release, k at a time. */
            if (xichan__client_ok(cl) == 0) {
                if (!(xa_load_relaxed(&cl->refs) & XICHAN__CL_CLOSED))
                    (void)xichan__heap_free_many(cl->shm, offs, k, cl->sid);
                xichan__client_unref(cl, (uint32_t)k);
            }
            k = 0;
        }
        if (i == n)
            break;
        if (!items[i].cl_ || !items[i].blk_)
            continue;
        cl = items[i].cl_;
        offs[k++] = (uint32_t)items[i].blk_;
        memset(&items[i], 0, sizeof(items[i]));
    }
}

/* ------------------------------------------------------------- purge */

/*
 * Drops every queued item through fifo.c's drop_all, which unlinks the
 * head one item at a time (tag-fifo-commit: each unlink is one commit), so
 * a purger killed half-way has dropped a prefix of the queue and left the
 * rest queued and whole; the item it held LEASED is the daemon's to
 * reclaim.  In-flight references the dropped items carried stay counted, as
 * for any item dropped unread (xichan_obj_inflight).
 */
int64_t xichan_queue_purge(xichan_client *cl, xichan_queue_id q)
{
    struct xichan_objref ref;
    int64_t n = queue_lock_count(cl, q, &ref);
    int err;

    if (n < 0)
        return n;
    err = xichan__fifo_drop_all(cl->shm, ref.o, cl->sid);
    xichan__obj_unlock(ref.o);
    /* Room for every putter blocked on a full queue, and for wait sets. */
    xichan__obj_signal(cl->shm, ref.o, XICHAN__EV_WRITABLE, INT32_MAX);
    return err ? err : n;
}

/* ------------------------------------------------------------- state */

int64_t xichan_queue_count(xichan_client *cl, xichan_queue_id q)
{
    struct xichan_objref ref;
    int64_t n = queue_lock_count(cl, q, &ref);

    if (n >= 0)
        xichan__obj_unlock(ref.o);
    return n;
}

int xichan_queue_full(xichan_client *cl, xichan_queue_id q)
{
    struct xichan_objref ref;
    int err, full;

    if ((err = queue_lock(cl, q, &ref)))
        return err;
    full = is_full(ref.o);
    xichan__obj_unlock(ref.o);
    return full;
}

int xichan_queue_defaults(xichan_client *cl, xichan_queue_id q, int64_t *maxsize, int *fmt,
                          int *unboundop)
{
    struct xichan_objref ref;
    int err;

    if ((err = queue_lock(cl, q, &ref)))
        return err;
    if (maxsize)
        *maxsize = ref.o->maxsize;
    if (fmt)
        *fmt = ref.o->fmt;
    if (unboundop)
        *unboundop = ref.o->unboundop;
    xichan__obj_unlock(ref.o);
    return 0;
}
