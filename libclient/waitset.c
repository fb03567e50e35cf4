/*
 * waitset.c -- waiting for the first of many queues and channels, in one
 * thread or through a file descriptor (xichan_waitset_*, xichan.h).
 *
 * DESIGN
 *
 * A wait set is a slot in the segment (struct xichan_wset: a futex word,
 * a sleeper hint, 4096 ready bits under a 64-bit summary) plus, per
 * member, a registration (struct xichan_wreg) linked into its object's
 * chain (obj->whead).  xichan__obj_signal (wait.c), after waking the
 * object's blocked callers, calls xichan__waitset_signal, which walks the
 * object's chain -- the wait sets that watch this object, never the
 * members of a set -- and for each registration whose events match sets
 * the member's bit, bumps the set's seq and wakes it if it sleeps.  An
 * object nobody watches costs its signals one load (whead == 0).
 *
 * The owner takes the bits (exchange with 0) after reading seq and before
 * sleeping on it, so a bit set after the exchange comes with a bump after
 * the read: FUTEX_WAIT returns at once (tag-wait-protocol, as in wait.c).
 * The bits only say "look": each flagged member's object is locked and
 * read, and only what is true now is reported (level-triggered).  A member
 * reported ready stays on the process-local recheck list and is checked
 * again by the next wait, so what the caller did not drain is reported
 * again; a member found not ready leaves the list until its bit is set
 * again.  The cost of a wait is the members flagged or still ready, not
 * the size of the set (scripts/bench/run, part c_waitset: a set of 1000
 * queues answers a ping-pong as fast as a set of one).
 *
 * THE FILE DESCRIPTOR.  Decision: an eventfd written by one helper thread
 * per set that sleeps on the set's futex word.  The alternatives:
 *   - the daemon forwarding wakes: a socket round trip per event and the
 *     daemon in every data path, which the design keeps it out of;
 *   - a socket per waiter that notifiers send a datagram to (iceoryx2's
 *     way): every putting process must find and open every waiter's
 *     socket, a pathname lookup per event (or fds cached per peer), and a
 *     name in the runtime dir to clean up after a crash;
 *   - io_uring's futex wait with an eventfd attached: no thread, but Linux
 *     6.7 and liburing 2.5 or later, which CI machines do not promise.
 * The helper thread costs one extra wake-up on the path (futex -> helper
 * -> eventfd -> the loop's epoll); a notifier's cost is the same
 * FUTEX_WAKE a blocked get already needs, and only when the set sleeps.
 * Measured (c_waitset, 64-byte C round trip, the echo waiting in a set, 2
 * vCPUs shared with other load; p50): pinned across CPUs, blocking get
 * 0.87 us, wait set 1.15 us, poll() on its fd 1.30 us; unpinned 4.3, 4.5
 * and 8.2 us -- the fd path within 2x of a blocking get.  A socket per
 * waiter would replace the helper's hop with a sendto whose wake is the
 * bench's pipe row (4.3 us unpinned, 27 us when the reader truly sleeps),
 * paid by every notifier.  An idle set's helper sleeps in FUTEX_WAIT with
 * no timeout: no CPU (py_aio: 1000 tasks awaiting on 100 queues used
 * 0.5 ms of CPU in 2 s).  The fd is level-triggered: a wait that reports
 * members leaves it readable; one that finds nothing clears it.
 *
 * CRASH ARGUMENT.  Authoritative: wset.owner, wreg.sid (claimed by CAS,
 * freed by one store), the whead chain (one store links, one unlinks,
 * both under the object's lock).  The bits, seq and sleepers are hints.
 *   add     claim a registration (CAS sid), fill it, then link it under the
 *           object's lock.  Die before the link (XICHAN_FAULT_WSET_CLAIMED):
 *           an unlinked entry owned by the dead session; the daemon's
 *           cleanup (xichan__waitset_drop_session) frees it.
 *   remove  unlink under the lock and bump obj->wver, then store sid 0.
 *           Die between: an unlinked entry still owned, freed as above.
 *           A lock a stopped process holds past the deadline: the entry
 *           stays linked and owned (never free while linked), and the
 *           remove or the cleanup fails, to be tried again.
 *   death   a process killed while registered leaves linked entries: until
 *           its session's cleanup unlinks them, notifiers of those objects
 *           set bits in a set nobody reads (and a FUTEX_WAKE if its sleeper
 *           hint stayed high).  Cleanup frees them and the set, so nothing
 *           is left that slows or blocks anyone.
 *   destroy of a watched object clears whead (objects.c) after signalling
 *           EV_ALL; entries stay owned by their sessions, which free them.
 * Notifiers walk a chain without the lock: a removal concurrent with a
 * walk bumps wver, and a walk that sees wver move (or an entry that is not
 * this object's) walks again, under the lock after a few tries.  A walk is
 * capped by the table size and every index is bounds-checked, so a
 * scribbled chain gives spurious wakes, never a crash or a loop.
 */
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "internal.h"

