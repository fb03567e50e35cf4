/*
 * alloc.c -- the heap of item blocks inside the segment.
 *
 * A segregated-fit allocator with boundary tags.  The heap is a sequence of
 * blocks that tile it exactly from unit 1 to heap_units (unit 0 is never
 * used, so that offset 0 can mean "none").  Each block header records its
 * size and state; free blocks are also linked into one of XICHAN_NBINS bins
 * by size class (bin k holds sizes [2^k, 2^(k+1)) units).  Allocation takes
 * the first fit from the request's own bin (a bounded walk), else the first
 * block of the next non-empty larger bin, found through a bitmap; the rest of
 * the block is split off.  Freeing coalesces with both neighbours, so no two
 * free blocks are ever adjacent.  Large items are simply large blocks.
 *
 * Everything here runs under hdr->heap_lock, except reading the state word of
 * a block one owns.  Lock order: heap_lock is always the innermost lock.
 *
 * CRASH ARGUMENT (tag-heap-commit).  Authoritative: each block's size and
 * state.  Derived (rebuilt by xichan__heap_repair from one walk): the bins
 * and their links, each block's prev, the bitmap and the statistics.  So a
 * holder of heap_lock that dies anywhere leaves a heap whose walk is valid
 * if every single store of a size keeps the tiling exact:
 *
 *   split   write the tail's header (size, state FREE) inside the block
 *           first, then shrink the block's size: one store commits the
 *           split.  Die before it: the tail header is unreachable garbage.
 *           Die after it: two valid blocks.
 *   alloc   the state store RESERVED|sid commits the allocation.  Die
 *           before it: the block is still FREE.  Die after it, before the
 *           caller learns the offset: a RESERVED block of a dead session,
 *           which the daemon's xichan__heap_reclaim frees.  The split-off
 *           tail is binned only after this store (bins are derived), so
 *           a rebuild that binning may trigger never bins the block too.
 *   free    the state store FREE commits the free; each merge is one store
 *           that grows the lower block over the upper one, whose header then
 *           becomes payload.  Die between merges: adjacent free blocks,
 *           which the repair walk merges.  The wake of waiters
 *           that follows is covered under tag-heap-wait below.
 *   steal   each stolen block's store FREE commits its free, as above, and
 *           the gates' release commits the steal to their owners; a
 *           holder that dies in between is finished by the repair
 *           (tag-cache-steal below).
 *
 * UNTRUSTED SEGMENT (tag-heap-trust).  Any process that maps the segment
 * can scribble on it, so nothing read from the heap is followed unchecked.
 * Every offset, whether it comes from hdr->bins, a free block's links, a
 * neighbour found by size or prev, is resolved through xichan__blk (in the
 * heap, with a size that fits) and, for a free-list entry, bin_entry (FREE,
 * in the bin it is listed in); every store goes through such a pointer, so
 * no store leaves the heap whatever the bytes say.  A bin is doubly linked
 * and each step checks that the next block's prev names the block it came
 * from, and a bin's head has no prev: a cycle cannot pass that check (the
 * first block seen twice would need two different predecessors), and the
 * walks are capped by the geometry (xichan__heap_max_blocks) anyway, never
 * by hdr->heap_blocks, which is a statistic in the segment.  The bitmap is
 * masked to the XICHAN_NBINS bins that exist.
 *
 * What happens on a mismatch.  The bins, links, bitmap and statistics are
 * transient: they say nothing the tiling does not, so a user loses nothing
 * when they are rebuilt, and would gain nothing from an operation that
 * fails forever because a derived word was scribbled.  So an alloc or free
 * that finds them inconsistent rebuilds them at once (xichan__heap_repair,
 * the same walk a dead holder's successor runs) and goes on: an alloc
 * retries its search once, a free has already committed and only needs its
 * block binned, which the rebuild does.  The bin primitives check before
 * they store, so a mismatch leaves the lists as they were.  Only the
 * tiling is authoritative: when the rebuild finds it corrupt (a size that
 * does not fit, a state no block has), the repair changes nothing and the
 * operation fails with XICHAN_ECORRUPT, as do later ones that trip on the
 * same bytes, while the rest of the segment keeps working.  The heap lock
 * is not marked broken for that: broken is for a dead holder's half-done
 * work that no repair can finish (lock.c), and here nobody died.  A free
 * list entry that points at a forged block inside another block passes
 * the checks (telling block starts from payload would cost a walk of the
 * heap); what it can corrupt is that block's payload, inside the heap, and
 * the next rebuild forgets it.
 *
 * Ownership: RESERVED and LEASED blocks carry their owner's sid and are
 * freed by that owner, or by the daemon once the owner's session has ended.
 * QUEUED blocks belong to the fifo that links them (fifo.c).  CACHED blocks
 * sit in a session's block cache (items.c) and carry the session's slot.
 *
 * WAITING FOR ROOM (tag-heap-wait).  A full heap is backpressure: an
 * allocation with a deadline (xichan__heap_reserve) that finds no room,
 * even after taking back idle caches (below), sets hdr->heap_waiters and
 * reads hdr->heap_free_seq, both under heap_lock, gives the lock up and
 * sleeps on the word with wait.c's primitive (deadline, interrupt check),
 * then tries again; at the deadline it tries once more and reports
 * XICHAN_ENOSPC.  Every free runs under heap_lock and, if it finds the flag
 * set, clears it, bumps the word and wakes all waiters once the lock is
 * given up (heap_freed, xichan__heap_unlock): a waiter registered before
 * the free is woken or sees the bumped word when it calls FUTEX_WAIT; one
 * that registers after it saw the freed block in its own try.  All waiters
 * wake, since what one cannot use may fit another.  Never polled.  Crashes:
 * a waiter that dies leaves the flag set, which costs the next free one
 * FUTEX_WAKE.  A freer that dies between its bump and its wake (or
 * between its free and its bump) leaves sleepers unwoken; its session's
 * end runs xichan__heap_reclaim, which bumps and wakes unconditionally,
 * and the lock repair after a holder's death wakes waiters too.
 *
 * TAKING BACK CACHED BLOCKS (tag-cache-steal).  A session's cache holds up
 * to 64 small blocks that no item uses (items.c).  They must not make
 * another session's allocation fail, so an allocation that finds no room
 * (steal_cached) goes through the session table under heap_lock and, for
 * each session's cache_gate that is idle, sets WANT and, if the gate counts
 * cached blocks, takes it (GATE_THIEF), both by one CAS from the idle
 * value.  It then frees every CACHED block whose slot's gate it holds, and
 * gives the gates back with the generation bumped and WANT still set
 * (finish_steal, inside the repair walk, which merges and bins).  The owner
 * uses its cache only while holding its gate: GATE_OWNER, taken by a CAS
 * against the value it last released, given back by a plain store.  So:
 *   - no block is stolen while its owner uses the cache, nor used while
 *     it is being stolen: the gate admits one holder, and a thief changes
 *     a gate only from an idle value, so the owner's plain release never
 *     overwrites a thief's word;
 *   - the owner learns of a steal from the generation, which its CAS
 *     compares: a new one means every block its lists name was freed, and
 *     it forgets them all, without touching their memory.  This is why the
 *     owner never re-checks a stolen block by its state word: once freed,
 *     the block may have been merged into a neighbour (its header is then
 *     payload, whose bytes anyone may have written) or split and reused,
 *     by the same session too, at another size; a CAS on that word could
 *     succeed on bytes that only look like a cached block (ABA).  The gate
 *     is 64 bits: its generation cannot wrap between two uses;
 *   - a cache used after the steal pass looked at it cannot hide room from
 *     a waiter: the pass left WANT set, so the owner's next CAS fails on
 *     it.  The owner then reads hdr->heap_waiters under heap_lock, where
 *     no pass is half done: if an allocation waits, it empties its cache
 *     into the heap, caches nothing and leaves WANT set (its frees wake the
 *     waiters, who pass again); if none does, it clears WANT by its CAS
 *     while still holding heap_lock, so no pass can come in between, and
 *     caches again.  The CASes of thief and owner act on one word, so one
 *     of them sees the other.
 *   - a gate in use during the pass is waited for (a spin of GATE_SPINS:
 *     the owner holds it for a few dozen instructions and takes no lock
 *     meanwhile).  One still in use after that (its owner descheduled,
 *     stopped, or dead) cannot be asked, so the waiter bounds its sleep to
 *     BUSY_RETRY_NS and passes again: the one place a wait for room is
 *     not only woken by a free, and it happens only while some process
 *     sits inside its own cache's critical section.
 * Crashes: a thief that dies holding gates holds heap_lock, so the next
 * holder's repair sees hdr->heap_stealing and finishes the steal (frees
 * what the held gates cover, gives them back).  An owner that dies holding
 * its gate leaves a session that ends: the daemon's reclaim frees its
 * CACHED blocks whatever the gate says and resets the gate; the daemon
 * zeroes a slot's gate before a new session goes LIVE.
 */
