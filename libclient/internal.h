/*
 * internal.h -- declarations shared by libxichan's files and xichand.
 *
 * Everything here is xichan__* (internal, not API).  Each block names the
 * file that implements it; the contracts are at the definitions.
 */
#ifndef XICHAN_INTERNAL_H
#define XICHAN_INTERNAL_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "xichan.h"
#include "shm_layout.h"

#ifdef NDEBUG
#define XICHAN_ALWAYS(x) (x)
#define XICHAN_NEVER(x) (x)
#else
#include <assert.h>
#define XICHAN_ALWAYS(x) (assert(x), 1)
#define XICHAN_NEVER(x) (assert(!(x)), 0)
#endif

/* ---------------------------------------------------------- fault.c */

/*
 * Numbered fault points.  In a build with -DXICHAN_FAULTS, the environment
 * variable XICHAN_FAULT=N (and XICHAN_FAULT_HIT=K: its Kth pass) arms point
 * N; otherwise they compile to nothing.  A kill point (below 64) SIGKILLs
 * the process when reached: a crash at that instruction.  A fail point (64
 * and up) makes its step fail once with the error the real failure there
 * returns (heap full, table full, an interrupted wait, a lock deadline
 * passed), so the error paths are swept like the crash windows.
 * tests/integ/fault_sweep.c sweeps the kill points, fault_fail.c the fail
 * points.
 */
enum xichan_fault {
    /* kill points: a crash between two stores */
    XICHAN_FAULT_ALLOC_SPLIT = 1,   /* heap: tail header written, size not yet */
    XICHAN_FAULT_ALLOC_RESERVED,    /* heap: block reserved, bins not yet fixed */
    XICHAN_FAULT_FREE_MARKED,       /* heap: block marked free, not coalesced */
    XICHAN_FAULT_FREE_MERGED,       /* heap: merged, bins not yet fixed */
    XICHAN_FAULT_PUSH_LINKED,       /* fifo: linked, tail/count not yet */
    XICHAN_FAULT_PUSH_DONE,         /* fifo: pushed, lock still held */
    XICHAN_FAULT_POP_LEASED,        /* fifo: head leased, not unlinked */
    XICHAN_FAULT_POP_UNLINKED,      /* fifo: unlinked, count not yet */
    XICHAN_FAULT_REMOVE_UNLINKED,   /* fifo: middle item unlinked */
    XICHAN_FAULT_PUT_RESERVED,      /* queue put: block filled, not published */
    XICHAN_FAULT_GET_LEASED,        /* queue get: item taken, not yet freed */
    XICHAN_FAULT_BIND_ENTRY,        /* objects: binding entry written, refcount not */
    XICHAN_FAULT_CREATE_SLOT,       /* objects: slot filled, not yet live */
    XICHAN_FAULT_DESTROY_DRAINED,   /* objects: items dropped, slot not yet free */
    XICHAN_FAULT_CLEANUP_UNBOUND,   /* sessions: unbound ops half applied */
    XICHAN_FAULT_CHAN_SEND_PUBLISHED, /* channel send: item queued, rendezvous wait not begun */
    XICHAN_FAULT_CHAN_CLOSE_DROPPED,  /* channel force close: items dropped, not yet closed */
    XICHAN_FAULT_SESSION_FILLED,    /* sessions: slot filled by the daemon, not yet live */
    XICHAN_FAULT_CLEANUP_OBJECTS,   /* sessions: step 1 done, bindings not dropped */
    XICHAN_FAULT_CLEANUP_BINDINGS,  /* sessions: step 2 done, blocks not reclaimed */
    XICHAN_FAULT_REPAIR_DONE,       /* lock: repaired after EOWNERDEAD, not yet consistent */
    XICHAN_FAULT_CLEANUP_KEPT,      /* sessions: an ended process's items half marked KEPT */
    XICHAN_FAULT_HEAP_WAITING,      /* heap full: waiter registered, not yet asleep */
    XICHAN_FAULT_STEAL_GATED,       /* heap full: idle caches' gates taken, blocks not freed */
    XICHAN_FAULT_STEAL_FREED,       /* heap full: stolen blocks freed, gates not given back */
    XICHAN_FAULT_CACHE_GATED,       /* block cache: gate held, block cached, gate not released */
    XICHAN_FAULT_HOLD_MARKED,       /* lease: intent and HELD stored, item still linked */
    XICHAN_FAULT_HOLD_UNLINKED,     /* lease: unlinked, its queue not yet in its link */
    XICHAN_FAULT_LEASE_TAKEN,       /* lease: item held, lock released, not committed */
    XICHAN_FAULT_UNHOLD_LINKING,    /* lease return: link set, item not yet reachable */
    XICHAN_FAULT_UNHOLD_LINKED,     /* lease return: reachable, not yet QUEUED */
    XICHAN_FAULT_LEASE_COMMITTED,   /* lease commit: HELD cleared, block not yet freed */
    XICHAN_FAULT_WSET_CLAIMED,      /* wait set: registration claimed, not yet linked */
    XICHAN_FAULT_KILL_MAX_,
    /* fail points: the step returns an error and changes nothing */
    XICHAN_FAULT_FAIL_HEAP = 64,    /* heap allocation: XICHAN_ENOSPC (all or nothing) */
    XICHAN_FAULT_FAIL_SLOT,         /* object create: no free slot, XICHAN_ELIMIT */
    XICHAN_FAULT_FAIL_BINDING,      /* binding entry: table full, XICHAN_ELIMIT */
    XICHAN_FAULT_FAIL_SESSION,      /* session table full, XICHAN_ELIMIT */
    XICHAN_FAULT_FAIL_WAIT,         /* a wait interrupted: XICHAN_EINTR */
    XICHAN_FAULT_FAIL_LOCK,         /* a lock with a deadline: XICHAN_ELOCKED */
    XICHAN_FAULT_FAIL_MAX_
};

