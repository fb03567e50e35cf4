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
 *           which the daemon's xichan__heap_reclaim frees.
 *   free    the state store FREE commits the free; each merge is one store
 *           that grows the lower block over the upper one, whose header then
 *           becomes payload.  Die between merges: adjacent free blocks,
 *           which the repair walk merges.
 *
 * Ownership: RESERVED and LEASED blocks carry their owner's sid and are
 * freed by that owner, or by the daemon once the owner's session has ended.
 * QUEUED blocks belong to the fifo that links them (fifo.c).
 */
#include <stdio.h>
#include <string.h>

#include "internal.h"

#define FIRST_UNIT 1u
#define BIN_WALK_MAX 32 /* first-fit probes in the request's own bin */

/* ------------------------------------------------------------ helpers */

static inline struct xichan_blk *at(const struct xichan_shm *shm, uint32_t off)
{
    return (struct xichan_blk *)(shm->heap + (uint64_t)off * XICHAN_UNIT);
}

static inline struct xichan_freelinks *links(struct xichan_blk *b)
{
    return (struct xichan_freelinks *)((uint8_t *)b + sizeof(*b));
}

static inline uint32_t bin_of(uint32_t units)
{
    uint32_t k = 31u - (uint32_t)__builtin_clz(units);

    return k < XICHAN_NBINS ? k : XICHAN_NBINS - 1;
}

struct xichan_blk *xichan__blk(const struct xichan_shm *shm, uint32_t off)
{
    struct xichan_blk *b;

    if (off < FIRST_UNIT || off > shm->heap_units - XICHAN_MIN_BLK_UNITS)
        return NULL;
    b = at(shm, off);
    if (b->size < XICHAN_MIN_BLK_UNITS || b->size > shm->heap_units - off)
        return NULL;
    return b;
}

uint64_t xichan__heap_max_item(const struct xichan_shm *shm)
{
    return (uint64_t)(shm->heap_units - FIRST_UNIT) * XICHAN_UNIT - XICHAN_ITEM_OVERHEAD;
}

/* ---------------------------------------------- bins (heap_lock held) */

static void bin_insert(struct xichan_shm *shm, struct xichan_blk *b)
{
    struct xichan_shm_hdr *h = shm->hdr;
    uint32_t k = bin_of(b->size), off = xichan__blk_off(shm, b);
    struct xichan_freelinks *l = links(b);

    l->prev = 0;
    l->next = h->bins[k];
    if (h->bins[k])
        links(at(shm, h->bins[k]))->prev = off;
    h->bins[k] = off;
    h->heap_bitmap |= 1ull << k;
}

static void bin_remove(struct xichan_shm *shm, struct xichan_blk *b)
{
    struct xichan_shm_hdr *h = shm->hdr;
    uint32_t k = bin_of(b->size);
    struct xichan_freelinks *l = links(b);

    if (l->prev)
        links(at(shm, l->prev))->next = l->next;
    else
        h->bins[k] = l->next;
    if (l->next)
        links(at(shm, l->next))->prev = l->prev;
    if (!h->bins[k])
        h->heap_bitmap &= ~(1ull << k);
}

static struct xichan_blk *next_blk(const struct xichan_shm *shm, struct xichan_blk *b)
{
    uint32_t off = xichan__blk_off(shm, b) + b->size;

    return off < shm->heap_units ? at(shm, off) : NULL;
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
    bin_insert(shm, b);
    h->heap_used = 0;
    h->heap_blocks = 1;
    return 0;
}

int xichan__heap_lock(struct xichan_shm *shm, uint32_t sid, int64_t deadline_ns)
{
    return xichan__lock(shm, &shm->hdr->heap_lock, xichan__heap_repair, NULL, sid, deadline_ns);
}

void xichan__heap_unlock(struct xichan_shm *shm)
{
    xichan__unlock(&shm->hdr->heap_lock);
}

/* First fit in bin k, looking at no more than max blocks. */
static struct xichan_blk *bin_first_fit(struct xichan_shm *shm, uint32_t k, uint32_t need,
                                        uint64_t max)
{
    uint32_t off = shm->hdr->bins[k];

    for (uint64_t i = 0; off && i < max; i++) {
        struct xichan_blk *b = at(shm, off);
        if (b->size >= need)
            return b;
        off = links(b)->next;
    }
    return NULL;
}

static struct xichan_blk *find_block(struct xichan_shm *shm, uint32_t need)
{
    uint32_t k = bin_of(need);
    struct xichan_blk *b = bin_first_fit(shm, k, need, BIN_WALK_MAX);
    uint64_t above;

