/*
 * objects.c -- the object table (queues and channels) and the bindings
 * that keep objects alive.
 *
 * An object lives in a fixed slot of the object table.  It is created bound
 * once to its creator; each (session, object) pair has at most one binding
 * entry, holding a count of binds and, for channels, the end-association
 * flags.  When the last bind goes -- by release, or because the session
 * ended -- the object is destroyed with its items, unless it is named: a
 * named object is kept by the namespace until destroyed explicitly.
 *
 * Locks: table_lock guards slot states, names, ids and bindings; each
 * object's own lock guards its fifo and flags.  Order: table_lock, then the
 * object's lock, then heap_lock (tag-lock-order).
 *
 * CRASH ARGUMENT (tag-table-commit).  Authoritative: slot state, gen, id,
 * flags; binding entries.  Derived: each object's refcount, recomputed from
 * the bindings by xichan__table_repair.
 *
 *   create  fill the slot (id from the counter, which never goes back, so
 *           a crash wastes an id but never reuses one), write the creator's
 *           binding, then the state store LIVE commits.  Die before it: the
 *           slot is FREE, and the binding points at a slot whose state is
 *           not LIVE, which the repair clears.
 *   bind    one store of the entry's count (or sid for a new entry)
 *           commits; the refcount is derived.
 *   destroy first the DYING flag, then bindings cleared, items dropped, gen
 *           bumped, and the state store FREE commits.  A repair that finds a
 *           DYING object finishes the destroy, so a crash in the middle never
 *           leaves a half-dead object that nothing would ever free.
 */
#include <string.h>

#include "internal.h"

/* ------------------------------------------------------------ repair */

/* Object lock repair: the fifo, then wake everyone to look again. */
static int obj_repair(struct xichan_shm *shm, void *arg)
{
    struct xichan_obj *o = arg;
    int err = xichan__obj_has_fifo(o) ? xichan__fifo_repair(shm, o) : 0;

    /* The dead holder may have changed state without notifying. */
    xichan__obj_signal(shm, o, XICHAN__EV_ALL | XICHAN__EV_LOCKED, 0);
    return err;
}

static inline uint32_t slot_of(const struct xichan_shm *shm, const struct xichan_obj *o)
{
    return (uint32_t)(o - shm->objects);
}

static int destroy_locked(struct xichan_shm *shm, struct xichan_obj *o, uint32_t sid);

int xichan__table_repair(struct xichan_shm *shm, void *unused)
{
    for (uint32_t i = 0; i < shm->nobjects; i++)
        shm->objects[i].refcount = shm->objects[i].inflight;
    for (uint32_t j = 0; j < shm->nbindings; j++) {
        struct xichan_binding *b = &shm->bindings[j];
        struct xichan_obj *o;

        if (!b->sid)
            continue;
        if (b->slot >= shm->nobjects) {
            b->sid = 0;
            continue;
        }
        o = &shm->objects[b->slot];
        if (xa_load_relaxed(&o->state) != XICHAN_OBJ_LIVE || xa_load_relaxed(&o->gen) != b->gen) {
            b->sid = 0;
            continue;
        }
        o->refcount += b->refs;
    }
    for (uint32_t i = 0; i < shm->nobjects; i++) {
        struct xichan_obj *o = &shm->objects[i];

        if (xa_load_relaxed(&o->state) == XICHAN_OBJ_LIVE &&
            (xa_load_relaxed(&o->flags) & XICHAN_OF_DYING)) {
            if (xichan__lock(shm, &o->lock, obj_repair, o, 0, XICHAN__LOCK_BOUNDED, NULL) == 0) {
                destroy_locked(shm, o, 0);
                xichan__obj_unlock(o);
            }
        }
    }
    return 0;
}

int xichan__table_lock(struct xichan_shm *shm, uint32_t sid, int64_t deadline_ns)
{
    return xichan__lock(shm, &shm->hdr->table_lock, xichan__table_repair, NULL, sid, deadline_ns,
                        NULL);
}

void xichan__table_unlock(struct xichan_shm *shm)
{
    xichan__unlock(&shm->hdr->table_lock);
}

/* ---------------------------------------------------------- bindings */