struct member {
    uint8_t used, kind, pending;   /* pending: on the recheck list */
    unsigned events;
    uint64_t id, user;
    uint32_t reg;                  /* registration index */
    uint32_t oslot, ogen;          /* where the object was */
    uint32_t seen_popped;          /* channels: last_popped when last reported */
};

struct xichan_waitset {
    xichan_client *cl;
    pid_t pid;                     /* getpid() at create: another pid = a forked child */
    pthread_mutex_t mu;
    uint32_t slot, gen;
    struct xichan_wset *w;
    struct member *m;              /* XICHAN_WSET_MEMBERS */
    uint16_t *recheck;             /* members to check at the next wait */
    uint32_t nrecheck;
    uint32_t nused;
    int efd;                       /* -1 until xichan_waitset_fd */
    pthread_t helper;
    xichan_atomic_u32 stop;
    xichan_atomic_u32 armed;       /* 1: efd was written and not yet drained */
};

/* ------------------------------------------------------ signal side */

/* Marks member in set slot ws (generation wgen) and wakes it. */
static void mark(struct xichan_shm *shm, uint32_t ws, uint32_t wgen, uint32_t member)
{
    struct xichan_wset *w;
    uint64_t bit = 1ull << (member % 64);

    if (ws >= shm->nwsets || member >= XICHAN_WSET_MEMBERS)
        return;
    w = &shm->wsets[ws];
    if (xa_load_relaxed(&w->gen) != wgen)
        return; /* a stale registration of a freed set */
    if (!(xa_load_relaxed(&w->ready[member / 64]) & bit))
        atomic_fetch_or_explicit(&w->ready[member / 64], bit, memory_order_relaxed);
    /* Release: the owner that sees the summary bit (acquire) sees the word's. */
    atomic_fetch_or_explicit(&w->summary, 1ull << (member / 64), memory_order_release);
    xichan__notify(&w->seq, &w->sleepers, INT32_MAX);
}

/* One walk of o's chain; 0 if it was stable (wver unchanged, all entries o's). */
static int walk(struct xichan_shm *shm, struct xichan_obj *o, unsigned ev)
{
    uint32_t slot = (uint32_t)(o - shm->objects);
    uint32_t v0 = xa_load_acquire(&o->wver), cap = shm->nwregs, r;
    int stable = 1;

    for (r = xa_load_acquire(&o->whead); r && cap--; ) {
        struct xichan_wreg *g;

        if (r > shm->nwregs)
            return -1; /* scribbled */
        g = &shm->wregs[r - 1];
        if (g->obj != slot) {
            stable = 0; /* freed and reused under us */
            break;
        }
        if ((g->events & ev) || (ev & XICHAN__EV_ALL))
            mark(shm, g->wset, g->wgen, g->member);
        r = xa_load_acquire(&g->next);
    }
    /* Pairs with the release bump in unlink(): a removal during the walk shows. */
    xa_fence_seq_cst();
    return stable && xa_load_relaxed(&o->wver) == v0 ? 0 : -1;
}