#ifdef XICHAN_FAULTS
/* A kill point: dies there when armed. */
void xichan__fault(enum xichan_fault point);
/* A fail point: nonzero when this pass must fail. */
int xichan__fault_fail(enum xichan_fault point);
/* Arms point (0 disarms) to fire on its hit-th pass in this process. */
void xichan__fault_set(int point, long hit);
/* How many times the armed point was passed since it was armed. */
long xichan__fault_passes(void);
#else
#define xichan__fault(point) ((void)0)
#define xichan__fault_fail(point) 0
#endif

/* ------------------------------------------------------------ shm.c */

/* A process-local mapping of one segment; shared by the process's clients. */
struct xichan_shm {
    uint8_t *base;
    size_t size;
    struct xichan_shm_hdr *hdr;
    struct xichan_session *sessions;
    struct xichan_obj *objects;
    struct xichan_binding *bindings;
    struct xichan_wset *wsets;   /* nwsets == nsessions */
    struct xichan_wreg *wregs;   /* nwregs == nobjects */
    uint32_t nwsets, nwregs;
    uint8_t *heap;            /* heap base; unit offsets count from here */
    uint64_t heap_size;
    uint32_t heap_units;
    uint32_t nsessions, nobjects, nbindings;
    char name[64];            /* shm_open name, leading '/' */
    int refs;                 /* process-local users, under the registry lock */
    uint64_t ino;             /* identity of the mapped file (a recreated segment differs) */
    uid_t owner;              /* the file's owner when mapped: the daemon's uid (client.c) */
    int fd;                   /* the flock'ed descriptor of a creator or claimer, else -1 */
};

struct xichan_shm_geometry {
    uint64_t size;
    uint32_t nsessions, nobjects, nbindings;
};

uint32_t xichan__layout_hash(void);
/* "/xichan-<uid>-<namespace>" into buf (>= 64 bytes). */
int xichan__shm_name(char *buf, size_t cap, const char *ns);
/* The smallest segment size that holds g's tables and a minimal heap. */
uint64_t xichan__shm_min_size(const struct xichan_shm_geometry *g);
/* Creates (O_EXCL, 0600, posix_fallocate) and lays out a fresh segment,
 * holding its flock (shm.c, tag-seg-lock) until xichan__shm_unmap. */
int xichan__shm_create(const char *name, const struct xichan_shm_geometry *geo,
                       struct xichan_shm **out);
/* Maps an existing segment and validates its header (XICHAN_EVERSION, ECORRUPT). */
int xichan__shm_open(const char *name, struct xichan_shm **out);
/*
 * As xichan__shm_open, for a daemon adopting the segment or xichanctl
 * discarding it: also takes its flock (tag-seg-lock) until
 * xichan__shm_unmap.  XICHAN_EBUSY: a daemon serves it.
 */
int xichan__shm_claim(const char *name, struct xichan_shm **out);
/* What a claimed segment holds (inspect.c): live objects (named ones) and
 * their items, and the sessions whose process still runs, the first pids. */
struct xichan_census {
    uint32_t objects, named, sessions;
    uint64_t items;
    pid_t pids[8];
};
void xichan__census(struct xichan_shm *shm, struct xichan_census *c);
/* Process-wide shared mapping: open once per name, refcounted. */
int xichan__shm_acquire(const char *name, struct xichan_shm **out);
void xichan__shm_release(struct xichan_shm *shm);
void xichan__shm_unmap(struct xichan_shm *shm);
int xichan__shm_unlink(const char *name);
/* NULL unless [off, off+len) lies inside the segment. */
void *xichan__shm_at(const struct xichan_shm *shm, uint64_t off, uint64_t len);

/* ----------------------------------------------------------- lock.c */

typedef int (*xichan_repair_fn)(struct xichan_shm *shm, void *arg);
struct xichan_waiter;