#include <stdio.h>
#include <string.h>

#include "internal.h"

#define FIRST_UNIT XICHAN_HEAP_FIRST_UNIT
#define BIN_WALK_MAX 32 /* first-fit probes in the request's own bin */

/* ------------------------------------------------------------ helpers */

#define BIN_MASK ((1ull << XICHAN_NBINS) - 1) /* bitmap bits that name a bin */

static inline struct xichan_blk *at(const struct xichan_shm *shm, uint32_t off)
{
    return (struct xichan_blk *)(shm->heap + (uint64_t)off * XICHAN_UNIT);
}

static inline struct xichan_freelinks *links(struct xichan_blk *b)
{
    return (struct xichan_freelinks *)((uint8_t *)b + sizeof(*b));
}

/* units >= 1; every caller passes a size xichan__blk accepted, or a request. */
static inline uint32_t bin_of(uint32_t units)
{
    uint32_t k = 31u - (uint32_t)__builtin_clz(units);

    return k < XICHAN_NBINS ? k : XICHAN_NBINS - 1;
}

static inline int is_free(struct xichan_blk *b)
{
    return xichan__blk_state(xa_load_relaxed(&b->state)) == XICHAN_BLK_FREE;
}

uint64_t xichan__heap_max_item(const struct xichan_shm *shm)
{
    return (uint64_t)(shm->heap_units - FIRST_UNIT) * XICHAN_UNIT - XICHAN_ITEM_OVERHEAD;
}