void xichan__waitset_signal(struct xichan_shm *shm, struct xichan_obj *o, unsigned ev)
{
    unsigned what = ev & (XICHAN__EV_READABLE | XICHAN__EV_WRITABLE | XICHAN__EV_ALL);

    if (!what || !xa_load_acquire(&o->whead))
        return;
    if (ev & XICHAN__EV_LOCKED) {
        (void)walk(shm, o, what); /* nobody can unlink while we hold the lock */
        return;
    }
    for (int tries = 0; tries < 8; tries++)
        if (walk(shm, o, what) == 0)
            return;
    /* Removals keep racing us: walk under the lock, with a bound. */
    struct xichan_objref ref = {o, (uint32_t)(o - shm->objects), xa_load_acquire(&o->gen)};
    if (xichan__obj_lock_until(shm, &ref, 0, xichan_now_ns() + 1000000000ll, NULL) == 0) {
        (void)walk(shm, o, what);
        xichan__obj_unlock(o);
    }
}

/* --------------------------------------------------- registrations */

/* Unlinks registration r (1-based) from o's chain.  needs o's lock */
static void unlink_reg(struct xichan_shm *shm, struct xichan_obj *o, uint32_t r)
{
    xichan_atomic_u32 *link = &o->whead;
    uint32_t cap = shm->nwregs, cur;

    while ((cur = xa_load_relaxed(link)) && cap--) {
        if (cur > shm->nwregs)
            return;
        if (cur == r) {
            xa_store_release(link, xa_load_relaxed(&shm->wregs[r - 1].next)); /* commit */
            xa_add_release(&o->wver, 1);
            return;
        }
        link = &shm->wregs[cur - 1].next;
    }
}

/*
 * Unlinks (if linked) and frees registration index i, if sid still owns it
 * (the daemon may have freed it for a session that ended, and another
 * session claimed it since).  An entry still linked is never freed: if the
 * object's lock cannot be had by the deadline (a stopped holder), the entry
 * stays sid's and the error is returned, for a later try or the daemon's
 * cleanup to finish.  Destroyed (ENOTFOUND): destroy cleared the chain.
 * Broken: nobody changes the object again, so nobody walks its chain.
 */
static int drop_reg(struct xichan_shm *shm, uint32_t i, uint32_t sid)
{
    struct xichan_wreg *g = &shm->wregs[i];
    struct xichan_objref ref;
    int err = 0;

    if (xa_load_acquire(&g->sid) != sid)
        return 0;
    if (g->obj < shm->nobjects) {
        ref.o = &shm->objects[g->obj];
        ref.slot = g->obj;
        ref.gen = g->ogen;
        err = xichan__obj_lock_until(shm, &ref, sid, xichan_now_ns() + 10000000000ll, NULL);
        if (err == 0) {
            unlink_reg(shm, ref.o, i + 1);
            xichan__obj_unlock(ref.o);
        } else if (err != XICHAN_ENOTFOUND && err != XICHAN_EBROKEN) {
            return err;
        }
    }
    g->obj = UINT32_MAX;
    xa_store_release(&g->sid, 0); /* commit: free */
    return err == XICHAN_EBROKEN ? err : 0;
}

int xichan__waitset_drop_session(struct xichan_shm *shm, uint32_t sid)
{
    int err = 0, e;

    for (uint32_t i = 0; i < shm->nwregs; i++)
        if (xa_load_acquire(&shm->wregs[i].sid) == sid &&
            (e = drop_reg(shm, i, sid)) && e != XICHAN_EBROKEN && !err)
            err = e;
    for (uint32_t i = 0; i < shm->nwsets; i++) {
        struct xichan_wset *w = &shm->wsets[i];
        if (xa_load_acquire(&w->owner) == sid) {
            xa_add_release(&w->gen, 1);
            xa_store_release(&w->owner, 0); /* commit: free */
        }
    }
    return err;
}