int xichan__lock_init(struct xichan_lock *l);
/*
 * Locks l.  If the previous holder died, runs repair(shm, arg) and marks the
 * mutex consistent; if repair fails the lock is marked broken and
 * XICHAN_EBROKEN returned (lock not held).  The wait is bounded as
 * tag-lock-bound (lock.c) says: deadline_ns (XICHAN_NOWAIT for a call
 * that has no deadline of its own: the short bound), with w's interrupt
 * callback run between slices (w may be NULL).  Returns 0 (held),
 * XICHAN_EBROKEN, XICHAN_ELOCKED (a stopped or slow holder; the message
 * names its pid), XICHAN_ECORRUPT (the mutex word names no thread) or
 * XICHAN_EINTR.
 */
int xichan__lock(struct xichan_shm *shm, struct xichan_lock *l, xichan_repair_fn repair, void *arg,
                 uint32_t sid, int64_t deadline_ns, const struct xichan_waiter *w);
/*
 * The deadline of a free: bounded like XICHAN_NOWAIT, but never failed by
 * the fail point, since a free cannot report.  A free that gives up leaves
 * its block RESERVED or LEASED to the session, whose cleanup frees it.
 */
#define XICHAN__LOCK_BOUNDED ((int64_t)1)
/* Who holds l, as the mutex word and /proc tell (xichanctl, messages). */
struct xichan_lock_holder {
    pid_t tid, pid;     /* thread in the word, its process; 0 if free */
    char state;         /* /proc state letter, '?' if unreadable */
    int stopped;        /* 1 if that thread is stopped or traced */
    int stuck;          /* stopped, or asleep (S, D): not running its section */
};
/* 0 (h filled in; h->tid 0 if free), or XICHAN_ECORRUPT if the word names
 * no thread. */
int xichan__lock_holder(struct xichan_lock *l, struct xichan_lock_holder *h);
void xichan__unlock(struct xichan_lock *l);

/* ----------------------------------------------------------- wait.c */

struct xichan_waiter {
    int (*check)(void *arg);  /* interrupt callback, may be NULL */
    void *arg;
    int period_ms;
};

/*
 * Sleeps while *word == expect, until woken, the deadline passes or the
 * interrupt callback asks to stop.  Spins briefly first when another CPU can
 * make progress.  Returns 0 (woken or value changed: recheck),
 * XICHAN_ETIMEDOUT or XICHAN_EINTR.
 */
int xichan__wait(xichan_atomic_u32 *word, uint32_t expect, int64_t deadline_ns,
                 const struct xichan_waiter *w);
/* The same, raising *hint (a waiter count notifiers read) only while it
 * sleeps in the kernel, not while it spins. */
int xichan__wait_hinted(xichan_atomic_u32 *word, uint32_t expect, int64_t deadline_ns,
                        const struct xichan_waiter *w, xichan_atomic_u32 *hint);
/* One step of a spin-wait: tells the CPU (and a hyperthread sibling). */
static inline void xichan__cpu_relax(void)
{
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#elif defined(__aarch64__)
    __asm__ __volatile__("yield");
#endif
}
/* The raw primitives under xichan__obj_signal: every wait on an object
 * goes through it.  Only words that belong to no object (the heap's
 * free-space word, alloc.c) and the unit tests call them directly. */
/* Wakes up to n waiters of word (INT32_MAX: all). */
void xichan__wake(xichan_atomic_u32 *word, int n);
/* Bumps a sequence word and wakes its waiters if the hint says there are any. */
void xichan__notify(xichan_atomic_u32 *seq, xichan_atomic_u32 *waiters, int n);

/*
 * What changed in an object, for xichan__obj_signal (tag-obj-signal).
 *   XICHAN__EV_READABLE  an item came in, or a channel began closing: wakes
 *                        up to n getters/receivers.
 *   XICHAN__EV_WRITABLE  an item went out (taken, withdrawn): wakes up to n
 *                        putters/senders.
 *   XICHAN__EV_MORE      with WRITABLE after a take: items are left, so one
 *                        more sleeping getter is woken (the wake passed on).
 *   XICHAN__EV_ALL       anything may have changed (closed, destroyed,
 *                        repaired, a session ended): every waiter of every
 *                        kind wakes and looks again; n is ignored.
 *   XICHAN__EV_LOCKED    the caller holds the object's lock.
 */
enum {
    XICHAN__EV_READABLE = 1u << 0,
    XICHAN__EV_WRITABLE = 1u << 1,
    XICHAN__EV_ALL = 1u << 2,
    XICHAN__EV_MORE = 1u << 8,
    XICHAN__EV_LOCKED = 1u << 9,
};
/*
 * The one way to say "this object changed": every waiter that may care is
 * woken, whatever mechanism it waits with.  Called after the state change
 * is stored (under the lock or after it), never before.
 */
void xichan__obj_signal(struct xichan_shm *shm, struct xichan_obj *o, unsigned ev, int n);

/* -------------------------------------------------------- waitset.c */