/* The block after b in the tiling, if there is a plausible one. */
static inline struct xichan_blk *next_blk(const struct xichan_shm *shm, struct xichan_blk *b)
{
    return xichan__blk(shm, xichan__blk_off(shm, b) + b->size);
}

/* The block before b, by b's (derived) prev, if its size agrees. */
static inline struct xichan_blk *prev_blk(const struct xichan_shm *shm, struct xichan_blk *b)
{
    uint32_t off = xichan__blk_off(shm, b);
    struct xichan_blk *p;

    if (!b->prev || b->prev > off - FIRST_UNIT)
        return NULL;
    p = xichan__blk(shm, off - b->prev);
    return p && p->size == b->prev ? p : NULL;
}

/* ---------------------------------------------- bins (heap_lock held) */

/* off as an entry of bin k (tag-heap-trust): a plausible FREE block of that
 * bin, else NULL. */
static inline struct xichan_blk *bin_entry(const struct xichan_shm *shm, uint32_t off, uint32_t k)
{
    struct xichan_blk *b = xichan__blk(shm, off);

    return b && is_free(b) && bin_of(b->size) == k ? b : NULL;
}

/* Pushes b onto its bin.  XICHAN_ECORRUPT, and nothing stored, if the bin's
 * head is not a free block of that bin. */
static inline int bin_insert(struct xichan_shm *shm, struct xichan_blk *b)
{
    struct xichan_shm_hdr *h = shm->hdr;
    uint32_t k = bin_of(b->size), off = xichan__blk_off(shm, b), head = h->bins[k];
    struct xichan_freelinks *l = links(b);
    struct xichan_blk *n = NULL;

    if (head && (!(n = bin_entry(shm, head, k)) || n == b))
        return XICHAN_ECORRUPT;
    l->prev = 0;
    l->next = head;
    if (n)
        links(n)->prev = off;
    h->bins[k] = off;
    h->heap_bitmap |= 1ull << k;
    return 0;
}

/* Unlinks b from its bin.  XICHAN_ECORRUPT, and nothing stored, unless both
 * neighbours in the list are free blocks of the bin that link back to b. */
static inline int bin_remove(struct xichan_shm *shm, struct xichan_blk *b)
{
    struct xichan_shm_hdr *h = shm->hdr;
    uint32_t k = bin_of(b->size), off = xichan__blk_off(shm, b);
    struct xichan_freelinks *l = links(b);
    struct xichan_blk *p = NULL, *n = NULL;

    if (l->prev ? !(p = bin_entry(shm, l->prev, k)) || links(p)->next != off : h->bins[k] != off)
        return XICHAN_ECORRUPT;
    if (l->next && (!(n = bin_entry(shm, l->next, k)) || links(n)->prev != off))
        return XICHAN_ECORRUPT;
    if (p)
        links(p)->next = l->next;
    else
        h->bins[k] = l->next;
    if (n)
        links(n)->prev = l->prev;
    if (!h->bins[k])
        h->heap_bitmap &= ~(1ull << k);
    return 0;
}

/*
 * First fit in bin k, looking at no more than max blocks.  *bad is set when
 * the list is inconsistent (tag-heap-trust); the back-link check is what
 * makes a cycle impossible, max is only the backstop.
 */
static inline struct xichan_blk *bin_first_fit(struct xichan_shm *shm, uint32_t k, uint32_t need,
                                        uint32_t max, int *bad)
{
    uint32_t off = shm->hdr->bins[k], from = 0;

    for (uint32_t i = 0; off && i < max; i++) {
        struct xichan_blk *b = bin_entry(shm, off, k);

        if (!b || links(b)->prev != from) {
            *bad = 1;
            return NULL;
        }
        if (b->size >= need)
            return b;
        from = off;
        off = links(b)->next;
    }
    return NULL;
}

/* 1 if the bitmap says exactly which bins are non-empty. */
static int bitmap_agrees(const struct xichan_shm_hdr *h)
{
    uint64_t m = 0;

    for (uint32_t k = 0; k < XICHAN_NBINS; k++)
        m |= (uint64_t)(h->bins[k] != 0) << k;
    return m == h->heap_bitmap;
}

/* A free block of at least need units, or NULL: no space, or *bad set. */
static inline struct xichan_blk *find_block(struct xichan_shm *shm, uint32_t need, int *bad)
{
    struct xichan_shm_hdr *h = shm->hdr;
    uint32_t k = bin_of(need), j;
    struct xichan_blk *b = bin_first_fit(shm, k, need, BIN_WALK_MAX, bad);
    uint64_t above;

    if (b || *bad)
        return b;
    above = h->heap_bitmap & BIN_MASK & ~((2ull << k) - 1);
    if (above) { /* every block of a higher bin is at least 2^(k+1) > need units */
        j = (uint32_t)__builtin_ctzll(above);
        if (!(b = bin_entry(shm, h->bins[j], j)) || links(b)->prev)
            *bad = 1;
        return *bad ? NULL : b;
    }
    /* Last resort before ENOSPC: the whole of our own bin. */
    if ((b = bin_first_fit(shm, k, need, xichan__heap_max_blocks(shm), bad)) || *bad)
        return b;
    /* ENOSPC is only believed from a bitmap that matches the bins: a
     * scribbled bitmap can hide every block of a bin. */
    *bad = !bitmap_agrees(h);
    return NULL;
}