/* The entry for (sid, object), or NULL.  needs table_lock */
static struct xichan_binding *binding_find(struct xichan_shm *shm, uint32_t sid, uint32_t slot,
                                           uint32_t gen)
{
    for (uint32_t j = 0; j < shm->nbindings; j++) {
        struct xichan_binding *b = &shm->bindings[j];
        if (b->sid == sid && b->slot == slot && b->gen == gen)
            return b;
    }
    return NULL;
}

/* A new entry with the sid store last (its commit).  needs table_lock */
static struct xichan_binding *binding_new(struct xichan_shm *shm, uint32_t sid, uint32_t slot,
                                          uint32_t gen)
{
    if (xichan__fault_fail(XICHAN_FAULT_FAIL_BINDING))
        return NULL;
    for (uint32_t j = 0; j < shm->nbindings; j++) {
        struct xichan_binding *b = &shm->bindings[j];
        if (b->sid)
            continue;
        b->slot = slot;
        b->gen = gen;
        b->refs = 0;
        b->flags = 0;
        b->sid = sid;
        return b;
    }
    return NULL;
}

static void binding_free_if_unused(struct xichan_binding *b)
{
    if (b->refs == 0 && b->flags == 0)
        b->sid = 0;
}

/* Takes table_lock and checks ref is still live (else ENOTFOUND, unlocked). */
static int table_lock_live(struct xichan_shm *shm, const struct xichan_objref *ref, uint32_t sid)
{
    int err = xichan__table_lock(shm, sid, XICHAN_NOWAIT);

    if (err)
        return err;
    if (xa_load_relaxed(&ref->o->state) != XICHAN_OBJ_LIVE ||
        xa_load_relaxed(&ref->o->gen) != ref->gen) {
        xichan__table_unlock(shm);
        return XICHAN_ENOTFOUND;
    }
    return 0;
}

/* The entry for (sid, ref), made if missing; NULL when the table is full.
 * needs table_lock */
static struct xichan_binding *binding_get(struct xichan_shm *shm, uint32_t sid,
                                          const struct xichan_objref *ref)
{
    struct xichan_binding *b = binding_find(shm, sid, ref->slot, ref->gen);

    return b ? b : binding_new(shm, sid, ref->slot, ref->gen);
}

/* ------------------------------------------------------------ create */

int xichan__obj_create(struct xichan_shm *shm, uint32_t sid, int kind, int64_t maxsize, int fmt,
                       int unboundop, const char *name, uint64_t *id_out)
{
    struct xichan_obj *o = NULL;
    struct xichan_binding *b;
    uint64_t id;
    int err;

    if (kind < XICHAN_KIND_QUEUE || kind > XICHAN_KIND_BUFFER || fmt < 0 || fmt > 255 ||
        !XICHAN_UNBOUND_OK(unboundop))
        return XICHAN_EINVAL;
    if (name && (!name[0] || strlen(name) >= XICHAN_NAME_MAX))
        return name[0] ? XICHAN_ENAMETOOLONG : XICHAN_EINVAL;
    if (name && !xichan__name_ok(name))
        return XICHAN_EBADNAME;
    if ((err = xichan__table_lock(shm, sid, XICHAN_NOWAIT)))
        return err;
    if (name) {
        uint64_t other;
        if (xichan__obj_find_name(shm, kind, name, &other) == 0) {
            err = XICHAN_EEXIST;
            goto out;
        }
    }
    for (uint32_t i = 0; i < shm->nobjects; i++) {
        if (xa_load_relaxed(&shm->objects[i].state) == XICHAN_OBJ_FREE) {
            o = &shm->objects[i];
            break;
        }
    }
    if (!o || xichan__fault_fail(XICHAN_FAULT_FAIL_SLOT)) {
        err = XICHAN_ELIMIT;
        goto out;
    }
    id = kind == XICHAN_KIND_QUEUE     ? xa_add_relaxed(&shm->hdr->next_qid, 1)
         : kind == XICHAN_KIND_CHANNEL ? xa_add_relaxed(&shm->hdr->next_cid, 1)
                                       : xa_add_relaxed(&shm->hdr->next_bid, 1);
    o->id = id;
    o->seq = xa_add_relaxed(&shm->hdr->next_seq, 1);
    o->kind = (uint8_t)kind;
    o->fmt = (uint8_t)fmt;
    o->unboundop = (uint8_t)(unboundop ? unboundop : XICHAN_UNBOUND_REPLACE);
    xa_store_relaxed(&o->flags, name ? XICHAN_OF_NAMED : 0);
    o->maxsize = maxsize;
    memset(&o->fifo, 0, sizeof(o->fifo));
    o->fifo.last_popped = o->fifo.next_ticket - 1; /* nothing received yet */
    xa_store_relaxed(&o->getters, 0);
    xa_store_relaxed(&o->putters, 0);
    xa_store_relaxed(&o->receivers, 0);
    memset(o->name, 0, sizeof(o->name));
    if (name)
        memcpy(o->name, name, strlen(name));
    b = binding_new(shm, sid, slot_of(shm, o), xa_load_relaxed(&o->gen));
    if (!b) {
        err = XICHAN_ELIMIT;
        goto out;
    }
    b->refs = 1;
    o->refcount = 1;
    o->inflight = 0;
    if (kind == XICHAN_KIND_BUFFER) {
        /*
         * The block (RESERVED by the creator until now) becomes the object's.
         * A crash between this store and the commit below leaks the block:
         * the one window the daemon's sweeps do not cover.
         */
        struct xichan_blk *blk = xichan__blk(shm, (uint32_t)*id_out);
        if (!blk) {
            err = XICHAN_EINVAL;
            binding_free_if_unused((b->refs = 0, b));
            goto out;
        }
        o->fifo.head = (uint32_t)*id_out;
        xa_store_release(&blk->state, xichan__blk_word(XICHAN_BLK_OWNED, 0));
    }
    xichan__fault(XICHAN_FAULT_CREATE_SLOT);
    /* Commit (tag-table-commit); readers find the object with acquire loads. */
    xa_store_release(&o->state, XICHAN_OBJ_LIVE);
    *id_out = id;
out:
    xichan__table_unlock(shm);
    return err;
}