/* Marks and wakes the wait sets registered on o for ev (from obj_signal). */
void xichan__waitset_signal(struct xichan_shm *shm, struct xichan_obj *o, unsigned ev);
/* Daemon cleanup: frees sid's registrations (unlinking them) and wait sets. */
int xichan__waitset_drop_session(struct xichan_shm *shm, uint32_t sid);

/* ---------------------------------------------------------- alloc.c */

int xichan__heap_init(struct xichan_shm *shm);
#define XICHAN_HEAP_FIRST_UNIT 1u /* unit 0 is never a block: offset 0 means "none" */

/* NULL unless off (units) is a plausible block start: inside the heap, with
 * a size that fits in what is left of it.  Inline: on every hot path. */
static inline struct xichan_blk *xichan__blk(const struct xichan_shm *shm, uint32_t off)
{
    struct xichan_blk *b;

    if (off < XICHAN_HEAP_FIRST_UNIT || off > shm->heap_units - XICHAN_MIN_BLK_UNITS)
        return NULL;
    b = (struct xichan_blk *)(shm->heap + (uint64_t)off * XICHAN_UNIT);
    if (b->size < XICHAN_MIN_BLK_UNITS || b->size > shm->heap_units - off)
        return NULL;
    return b;
}
/* The most blocks the heap can hold: the cap of every walk over blocks, which
 * no word in the segment can raise (tag-heap-trust). */
static inline uint32_t xichan__heap_max_blocks(const struct xichan_shm *shm)
{
    return shm->heap_units / XICHAN_MIN_BLK_UNITS;
}
static inline uint32_t xichan__blk_off(const struct xichan_shm *shm, const struct xichan_blk *b)
{
    return (uint32_t)(((const uint8_t *)b - shm->heap) / XICHAN_UNIT);
}
/* Reserves a block for len payload bytes plus item header, owned by sid;
 * XICHAN_ENOSPC at once if there is no room. */
int xichan__heap_alloc(struct xichan_shm *shm, uint32_t sid, uint64_t item_len, uint32_t *off);
/*
 * Reserves blocks for n items (lens[i] payload bytes) owned by sid into
 * offs, under one heap_lock: all n (all != 0) or as many of the first as
 * fit, at least one.  While the heap has no room (idle sessions' cached
 * blocks taken back first) it waits for a free until deadline_ns, no lock
 * held (tag-heap-wait).  Returns how many, or XICHAN_E2BIG (an item can
 * never fit), XICHAN_ENOSPC (no room by the deadline), XICHAN_EINTR (w's
 * check asked to stop), a lock error; E2BIG and ENOSPC leave the sizes in
 * xichan_strerror's detail.
 */
int xichan__heap_reserve(struct xichan_shm *shm, uint32_t sid, const uint64_t *lens, size_t n,
                         uint32_t *offs, int all, int64_t deadline_ns,
                         const struct xichan_waiter *w);
/* n blocks under one heap_lock: all, or none and XICHAN_ENOSPC (no wait). */
/* Heap units (header, item header, payload) of an item of len bytes. */
static inline uint32_t xichan__item_units(uint64_t len)
{
    return (uint32_t)(2 + (len + XICHAN_UNIT - 1) / XICHAN_UNIT);
}
int xichan__heap_alloc_many(struct xichan_shm *shm, uint32_t sid, const uint64_t *lens, size_t n,
                            uint32_t *offs);
/* Frees n blocks sid owns under one heap_lock (ECORRUPT if any was not). */
int xichan__heap_free_many(struct xichan_shm *shm, const uint32_t *offs, size_t n, uint32_t sid);
/* Frees a block this process owns (RESERVED or LEASED).  Takes heap_lock. */
int xichan__heap_free(struct xichan_shm *shm, uint32_t off, uint32_t sid);
/* Same, with heap_lock already held; b must be a block xichan__blk accepts.
 * The free always happens; XICHAN_ECORRUPT if the bins then needed a rebuild
 * that found the tiling corrupt (alloc.c, tag-heap-trust). */
int xichan__heap_free_locked(struct xichan_shm *shm, struct xichan_blk *b);
/* heap_lock bounded by deadline_ns and interruptible through w (may be
 * NULL); xichan__heap_lock is this with w NULL. */
int xichan__heap_lock_until(struct xichan_shm *shm, uint32_t sid, int64_t deadline_ns,
                            const struct xichan_waiter *w);
int xichan__heap_lock(struct xichan_shm *shm, uint32_t sid, int64_t deadline_ns);
void xichan__heap_unlock(struct xichan_shm *shm);
/* Rebuilds bins, prev sizes and statistics from the block walk. */
int xichan__heap_repair(struct xichan_shm *shm, void *unused);
/* Frees every RESERVED or LEASED block owned by sid and the blocks its
 * session's cache held (daemon, after death); wakes the heap's waiters. */
int xichan__heap_reclaim(struct xichan_shm *shm, uint32_t sid, uint64_t *nfreed);

