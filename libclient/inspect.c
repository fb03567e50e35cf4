/*
 * inspect.c -- read-only views of a namespace: list, info, sessions, stats.
 *
 * These take table_lock, then each object's lock briefly (tag-lock-order),
 * so every record is a consistent snapshot of one object; the list as a
 * whole is a snapshot too, since creates and destroys need table_lock.
 * An object whose lock a stopped process holds is not waited for beyond
 * the short bound (tag-lock-bound): its record says LOCKED and by whom,
 * with what table_lock alone guards (id, kind, name, sessions).
 * Nothing here writes shared state, except the repairs the locks may run.
 *
 * xichan_sessions reads the session table with no lock.  The daemon is its
 * only writer, and it fills a slot before it stores LIVE with release, so a
 * slot read after an acquire load of LIVE is complete.  A slot that is
 * freed and reused while we copy it is caught by reading its state and sid
 * again after the copy: session ids wrap after 2^28 but skip ids a live or
 * cleaning session holds (sessions.c), so a slot showing the same sid
 * before and after is the same session.  The object counts come from one
 * pass over the bindings under table_lock.
 *
 * xichan__census reads a segment nobody serves (claimed: xichanctl's stop
 * --discard and cleanup) with no lock: a report of what it holds, for a
 * decision a person or the caller makes; the item counts are the fifos'
 * derived counts, which is all a report needs.
 */
#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

void xichan__census(struct xichan_shm *shm, struct xichan_census *c)
{
    memset(c, 0, sizeof(*c));
    for (uint32_t i = 0; i < shm->nobjects; i++) {
        const struct xichan_obj *o = &shm->objects[i];
        if (xa_load_acquire(&o->state) != XICHAN_OBJ_LIVE)
            continue;
        c->objects++;
        c->named += !!(xa_load_relaxed(&o->flags) & XICHAN_OF_NAMED);
        if (xichan__obj_has_fifo(o))
            c->items += o->fifo.count;
    }
    for (uint32_t i = 0; i < shm->nsessions; i++) {
        const struct xichan_session *s = &shm->sessions[i];
        uint32_t st = xa_load_acquire(&s->state);
        pid_t pid = (pid_t)s->pid;

        if (st == XICHAN_SESS_FREE || pid <= 0)
            continue;
        if (kill(pid, 0) == 0 || errno == EPERM) {
            if (c->sessions < sizeof(c->pids) / sizeof(c->pids[0]))
                c->pids[c->sessions] = pid;
            c->sessions++;
        }
    }
}

static int by_seq(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

    return x < y ? -1 : x > y;
}

/* Sessions bound to or associated with slot/gen.  needs table_lock */
static uint32_t count_sessions(struct xichan_shm *shm, uint32_t slot, uint32_t gen, uint32_t *sids,
                               size_t cap)
{
    uint32_t n = 0;

    for (uint32_t j = 0; j < shm->nbindings; j++) {
        const struct xichan_binding *b = &shm->bindings[j];
        if (b->sid && b->slot == slot && b->gen == gen) {
            if (sids && n < cap)
                sids[n] = b->sid;
            n++;
        }
    }
    return n;
}

/* One object's record, with its lock taken here.  needs table_lock */
static int snapshot(struct xichan_shm *shm, uint32_t i, uint32_t sid, xichan_obj_info *info)
{
    struct xichan_obj *o = &shm->objects[i];
    struct xichan_objref ref = {o, i, xa_load_acquire(&o->gen)};
    int err = xichan__obj_lock(shm, &ref, sid);

    if (err == XICHAN_EBROKEN || err == XICHAN_ELOCKED || err == XICHAN_ECORRUPT) {
        struct xichan_lock_holder h;
        /* What table_lock guards is still exact: what was set at creation
         * (id, kind, name, maxsize, defaults) and the bindings. */
        memset(info, 0, sizeof(*info));
        info->id = o->id;
        info->kind = o->kind;
        info->maxsize = o->maxsize;
        info->fmt = o->fmt;
        info->unboundop = o->unboundop;
        info->nbound = o->refcount;
        memcpy(info->name, o->name, sizeof(info->name) - 1);
        info->state = err == XICHAN_ELOCKED ? XICHAN_STATE_LOCKED : XICHAN_STATE_BROKEN;
        if (err == XICHAN_ELOCKED && xichan__lock_holder(&o->lock, &h) == 0)
            info->locked_by = (uint32_t)h.pid;
        info->nsessions = count_sessions(shm, i, ref.gen, NULL, 0);
        return 0;
    }
    if (err)
        return err;
    xichan__obj_fill_info(shm, o, info);
    xichan__obj_unlock(o);
    info->nsessions = count_sessions(shm, i, ref.gen, NULL, 0);
    return 0;
}