    if (b)
        return b;
    above = k + 1 < 64 ? shm->hdr->heap_bitmap & ~((2ull << k) - 1) : 0;
    if (above) /* every block of a higher bin is at least 2^(k+1) > need units */
        return at(shm, shm->hdr->bins[__builtin_ctzll(above)]);
    /* Last resort before ENOSPC: the whole of our own bin. */
    return bin_first_fit(shm, k, need, shm->hdr->heap_blocks + 1);
}

/* One block of need units, RESERVED to sid.  needs heap_lock */
static struct xichan_blk *alloc_locked(struct xichan_shm *shm, uint32_t sid, uint32_t need)
{
    struct xichan_shm_hdr *h = shm->hdr;
    struct xichan_blk *b = find_block(shm, need), *n;
    uint32_t rest;

    if (!b)
        return NULL;
    bin_remove(shm, b);
    rest = b->size - need;
    if (rest >= XICHAN_MIN_BLK_UNITS) {
        struct xichan_blk *t = at(shm, xichan__blk_off(shm, b) + need);

        t->size = rest;
        t->prev = need;
        xa_store_relaxed(&t->state, xichan__blk_word(XICHAN_BLK_FREE, 0));
        t->link = 0;
        xichan__fault(XICHAN_FAULT_ALLOC_SPLIT);
        b->size = need; /* commit of the split (tag-heap-commit) */
        if ((n = next_blk(shm, t)))
            n->prev = rest;
        bin_insert(shm, t);
        h->heap_blocks++;
    }
    b->link = 0;
    /* Commit of the allocation; the owner reads it back without the lock. */
    xa_store_release(&b->state, xichan__blk_word(XICHAN_BLK_RESERVED, sid));
    xichan__fault(XICHAN_FAULT_ALLOC_RESERVED);
    h->heap_used += (uint64_t)b->size * XICHAN_UNIT;
    return b;
}


int xichan__heap_alloc(struct xichan_shm *shm, uint32_t sid, uint64_t item_len, uint32_t *off)
{
    return xichan__heap_alloc_many(shm, sid, &item_len, 1, off);
}

int xichan__heap_alloc_many(struct xichan_shm *shm, uint32_t sid, const uint64_t *lens, size_t n,
                            uint32_t *offs)
{
    struct xichan_blk *b;
    size_t i;
    int err;

    for (i = 0; i < n; i++)
        if (lens[i] > xichan__heap_max_item(shm))
            return XICHAN_E2BIG;
    if ((err = xichan__heap_lock(shm, sid, XICHAN_FOREVER)))
        return err;
    for (i = 0; i < n; i++) {
        if (xichan__fault_fail(XICHAN_FAULT_FAIL_HEAP) ||
            !(b = alloc_locked(shm, sid, xichan__item_units(lens[i]))))
            break;
        offs[i] = xichan__blk_off(shm, b);
    }
    err = i < n ? XICHAN_ENOSPC : 0;
    if (err) /* all or nothing */
        while (i-- > 0)
            xichan__heap_free_locked(shm, at(shm, offs[i]));
    xichan__heap_unlock(shm);
    return err;
}

void xichan__heap_free_locked(struct xichan_shm *shm, struct xichan_blk *b)
{
    struct xichan_shm_hdr *h = shm->hdr;
    struct xichan_blk *n, *p;

    h->heap_used -= (uint64_t)b->size * XICHAN_UNIT;
    xa_store_release(&b->state, xichan__blk_word(XICHAN_BLK_FREE, 0)); /* commit */
    xichan__fault(XICHAN_FAULT_FREE_MARKED);
    n = next_blk(shm, b);
    if (n && xichan__blk_state(xa_load_relaxed(&n->state)) == XICHAN_BLK_FREE) {
        bin_remove(shm, n);
        b->size += n->size; /* merge: n's header becomes payload */
        h->heap_blocks--;
        xichan__fault(XICHAN_FAULT_FREE_MERGED);
        if ((n = next_blk(shm, b)))
            n->prev = b->size;
    }
    if (b->prev && b->prev <= xichan__blk_off(shm, b) - FIRST_UNIT) {
        p = at(shm, xichan__blk_off(shm, b) - b->prev);
        if (p->size == b->prev && xichan__blk_state(xa_load_relaxed(&p->state)) == XICHAN_BLK_FREE) {
            bin_remove(shm, p);
            p->size += b->size;
            h->heap_blocks--;
            b = p;
            if ((n = next_blk(shm, b)))
                n->prev = b->size;
        }
    }
    bin_insert(shm, b);
}