struct xichan_heap_report {
    uint64_t blocks, free_blocks, queued, reserved, leased, owned, cached;
    uint64_t free_bytes, used_bytes;
    int ok;                   /* 1 if every invariant held */
    char why[128];
};
/* Checks the heap's invariants under heap_lock (tests, xichanctl). */
int xichan__heap_check(struct xichan_shm *shm, struct xichan_heap_report *r);
uint64_t xichan__heap_max_item(const struct xichan_shm *shm);

static inline struct xichan_itemhdr *xichan__item(struct xichan_blk *b)
{
    return (struct xichan_itemhdr *)(b + 1);
}
static inline uint8_t *xichan__item_data(struct xichan_blk *b)
{
    return (uint8_t *)(b + 2);
}

/* ----------------------------------------------------------- fifo.c */

/* All need the object's lock.  Blocks are validated as they are walked;
 * a structure that fails validation gives XICHAN_ECORRUPT. */
/* Links b (RESERVED by its producer) at the end.  XICHAN_ECORRUPT if the
 * list is corrupt (a derived tail is recomputed first); b is then untouched
 * and still the caller's. */
int xichan__fifo_push(struct xichan_shm *shm, struct xichan_obj *o, struct xichan_blk *b);
/* Leases the head to sid and unlinks it; XICHAN_EEMPTY if there is none. */
int xichan__fifo_pop(struct xichan_shm *shm, struct xichan_obj *o, uint32_t sid,
                     struct xichan_blk **out);
/* Unlinks the item with that ticket, leased to sid; XICHAN_ENOTFOUND if gone. */
int xichan__fifo_take(struct xichan_shm *shm, struct xichan_obj *o, uint32_t ticket, uint32_t sid,
                      struct xichan_blk **out);
/* 1 if the item with that ticket is still queued (only its pusher removes it
 * from the middle, so "at or after the head" is exact). */
int xichan__fifo_has(struct xichan_shm *shm, struct xichan_obj *o, uint32_t ticket);
/* The item n places after the head (0: the head), left queued; XICHAN_EEMPTY
 * if there are not that many. */
int xichan__fifo_nth(struct xichan_shm *shm, struct xichan_obj *o, uint64_t n,
                     struct xichan_blk **out);
/* Recomputes tail/count/bytes/next_ticket and re-marks linked blocks QUEUED. */
int xichan__fifo_repair(struct xichan_shm *shm, struct xichan_obj *o);
/* Frees every item (takes heap_lock inside; if it cannot, drops nothing). */
int xichan__fifo_drop_all(struct xichan_shm *shm, struct xichan_obj *o, uint32_t sid);
/* The same with heap_lock held. */
int xichan__fifo_drop_all_locked(struct xichan_shm *shm, struct xichan_obj *o, uint32_t sid);
/*
 * Settles the items ended_sid put and nobody settled yet: with apply_ops,
 * each gets its unbound op (UNBOUND, UNBOUND_ERROR, UNBOUND_REMOVE);
 * without, each is marked KEPT and stays deliverable as it is.  Returns how
 * many changed.
 */
int xichan__fifo_unbind(struct xichan_shm *shm, struct xichan_obj *o, uint32_t ended_sid,
                        uint32_t my_sid, int apply_ops);
/*
 * Leases (lease.c).  A held block is LEASED to its holder with
 * XICHAN_IF_HELD set and, in its link, where it came from:
 * xichan__held_link() of its queue.  Slots are below 2^24 (xichand's
 * limit; lease.c refuses more), and 8 bits of generation tell a queue
 * from a later one in its slot.
 */
#define XICHAN_HELD_SLOT_BITS 24u
static inline uint32_t xichan__held_link(const struct xichan_shm *shm, const struct xichan_obj *o)
{
    return (uint32_t)(o - shm->objects) | (xa_load_relaxed(&o->gen) & 0xffu) << XICHAN_HELD_SLOT_BITS;
}
/* Holds for sid the oldest item another session put (as take, but the
 * block keeps its way back); XICHAN_EEMPTY if there is none. */
int xichan__fifo_hold(struct xichan_shm *shm, struct xichan_obj *o, uint32_t sid,
                      struct xichan_blk **out);
/* Links a held block back in ticket order (at the head, unless newer items
 * were returned first) and makes it QUEUED again. */
int xichan__fifo_unhold(struct xichan_shm *shm, struct xichan_obj *o, struct xichan_blk *b);
/* Daemon, session cleanup: returns the ended session's held items to their
 * queues.  An error leaves them held (the cleanup must stop and retry). */
int xichan__leases_return(struct xichan_shm *shm, uint32_t sid);

/* -------------------------------------------------------- objects.c */

struct xichan_objref {
    struct xichan_obj *o;
    uint32_t slot, gen;
};