/* The checks of a call that fills up to cap records of out. */
static int list_args(xichan_client *cl, const void *out, size_t cap)
{
    int err = xichan__client_ok(cl);

    return err ? err : !out && cap ? XICHAN_EINVAL : 0;
}

int xichan_list(xichan_client *cl, xichan_obj_info *out, size_t cap)
{
    struct xichan_shm *shm;
    uint64_t (*order)[2] = NULL;
    uint32_t n = 0;
    int err = list_args(cl, out, cap);

    if (err)
        return err;
    shm = cl->shm;
    order = malloc(sizeof(*order) * (shm->nobjects ? shm->nobjects : 1));
    if (!order)
        return XICHAN_ENOMEM;
    if ((err = xichan__table_lock(shm, cl->sid, XICHAN_NOWAIT)))
        goto out;
    for (uint32_t i = 0; i < shm->nobjects; i++) {
        if (xa_load_acquire(&shm->objects[i].state) != XICHAN_OBJ_LIVE)
            continue;
        order[n][0] = shm->objects[i].seq;
        order[n][1] = i;
        n++;
    }
    qsort(order, n, sizeof(*order), by_seq);
    for (uint32_t k = 0; k < n && k < cap; k++)
        if ((err = snapshot(shm, (uint32_t)order[k][1], cl->sid, &out[k])))
            break;
    xichan__table_unlock(shm);
out:
    free(order);
    return err ? err : (int)n;
}

static int find_any(xichan_client *cl, int kind, uint64_t id, struct xichan_objref *ref)
{
    if (kind != XICHAN_KIND_QUEUE && kind != XICHAN_KIND_CHANNEL)
        return XICHAN_EINVAL;
    return xichan__resolve(cl, kind, id, ref);
}

int xichan_info(xichan_client *cl, int kind, uint64_t id, xichan_obj_info *out)
{
    struct xichan_objref ref;
    int err;

    if (!out)
        return XICHAN_EINVAL;
    if ((err = find_any(cl, kind, id, &ref)))
        return err;
    if ((err = xichan__table_lock(cl->shm, cl->sid, XICHAN_NOWAIT)))
        return err;
    err = snapshot(cl->shm, ref.slot, cl->sid, out);
    if (!err && (out->id != id || out->kind != kind))
        err = XICHAN_ENOTFOUND; /* destroyed and reused in between */
    xichan__table_unlock(cl->shm);
    return err;
}

/*
 * Copies one queued item, leaving it queued.  The object's lock is held
 * only for the walk and the copy, so the item may be taken a moment later;
 * out describes the copy in buf and owns nothing (its release is a no-op).
 */
int xichan_peek(xichan_client *cl, int kind, uint64_t id, uint64_t index, void *buf, size_t cap,
                xichan_item *out)
{
    struct xichan_objref ref;
    struct xichan_blk *b;
    int err;

    if (!out || (!buf && cap))
        return XICHAN_EINVAL;
    memset(out, 0, sizeof(*out));
    if ((err = find_any(cl, kind, id, &ref)) || (err = xichan__obj_lock(cl->shm, &ref, cl->sid)))
        return err;
    if ((err = xichan__fifo_nth(cl->shm, ref.o, index, &b)) == 0) {
        const struct xichan_itemhdr *it = xichan__item(b);
        uint16_t flags = xa_load_acquire(&it->flags);

        out->producer = it->producer;
        out->fmt = it->fmt;
        out->data = buf;
        if (flags & (XICHAN_IF_UNBOUND | XICHAN_IF_UNBOUND_ERR)) {
            /* What a getter would meet: UNBOUND, or (error) a failed get. */
            out->unbound = flags & XICHAN_IF_UNBOUND ? 1 : 2;
        } else {
            out->len = it->len;
            if (it->len <= cap)
                memcpy(buf, xichan__item_data(b), it->len);
            else
                err = XICHAN_E2BIG;
        }
    }
    xichan__obj_unlock(ref.o);
    return err;
}

int xichan_obj_sessions(xichan_client *cl, int kind, uint64_t id, uint32_t *sids, size_t cap)
{
    struct xichan_objref ref;
    uint32_t n;
    int err;

    if (!sids && cap)
        return XICHAN_EINVAL;
    if ((err = find_any(cl, kind, id, &ref)))
        return err;
    if ((err = xichan__table_lock(cl->shm, cl->sid, XICHAN_NOWAIT)))
        return err;
    n = count_sessions(cl->shm, ref.slot, ref.gen, sids, cap);
    xichan__table_unlock(cl->shm);
    return (int)n;
}

