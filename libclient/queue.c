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

#include "internal.h"

static int queue_ref(xichan_client *cl, xichan_queue_id q, struct xichan_objref *ref)
{
    return xichan__resolve(cl, XICHAN_KIND_QUEUE, q.id, ref);
}

static int is_full(const struct xichan_obj *o)
{
    return o->maxsize > 0 && (int64_t)o->fifo.count >= o->maxsize;
}

/* ---------------------------------------------------------- lifetime */

int xichan_queue_create(xichan_client *cl, const xichan_queue_opts *opts, xichan_queue_id *out)
{
    xichan_queue_opts def = {0};
    int err = xichan__client_ok(cl);

    if (err)
        return err;
    if (!out)
        return XICHAN_EINVAL;
    if (!opts)
        opts = &def;
    return xichan__obj_create(cl->shm, cl->sid, XICHAN_KIND_QUEUE, opts->maxsize, opts->fmt,
                              opts->unboundop, opts->name, &out->id);
}

int xichan_queue_open(xichan_client *cl, const char *name, xichan_queue_id *out)
{
    int err = xichan__client_ok(cl);

    if (err)
        return err;
    if (!name || !out)
        return XICHAN_EINVAL;
    return xichan__obj_find_name(cl->shm, XICHAN_KIND_QUEUE, name, &out->id);
}

int xichan_queue_destroy(xichan_client *cl, xichan_queue_id q)
{
    struct xichan_objref ref;
    int err = queue_ref(cl, q, &ref);

    return err ? err : xichan__obj_destroy(cl->shm, &ref, cl->sid);
}

int xichan_queue_bind(xichan_client *cl, xichan_queue_id q)
{
    struct xichan_objref ref;
    int err = queue_ref(cl, q, &ref);

    return err ? err : xichan__obj_bind(cl->shm, &ref, cl->sid, +1);
}

int xichan_queue_release(xichan_client *cl, xichan_queue_id q)
{
    struct xichan_objref ref;
    int err = queue_ref(cl, q, &ref);

    return err ? err : xichan__obj_bind(cl->shm, &ref, cl->sid, -1);
}

/* --------------------------------------------------------------- put */

int xichan__queue_put_made(xichan_client *cl, xichan_queue_id q, uint32_t off, int64_t deadline_ns)
{
    struct xichan_objref ref;
    struct xichan_obj *o;
    int err, timed_out = 0;

    if ((err = queue_ref(cl, q, &ref)))
        goto out;
    o = ref.o;
    xichan__fault(XICHAN_FAULT_PUT_RESERVED);
    for (;;) {
        if ((err = xichan__obj_lock(cl->shm, &ref, cl->sid)))
            break;
        if (!is_full(o)) {
            xichan__item_publish(cl, o, off);
            xichan__obj_unlock(o);
            xichan__notify(&o->put_seq, &o->getters, 1);
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
out:
    xichan__item_discard(cl, off);
    return err;
}

int xichan_queue_put(xichan_client *cl, xichan_queue_id q, int fmt, const void *data, size_t len,
                     int unboundop, int64_t deadline_ns)
{
    struct xichan_objref ref;
    uint32_t off;
    int err;

    /* Check the queue first: a bad id must not cost a copy of the item. */
    if ((err = queue_ref(cl, q, &ref)) ||
        (err = xichan__item_make(cl, fmt, data, len, unboundop, &off)))
        return err;
    return xichan__queue_put_made(cl, q, off, deadline_ns);
}

/* --------------------------------------------------------------- get */

int xichan_queue_get(xichan_client *cl, xichan_queue_id q, xichan_item *item, int64_t deadline_ns)
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
        if ((err = xichan__obj_lock(cl->shm, &ref, cl->sid)))
            return err;
        err = xichan__fifo_pop(cl->shm, o, cl->sid, &b);
        if (err == 0) {
            left = o->fifo.count;
            xichan__fault(XICHAN_FAULT_GET_LEASED);
            xichan__obj_unlock(o);
            xichan__notify(&o->get_seq, &o->putters, 1);
            if (left && xa_load_relaxed(&o->getters))
                xichan__wake(&o->put_seq, 1); /* pass the wake on */
            return xichan__item_deliver(cl, b, item);
        }
        if (err != XICHAN_EEMPTY || timed_out || deadline_ns == XICHAN_NOWAIT ||
            xichan_now_ns() >= deadline_ns) {
            xichan__obj_unlock(o);
            return err;
        }
        err = xichan__obj_sleep(cl, o, &o->put_seq, &o->getters, deadline_ns);
        if (err == XICHAN_ETIMEDOUT)
            timed_out = 1;
        else if (err)
            return err;
    }
}

/* ------------------------------------------------------------- state */

int64_t xichan_queue_count(xichan_client *cl, xichan_queue_id q)
{
    struct xichan_objref ref;
    int64_t n;
    int err;

    if ((err = queue_ref(cl, q, &ref)) || (err = xichan__obj_lock(cl->shm, &ref, cl->sid)))
        return err;
    n = ref.o->fifo.count;
    xichan__obj_unlock(ref.o);
    return n;
}

int xichan_queue_full(xichan_client *cl, xichan_queue_id q)
{
    struct xichan_objref ref;
    int err, full;

    if ((err = queue_ref(cl, q, &ref)) || (err = xichan__obj_lock(cl->shm, &ref, cl->sid)))
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

    if ((err = queue_ref(cl, q, &ref)) || (err = xichan__obj_lock(cl->shm, &ref, cl->sid)))
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