/* Claims a free registration by CAS, scanning from a rotating start. */
static int claim_reg(struct xichan_shm *shm, uint32_t sid, uint32_t *out)
{
    static xichan_atomic_u32 hint;
    uint32_t n = shm->nwregs, start = xa_load_relaxed(&hint) % n;

    for (uint32_t k = 0; k < n; k++) {
        uint32_t i = (start + k) % n, zero = 0;
        if (xa_load_relaxed(&shm->wregs[i].sid) == 0 &&
            atomic_compare_exchange_strong_explicit(&shm->wregs[i].sid, &zero, sid,
                                                    memory_order_acq_rel, memory_order_relaxed)) {
            xa_store_relaxed(&hint, i + 1);
            *out = i;
            return 0;
        }
    }
    return XICHAN_ELIMIT;
}

/* ----------------------------------------------------------- checks */

/* What is true of member mb now: XICHAN_EV_* (not masked). */
static unsigned check(xichan_waitset *ws, struct member *mb)
{
    xichan_client *cl = ws->cl;
    struct xichan_objref ref;
    struct xichan_obj *o;
    unsigned ev = 0;
    uint32_t f;
    int err;

    if (xichan__obj_check(cl->shm, mb->kind, mb->id, mb->oslot, mb->ogen, &ref))
        return XICHAN_EV_CLOSED;
    /*
     * A holder stopped with the lock (XICHAN_ELOCKED after the short
     * bound): not ready.  It signals when it goes on and changes the
     * object, and a repair after its death signals everyone.  Gone or
     * broken: CLOSED, so the caller's call reports why.
     */
    if ((err = xichan__obj_lock(cl->shm, &ref, cl->sid)))
        return err == XICHAN_ELOCKED ? 0 : XICHAN_EV_CLOSED;
    o = ref.o;
    f = xa_load_relaxed(&o->flags);
    if (mb->kind == XICHAN_KIND_QUEUE) {
        if (o->fifo.count)
            ev |= XICHAN_EV_READABLE;
        if (!(o->maxsize > 0 && (int64_t)o->fifo.count >= o->maxsize))
            ev |= XICHAN_EV_WRITABLE;
    } else {
        if (f & XICHAN_OF_CLOSED)
            ev |= XICHAN_EV_CLOSED | XICHAN_EV_READABLE | XICHAN_EV_WRITABLE;
        if (o->fifo.count || (f & XICHAN_OF_CLOSING))
            ev |= XICHAN_EV_READABLE;
        if (!o->fifo.count || o->fifo.last_popped != mb->seen_popped || (f & XICHAN_OF_CLOSING))
            ev |= XICHAN_EV_WRITABLE;
        if ((ev & mb->events & XICHAN_EV_WRITABLE))
            mb->seen_popped = o->fifo.last_popped;
    }
    xichan__obj_unlock(o);
    return ev;
}

static void recheck_add(xichan_waitset *ws, uint32_t i)
{
    if (!ws->m[i].pending) {
        ws->m[i].pending = 1;
        ws->recheck[ws->nrecheck++] = (uint16_t)i;
    }
}

/* Takes the bits the notifiers set onto the recheck list. */
static void take_bits(xichan_waitset *ws)
{
    struct xichan_wset *w = ws->w;
    uint64_t sum = atomic_exchange_explicit(&w->summary, 0, memory_order_acquire);

    while (sum) {
        unsigned k = (unsigned)__builtin_ctzll(sum);
        uint64_t bits = atomic_exchange_explicit(&w->ready[k], 0, memory_order_acquire);

        sum &= sum - 1;
        while (bits) {
            uint32_t i = k * 64 + (unsigned)__builtin_ctzll(bits);
            bits &= bits - 1;
            if (ws->m[i].used)
                recheck_add(ws, i);
        }
    }
}

/* Checks the recheck list; fills ready[]; keeps the ready ones listed. */
static int collect(xichan_waitset *ws, xichan_ready *ready, size_t cap)
{
    uint32_t keep = 0, n = 0;

    for (uint32_t k = 0; k < ws->nrecheck; k++) {
        uint16_t i = ws->recheck[k];
        struct member *mb = &ws->m[i];
        unsigned ev;

        if (!mb->used) {
            mb->pending = 0;
            continue;
        }
        if (n == cap) { /* no room: look next time */
            ws->recheck[keep++] = i;
            continue;
        }
        ev = check(ws, mb) & (mb->events | XICHAN_EV_CLOSED);
        if (!ev) {
            mb->pending = 0;
            continue;
        }
        ready[n].member = i;
        ready[n].events = ev;
        ready[n].user = mb->user;
        n++;
        ws->recheck[keep++] = i;
    }
    ws->nrecheck = keep;
    return (int)n;
}