/*
 * One block of need units, RESERVED to sid.  NULL with *err set: ENOSPC,
 * or ECORRUPT when the bins were found inconsistent (nothing changed then).
 * needs heap_lock
 */
static inline struct xichan_blk *alloc_locked(struct xichan_shm *shm, uint32_t sid, uint32_t need,
                                       int *err)
{
    struct xichan_shm_hdr *h = shm->hdr;
    struct xichan_blk *b, *n, *t = NULL;
    uint32_t rest;
    int bad = 0;

    if (!(b = find_block(shm, need, &bad)) || bin_remove(shm, b)) {
        *err = b || bad ? XICHAN_ECORRUPT : XICHAN_ENOSPC;
        return NULL;
    }
    rest = b->size - need;
    if (rest >= XICHAN_MIN_BLK_UNITS) {
        t = at(shm, xichan__blk_off(shm, b) + need); /* inside b: need + rest = b->size */
        t->size = rest;
        t->prev = need;
        xa_store_relaxed(&t->state, xichan__blk_word(XICHAN_BLK_FREE, 0));
        t->link = 0;
        xichan__fault(XICHAN_FAULT_ALLOC_SPLIT);
        b->size = need; /* commit of the split (tag-heap-commit) */
        if ((n = next_blk(shm, t)))
            n->prev = rest;
        h->heap_blocks++;
    }
    b->link = 0;
    /* Commit of the allocation; the owner reads it back without the lock. */
    xa_store_release(&b->state, xichan__blk_word(XICHAN_BLK_RESERVED, sid));
    xichan__fault(XICHAN_FAULT_ALLOC_RESERVED);
    h->heap_used += (uint64_t)b->size * XICHAN_UNIT;
    /* The tail is binned after the commit, so that a rebuild, should its bin
     * be inconsistent, sees b RESERVED and does not bin it as well. */
    if (t && bin_insert(shm, t))
        (void)xichan__heap_repair(shm, NULL);
    return b;
}

static uint64_t steal_cached(struct xichan_shm *shm);
/* Set by steal_cached when a cache stayed in use through its spin (and its
 * blocks could not be asked for): the caller then waits at most
 * BUSY_RETRY_NS before it looks again (tag-cache-steal). */
static _Thread_local int steal_found_busy;
#define GATE_SPINS 4096
#define BUSY_RETRY_NS (1000 * 1000)

/* alloc_locked, rebuilding inconsistent bins once (tag-heap-trust), and
 * freeing the blocks idle sessions keep cached once before it reports
 * XICHAN_ENOSPC (tag-cache-steal).  One call site, so that the compiler
 * inlines the hot path. */
static struct xichan_blk *alloc_one(struct xichan_shm *shm, uint32_t sid, uint32_t need, int *err)
{
    for (int rebuilt = 0, stolen = 0;;) {
        struct xichan_blk *b = alloc_locked(shm, sid, need, err);

        if (b)
            return b;
        if (*err == XICHAN_ECORRUPT && !rebuilt) {
            rebuilt = 1;
            if (xichan__heap_repair(shm, NULL))
                return NULL;
        } else if (*err == XICHAN_ENOSPC && !stolen) {
            stolen = 1;
            if (!steal_cached(shm))
                return NULL;
        } else {
            return NULL;
        }
    }
}

/* ------------------------------------------------------------- public */

int xichan__heap_init(struct xichan_shm *shm)
{
    struct xichan_shm_hdr *h = shm->hdr;
    struct xichan_blk *b = at(shm, FIRST_UNIT);

    memset(h->bins, 0, sizeof(h->bins));
    h->heap_bitmap = 0;
    b->size = shm->heap_units - FIRST_UNIT;
    b->prev = 0;
    xa_store_relaxed(&b->state, xichan__blk_word(XICHAN_BLK_FREE, 0));
    b->link = 0;
    h->heap_used = 0;
    h->heap_blocks = 1;
    return bin_insert(shm, b);
}

int xichan__heap_lock(struct xichan_shm *shm, uint32_t sid, int64_t deadline_ns)
{
    return xichan__heap_lock_until(shm, sid, deadline_ns, NULL);
}

int xichan__heap_lock_until(struct xichan_shm *shm, uint32_t sid, int64_t deadline_ns,
                            const struct xichan_waiter *w)
{
    return xichan__lock(shm, &shm->hdr->heap_lock, xichan__heap_repair, NULL, sid, deadline_ns, w);
}

/* Set under heap_lock by heap_freed; the wake is made once the lock is given up. */
static _Thread_local int heap_wake_pending;

void xichan__heap_unlock(struct xichan_shm *shm)
{
    int wake = heap_wake_pending;

    heap_wake_pending = 0;
    xichan__unlock(&shm->hdr->heap_lock);
    if (wake)
        xichan__wake(&shm->hdr->heap_free_seq, INT32_MAX);
}

/*
 * Blocks were freed: if an allocation is waiting for room, bump the word it
 * sleeps on and wake every waiter when the lock is given up (each retries:
 * what one cannot use may fit another).  needs heap_lock (tag-heap-wait)
 */
