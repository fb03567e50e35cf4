/*
 * sessions.c -- the session table, and what happens when a session ends.
 *
 * A session is one participant: a C client or one Python interpreter.  The
 * daemon is the only writer of the session table (one thread, no lock);
 * clients only read their own slot -- except each slot's cache_gate, the
 * lock of the session's block cache (items.c, alloc.c tag-cache-steal),
 * which the daemon zeroes before the slot goes LIVE.
 *
 * SESSION IDS (tag-sid-reuse).  Ids are 28 bits (they share the blocks'
 * state word with the state, shm_layout.h), 1..XICHAN_SID_MAX, from
 * hdr->next_sid.  A namespace whose clients come and go at 1000/s uses them
 * up in three days, and the counter outlives daemon restarts, so the
 * counter wraps: decision, a new session never fails for want of an id.
 * The next id is the counter's next value (0 and values past the maximum,
 * which only a scribble or the wrap produce, restart it at 1) that no
 * LIVE or ending (CLEANING, UNBINDING) slot holds.  At most nsessions - 1 other slots are in
 * use when one is free, so at most nsessions candidates are tried: the
 * search is capped by the geometry, whatever the counter says.  The one
 * refusal left, XICHAN_ELIMIT, means the table is full.
 *
 * Why an id may be reused once its slot is FREE: the slot goes FREE only
 * when the cleanup below completed, and that leaves no record that any
 * code acts on by sid.
 *   - bindings and channel associations (sid, under table_lock): step 2
 *     dropped them all.  A broken table_lock lets the slot go FREE with
 *     entries left, but then nothing reads bindings any more: every
 *     reader takes table_lock and gets XICHAN_EBROKEN.
 *   - RESERVED and LEASED blocks (owner in the state word, freed by their
 *     owner or by step 3): step 3 freed every one; if it fails, for any
 *     reason, the slot stays ending and its id stays taken.
 *   - queued items (producer in the item header and as the QUEUED block's
 *     owner): the only code that selects items by producer is step 1,
 *     which skips items already settled (KEPT, UNBOUND, UNBOUND_ERR), and
 *     step 1 settled (or removed) every one in every object it could lock,
 *     so a later session with the same id that ends does not touch them.
 *     Items of old ids left unsettled sit in broken objects, which no one
 *     can lock again.  A QUEUED block's owner field is never compared
 *     with a sid (frees and reclaims look at RESERVED and LEASED only).
 *   - reattach (server.c) matches slot, sid, LIVE state and pid, and two
 *     live sessions never share an id.
 * What is lost: xichan_item.producer of an item queued before the wrap
 * may equal the id of a session that started after it (2^28 sessions
 * later).  It is documented as the producer's id, not as a unique key.
 *
 * HOW A SESSION ENDS decides what happens to the items it put.  In CPython
 * an item's data belongs to the interpreter that put it, so the item is
 * "unbound" when that interpreter goes.  Here an item is a self-contained
 * copy in the segment that belongs to no process, and users of a
 * cross-process queue expect what was put to be delivered.  So:
 *
 *   CLEANING   the process exited or died (EOF, the pidfd, a dead pid found
 *              at adoption), or a plain xichan_client_close: every item the
 *              session put stays deliverable as it is, whatever its
 *              unbound op (step 1 marks it KEPT), and releasing its channel
 *              associations never auto-closes a channel;
 *   UNBINDING  an explicit unbind (xichan_client_close_unbind, which the
 *              Python binding uses when a subinterpreter is destroyed while
 *              its process lives on): CPython's rules -- each item gets its
 *              unbound op, and a channel left with no open association is
 *              closed.
 *
 * Either way the session's bindings go, and an unnamed object that nothing
 * else binds is destroyed with its items, as CPython destroys an object
 * whose last reference goes.  One state store records both "ended" and
 * how, so a cleanup rerun by the next daemon does the same thing.
 *
 * Ending a session runs xichan__session_cleanup in a daemon worker thread:
 *
 *   0. the items it held by lease go back to their queues, in order
 *      (lease.c); if that fails the cleanup stops there, so nothing held
 *      is freed, and is retried.  Then its wait-set registrations and
 *      wait sets go (waitset.c);
 *   1. every object, under its lock: settle each item the session put and
 *      nobody settled yet (fifo.c: KEPT, or the unbound op), then wake all
 *      waiters -- a waiter that was woken and then killed may have
 *      swallowed a wake meant for others.  Taking the lock also repairs an
 *      object whose lock the dead session held;
 *   2. under table_lock: drop the session's bindings and associations,
 *      destroying objects that nothing keeps any more, auto-closing
 *      channels only when UNBINDING (objects.c);
 *   3. under heap_lock: free every block the session still had reserved,
 *      leased or cached (alloc.c), and wake whoever waits for room.  This
 *      must come after step 1: a put that died between linking its block
 *      and marking it QUEUED leaves a linked RESERVED block, and step 1's
 *      lock repair re-marks it QUEUED before step 3 could free it;
 *   4. the slot's state store FREE commits the end.
 *
 * No step waits for a lock beyond the short bound (tag-lock-bound): a
 * stopped process holding one makes the cleanup return XICHAN_ELOCKED,
 * after step 1 went over every other object, with the slot still
 * CLEANING; the daemon runs the others' cleanups and retries this one
 * later (server.c).  Steps 2 and 3 wait for a complete step 1.
 *
 * CRASH ARGUMENT.  Each step is idempotent (flags are set, not toggled;
 * bindings already dropped are not found again; reclaimed blocks are FREE),
 * and the slot stays ending (CLEANING or UNBINDING) until step 4.  A daemon
 * that dies during a cleanup leaves an ending slot, and the next daemon runs the whole
 * cleanup again when it adopts the segment -- the state, CLEANING or
 * UNBINDING, tells it which kind; until then the slot's id is
 * not handed out again (tag-sid-reuse), so nothing the half-cleaned
 * session owns can be mistaken for a new session's.  Opening: the counter
 * moves past an id before the slot is written and the LIVE store commits;
 * a daemon that dies in between has only skipped an id.
 */