static int by_sid(const void *a, const void *b)
{
    uint32_t x = ((const xichan_session_info *)a)->sid, y = ((const xichan_session_info *)b)->sid;

    return x < y ? -1 : x > y;
}

int xichan_sessions(xichan_client *cl, xichan_session_info *out, size_t cap)
{
    struct xichan_shm *shm;
    xichan_session_info *rows;
    uint32_t n = 0;
    int err = list_args(cl, out, cap);

    if (err)
        return err;
    shm = cl->shm;
    if (!(rows = calloc(shm->nsessions ? shm->nsessions : 1, sizeof(*rows))))
        return XICHAN_ENOMEM;
    for (uint32_t i = 0; i < shm->nsessions; i++) {
        struct xichan_session *s = &shm->sessions[i];
        /* Acquire: pairs with the daemon's release store of LIVE (sessions.c). */
        uint32_t st = xa_load_acquire(&s->state), sid = s->sid;
        xichan_session_info *r = &rows[n];

        if (st != XICHAN_SESS_LIVE && !xichan__sess_ending(st))
            continue;
        r->sid = sid;
        r->pid = s->pid;
        r->uid = s->uid;
        r->start_ns = s->start_ns;
        memcpy(r->kind, s->kind, sizeof(r->kind));
        r->kind[sizeof(r->kind) - 1] = '\0';
        for (char *k = r->kind; *k; k++)
            if (*k < 0x20 || *k > 0x7E)
                *k = '?'; /* shm bytes are untrusted */
        /* Still the same session?  Else it ended while we copied: skip it. */
        atomic_thread_fence(memory_order_acquire);
        if (xa_load_relaxed(&s->state) == XICHAN_SESS_FREE || s->sid != sid)
            continue;
        r->state = st == XICHAN_SESS_LIVE ? XICHAN_SESSION_LIVE : XICHAN_SESSION_ENDING;
        n++;
    }
    qsort(rows, n, sizeof(*rows), by_sid);
    if (xichan__table_lock(shm, cl->sid, XICHAN_NOWAIT) == 0) { /* never wait on a stuck holder */
        for (uint32_t j = 0; j < shm->nbindings; j++) {
            xichan_session_info key = {.sid = shm->bindings[j].sid}, *r;
            if (key.sid && (r = bsearch(&key, rows, n, sizeof(*rows), by_sid)))
                r->nobjects++;
        }
        xichan__table_unlock(shm);
    } else {
        for (uint32_t i = 0; i < n; i++)
            rows[i].nobjects = -1;
    }
    if (cap && n)
        memcpy(out, rows, sizeof(*rows) * (n < cap ? n : cap));
    free(rows);
    return (int)n;
}

int xichan_stats_get(xichan_client *cl, xichan_stats *out)
{
    struct xichan_shm *shm;
    int err = xichan__client_ok(cl);

    if (err)
        return err;
    if (!out)
        return XICHAN_EINVAL;
    /* Our own cached blocks are free memory to whoever asks: give them back,
     * so that a process that drained what it made sees the heap empty. */
    (void)xichan__cache_flush(cl);
    shm = cl->shm;
    memset(out, 0, sizeof(*out));
    out->segment_size = shm->size;
    out->heap_size = shm->heap_size;
    out->max_objects = shm->nobjects;
    out->max_sessions = shm->nsessions;
    /* Acquire: pairs with the daemon's release store of its pid, made after
     * it stored its start time (xichand.c). */
    out->daemon_pid = xa_load_acquire(&shm->hdr->daemon_pid);
    out->daemon_start_ns = out->daemon_pid ? xa_load_relaxed(&shm->hdr->daemon_start_ns) : 0;
    out->created_ns = shm->hdr->created_ns;
    memcpy(out->segment_name, shm->name, sizeof(out->segment_name));
    if ((err = xichan__heap_lock(shm, cl->sid, XICHAN_NOWAIT)))
        return err;
    out->heap_used = shm->hdr->heap_used;
    xichan__heap_unlock(shm);
    out->heap_free = shm->heap_size - out->heap_used;
    for (uint32_t i = 0; i < shm->nobjects; i++)
        out->objects += xa_load_relaxed(&shm->objects[i].state) == XICHAN_OBJ_LIVE;
    for (uint32_t i = 0; i < shm->nsessions; i++)
        out->sessions += xa_load_relaxed(&shm->sessions[i].state) == XICHAN_SESS_LIVE;
    return 0;
}