int xichan__heap_free(struct xichan_shm *shm, uint32_t off, uint32_t sid)
{
    return xichan__heap_free_many(shm, &off, 1, sid);
}

int xichan__heap_free_many(struct xichan_shm *shm, const uint32_t *offs, size_t n, uint32_t sid)
{
    int err, bad = 0;

    if ((err = xichan__heap_lock(shm, sid, XICHAN_FOREVER)))
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
        xichan__heap_free_locked(shm, b);
    }
    xichan__heap_unlock(shm);
    return bad ? XICHAN_ECORRUPT : 0;
}

/* ------------------------------------------------------------- repair */

/*
 * One walk: validates every size, recomputes prev, merges adjacent free
 * blocks, rebuilds bins and statistics.  Idempotent.  Fails (the heap lock
 * then becomes broken) only when the tiling itself is corrupt.
 */
int xichan__heap_repair(struct xichan_shm *shm, void *unused)
{
    struct xichan_shm_hdr *h = shm->hdr;
    struct xichan_blk *last = NULL;
    uint32_t off = FIRST_UNIT;
    uint64_t used = 0, blocks = 0;

    memset(h->bins, 0, sizeof(h->bins));
    h->heap_bitmap = 0;
    while (off < shm->heap_units) {
        struct xichan_blk *b = at(shm, off);
        uint32_t st = xichan__blk_state(xa_load_relaxed(&b->state));

        if (b->size < XICHAN_MIN_BLK_UNITS || b->size > shm->heap_units - off ||
            st > XICHAN_BLK_OWNED)
            return XICHAN_ECORRUPT;
        if (st == XICHAN_BLK_FREE && last &&
            xichan__blk_state(xa_load_relaxed(&last->state)) == XICHAN_BLK_FREE) {
            last->size += b->size;
            off += b->size;
            continue;
        }
        b->prev = last ? last->size : 0;
        if (st != XICHAN_BLK_FREE)
            used += (uint64_t)b->size * XICHAN_UNIT;
        blocks++;
        last = b;
        off += b->size;
    }
    if (off != shm->heap_units)
        return XICHAN_ECORRUPT;
    /* Second pass: bins, now that merged sizes are final. */
    for (off = FIRST_UNIT; off < shm->heap_units;) {
        struct xichan_blk *b = at(shm, off);
        if (xichan__blk_state(xa_load_relaxed(&b->state)) == XICHAN_BLK_FREE)
            bin_insert(shm, b);
        off += b->size;
    }
    h->heap_used = used;
    h->heap_blocks = blocks;
    return 0;
}

int xichan__heap_reclaim(struct xichan_shm *shm, uint32_t sid, uint64_t *nfreed)
{
    uint64_t n = 0;
    int err;

    *nfreed = 0;
    if ((err = xichan__heap_lock(shm, 0, xichan_now_ns() + 10 * 1000000000ll)))
        return err;
    for (uint32_t off = FIRST_UNIT; off < shm->heap_units;) {
        struct xichan_blk *b = at(shm, off);
        uint32_t w = xa_load_relaxed(&b->state), st = xichan__blk_state(w);

        if (b->size < XICHAN_MIN_BLK_UNITS || b->size > shm->heap_units - off) {
            xichan__heap_unlock(shm);
            return XICHAN_ECORRUPT;
        }
        if ((st == XICHAN_BLK_RESERVED || st == XICHAN_BLK_LEASED) && xichan__blk_owner(w) == sid) {
            xa_store_release(&b->state, xichan__blk_word(XICHAN_BLK_FREE, 0));
            n++;
        }
        off += b->size;
    }
    /* The repair walk merges what was just freed and rebuilds the bins. */
    err = n ? xichan__heap_repair(shm, NULL) : 0;
    xichan__heap_unlock(shm);
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
    if ((err = xichan__heap_lock(shm, 0, xichan_now_ns() + 5 * 1000000000ll)))
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
        for (uint32_t o = h->bins[k]; o; o = links(at(shm, o))->next) {
            struct xichan_blk *b = xichan__blk(shm, o);
            if (!b || xichan__blk_state(xa_load_relaxed(&b->state)) != XICHAN_BLK_FREE ||
                bin_of(b->size) != k || ++guard > r->blocks) {
                FAIL("bin %u: bad entry %u", k, o);
                break;
            }
            binned++;
        }
    }
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