#include <string.h>
#include <time.h>

#include "internal.h"

/* 1 if a session that has not finished ending holds id. */
static int sid_in_use(const struct xichan_shm *shm, uint32_t id)
{
    for (uint32_t i = 0; i < shm->nsessions; i++) {
        const struct xichan_session *s = &shm->sessions[i];
        if (s->sid == id && xa_load_relaxed(&s->state) != XICHAN_SESS_FREE)
            return 1;
    }
    return 0;
}

/* The next session id no live or cleaning session holds (tag-sid-reuse);
 * 0 only if all nsessions candidates are taken, which a free slot rules
 * out.  Daemon loop thread only: the counter has this one writer. */
static uint32_t next_free_sid(struct xichan_shm *shm)
{
    for (uint32_t tries = 0; tries < shm->nsessions; tries++) {
        uint32_t id = xa_load_relaxed(&shm->hdr->next_sid);

        if (id == 0 || id > XICHAN_SID_MAX)
            id = 1; /* the wrap */
        xa_store_relaxed(&shm->hdr->next_sid, id + 1);
        if (!sid_in_use(shm, id))
            return id;
    }
    return 0;
}

int xichan__session_new(struct xichan_shm *shm, pid_t pid, uid_t uid, const char *kind,
                        uint32_t *slot, uint32_t *sid)
{
    struct timespec now;

    if (xichan__fault_fail(XICHAN_FAULT_FAIL_SESSION))
        return XICHAN_ELIMIT;
    for (uint32_t i = 0; i < shm->nsessions; i++) {
        struct xichan_session *s = &shm->sessions[i];
        uint32_t id;

        if (xa_load_relaxed(&s->state) != XICHAN_SESS_FREE)
            continue;
        if (!(id = next_free_sid(shm)))
            return XICHAN_ELIMIT; /* not reached: see tag-sid-reuse */
        s->sid = id;
        s->pid = (uint32_t)pid;
        s->uid = (uint32_t)uid;
        clock_gettime(CLOCK_REALTIME, &now);
        s->start_ns = (uint64_t)now.tv_sec * 1000000000u + (uint64_t)now.tv_nsec;
        memset(s->kind, 0, sizeof(s->kind));
        strncpy(s->kind, kind && kind[0] ? kind : "c", sizeof(s->kind) - 1);
        xa_store_relaxed(&s->cache_gate, 0); /* an empty block cache (items.c) */
        xichan__fault(XICHAN_FAULT_SESSION_FILLED);
        /* Commit; pairs with acquire loads by xichanctl and the client. */
        xa_store_release(&s->state, XICHAN_SESS_LIVE);
        *slot = i;
        *sid = id;
        return 0;
    }
    return XICHAN_ELIMIT;
}