/* ---------------------------------------------------- the fd helper */

static void arm(xichan_waitset *ws)
{
    uint64_t one = 1;

    if (ws->efd >= 0 && !atomic_exchange_explicit(&ws->armed, 1, memory_order_acq_rel))
        (void)!write(ws->efd, &one, sizeof(one));
}

/*
 * Clears the fd: read, then armed = 0, in that order.  The other order
 * lost wakes: an arm() between the store and the read set armed and wrote,
 * the read drained the write, and armed stayed 1 over an empty eventfd, so
 * every later arm() skipped its write and the fd never polled readable
 * again.  In this order an arm() between the read and the store sees
 * armed == 1 and skips its write, but what it saw (summary bits) is taken
 * by the take_bits() that follows every disarm; the read also drains a
 * write whose arm() found armed == 0 before our previous store, so a
 * stray count only makes one spurious readable.
 */
static void disarm(xichan_waitset *ws)
{
    uint64_t v;

    if (ws->efd >= 0) {
        (void)!read(ws->efd, &v, sizeof(v));
        xa_store_release(&ws->armed, 0);
    }
}

/* Sleeps on the set's word; writes the eventfd whenever a bit is set. */
static void *helper_main(void *arg)
{
    xichan_waitset *ws = arg;
    struct xichan_wset *w = ws->w;

    for (;;) {
        /* seq before stop: destroy stores stop, then bumps seq. */
        uint32_t s = xa_load_acquire(&w->seq);
        if (xa_load_acquire(&ws->stop))
            return NULL;
        if (xa_load_acquire(&w->summary))
            arm(ws);
        (void)xichan__wait_hinted(&w->seq, s, XICHAN_FOREVER, NULL, &w->sleepers);
    }
}

/* --------------------------------------------------------------- API */

/*
 * 0, or XICHAN_ESTALE in a forked child.  It reads the set, not its client:
 * a forked child may have closed (freed) the parent's client already.
 */
static int ws_ok(const xichan_waitset *ws)
{
    extern pid_t xichan__pid_cache;

    if (!ws)
        return XICHAN_EINVAL;
    return ws->pid == xichan__pid_cache ? 0 : XICHAN_ESTALE;
}

int xichan_waitset_create(xichan_client *cl, xichan_waitset **out)
{
    struct xichan_shm *shm;
    xichan_waitset *ws;
    int err = xichan__client_ok(cl);

    if (err)
        return err;
    if (!out)
        return XICHAN_EINVAL;
    *out = NULL;
    shm = cl->shm;
    if (!(ws = calloc(1, sizeof(*ws))))
        return XICHAN_ENOMEM;
    ws->m = calloc(XICHAN_WSET_MEMBERS, sizeof(*ws->m));
    ws->recheck = calloc(XICHAN_WSET_MEMBERS, sizeof(*ws->recheck));
    if (!ws->m || !ws->recheck) {
        err = XICHAN_ENOMEM;
        goto fail_alloc;
    }
    err = XICHAN_ELIMIT;
    for (uint32_t i = 0; i < shm->nwsets; i++) {
        uint32_t zero = 0;
        if (atomic_compare_exchange_strong_explicit(&shm->wsets[i].owner, &zero, cl->sid,
                                                    memory_order_acq_rel, memory_order_relaxed)) {
            ws->slot = i;
            err = 0;
            break;
        }
    }
    if (err)
        goto fail_alloc;
    ws->w = &shm->wsets[ws->slot];
    ws->gen = xa_load_acquire(&ws->w->gen);
    xa_store_relaxed(&ws->w->summary, 0);
    for (unsigned k = 0; k < XICHAN_WSET_MEMBERS / 64; k++)
        xa_store_relaxed(&ws->w->ready[k], 0);
    xa_store_relaxed(&ws->w->sleepers, 0);
    ws->cl = cl;
    ws->pid = cl->pid;
    ws->efd = -1;
    pthread_mutex_init(&ws->mu, NULL);
    *out = ws;
    return 0;

fail_alloc:
    free(ws->m);
    free(ws->recheck);
    free(ws);
    return err;
}