static void heap_freed(struct xichan_shm_hdr *h)
{
    if (!xa_load_relaxed(&h->heap_waiters))
        return;
    xa_store_relaxed(&h->heap_waiters, 0);
    /* Under heap_lock, like the waiter's read of it; FUTEX_WAIT compares. */
    xa_add_release(&h->heap_free_seq, 1);
    heap_wake_pending = 1;
}


int xichan__heap_alloc(struct xichan_shm *shm, uint32_t sid, uint64_t item_len, uint32_t *off)
{
    int r = xichan__heap_reserve(shm, sid, &item_len, 1, off, 1, XICHAN_NOWAIT, NULL);

    return r < 0 ? r : 0;
}

int xichan__heap_alloc_many(struct xichan_shm *shm, uint32_t sid, const uint64_t *lens, size_t n,
                            uint32_t *offs)
{
    int r = xichan__heap_reserve(shm, sid, lens, n, offs, 1, XICHAN_NOWAIT, NULL);

    return r < 0 ? r : 0;
}

/* A segment outlives its daemon and is adopted at its own size: a larger one
 * needs the namespace removed first. */
#define RAISE_HINT                                                                                 \
    "give the namespace a larger segment: `xichanctl stop --discard` (its items go), then "        \
    "xichand --size, or XICHAN_SIZE for a daemon a client starts"

/* The detail xichan_strerror gives for an ENOSPC: the sizes involved.  needs heap_lock */
static void explain_full(struct xichan_shm *shm, const uint64_t *lens, size_t n)
{
    uint64_t len = 0, need = 0, used = shm->hdr->heap_used, free_b;

    for (size_t i = 0; i < n; i++) {
        len += lens[i];
        need += (uint64_t)xichan__item_units(lens[i]) * XICHAN_UNIT;
    }
    free_b = used < shm->heap_size ? shm->heap_size - used : 0;
    xichan__set_refusal(XICHAN_ENOSPC,
                        "shared segment is full: %s %llu bytes %s %llu bytes of heap; %llu of the "
                        "heap's %llu bytes are free%s; drain items, or %s",
                        n == 1 ? "an item of" : "items of", (unsigned long long)len,
                        n == 1 ? "needs" : "need", (unsigned long long)need,
                        (unsigned long long)free_b, (unsigned long long)shm->heap_size,
                        free_b >= need ? " (in pieces too small)" : "", RAISE_HINT);
}

int xichan__heap_reserve(struct xichan_shm *shm, uint32_t sid, const uint64_t *lens, size_t n,
                         uint32_t *offs, int all, int64_t deadline_ns,
                         const struct xichan_waiter *w)
{
    struct xichan_shm_hdr *h = shm->hdr;
    struct xichan_blk *b;
    int err, timed_out = 0;
    int64_t until;
    size_t got;
    uint32_t seq;

    if (n == 0 || n > INT32_MAX)
        return XICHAN_EINVAL;
    for (size_t i = 0; i < n; i++)
        if (lens[i] > xichan__heap_max_item(shm)) {
            xichan__set_refusal(XICHAN_E2BIG,
                                "item of %llu bytes can never fit: the heap of %llu bytes holds "
                                "items of at most %llu bytes; %s",
                                (unsigned long long)lens[i], (unsigned long long)shm->heap_size,
                                (unsigned long long)xichan__heap_max_item(shm), RAISE_HINT);
            return XICHAN_E2BIG;
        }
    for (;;) {
        /* The call's own deadline bounds the lock too (tag-lock-bound); the
         * last try after it, the short bound. */
        if ((err = xichan__heap_lock_until(shm, sid, timed_out ? XICHAN_NOWAIT : deadline_ns, w)))
            return err;
        for (got = 0; got < n; got++) {
            if (xichan__fault_fail(XICHAN_FAULT_FAIL_HEAP)) {
                err = XICHAN_ENOSPC;
                break;
            }
            if (!(b = alloc_one(shm, sid, xichan__item_units(lens[got]), &err)))
                break;
            offs[got] = xichan__blk_off(shm, b);
        }
        if (got == n || (got && !all)) {
            xichan__heap_unlock(shm);
            return (int)got;
        }
        while (got-- > 0) /* all or nothing */
            (void)xichan__heap_free_locked(shm, at(shm, offs[got]));
        if (err != XICHAN_ENOSPC || timed_out || deadline_ns == XICHAN_NOWAIT ||
            xichan_now_ns() >= deadline_ns) {
            if (err == XICHAN_ENOSPC)
                explain_full(shm, lens, all ? n : 1);
            xichan__heap_unlock(shm);
            return err;
        }
        /* Full: wait for a free (tag-heap-wait).  The steal in alloc_one has
         * asked every cache for its blocks, and heap_freed will see the flag. */
        xa_store_relaxed(&h->heap_waiters, 1);
        seq = xa_load_relaxed(&h->heap_free_seq); /* every bump is under heap_lock too */
        xichan__heap_unlock(shm);
        xichan__fault(XICHAN_FAULT_HEAP_WAITING);
        until = deadline_ns;
        if (steal_found_busy && xichan_now_ns() + BUSY_RETRY_NS < deadline_ns)
            until = xichan_now_ns() + BUSY_RETRY_NS; /* a cache was in use: look again */
        err = xichan__wait(&h->heap_free_seq, seq, until, w);
        if (err == XICHAN_ETIMEDOUT && until == deadline_ns)
            timed_out = 1; /* one last try, steal included, then ENOSPC */
        else if (err && err != XICHAN_ETIMEDOUT)
            return err;
    }
}