/* -------------------------------------------------------------- find */

int xichan__obj_find(struct xichan_shm *shm, int kind, uint64_t id, struct xichan_objref *ref)
{
    for (uint32_t i = 0; i < shm->nobjects; i++) {
        struct xichan_obj *o = &shm->objects[i];
        uint32_t gen = xa_load_acquire(&o->gen);

        /* Pairs with the release store of LIVE in create. */
        /* Queue and channel ids come from separate counters and may be equal. */
        if (xa_load_acquire(&o->state) != XICHAN_OBJ_LIVE || o->id != id || o->kind != kind)
            continue;
        ref->o = o;
        ref->slot = i;
        ref->gen = gen;
        return 0;
    }
    return XICHAN_ENOTFOUND;
}

/* needs nothing; a racing destroy only makes the answer stale */
int xichan__obj_find_name(struct xichan_shm *shm, int kind, const char *name, uint64_t *id)
{
    for (uint32_t i = 0; i < shm->nobjects; i++) {
        struct xichan_obj *o = &shm->objects[i];

        if (xa_load_acquire(&o->state) == XICHAN_OBJ_LIVE && o->kind == kind &&
            strncmp(o->name, name, XICHAN_NAME_MAX) == 0) {
            *id = o->id;
            return 0;
        }
    }
    return XICHAN_ENOTFOUND;
}

int xichan__obj_lock(struct xichan_shm *shm, const struct xichan_objref *ref, uint32_t sid)
{
    return xichan__obj_lock_until(shm, ref, sid, XICHAN_NOWAIT, NULL);
}

int xichan__obj_lock_until(struct xichan_shm *shm, const struct xichan_objref *ref, uint32_t sid,
                           int64_t deadline_ns, const struct xichan_waiter *w)
{
    struct xichan_obj *o = ref->o;
    int err = xichan__lock(shm, &o->lock, obj_repair, o, sid, deadline_ns, w);

    if (err)
        return err;
    if (xa_load_relaxed(&o->state) != XICHAN_OBJ_LIVE || xa_load_relaxed(&o->gen) != ref->gen) {
        xichan__unlock(&o->lock);
        return XICHAN_ENOTFOUND;
    }
    return 0;
}

void xichan__obj_unlock(struct xichan_obj *o)
{
    xichan__unlock(&o->lock);
}

/* ----------------------------------------------------------- destroy */