static int add(xichan_waitset *ws, int kind, uint64_t id, unsigned events, uint64_t user)
{
    struct xichan_shm *shm;
    struct xichan_objref ref;
    struct xichan_wreg *g;
    struct member *mb;
    uint32_t i, r;
    int err;

    if ((err = ws_ok(ws)))
        return err;
    if (!events || (events & ~(unsigned)(XICHAN_EV_READABLE | XICHAN_EV_WRITABLE | XICHAN_EV_CLOSED)))
        return XICHAN_EINVAL;
    shm = ws->cl->shm;
    if ((err = xichan__resolve(ws->cl, kind, id, &ref)))
        return err;
    pthread_mutex_lock(&ws->mu);
    for (i = 0; i < XICHAN_WSET_MEMBERS && ws->m[i].used; i++)
        ;
    if (i == XICHAN_WSET_MEMBERS) {
        err = XICHAN_ELIMIT;
        goto out;
    }
    if ((err = claim_reg(shm, ws->cl->sid, &r)))
        goto out;
    g = &shm->wregs[r];
    g->wset = ws->slot;
    g->wgen = ws->gen;
    g->obj = ref.slot;
    g->ogen = ref.gen;
    g->member = (uint16_t)i;
    g->events = (uint16_t)(events | XICHAN_EV_CLOSED);
    xichan__fault(XICHAN_FAULT_WSET_CLAIMED);
    if ((err = xichan__obj_lock(shm, &ref, ws->cl->sid))) {
        g->obj = UINT32_MAX;
        xa_store_release(&g->sid, 0);
        goto out;
    }
    xa_store_relaxed(&g->next, xa_load_relaxed(&ref.o->whead));
    /* Release: a walker that reads the new head sees the filled entry. */
    xa_store_release(&ref.o->whead, r + 1); /* commit */
    mb = &ws->m[i];
    /* A removed member may still be on the recheck list: keep it there once. */
    *mb = (struct member){.pending = mb->pending, .used = 1, .kind = (uint8_t)kind, .events = events, .id = id,
                          .user = user, .reg = r, .oslot = ref.slot, .ogen = ref.gen,
                          .seen_popped = ref.o->fifo.last_popped};
    xichan__obj_unlock(ref.o);
    ws->nused++;
    /* Linked first, then looked at: a change before the link is seen here,
     * one after it sets the bit. */
    if (check(ws, mb) & (events | XICHAN_EV_CLOSED)) {
        recheck_add(ws, i);
        arm(ws);
    }
    err = (int)i;
out:
    pthread_mutex_unlock(&ws->mu);
    return err;
}

int xichan_waitset_add_queue(xichan_waitset *ws, xichan_queue_id q, unsigned events, uint64_t user)
{
    return add(ws, XICHAN_KIND_QUEUE, q.id, events, user);
}

int xichan_waitset_add_chan(xichan_waitset *ws, xichan_chan_id c, unsigned events, uint64_t user)
{
    return add(ws, XICHAN_KIND_CHANNEL, c.id, events, user);
}

int xichan_waitset_remove(xichan_waitset *ws, int member)
{
    int err;

    if ((err = ws_ok(ws)))
        return err;
    if (member < 0 || member >= (int)XICHAN_WSET_MEMBERS)
        return XICHAN_ENOTFOUND;
    pthread_mutex_lock(&ws->mu);
    if (!ws->m[member].used) {
        pthread_mutex_unlock(&ws->mu);
        return XICHAN_ENOTFOUND;
    }
    err = drop_reg(ws->cl->shm, ws->m[member].reg, ws->cl->sid);
    if (err && err != XICHAN_EBROKEN) {
        pthread_mutex_unlock(&ws->mu);
        return err; /* still a member: try again */
    }
    ws->m[member].used = 0; /* left on the recheck list; collect() drops it */
    ws->nused--;
    pthread_mutex_unlock(&ws->mu);
    return 0;
}