int xichan__heap_free_locked(struct xichan_shm *shm, struct xichan_blk *b)
{
    struct xichan_shm_hdr *h = shm->hdr;
    struct xichan_blk *n, *p;

    h->heap_used -= (uint64_t)b->size * XICHAN_UNIT;
    xa_store_release(&b->state, xichan__blk_word(XICHAN_BLK_FREE, 0)); /* commit */
    xichan__fault(XICHAN_FAULT_FREE_MARKED);
    heap_freed(h);
    /* From here on only derived state changes, except the merges, each one
     * store that keeps the tiling: a bin found inconsistent on the way is
     * left to the rebuild, which merges and bins whatever is left. */
    n = next_blk(shm, b);
    if (n && is_free(n)) {
        if (bin_remove(shm, n))
            return xichan__heap_repair(shm, NULL);
        b->size += n->size; /* merge: n's header becomes payload */
        h->heap_blocks--;
        xichan__fault(XICHAN_FAULT_FREE_MERGED);
        if ((n = next_blk(shm, b)))
            n->prev = b->size;
    }
    if ((p = prev_blk(shm, b)) && is_free(p)) {
        if (bin_remove(shm, p))
            return xichan__heap_repair(shm, NULL);
        p->size += b->size;
        h->heap_blocks--;
        b = p;
        if ((n = next_blk(shm, b)))
            n->prev = b->size;
    }
    return bin_insert(shm, b) ? xichan__heap_repair(shm, NULL) : 0;
}

int xichan__heap_free(struct xichan_shm *shm, uint32_t off, uint32_t sid)
{
    return xichan__heap_free_many(shm, &off, 1, sid);
}

int xichan__heap_free_many(struct xichan_shm *shm, const uint32_t *offs, size_t n, uint32_t sid)
{
    int err, bad = 0;

    if ((err = xichan__heap_lock(shm, sid, XICHAN__LOCK_BOUNDED)))
        return err;
    for (size_t i = 0; i < n; i++) {
        struct xichan_blk *b = xichan__blk(shm, offs[i]);
        uint32_t w = b ? xa_load_relaxed(&b->state) : 0, st = xichan__blk_state(w);

        /* Only the owner frees its reserved or leased block. */
        if (!b || (st != XICHAN_BLK_RESERVED && st != XICHAN_BLK_LEASED) ||
            xichan__blk_owner(w) != sid) {
            bad = 1;
            continue;
        }
        if (xichan__heap_free_locked(shm, b))
            bad = 1;
    }
    xichan__heap_unlock(shm);
    return bad ? XICHAN_ECORRUPT : 0;
}

/* ------------------------------------------------------------- repair */

/* 1 if the blocks tile the heap exactly, each in a known state.  Reads only. */
static int tiling_ok(const struct xichan_shm *shm)
{
    uint32_t off = FIRST_UNIT;

    while (off < shm->heap_units) {
        struct xichan_blk *b = xichan__blk(shm, off);

        if (!b || xichan__blk_state(xa_load_relaxed(&b->state)) > XICHAN_BLK_CACHED)
            return 0;
        off += b->size;
    }
    return off == shm->heap_units;
}

/* ------------------------------------------------------------- steal */

static inline xichan_atomic_u64 *gate_of(struct xichan_shm *shm, uint32_t slot)
{
    return &shm->sessions[slot].cache_gate;
}

/*
 * Frees the CACHED blocks of every session whose gate the thief holds, then
 * gives the gates back with their generation bumped, and WANT left set so
 * that what those sessions cache next comes back too (tag-cache-steal).
 * Only store FREE here: the caller's repair walk merges and bins.  Also
 * finishes the steal of a thief that died holding heap_lock.  Returns how
 * many blocks it freed.  needs heap_lock, a valid tiling
 */
static uint64_t finish_steal(struct xichan_shm *shm)
{
    struct xichan_blk *b;
    uint64_t n = 0;

    if (!shm->hdr->heap_stealing)
        return 0;
    for (uint32_t off = FIRST_UNIT; (b = xichan__blk(shm, off)); off += b->size) {
        uint32_t w = xa_load_relaxed(&b->state), s = xichan__blk_owner(w);

        if (xichan__blk_state(w) == XICHAN_BLK_CACHED && s < shm->nsessions &&
            (xa_load_relaxed(gate_of(shm, s)) & XICHAN_GATE_THIEF)) {
            xa_store_release(&b->state, xichan__blk_word(XICHAN_BLK_FREE, 0));
            n++;
        }
    }
    xichan__fault(XICHAN_FAULT_STEAL_FREED);
    for (uint32_t s = 0; s < shm->nsessions; s++) {
        uint64_t g = xa_load_relaxed(gate_of(shm, s));

        /* Its owner cannot change it while THIEF is set; release: the owner's
         * next CAS on it sees the blocks FREE (and forgets them anyway). */
        if (g & XICHAN_GATE_THIEF)
            xa_store_release(gate_of(shm, s), (((g >> XICHAN_GATE_GEN_SHIFT) + 1)
                                               << XICHAN_GATE_GEN_SHIFT) | XICHAN_GATE_WANT);
    }
    shm->hdr->heap_stealing = 0;
    return n;
}

