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
 */
#include <stdlib.h>
#include <string.h>

#include "internal.h"

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

int xichan_list(xichan_client *cl, xichan_obj_info *out, size_t cap)
{
    struct xichan_shm *shm;
    uint64_t (*order)[2] = NULL;
    uint32_t n = 0;
    int err = xichan__client_ok(cl);

    if (err)
        return err;
    if (!out && cap)
        return XICHAN_EINVAL;
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
    out->daemon_pid = xa_load_relaxed(&shm->hdr->daemon_pid);
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