int xichan__table_lock(struct xichan_shm *shm, uint32_t sid, int64_t deadline_ns);
void xichan__table_unlock(struct xichan_shm *shm);
/* Repairs after a dead table_lock holder: slots, refcounts from bindings. */
int xichan__table_repair(struct xichan_shm *shm, void *unused);

static inline int xichan__obj_has_fifo(const struct xichan_obj *o)
{
    return o->kind == XICHAN_KIND_QUEUE || o->kind == XICHAN_KIND_CHANNEL;
}

/*
 * Creates an object bound once to sid.  Takes table_lock.  For a buffer,
 * *id_out carries in the unit offset of the RESERVED block it adopts.
 */
int xichan__obj_create(struct xichan_shm *shm, uint32_t sid, int kind, int64_t maxsize, int fmt,
                       int unboundop, const char *name, uint64_t *id_out);
/* Finds a live object by kind and id (no lock held on return). */
int xichan__obj_find(struct xichan_shm *shm, int kind, uint64_t id, struct xichan_objref *ref);
/*
 * 0 if slot still holds object kind/id in generation gen (ref filled in):
 * obj_find's test for one slot, with the same loads in the same order.
 */
static inline int xichan__obj_check(struct xichan_shm *shm, int kind, uint64_t id, uint32_t slot,
                                    uint32_t gen, struct xichan_objref *ref)
{
    struct xichan_obj *o;

    if (slot >= shm->nobjects)
        return XICHAN_ENOTFOUND;
    o = &shm->objects[slot];
    if (xa_load_acquire(&o->gen) != gen || xa_load_acquire(&o->state) != XICHAN_OBJ_LIVE ||
        o->id != id || o->kind != kind)
        return XICHAN_ENOTFOUND;
    ref->o = o;
    ref->slot = slot;
    ref->gen = gen;
    return 0;
}
int xichan__obj_find_name(struct xichan_shm *shm, int kind, const char *name, uint64_t *id);
/* Locks the object and checks it is still ref's (else ENOTFOUND, unlocked). */
int xichan__obj_lock(struct xichan_shm *shm, const struct xichan_objref *ref, uint32_t sid);
/* The same, bounded by deadline_ns and interruptible through w (may be NULL);
 * xichan__obj_lock is this with XICHAN_NOWAIT (the short bound). */
int xichan__obj_lock_until(struct xichan_shm *shm, const struct xichan_objref *ref, uint32_t sid,
                           int64_t deadline_ns, const struct xichan_waiter *w);
void xichan__obj_unlock(struct xichan_obj *o);
/* Destroys the object (takes table_lock, then the object's lock). */
int xichan__obj_destroy(struct xichan_shm *shm, const struct xichan_objref *ref, uint32_t sid);
/* delta +1 binds, -1 releases (destroying at zero).  Takes table_lock. */
int xichan__obj_bind(struct xichan_shm *shm, const struct xichan_objref *ref, uint32_t sid,
                     int delta);
/* Channels: associates sid with end (XICHAN_BF_SEND or _RECV); XICHAN_ECLOSED
 * if sid released that end.  Takes table_lock.  *flags_out: the entry's flags. */
int xichan__chan_assoc(struct xichan_shm *shm, const struct xichan_objref *ref, uint32_t sid,
                       uint16_t end, uint16_t *flags_out);
/* Marks sid's ends released, then closes the channel if no open association
 * is left (auto-close).  Takes table_lock. */
int xichan__chan_release_ends(struct xichan_shm *shm, const struct xichan_objref *ref, uint32_t sid,
                              uint16_t ends, uint16_t *flags_out);
void xichan__chan_count_ends(struct xichan_shm *shm, const struct xichan_objref *ref, uint32_t sid,
                             xichan_chan_info *info);
uint32_t xichan__chan_end_sessions(struct xichan_shm *shm, const struct xichan_objref *ref,
                                   uint16_t end, uint32_t *sids, size_t cap);
/* Sets CLOSED and wakes every waiter.  needs the object's lock */
void xichan__chan_mark_closed(struct xichan_shm *shm, struct xichan_obj *o);
/* +1/-1 reference held by an item in flight.  Takes table_lock. */
int xichan__obj_inflight(struct xichan_shm *shm, const struct xichan_objref *ref, uint32_t sid,
                         int delta);
/*
 * Releases every binding of sid (table_lock held), destroying orphaned
 * objects.  With close_orphans, a channel left with no open association is
 * closed, as CPython closes it when an interpreter goes; without (the
 * session's process ended), it stays open for whoever comes next.
 */
int xichan__bindings_drop_session(struct xichan_shm *shm, uint32_t sid, uint32_t my_sid,
                                  int close_orphans);
/* Fills an info record; needs the object's lock. */
void xichan__obj_fill_info(struct xichan_shm *shm, struct xichan_obj *o, xichan_obj_info *info);

/* ---------------------------------------------------------- items.c */