/*
 * The heap is full: asks every session's cache for its blocks (WANT) and
 * frees those of caches nobody is using (tag-cache-steal).  Nonzero if it
 * took any cache, so that the caller tries again.  needs heap_lock
 */
static uint64_t steal_cached(struct xichan_shm *shm)
{
    uint32_t held = 0, unfinished = shm->hdr->heap_stealing;

    /* Set before any gate is taken: a repair after our death finishes.
     * Found set: a steal whose repair failed (corrupt tiling) holds gates
     * still, and the repair below tries it again. */
    shm->hdr->heap_stealing = 1;
    steal_found_busy = 0;
    for (uint32_t s = 0; s < shm->nsessions; s++) {
        xichan_atomic_u64 *gate = gate_of(shm, s);
        uint64_t old, want;
        int spins = 0;

        if (xa_load_relaxed(&shm->sessions[s].state) == XICHAN_SESS_FREE)
            continue;
        /* Acquire: pairs with the owner's release of its gate, so a THIEF
         * taken below sees the block states it stored under the gate. */
        old = xa_load_acquire(gate);
        for (;;) {
            if (old & XICHAN_GATE_THIEF) /* a steal left unfinished: the repair's */
                break;
            if (old & XICHAN_GATE_OWNER) {
                /* In use: its owner holds the gate for a few dozen
                 * instructions and takes no lock meanwhile.  One that
                 * stays (descheduled, stopped, dead) is left for a retry:
                 * the caller's wait is bounded (tag-cache-steal). */
                if (++spins > GATE_SPINS) {
                    steal_found_busy = 1;
                    break;
                }
                xichan__cpu_relax();
                old = xa_load_acquire(gate);
                continue;
            }
            /* Idle: WANT, so that its next use gives everything back, and
             * THIEF if it holds blocks.  A CAS from an idle value: an owner
             * never holds a gate a thief changed (its release is a store). */
            want = old | XICHAN_GATE_WANT | (old & XICHAN_GATE_COUNT_MASK ? XICHAN_GATE_THIEF : 0);
            if (want == old)
                break;
            if (atomic_compare_exchange_weak_explicit(gate, &old, want, memory_order_acq_rel,
                                                      memory_order_acquire)) { /* pairs with gate_take */
                held += (want & XICHAN_GATE_THIEF) != 0;
                break;
            }
        }
    }
    if (!held && !unfinished) {
        shm->hdr->heap_stealing = 0;
        return 0;
    }
    xichan__fault(XICHAN_FAULT_STEAL_GATED);
    return xichan__heap_repair(shm, NULL) == 0 ? held + unfinished : 0; /* finish_steal, merge, rebin */
}

/* ------------------------------------------------------------- repair */

/*
 * Validates the tiling first, and changes nothing if it is corrupt; then
 * one walk recomputes prev, merges adjacent free blocks and counts, and a
 * second rebuilds the bins now that merged sizes are final.  Idempotent.
 * Fails (XICHAN_ECORRUPT; after a dead holder the heap lock then becomes
 * broken) only when the tiling itself is corrupt.  A steal a dead holder
 * left half done is finished first (finish_steal), and waiters are woken.
 */
int xichan__heap_repair(struct xichan_shm *shm, void *unused)
{
    struct xichan_shm_hdr *h = shm->hdr;
    struct xichan_blk *last = NULL, *b;
    uint32_t off;
    uint64_t used = 0, blocks = 0;

    if (!tiling_ok(shm))
        return XICHAN_ECORRUPT;
    (void)finish_steal(shm);
    /* A holder that died may have freed blocks without waking anyone. */
    heap_freed(h);
    for (off = FIRST_UNIT; (b = xichan__blk(shm, off)); off += b->size) {
        if (is_free(b) && last && is_free(last)) {
            last->size += b->size;
            continue;
        }
        b->prev = last ? last->size : 0;
        if (!is_free(b))
            used += (uint64_t)b->size * XICHAN_UNIT;
        blocks++;
        last = b;
    }
    memset(h->bins, 0, sizeof(h->bins));
    h->heap_bitmap = 0;
    for (off = FIRST_UNIT; (b = xichan__blk(shm, off)); off += b->size)
        if (is_free(b) && bin_insert(shm, b))
            return XICHAN_ECORRUPT; /* a concurrent scribbler; the next rebuild retries */
    h->heap_used = used;
    h->heap_blocks = blocks;
    return 0;
}

/* The slot of the session that has not finished ending and holds sid, or
 * nsessions (tag-sid-reuse: at most one). */
static uint32_t slot_of(const struct xichan_shm *shm, uint32_t sid)
{
    for (uint32_t i = 0; i < shm->nsessions; i++)
        if (shm->sessions[i].sid == sid &&
            xa_load_relaxed(&shm->sessions[i].state) != XICHAN_SESS_FREE)
            return i;
    return shm->nsessions;
}