/* needs table_lock and the object's lock */
static int destroy_locked(struct xichan_shm *shm, struct xichan_obj *o, uint32_t sid)
{
    uint32_t slot = slot_of(shm, o), gen = xa_load_relaxed(&o->gen);
    struct xichan_blk *blk = xichan__obj_has_fifo(o) ? NULL : xichan__blk(shm, o->fifo.head);
    int err = 0, heap;

    if (blk && xichan__blk_state(xa_load_relaxed(&blk->state)) != XICHAN_BLK_OWNED)
        blk = NULL;
    /* heap_lock before any change: a destroy that cannot have it changes nothing. */
    heap = blk || (xichan__obj_has_fifo(o) && o->fifo.head);
    if (heap && (err = xichan__heap_lock(shm, sid, XICHAN_NOWAIT)))
        return err;
    xa_or_release(&o->flags, XICHAN_OF_DYING);
    for (uint32_t j = 0; j < shm->nbindings; j++) {
        struct xichan_binding *b = &shm->bindings[j];
        if (b->sid && b->slot == slot && b->gen == gen)
            b->sid = 0;
    }
    o->refcount = 0;
    o->inflight = 0;
    if (xichan__obj_has_fifo(o)) {
        if (heap)
            err = xichan__fifo_drop_all_locked(shm, o, sid);
    } else {
        if (blk)
            xichan__heap_free_locked(shm, blk);
        o->fifo.head = 0;
    }
    if (heap)
        xichan__heap_unlock(shm);
    xichan__fault(XICHAN_FAULT_DESTROY_DRAINED);
    xa_store_release(&o->gen, gen + 1);
    xa_store_relaxed(&o->flags, 0);
    xa_store_release(&o->state, XICHAN_OBJ_FREE); /* commit */
    /* Blocked callers wake, relock, and see the gen change: ENOTFOUND. */
    xichan__obj_signal(shm, o, XICHAN__EV_ALL | XICHAN__EV_LOCKED, 0);
    /* Wait-set registrations stay their owners' to free (waitset.c). */
    xa_store_release(&o->whead, 0);
    return err;
}

int xichan__obj_destroy(struct xichan_shm *shm, const struct xichan_objref *ref, uint32_t sid)
{
    int err;

    if ((err = xichan__table_lock(shm, sid, XICHAN_NOWAIT)))
        return err;
    if ((err = xichan__obj_lock(shm, ref, sid)) == 0) {
        err = destroy_locked(shm, ref->o, sid);
        xichan__obj_unlock(ref->o);
    }
    xichan__table_unlock(shm);
    return err;
}

/* ------------------------------------------------------ bind/release */

/* Destroys o if nothing keeps it.  needs table_lock */
static int maybe_destroy(struct xichan_shm *shm, const struct xichan_objref *ref, uint32_t sid)
{
    int err;

    if (ref->o->refcount > 0 || (xa_load_relaxed(&ref->o->flags) & XICHAN_OF_NAMED))
        return 0;
    if ((err = xichan__obj_lock(shm, ref, sid)))
        return err == XICHAN_ENOTFOUND ? 0 : err;
    err = destroy_locked(shm, ref->o, sid);
    xichan__obj_unlock(ref->o);
    return err;
}

int xichan__obj_bind(struct xichan_shm *shm, const struct xichan_objref *ref, uint32_t sid,
                     int delta)
{
    struct xichan_binding *b;
    int err;

    if ((err = table_lock_live(shm, ref, sid)))
        return err;
    if (delta > 0) {
        if (!(b = binding_get(shm, sid, ref))) {
            err = XICHAN_ELIMIT;
            goto out;
        }
        if (b->refs == UINT16_MAX) {
            err = XICHAN_ELIMIT;
            goto out;
        }
        b->refs++; /* commit */
        xichan__fault(XICHAN_FAULT_BIND_ENTRY);
        ref->o->refcount++;
    } else {
        b = binding_find(shm, sid, ref->slot, ref->gen);
        if (!b || b->refs == 0) {
            err = XICHAN_ENOTBOUND;
            goto out;
        }
        b->refs--; /* commit */
        binding_free_if_unused(b);
        xichan__fault(XICHAN_FAULT_BIND_ENTRY);
        ref->o->refcount--;
        err = maybe_destroy(shm, ref, sid);
    }
out:
    xichan__table_unlock(shm);
    return err;
}

/* ---------------------------------------------------- channel ends */

static int open_assoc(uint16_t f)
{
    return ((f & XICHAN_BF_SEND) && !(f & XICHAN_BF_SEND_REL)) ||
           ((f & XICHAN_BF_RECV) && !(f & XICHAN_BF_RECV_REL));
}