/* Checks the client and finds a live object of that kind. */
int xichan__resolve(xichan_client *cl, int kind, uint64_t id, struct xichan_objref *ref);
/* Checks the client and creates an object of a kind, bound once to it. */
int xichan__create(xichan_client *cl, int kind, int64_t maxsize, int fmt, int unboundop,
                   const char *name, uint64_t *id);
/* Finds a named object of a kind (not bound). */
int xichan__open_named(xichan_client *cl, int kind, const char *name, uint64_t *id);
/* Destroy, bind or unbind an object of a kind, by id. */
enum { XICHAN__DESTROY, XICHAN__BIND, XICHAN__UNBIND };
int xichan__lifecycle(xichan_client *cl, int kind, uint64_t id, int op);
/* Reserves and fills an item block owned by the client (no lock held),
 * waiting for room in a full heap until deadline_ns (xichan__heap_reserve). */
int xichan__item_make(xichan_client *cl, int fmt, const void *data, size_t len, int unboundop,
                      int64_t deadline_ns, uint32_t *off);
/* Frees a block the client owns (reserved or leased). */
void xichan__item_discard(xichan_client *cl, uint32_t off);
/* Gives the client's cached blocks back to the heap (items.c): how many. */
int xichan__cache_flush(xichan_client *cl);
/* Resolves the default unbound op and pushes.  needs the object's lock.
 * XICHAN_ECORRUPT (block or fifo corrupt): nothing published, the block is
 * still the caller's to discard. */
int xichan__item_publish(xichan_client *cl, struct xichan_obj *o, uint32_t off);
/* Turns a popped (leased) block into a caller's item, applying unbound flags. */
int xichan__item_deliver(xichan_client *cl, struct xichan_blk *b, xichan_item *out);

/*
 * Needs the object's lock, and gives it up: raises the hint, unlocks, sleeps
 * on seq until it moves, the deadline passes or the interrupt callback
 * fires.  Returns 0 (recheck), XICHAN_ETIMEDOUT or XICHAN_EINTR, unlocked.
 */
int xichan__obj_sleep(xichan_client *cl, struct xichan_obj *o, xichan_atomic_u32 *seq,
                      xichan_atomic_u32 *hint, int64_t deadline_ns);

/* Publish an item made by the caller (queue.c, channel.c); on failure the
 * item is discarded.  Same results as the public put and send. */
int xichan__queue_put_made(xichan_client *cl, xichan_queue_id q, uint32_t off, int64_t deadline_ns);
/* What one waiting get_many counts for in o->receivers (lease.c's demand). */
#define XICHAN_DEMAND_MAX 256u
/* A get, or with hold a lease (queue.c). */
int xichan__queue_take(xichan_client *cl, xichan_queue_id q, xichan_item *item,
                       int64_t deadline_ns, int hold);
int xichan__chan_send_made(xichan_client *cl, xichan_chan_id c, uint32_t off, int rendezvous,
                           int64_t deadline_ns);

/* ------------------------------------------------------- sessions.c */

/* Daemon: claims a free slot for a new session (single writer, no lock). */
int xichan__session_new(struct xichan_shm *shm, pid_t pid, uid_t uid, const char *kind,
                        uint32_t *slot, uint32_t *sid);
/*
 * Daemon, worker thread: releases everything the ended session held -- its
 * bindings and channel associations, the blocks it had reserved or leased
 * -- settles the items it put (kept, or their unbound ops if it ended by
 * an unbind), then frees the slot.
 */
int xichan__session_cleanup(struct xichan_shm *shm, uint32_t slot, uint32_t my_sid);

/* How a session ended (sessions.c has the rules). */
enum xichan_end {
    XICHAN_ENDED_KEEP = 0,   /* its process exited or died, or a plain close */
    XICHAN_ENDED_UNBIND = 1, /* an explicit unbind, or a destroyed subinterpreter */
};
/*
 * Marks the live session (slot, sid) ended -- CLEANING, or UNBINDING for
 * XICHAN_ENDED_UNBIND -- (daemon loop thread).  0, or XICHAN_ENOTFOUND if
 * the slot does not hold that live session (already ended, or reused).
 */
int xichan__session_ending(struct xichan_shm *shm, uint32_t slot, uint32_t sid, int how);
/* 1 if a session state means "ended, cleanup not finished". */
static inline int xichan__sess_ending(uint32_t state)
{
    return state == XICHAN_SESS_CLEANING || state == XICHAN_SESS_UNBINDING;
}

/* --------------------------------------------------------- client.c */

/*
 * The client's cache of small free blocks (items.c): blocks of
 * XICHAN_CACHE_MIN_UNITS .. + XICHAN_CACHE_CLASSES - 1 units, up to
 * XICHAN_CACHE_DEPTH of each size, at most 64 blocks (9 KiB) a session.
 */
#define XICHAN_CACHE_CLASSES 8
#define XICHAN_CACHE_DEPTH 8
#define XICHAN_CACHE_MIN_UNITS 2u