int xichan__heap_reclaim(struct xichan_shm *shm, uint32_t sid, uint64_t *nfreed)
{
    struct xichan_blk *b;
    uint32_t slot = slot_of(shm, sid);
    uint64_t n = 0;
    int err;

    *nfreed = 0;
    if ((err = xichan__heap_lock(shm, 0, XICHAN_NOWAIT)))
        return err;
    /* As the repair: a corrupt tiling fails before anything changes (the
     * session's slot then stays CLEANING, its id taken: sessions.c). */
    if (!tiling_ok(shm)) {
        xichan__heap_unlock(shm);
        return XICHAN_ECORRUPT;
    }
    for (uint32_t off = FIRST_UNIT; (b = xichan__blk(shm, off)); off += b->size) {
        uint32_t w = xa_load_relaxed(&b->state), st = xichan__blk_state(w);

        if (((st == XICHAN_BLK_RESERVED || st == XICHAN_BLK_LEASED) && xichan__blk_owner(w) == sid) ||
            (st == XICHAN_BLK_CACHED && xichan__blk_owner(w) == slot)) {
            xa_store_release(&b->state, xichan__blk_word(XICHAN_BLK_FREE, 0));
            n++;
        }
    }
    /* The cache is gone with its blocks; THIEF cannot be set (we hold
     * heap_lock and no steal is half done: the lock's repair finished it). */
    if (slot < shm->nsessions)
        xa_store_release(gate_of(shm, slot),
                         ((xa_load_relaxed(gate_of(shm, slot)) >> XICHAN_GATE_GEN_SHIFT) + 1)
                             << XICHAN_GATE_GEN_SHIFT);
    /* The repair walk merges what was just freed and rebuilds the bins. */
    err = n ? xichan__heap_repair(shm, NULL) : 0;
    xichan__heap_unlock(shm);
    /*
     * Wake every heap waiter, whatever the flag says: the process that
     * ended may have died between a free's bump of heap_free_seq and its
     * FUTEX_WAKE (tag-heap-wait); a waiter woken for nothing retries once.
     */
    xa_add_release(&shm->hdr->heap_free_seq, 1);
    xichan__wake(&shm->hdr->heap_free_seq, INT32_MAX);
    *nfreed = n;
    return err;
}

/* -------------------------------------------------------------- check */

int xichan__heap_check(struct xichan_shm *shm, struct xichan_heap_report *r)
{
    struct xichan_shm_hdr *h = shm->hdr;
    uint32_t prev_size = 0, prev_state = 99, off;
    uint64_t binned = 0;
    int err;

    memset(r, 0, sizeof(*r));
    r->ok = 1;
    if ((err = xichan__heap_lock(shm, 0, XICHAN_NOWAIT)))
        return err;
#define FAIL(...)                                                                                  \
    do {                                                                                           \
        if (r->ok)                                                                                 \
            snprintf(r->why, sizeof(r->why), __VA_ARGS__);                                         \
        r->ok = 0;                                                                                 \
    } while (0)
    for (off = FIRST_UNIT; off < shm->heap_units;) {
        struct xichan_blk *b = at(shm, off);
        uint32_t st = xichan__blk_state(xa_load_relaxed(&b->state));

        if (b->size < XICHAN_MIN_BLK_UNITS || b->size > shm->heap_units - off) {
            FAIL("block %u: bad size %u", off, b->size);
            break;
        }
        if (b->prev != prev_size)
            FAIL("block %u: prev %u, expected %u", off, b->prev, prev_size);
        if (st == XICHAN_BLK_FREE && prev_state == XICHAN_BLK_FREE)
            FAIL("block %u: two adjacent free blocks", off);
        r->blocks++;
        switch (st) {
        case XICHAN_BLK_FREE:
            r->free_blocks++;
            r->free_bytes += (uint64_t)b->size * XICHAN_UNIT;
            break;
        case XICHAN_BLK_RESERVED:
            r->reserved++;
            break;
        case XICHAN_BLK_QUEUED:
            r->queued++;
            break;
        case XICHAN_BLK_LEASED:
            r->leased++;
            break;
        case XICHAN_BLK_OWNED:
            r->owned++;
            break;
        case XICHAN_BLK_CACHED:
            r->cached++;
            break;
        default:
            FAIL("block %u: bad state %u", off, st);
        }
        if (st != XICHAN_BLK_FREE)
            r->used_bytes += (uint64_t)b->size * XICHAN_UNIT;
        prev_size = b->size;
        prev_state = st;
        off += b->size;
    }
    for (uint32_t k = 0; k < XICHAN_NBINS; k++) {
        uint64_t guard = 0;
        uint32_t from = 0;
        for (uint32_t o = h->bins[k]; o; from = o, o = links(at(shm, o))->next) {
            struct xichan_blk *b = bin_entry(shm, o, k);
            if (!b || links(b)->prev != from || ++guard > r->blocks) {
                FAIL("bin %u: bad entry %u", k, o);
                break;
            }
            binned++;
        }
    }
    if (!bitmap_agrees(h))
        FAIL("bitmap %#llx does not match the bins", (unsigned long long)h->heap_bitmap);
    if (binned != r->free_blocks)
        FAIL("%llu free blocks but %llu in bins", (unsigned long long)r->free_blocks,
             (unsigned long long)binned);
    if (h->heap_used != r->used_bytes)
        FAIL("heap_used %llu, walk says %llu", (unsigned long long)h->heap_used,
             (unsigned long long)r->used_bytes);
#undef FAIL
    xichan__heap_unlock(shm);
    return 0;
}