int xichan__session_ending(struct xichan_shm *shm, uint32_t slot, uint32_t sid, int how)
{
    struct xichan_session *s;

    if (slot >= shm->nsessions)
        return XICHAN_ENOTFOUND;
    s = &shm->sessions[slot];
    /* The sid check: a stale notice (a ghost of an adopted segment, a
     * second end) must never end whoever holds the slot now. */
    if (xa_load_relaxed(&s->state) != XICHAN_SESS_LIVE || s->sid != sid)
        return XICHAN_ENOTFOUND;
    xa_store_release(&s->state,
                     how == XICHAN_ENDED_UNBIND ? XICHAN_SESS_UNBINDING : XICHAN_SESS_CLEANING);
    return 0;
}

/* Step 1 for one object. */
static int settle_object(struct xichan_shm *shm, uint32_t i, uint32_t sid, uint32_t my_sid,
                         int apply_ops)
{
    struct xichan_obj *o = &shm->objects[i];
    struct xichan_objref ref = {o, i, xa_load_acquire(&o->gen)};
    int err;

    if (xa_load_acquire(&o->state) != XICHAN_OBJ_LIVE || !xichan__obj_has_fifo(o))
        return 0;
    if ((err = xichan__obj_lock_until(shm, &ref, my_sid, XICHAN_NOWAIT, NULL)))
        return err == XICHAN_ENOTFOUND ? 0 : err;
    err = xichan__fifo_unbind(shm, o, sid, my_sid, apply_ops);
    xichan__obj_unlock(o);
    xichan__obj_signal(shm, o, XICHAN__EV_ALL, 0);
    return err < 0 ? err : 0;
}

int xichan__session_cleanup(struct xichan_shm *shm, uint32_t slot, uint32_t unused_sid)
{
    struct xichan_session *s;
    uint64_t nfreed;
    uint32_t sid, state;
    int err = 0, e, unbind;

    if (slot >= shm->nsessions)
        return XICHAN_EINVAL;
    s = &shm->sessions[slot];
    state = xa_load_acquire(&s->state);
    if (!xichan__sess_ending(state))
        return XICHAN_EINVAL;
    unbind = state == XICHAN_SESS_UNBINDING;
    sid = s->sid;
    /* Step 0a: items it held by lease go back to their queues (lease.c). */
    if ((err = xichan__leases_return(shm, sid)))
        return err;
    /* Step 0b: its wait-set registrations and wait sets (waitset.c). */
    if ((e = xichan__waitset_drop_session(shm, sid)) && e != XICHAN_EBROKEN && !err)
        err = e;
    /*
     * Blocks unlinked on the way (removed items, items of destroyed objects)
     * are leased to the ended session itself, not to the cleaner: if the
     * cleaner dies half-way, step 3 of the rerun frees them.
     */
    /* A broken object is beyond help; the rest still gets cleaned. */
    for (uint32_t i = 0; i < shm->nobjects; i++)
        if ((e = settle_object(shm, i, sid, sid, unbind)) && e != XICHAN_EBROKEN && !err)
            err = e;
    xichan__fault(XICHAN_FAULT_CLEANUP_OBJECTS);
    if (err == XICHAN_ELOCKED)
        return err; /* retry later: steps 2 and 3 come after a complete step 1 */
    if ((e = xichan__table_lock(shm, sid, XICHAN_NOWAIT)) == 0) {
        e = xichan__bindings_drop_session(shm, sid, sid, unbind);
        xichan__table_unlock(shm);
    }
    xichan__fault(XICHAN_FAULT_CLEANUP_BINDINGS);
    if (e && e != XICHAN_EBROKEN && !err)
        err = e;
    if ((e = xichan__heap_reclaim(shm, sid, &nfreed)) && !err)
        err = e;
    /* Only a complete cleanup frees the slot; otherwise the next daemon retries. */
    if (!err)
        xa_store_release(&s->state, XICHAN_SESS_FREE);
    return err;
}