/* Closes o (channel) at once, leaving its items stranded.  needs o's lock */
void xichan__chan_mark_closed(struct xichan_shm *shm, struct xichan_obj *o)
{
    xa_or_release(&o->flags, XICHAN_OF_CLOSED);
    xichan__obj_signal(shm, o, XICHAN__EV_ALL | XICHAN__EV_LOCKED, 0);
}

/*
 * CPython's auto-close: once no session holds an open association on
 * either end, and one ever did, the channel is closed.  needs table_lock
 */
static int autoclose(struct xichan_shm *shm, const struct xichan_objref *ref, uint32_t sid)
{
    int err;

    if (ref->o->kind != XICHAN_KIND_CHANNEL ||
        !(xa_load_relaxed(&ref->o->flags) & XICHAN_OF_ASSOCIATED))
        return 0;
    for (uint32_t j = 0; j < shm->nbindings; j++) {
        const struct xichan_binding *b = &shm->bindings[j];
        if (b->sid && b->slot == ref->slot && b->gen == ref->gen && open_assoc(b->flags))
            return 0;
    }
    if ((err = xichan__obj_lock(shm, ref, sid)))
        return err == XICHAN_ENOTFOUND ? 0 : err;
    if (!(xa_load_relaxed(&ref->o->flags) & XICHAN_OF_CLOSED))
        xichan__chan_mark_closed(shm, ref->o);
    xichan__obj_unlock(ref->o);
    return 0;
}

int xichan__chan_assoc(struct xichan_shm *shm, const struct xichan_objref *ref, uint32_t sid,
                       uint16_t end, uint16_t *flags_out)
{
    uint16_t rel = end == XICHAN_BF_SEND ? XICHAN_BF_SEND_REL : XICHAN_BF_RECV_REL;
    struct xichan_binding *b;
    int err;

    if ((err = table_lock_live(shm, ref, sid)))
        return err;
    if (!(b = binding_get(shm, sid, ref))) {
        err = XICHAN_ELIMIT;
        goto out;
    }
    if (b->flags & rel) {
        err = XICHAN_ECLOSED;
    } else if (!(b->flags & end)) {
        b->flags |= end; /* commit */
        xa_or_release(&ref->o->flags, XICHAN_OF_ASSOCIATED);
    }
    *flags_out = b->flags;
out:
    xichan__table_unlock(shm);
    return err;
}

int xichan__chan_release_ends(struct xichan_shm *shm, const struct xichan_objref *ref, uint32_t sid,
                              uint16_t ends, uint16_t *flags_out)
{
    struct xichan_binding *b;
    uint16_t rel = 0;
    int err;

    if (ends & XICHAN_BF_SEND)
        rel |= XICHAN_BF_SEND_REL;
    if (ends & XICHAN_BF_RECV)
        rel |= XICHAN_BF_RECV_REL;
    if ((err = table_lock_live(shm, ref, sid)))
        return err;
    if (!(b = binding_get(shm, sid, ref))) {
        err = XICHAN_ELIMIT;
        goto out;
    }
    b->flags |= rel; /* commit */
    *flags_out = b->flags;
    err = autoclose(shm, ref, sid);
out:
    xichan__table_unlock(shm);
    return err;
}

/* Counts the associations of a channel.  needs table_lock */
void xichan__chan_count_ends(struct xichan_shm *shm, const struct xichan_objref *ref, uint32_t sid,
                             xichan_chan_info *info)
{
    for (uint32_t j = 0; j < shm->nbindings; j++) {
        const struct xichan_binding *b = &shm->bindings[j];
        uint16_t f = b->flags;
        int s, r, srel, rrel;

        if (!b->sid || b->slot != ref->slot || b->gen != ref->gen)
            continue;
        s = !!(f & XICHAN_BF_SEND);
        r = !!(f & XICHAN_BF_RECV);
        srel = s && (f & XICHAN_BF_SEND_REL);
        rrel = r && (f & XICHAN_BF_RECV_REL);
        info->num_send += s && !srel;
        info->num_send_released += srel;
        info->num_recv += r && !rrel;
        info->num_recv_released += rrel;
        info->num_both += s && r && !srel && !rrel;
        info->num_both_released += srel && rrel;
        info->num_both_send_released += s && r && srel && !rrel;
        info->num_both_recv_released += s && r && rrel && !srel;
        if (b->sid == sid) {
            info->send_associated = s;
            info->send_released = !!(f & XICHAN_BF_SEND_REL);
            info->recv_associated = r;
            info->recv_released = !!(f & XICHAN_BF_RECV_REL);
        }
    }
}