int xichan_waitset_wait(xichan_waitset *ws, xichan_ready *ready, size_t cap, int64_t deadline_ns)
{
    int n, err, timed_out = 0;

    if ((err = ws_ok(ws)))
        return err;
    if (!ready || cap == 0)
        return XICHAN_EINVAL;
    if (cap > XICHAN_WSET_MEMBERS)
        cap = XICHAN_WSET_MEMBERS;
    pthread_mutex_lock(&ws->mu);
    for (;;) {
        /* Acquire: read before the bits are taken (see DESIGN). */
        uint32_t s = xa_load_acquire(&ws->w->seq);

        disarm(ws);
        take_bits(ws);
        n = collect(ws, ready, cap);
        if (n > 0) {
            arm(ws); /* level-triggered: still ready until a wait finds nothing */
            break;
        }
        if (timed_out || deadline_ns == XICHAN_NOWAIT || xichan_now_ns() >= deadline_ns) {
            n = deadline_ns == XICHAN_NOWAIT ? 0 : XICHAN_ETIMEDOUT;
            break;
        }
        err = xichan__wait_hinted(&ws->w->seq, s, deadline_ns, &ws->cl->waiter,
                                  &ws->w->sleepers);
        if (err == XICHAN_ETIMEDOUT) {
            timed_out = 1; /* look once more */
        } else if (err) {
            n = err;
            break;
        }
    }
    pthread_mutex_unlock(&ws->mu);
    return n;
}

int xichan_waitset_fd(xichan_waitset *ws)
{
    int err, fd;

    if ((err = ws_ok(ws)))
        return err;
    pthread_mutex_lock(&ws->mu);
    if (ws->efd < 0) {
        if ((fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK)) < 0) {
            err = errno == EMFILE || errno == ENFILE ? XICHAN_ELIMIT : XICHAN_EIO;
            goto out;
        }
        ws->efd = fd;
        if (pthread_create(&ws->helper, NULL, helper_main, ws) != 0) {
            close(fd);
            ws->efd = -1;
            err = XICHAN_ENOMEM;
            goto out;
        }
        /* Members that were ready before the fd existed. */
        if (ws->nrecheck || xa_load_acquire(&ws->w->summary))
            arm(ws);
    }
    err = ws->efd;
out:
    pthread_mutex_unlock(&ws->mu);
    return err;
}

void xichan_waitset_destroy(xichan_waitset *ws)
{
    struct xichan_shm *shm;
    int stale;

    if (!ws)
        return;
    /* A forked child's copy has no helper thread and owns nothing in the
     * segment: it only frees its memory. */
    stale = ws_ok(ws) != 0;
    if (ws->efd >= 0 && !stale) {
        xa_store_release(&ws->stop, 1);
        xichan__notify(&ws->w->seq, &ws->w->sleepers, INT32_MAX);
        xichan__wake(&ws->w->seq, INT32_MAX); /* the helper may not have raised the hint yet */
        pthread_join(ws->helper, NULL);
    }
    if (ws->efd >= 0)
        close(ws->efd);
    if (!stale) {
        shm = ws->cl->shm;
        for (uint32_t i = 0; i < XICHAN_WSET_MEMBERS; i++)
            if (ws->m[i].used) /* one left linked stays the session's: see drop_reg */
                (void)drop_reg(shm, ws->m[i].reg, ws->cl->sid);
        if (xa_load_acquire(&ws->w->owner) == ws->cl->sid &&
            xa_load_relaxed(&ws->w->gen) == ws->gen) {
            xa_add_release(&ws->w->gen, 1);
            xa_store_release(&ws->w->owner, 0);
        }
    }
    pthread_mutex_destroy(&ws->mu);
    free(ws->m);
    free(ws->recheck);
    free(ws);
}