struct xichan_client {
    struct xichan_shm *shm;
    uint32_t sid, slot;
    int fd;                   /* connection to the daemon; EOF = our death notice */
    pid_t pid;                /* getpid() at open; another pid means a forked child */
    struct xichan_waiter waiter;
    char ns[64];
    char dir[400];            /* runtime dir, to find a restarted daemon */
    uid_t daemon_uid;         /* a restarted daemon must run as the same uid */
    /*
     * Items handed out and not yet released, with XICHAN__CL_CLOSED set
     * once xichan_client_close ran: the session ended, so a release frees
     * no block (the daemon reclaimed them), and whichever of the close and
     * the last release comes second frees the handle and unmaps (client.c).
     * One word, so that exactly one of them sees the other done.
     */
    xichan_atomic_u32 refs;
    /*
     * Channel associations this session has made, as (gen << 32 | slot << 4 |
     * flags) words indexed by slot.  Lock-free: for one (slot, gen) the flags
     * only ever gain bits while the session lives, so any value read is a
     * true, possibly older, subset.
     */
    xichan_atomic_u64 assoc_cache[64];
    /*
     * Freed small item blocks kept for this session's next items, so that
     * a hand-off of small items takes no heap_lock on either side (items.c).
     * In the segment they are CACHED to the session's slot; the lists and
     * gate (the gate word's value when last released: its generation and
     * block count) are used only while holding the session's
     * cache_gate, which is also the lock between the process's threads:
     * one that finds it taken goes to the heap instead of waiting.
     */
    xichan_atomic_u64 *gate_word; /* &shm->sessions[slot].cache_gate */
    uint64_t gate;
    /*
     * Where this session last found an object (items.c, xichan__resolve):
     * (id << 2 | kind) -> (slot << 32 | gen), 64 entries by id.  Checked
     * against the slot at every use, so an entry that is stale, or torn by
     * two threads writing it at once, only costs the scan of the table.
     */
    xichan_atomic_u64 find_key[64], find_ref[64];
    uint8_t cache_n[XICHAN_CACHE_CLASSES];
    uint32_t cache[XICHAN_CACHE_CLASSES][XICHAN_CACHE_DEPTH];
};

#define XICHAN__CL_CLOSED 0x80000000u
/* n items of cl released (client.c): after its close, the last frees it. */
void xichan__client_unref(xichan_client *cl, uint32_t n);

/* 0, or XICHAN_ESTALE in a forked child. */
static inline int xichan__client_ok(const xichan_client *cl)
{
    extern pid_t xichan__pid_cache;
    if (!cl)
        return XICHAN_EINVAL;
    return cl->pid == xichan__pid_cache ? 0 : XICHAN_ESTALE;
}

/* ----------------------------------------------------------- misc */

/* The message xichan_strerror(err) gives in this thread from now on (errors.c). */
void xichan__set_refusal(int err, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Forgets it: every xichan_client_open() starts afresh. */
void xichan__clear_refusal(void);

/* access.c: the client's half of the trust model (decisions at its top). */
/* connect() said EACCES: records why, as well as the files tell, for XICHAN_EACCES. */
void xichan__explain_denied(const char *sock, const char *dir, const char *ns);
/* 0, or XICHAN_ENODAEMON (explained) if dir belongs to another uid. */
int xichan__may_autostart(const char *dir, const char *ns);
/* 0 if the daemon on fd may be trusted (its uid into *uid), else XICHAN_EPERM (explained). */
int xichan__trust_daemon(int fd, const char *dir, int explicit_dir, const char *ns, uid_t *uid);
/* 0 if the mapped segment belongs to the daemon's uid, else XICHAN_EPERM (explained). */
int xichan__trust_segment(const struct xichan_shm *shm, uid_t daemon_uid, const char *ns);

int xichan__runtime_dir(char *buf, size_t cap, const char *override);
/*
 * Standard descriptors (misc.c).  The library never hands 0, 1 or 2 to a
 * socket of its own: fd_above_stdio moves fd (closed) to the lowest number
 * above 2, CLOEXEC.  Programs (xichand, xichanctl) call stdio_guard first:
 * each of 0, 1, 2 that is closed is opened on /dev/null, so no file they
 * open later becomes someone's stdin or stdout.
 */
int xichan__fd_above_stdio(int fd);
/* 1 if name is UTF-8 text with no control character (misc.c): what every
 * creator of a named object must pass (else XICHAN_EBADNAME). */
int xichan__name_ok(const char *name);
/*
 * The UTF-8 sequence at s (at most left bytes): its length (1..4) with its
 * code point in *cp, or 0 if it is not UTF-8 (a bad lead or continuation
 * byte, an overlong form, past U+10FFFF, cut short).  Surrogates decode;
 * callers that refuse them check *cp.
 */
int xichan__utf8_next(const unsigned char *s, size_t left, uint32_t *cp);
void xichan__stdio_guard(void);
int xichan__ns_name(char *buf, size_t cap, const char *override);

#endif /* XICHAN_INTERNAL_H */