/* Sessions with an open association on end.  needs table_lock */
uint32_t xichan__chan_end_sessions(struct xichan_shm *shm, const struct xichan_objref *ref,
                                   uint16_t end, uint32_t *sids, size_t cap)
{
    uint16_t rel = end == XICHAN_BF_SEND ? XICHAN_BF_SEND_REL : XICHAN_BF_RECV_REL;
    uint32_t n = 0;

    for (uint32_t j = 0; j < shm->nbindings; j++) {
        const struct xichan_binding *b = &shm->bindings[j];
        if (b->sid && b->slot == ref->slot && b->gen == ref->gen && (b->flags & end) &&
            !(b->flags & rel)) {
            if (sids && n < cap)
                sids[n] = b->sid;
            n++;
        }
    }
    return n;
}

int xichan__obj_inflight(struct xichan_shm *shm, const struct xichan_objref *ref, uint32_t sid,
                         int delta)
{
    int err;

    if (delta != 1 && delta != -1)
        return XICHAN_EINVAL;
    if ((err = table_lock_live(shm, ref, sid)))
        return err;
    if (delta > 0) {
        ref->o->inflight++; /* commit */
        ref->o->refcount++;
    } else if (ref->o->inflight == 0) {
        err = XICHAN_ENOTBOUND;
    } else {
        ref->o->inflight--; /* commit */
        ref->o->refcount--;
        err = maybe_destroy(shm, ref, sid);
    }
    xichan__table_unlock(shm);
    return err;
}

int xichan__bindings_drop_session(struct xichan_shm *shm, uint32_t sid, uint32_t my_sid,
                                  int close_orphans)
{
    int err = 0;

    for (uint32_t j = 0; j < shm->nbindings; j++) {
        struct xichan_binding *b = &shm->bindings[j];
        struct xichan_objref ref;

        if (b->sid != sid || b->slot >= shm->nobjects)
            continue;
        ref.o = &shm->objects[b->slot];
        ref.slot = b->slot;
        ref.gen = b->gen;
        if (ref.o->refcount >= b->refs)
            ref.o->refcount -= b->refs;
        b->sid = 0; /* commit: the whole entry goes at once */
        if (xa_load_relaxed(&ref.o->state) == XICHAN_OBJ_LIVE &&
            xa_load_relaxed(&ref.o->gen) == ref.gen) {
            int e = maybe_destroy(shm, &ref, my_sid);
            /* Its associations went with the entry (CPython's at-exit
             * release); only an unbind closes what that leaves unused. */
            if (!e && close_orphans && xa_load_relaxed(&ref.o->state) == XICHAN_OBJ_LIVE &&
                xa_load_relaxed(&ref.o->gen) == ref.gen)
                e = autoclose(shm, &ref, my_sid);
            if (e && !err)
                err = e;
        }
    }
    return err;
}

/* -------------------------------------------------------------- info */

void xichan__obj_fill_info(struct xichan_shm *shm, struct xichan_obj *o, xichan_obj_info *info)
{
    uint32_t flags = xa_load_relaxed(&o->flags);

    memset(info, 0, sizeof(*info));
    info->id = o->id;
    info->kind = o->kind;
    info->state = (flags & XICHAN_OF_CLOSED)    ? XICHAN_STATE_CLOSED
                  : (flags & XICHAN_OF_CLOSING) ? XICHAN_STATE_CLOSING
                                                : XICHAN_STATE_OPEN;
    info->maxsize = o->maxsize;
    info->count = xichan__obj_has_fifo(o) ? o->fifo.count : 0;
    info->bytes = xichan__obj_has_fifo(o) ? o->fifo.bytes : (uint64_t)o->maxsize;
    info->nbound = o->refcount;
    info->fmt = o->fmt;
    info->unboundop = o->unboundop;
    memcpy(info->name, o->name, sizeof(info->name));
    info->name[sizeof(info->name) - 1] = '\0';
    if (xichan__obj_has_fifo(o)) {
        info->puts = xa_load_relaxed(&o->fifo.puts);
        info->gets = xa_load_relaxed(&o->fifo.gets);
        info->put_bytes = xa_load_relaxed(&o->fifo.put_bytes);
    }
}
