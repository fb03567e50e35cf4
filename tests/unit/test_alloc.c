/*
 * test_alloc.c -- the segment heap (alloc.c): allocation, coalescing,
 * ownership checks, reclaim, repair, and crashes at the heap's fault points.
 *
 * The crash tests fork a child that dies by SIGKILL at a fault point while it
 * holds heap_lock; the parent then takes the lock (which runs the repair on
 * EOWNERDEAD) and checks the heap.
 */
#include <signal.h>
#include <sys/wait.h>

#include "unit.h"

#define SID 5u

/* The block at off, which must be a valid one. */
static struct xichan_blk *blk(uint32_t off)
{
    struct xichan_blk *b = xichan__blk(shm, off);

    assert_non_null(b);
    return b;
}

static struct xichan_heap_report report(void)
{
    struct xichan_heap_report r;

    ut_ok(xichan__heap_check(shm, &r));
    if (!r.ok)
        fail_msg("heap check: %s", r.why);
    return r;
}

/* The heap is one free block covering everything. */
static void assert_all_free(void)
{
    struct xichan_heap_report r = report();
    struct xichan_blk *b = blk(1);

    assert_int_equal(r.blocks, 1);
    assert_int_equal(r.free_blocks, 1);
    assert_int_equal(r.used_bytes, 0);
    assert_int_equal(shm->hdr->heap_used, 0);
    assert_int_equal(shm->hdr->heap_blocks, 1);
    assert_non_null(b);
    assert_int_equal(b->size, shm->heap_units - 1);
    assert_int_equal(xa_load_relaxed(&b->state), xichan__blk_word(XICHAN_BLK_FREE, 0));
}

static uint32_t units_for(uint64_t len)
{
    return (uint32_t)(2 + (len + XICHAN_UNIT - 1) / XICHAN_UNIT);
}

static uint32_t alloc_ok(uint32_t sid, uint64_t len)
{
    uint32_t off = 0;
    struct xichan_blk *b;
    uint32_t w;

    ut_ok(xichan__heap_alloc(shm, sid, len, &off));
    b = blk(off);
    assert_non_null(b);
    w = xa_load_relaxed(&b->state);
    assert_int_equal(xichan__blk_state(w), XICHAN_BLK_RESERVED);
    assert_int_equal(xichan__blk_owner(w), sid);
    assert_true(b->size >= units_for(len));
    /* The payload lies inside the block and the block inside the heap. */
    assert_true((uint64_t)b->size * XICHAN_UNIT >= XICHAN_ITEM_OVERHEAD + len);
    assert_true((uint64_t)off + b->size <= shm->heap_units);
    return off;
}

static void set_state(uint32_t off, uint32_t st, uint32_t sid)
{
    xa_store_relaxed(&blk(off)->state, xichan__blk_word(st, sid));
}

static uint32_t state_of(uint32_t off)
{
    return xa_load_relaxed(&blk(off)->state);
}

/* ------------------------------------------------------------ basics */

static void test_heap_fresh_is_one_free_block(void **state)
{
    struct xichan_heap_report r = report();

    assert_all_free();
    assert_int_equal(r.free_bytes, (uint64_t)(shm->heap_units - 1) * XICHAN_UNIT);
    assert_int_equal(r.reserved + r.queued + r.leased + r.owned, 0);
}

static void test_heap_alloc_sizes_reserve_enough_units(void **state)
{
    static const uint64_t lens[] = {0, 1, 15, 16, 17, 1000};
    uint32_t offs[6];
    uint64_t used = 0;

    for (size_t i = 0; i < 6; i++) {
        offs[i] = alloc_ok(SID, lens[i]);
        used += (uint64_t)blk(offs[i])->size * XICHAN_UNIT;
        ut_heap_ok(shm);
        assert_int_equal(shm->hdr->heap_used, used);
    }
    /* Exact sizes on a fresh heap: nothing is left over to round up. */
    assert_int_equal(blk(offs[0])->size, 2);
    assert_int_equal(blk(offs[1])->size, 3);
    assert_int_equal(blk(offs[2])->size, 3);
    assert_int_equal(blk(offs[3])->size, 3);
    assert_int_equal(blk(offs[4])->size, 4);
    assert_int_equal(blk(offs[5])->size, 65);
    assert_int_equal(report().reserved, 6);
    for (size_t i = 0; i < 6; i++) {
        ut_ok(xichan__heap_free(shm, offs[i], SID));
        ut_heap_ok(shm);
    }
    assert_all_free();
}

static void test_heap_alloc_blocks_do_not_overlap(void **state)
{
    uint32_t a = alloc_ok(SID, 100), b = alloc_ok(SID, 100), c = alloc_ok(SID, 5);

    assert_true(a + blk(a)->size <= b);
    assert_true(b + blk(b)->size <= c);
    memset(xichan__item_data(blk(a)), 0xAA, 100);
    memset(xichan__item_data(blk(c)), 0xCC, 5);
    memset(xichan__item_data(blk(b)), 0xBB, 100);
    assert_int_equal(xichan__item_data(blk(a))[99], 0xAA);
    assert_int_equal(xichan__item_data(blk(c))[0], 0xCC);
    ut_heap_ok(shm);
    ut_ok(xichan__heap_free(shm, a, SID));
    ut_ok(xichan__heap_free(shm, b, SID));
    ut_ok(xichan__heap_free(shm, c, SID));
    assert_all_free();
}

/* -------------------------------------------------------- coalescing */

/* Three blocks A B C before the free tail; free them in the given order. */
static void free_in_order(const int order[3])
{
    uint32_t offs[3];

    for (int i = 0; i < 3; i++)
        offs[i] = alloc_ok(SID, 200);
    for (int i = 0; i < 3; i++) {
        ut_ok(xichan__heap_free(shm, offs[order[i]], SID));
        ut_heap_ok(shm);
    }
    assert_all_free();
}

static void test_heap_free_middle_last_merges_both_ways(void **state)
{
    free_in_order((const int[3]){0, 2, 1});
}

static void test_heap_free_first_last_merges_forward(void **state)
{
    free_in_order((const int[3]){1, 2, 0});
}

static void test_heap_free_last_last_merges_back_and_tail(void **state)
{
    free_in_order((const int[3]){0, 1, 2});
}

static void test_heap_free_in_every_order_leaves_one_block(void **state)
{
    static const int orders[6][3] = {{0, 1, 2}, {0, 2, 1}, {1, 0, 2},
                                     {1, 2, 0}, {2, 0, 1}, {2, 1, 0}};

    for (int i = 0; i < 6; i++)
        free_in_order(orders[i]);
}

static void test_heap_free_between_live_blocks_does_not_merge(void **state)
{
    uint32_t a = alloc_ok(SID, 64), b = alloc_ok(SID, 64), c = alloc_ok(SID, 64);
    struct xichan_heap_report r;

    ut_ok(xichan__heap_free(shm, b, SID));
    r = report();
    assert_int_equal(r.free_blocks, 2); /* b's hole and the tail */
    assert_int_equal(r.reserved, 2);
    assert_int_equal(xichan__blk_state(state_of(b)), XICHAN_BLK_FREE);
    /* The hole is reused for a request that fits it. */
    assert_int_equal(alloc_ok(SID, 64), b);
    ut_ok(xichan__heap_free(shm, a, SID));
    ut_ok(xichan__heap_free(shm, b, SID));
    ut_ok(xichan__heap_free(shm, c, SID));
    assert_all_free();
}

/* ---------------------------------------------------------- ownership */

static void test_heap_free_wrong_sid_is_ecorrupt_and_changes_nothing(void **state)
{
    uint32_t off = alloc_ok(SID, 300);
    uint32_t w = state_of(off), size = blk(off)->size;
    uint64_t used = shm->hdr->heap_used;

    ut_err(xichan__heap_free(shm, off, SID + 1), XICHAN_ECORRUPT);
    ut_err(xichan__heap_free(shm, off, 0), XICHAN_ECORRUPT);
    assert_int_equal(state_of(off), w);
    assert_int_equal(blk(off)->size, size);
    assert_int_equal(shm->hdr->heap_used, used);
    ut_heap_ok(shm);
    ut_ok(xichan__heap_free(shm, off, SID));
    assert_all_free();
}

static void test_heap_free_of_a_free_block_is_ecorrupt(void **state)
{
    uint32_t a = alloc_ok(SID, 10), b = alloc_ok(SID, 10);

    ut_ok(xichan__heap_free(shm, a, SID));
    ut_err(xichan__heap_free(shm, a, SID), XICHAN_ECORRUPT);
    ut_err(xichan__heap_free(shm, a, 0), XICHAN_ECORRUPT);
    ut_heap_ok(shm);
    ut_ok(xichan__heap_free(shm, b, SID));
    /* Now a covers the whole heap, free. */
    ut_err(xichan__heap_free(shm, a, SID), XICHAN_ECORRUPT);
    assert_all_free();
}

static void test_heap_free_of_queued_or_owned_block_is_ecorrupt(void **state)
{
    uint32_t a = alloc_ok(SID, 10);

    set_state(a, XICHAN_BLK_QUEUED, SID);
    ut_err(xichan__heap_free(shm, a, SID), XICHAN_ECORRUPT);
    set_state(a, XICHAN_BLK_OWNED, SID);
    ut_err(xichan__heap_free(shm, a, SID), XICHAN_ECORRUPT);
    set_state(a, XICHAN_BLK_LEASED, SID);
    ut_ok(xichan__heap_free(shm, a, SID)); /* the owner frees what it leased */
    assert_all_free();
}

static void test_heap_free_of_bad_offset_is_ecorrupt(void **state)
{
    uint32_t a = alloc_ok(SID, 10);

    ut_err(xichan__heap_free(shm, 0, SID), XICHAN_ECORRUPT);
    ut_err(xichan__heap_free(shm, shm->heap_units, SID), XICHAN_ECORRUPT);
    ut_err(xichan__heap_free(shm, shm->heap_units - 1, SID), XICHAN_ECORRUPT);
    ut_err(xichan__heap_free(shm, UINT32_MAX, SID), XICHAN_ECORRUPT);
    ut_heap_ok(shm);
    ut_ok(xichan__heap_free(shm, a, SID));
    assert_all_free();
}

/* ------------------------------------------------------------- limits */

static void test_heap_alloc_over_max_item_is_e2big(void **state)
{
    uint32_t off = 12345;
    uint64_t max = xichan__heap_max_item(shm);

    assert_true(max > 0 && max < shm->heap_size);
    ut_err(xichan__heap_alloc(shm, SID, max + 1, &off), XICHAN_E2BIG);
    ut_err(xichan__heap_alloc(shm, SID, UINT64_MAX, &off), XICHAN_E2BIG);
    ut_err(xichan__heap_alloc(shm, SID, (uint64_t)UINT32_MAX * XICHAN_UNIT, &off), XICHAN_E2BIG);
    assert_int_equal(off, 12345);
    assert_all_free();
}

static void test_heap_alloc_max_item_fits_an_empty_heap(void **state)
{
    uint64_t max = xichan__heap_max_item(shm);
    uint32_t off = alloc_ok(SID, max), other;

    assert_int_equal(off, 1);
    assert_int_equal(blk(off)->size, shm->heap_units - 1);
    ut_heap_ok(shm);
    ut_err(xichan__heap_alloc(shm, SID, 0, &other), XICHAN_ENOSPC);
    ut_ok(xichan__heap_free(shm, off, SID));
    assert_all_free();
}

static void test_heap_alloc_max_item_fails_on_a_used_heap(void **state)
{
    uint32_t a = alloc_ok(SID, 0), off;

    ut_err(xichan__heap_alloc(shm, SID, xichan__heap_max_item(shm), &off), XICHAN_ENOSPC);
    ut_heap_ok(shm);
    ut_ok(xichan__heap_free(shm, a, SID));
    assert_all_free();
}

static void test_heap_full_is_enospc_and_a_free_makes_room(void **state)
{
    static uint32_t offs[4096];
    uint32_t n = 0, off;
    int rc;

    for (;;) {
        assert_true(n < 4096);
        rc = xichan__heap_alloc(shm, SID, 4096, &off);
        if (rc == XICHAN_ENOSPC)
            break;
        ut_ok(rc);
        offs[n++] = off;
    }
    assert_true(n > 100); /* 4 MiB segment */
    ut_heap_ok(shm);
    ut_err(xichan__heap_alloc(shm, SID, 4096, &off), XICHAN_ENOSPC);
    ut_ok(xichan__heap_free(shm, offs[n / 2], SID));
    ut_ok(xichan__heap_alloc(shm, SID, 4096, &off));
    assert_int_equal(off, offs[n / 2]);
    ut_err(xichan__heap_alloc(shm, SID, 4096, &off), XICHAN_ENOSPC);
    ut_heap_ok(shm);
    for (uint32_t i = 0; i < n; i++)
        ut_ok(xichan__heap_free(shm, offs[i], SID));
    assert_all_free();
}

/* Allocates whatever is left at the end of the heap (the free tail). */
static uint32_t alloc_tail(uint32_t sid)
{
    uint32_t off = 1, last = 0;

    while (off < shm->heap_units) {
        last = off;
        off += blk(off)->size;
    }
    assert_int_equal(xichan__blk_state(state_of(last)), XICHAN_BLK_FREE);
    assert_int_equal(alloc_ok(sid, (uint64_t)(blk(last)->size - 2) * XICHAN_UNIT), last);
    return last;
}

/* A payload of exactly that many units of block. */
static uint64_t len_for_units(uint32_t units)
{
    return (uint64_t)(units - 2) * XICHAN_UNIT;
}

/*
 * Bin 7 holds holes of 130, 130, 130 and 200 units, in that list order, and
 * there is no other free space: a request of 190 units skips the small holes
 * and takes the large one, leaving its remainder free.
 */
static void test_heap_alloc_first_fit_skips_small_holes_in_its_bin(void **state)
{
    uint32_t a[3], pins[4], big, tail, off;
    struct xichan_heap_report r;

    for (int i = 0; i < 3; i++) {
        a[i] = alloc_ok(SID, len_for_units(130));
        pins[i] = alloc_ok(SID, 0);
    }
    big = alloc_ok(SID, len_for_units(200));
    pins[3] = alloc_ok(SID, 0);
    tail = alloc_tail(SID);
    ut_err(xichan__heap_alloc(shm, SID, 0, &off), XICHAN_ENOSPC);
    ut_ok(xichan__heap_free(shm, big, SID)); /* inserted first: last in the list */
    for (int i = 0; i < 3; i++)
        ut_ok(xichan__heap_free(shm, a[i], SID));
    assert_int_equal(report().free_blocks, 4);

    off = alloc_ok(SID, len_for_units(190));
    assert_int_equal(off, big);
    assert_int_equal(blk(off)->size, 190);
    r = report();
    assert_int_equal(r.free_blocks, 4); /* the three holes and big's 10-unit rest */
    ut_err(xichan__heap_alloc(shm, SID, len_for_units(131), &off), XICHAN_ENOSPC);
    ut_ok(xichan__heap_alloc(shm, SID, len_for_units(130), &off));
    assert_int_equal(off, a[2]);
    ut_ok(xichan__heap_free(shm, off, SID));

    ut_ok(xichan__heap_free(shm, big, SID));
    for (int i = 0; i < 4; i++)
        ut_ok(xichan__heap_free(shm, pins[i], SID));
    ut_ok(xichan__heap_free(shm, tail, SID));
    assert_all_free();
}

/* A request whose own bin is empty takes the first block of a larger bin. */
static void test_heap_alloc_uses_a_larger_bin_when_its_own_is_empty(void **state)
{
    uint32_t hole = alloc_ok(SID, len_for_units(600)), pin = alloc_ok(SID, 0);
    uint32_t tail = alloc_tail(SID), off;

    ut_ok(xichan__heap_free(shm, hole, SID)); /* bin 9 */
    off = alloc_ok(SID, len_for_units(20));   /* bin 4, empty */
    assert_int_equal(off, hole);
    assert_int_equal(blk(off)->size, 20);
    ut_heap_ok(shm);
    ut_ok(xichan__heap_free(shm, off, SID));
    ut_ok(xichan__heap_free(shm, pin, SID));
    ut_ok(xichan__heap_free(shm, tail, SID));
    assert_all_free();
}

/* A remainder of one unit is too small to be a block: the whole block is taken. */
static void test_heap_alloc_keeps_a_one_unit_remainder_in_the_block(void **state)
{
    uint32_t hole = alloc_ok(SID, len_for_units(10)), pin = alloc_ok(SID, 0);
    uint32_t tail = alloc_tail(SID), off;

    ut_ok(xichan__heap_free(shm, hole, SID));
    off = alloc_ok(SID, len_for_units(9));
    assert_int_equal(off, hole);
    assert_int_equal(blk(off)->size, 10);
    assert_int_equal(shm->hdr->heap_used, (uint64_t)(shm->heap_units - 1) * XICHAN_UNIT);
    ut_heap_ok(shm);
    ut_ok(xichan__heap_free(shm, off, SID));
    ut_ok(xichan__heap_free(shm, pin, SID));
    ut_ok(xichan__heap_free(shm, tail, SID));
    assert_all_free();
}

/* --------------------------------------------- cached blocks, waiting */

/* A session with 8 blocks cached in each of the cache's 8 size classes. */
static xichan_client *cacher(xichan_queue_id *q)
{
    xichan_client *c = ut_client(shm);
    char buf[128] = {0};
    xichan_item it;

    ut_ok(xichan_queue_create(c, NULL, q));
    for (int len = 0; len < 128; len += 16)
        for (int i = 0; i < 8; i++)
            ut_ok(xichan_queue_put(c, *q, 0, buf, (size_t)len, 0, XICHAN_NOWAIT));
    for (int i = 0; i < 64; i++) {
        ut_ok(xichan_queue_get(c, *q, &it, XICHAN_NOWAIT));
        xichan_item_release(&it);
    }
    assert_int_equal(report().cached, 64);
    return c;
}

static uint64_t gate_of(const xichan_client *c)
{
    return xa_load_relaxed(&shm->sessions[c->slot].cache_gate);
}

static void test_heap_full_takes_back_an_idle_sessions_cache(void **state)
{
    xichan_queue_id q;
    xichan_client *a = cacher(&q), *b = ut_client(shm);
    uint32_t off, pin = alloc_ok(SID, 100);
    uint64_t len = xichan__heap_max_item(shm), g;
    struct xichan_heap_report r;

    /* B wants the whole heap: A's cache is freed, then ENOSPC (pin stays). */
    ut_err(xichan__heap_alloc(shm, b->sid, len, &off), XICHAN_ENOSPC);
    r = report();
    assert_int_equal(r.cached, 0);
    g = gate_of(a);
    assert_int_equal(g & (XICHAN_GATE_OWNER | XICHAN_GATE_THIEF | XICHAN_GATE_COUNT_MASK), 0);
    assert_true(g & XICHAN_GATE_WANT);      /* what A caches next comes back too */
    assert_int_equal(g >> XICHAN_GATE_GEN_SHIFT, 1);
    /* A learns from the generation: its lists are forgotten, and it works. */
    for (int i = 0; i < 3; i++) {
        xichan_item it;
        ut_ok(xichan_queue_put(a, q, 0, "x", 1, 0, XICHAN_NOWAIT));
        ut_ok(xichan_queue_get(a, q, &it, XICHAN_NOWAIT));
        xichan_item_release(&it);
    }
    assert_false(gate_of(a) & XICHAN_GATE_WANT); /* its first use cleared it */
    assert_int_equal(report().cached, 1);
    ut_ok(xichan_queue_destroy(a, q));
    ut_ok(xichan__heap_free(shm, pin, SID));
    ut_client_end(b);
    ut_client_end(a);
    assert_all_free();
}

static void test_heap_reclaim_frees_a_dead_sessions_cache(void **state)
{
    xichan_queue_id q;
    xichan_client *a = cacher(&q), *keep = ut_client(shm);

    ut_ok(xichan_queue_bind(keep, q));
    ut_client_end(a); /* the daemon's cleanup, as after kill -9 */
    assert_int_equal(report().cached, 0);
    ut_ok(xichan_queue_destroy(keep, q));
    ut_client_end(keep);
    assert_all_free();
}

/* A thief that died holding gates (heap_stealing set, THIEF taken): the
 * next holder's repair finishes the steal. */
static void test_heap_repair_finishes_a_dead_thiefs_steal(void **state)
{
    xichan_queue_id q;
    xichan_client *a = cacher(&q);
    uint64_t g = gate_of(a);

    xa_store_relaxed(&shm->sessions[a->slot].cache_gate, g | XICHAN_GATE_WANT | XICHAN_GATE_THIEF);
    shm->hdr->heap_stealing = 1;
    ut_ok(xichan__heap_repair(shm, NULL));
    assert_int_equal(shm->hdr->heap_stealing, 0);
    g = gate_of(a);
    assert_int_equal(g & (XICHAN_GATE_THIEF | XICHAN_GATE_COUNT_MASK), 0);
    assert_int_equal(g >> XICHAN_GATE_GEN_SHIFT, 1);
    assert_int_equal(report().cached, 0);
    ut_ok(xichan_queue_destroy(a, q));
    ut_client_end(a);
    assert_all_free();
}

static void test_heap_reserve_some_takes_what_fits(void **state)
{
    uint64_t third = shm->heap_size / 3, lens[3] = {third, third, third};
    uint32_t offs[3];

    /* All or nothing: none fits with the third. */
    ut_err(xichan__heap_reserve(shm, SID, lens, 3, offs, 1, XICHAN_NOWAIT, NULL), XICHAN_ENOSPC);
    assert_all_free();
    /* As many of the first as fit. */
    assert_int_equal(xichan__heap_reserve(shm, SID, lens, 3, offs, 0, XICHAN_NOWAIT, NULL), 2);
    ut_ok(xichan__heap_free_many(shm, offs, 2, SID));
    assert_all_free();
    /* A bad count changes nothing. */
    ut_err(xichan__heap_reserve(shm, SID, lens, 0, offs, 0, XICHAN_NOWAIT, NULL), XICHAN_EINVAL);
}

static void test_heap_enospc_and_e2big_say_the_sizes(void **state)
{
    uint64_t len = xichan__heap_max_item(shm);
    uint32_t off, a = alloc_ok(SID, 100);
    char want[128];

    ut_err(xichan__heap_alloc(shm, SID, len, &off), XICHAN_ENOSPC);
    snprintf(want, sizeof(want), "an item of %llu bytes needs %llu bytes of heap",
             (unsigned long long)len, (unsigned long long)(shm->heap_units - 1) * XICHAN_UNIT);
    assert_non_null(strstr(xichan_strerror(XICHAN_ENOSPC), want));
    assert_non_null(strstr(xichan_strerror(XICHAN_ENOSPC), "XICHAN_SIZE"));
    ut_err(xichan__heap_alloc(shm, SID, len + 1, &off), XICHAN_E2BIG);
    snprintf(want, sizeof(want), "item of %llu bytes can never fit", (unsigned long long)len + 1);
    assert_non_null(strstr(xichan_strerror(XICHAN_E2BIG), want));
    assert_non_null(strstr(xichan_strerror(XICHAN_E2BIG), "--size"));
    ut_ok(xichan__heap_free(shm, a, SID));
}

/* ------------------------------------------------------------ reclaim */

static void test_heap_reclaim_frees_only_that_sids_reserved_and_leased(void **state)
{
    uint32_t r5 = alloc_ok(5, 100), l5 = alloc_ok(5, 200), q5 = alloc_ok(5, 300);
    uint32_t r6 = alloc_ok(6, 100), l6 = alloc_ok(6, 200), r5b = alloc_ok(5, 50);
    uint32_t o5 = alloc_ok(5, 70);
    uint64_t n = 99;
    struct xichan_heap_report r;

    set_state(l5, XICHAN_BLK_LEASED, 5);
    set_state(q5, XICHAN_BLK_QUEUED, 5);
    set_state(l6, XICHAN_BLK_LEASED, 6);
    set_state(o5, XICHAN_BLK_OWNED, 5);
    ut_ok(xichan__heap_reclaim(shm, 5, &n));
    assert_int_equal(n, 3); /* r5, l5, r5b */
    assert_int_equal(state_of(r5), xichan__blk_word(XICHAN_BLK_FREE, 0));
    assert_int_equal(state_of(r5b), xichan__blk_word(XICHAN_BLK_FREE, 0));
    assert_int_equal(xichan__blk_state(state_of(q5)), XICHAN_BLK_QUEUED);
    assert_int_equal(state_of(r6), xichan__blk_word(XICHAN_BLK_RESERVED, 6));
    assert_int_equal(state_of(l6), xichan__blk_word(XICHAN_BLK_LEASED, 6));
    assert_int_equal(state_of(o5), xichan__blk_word(XICHAN_BLK_OWNED, 5));
    r = report();
    assert_int_equal(r.reserved, 1);
    assert_int_equal(r.leased, 1);
    assert_int_equal(r.queued, 1);
    assert_int_equal(r.owned, 1);
    /* A second reclaim finds nothing more. */
    ut_ok(xichan__heap_reclaim(shm, 5, &n));
    assert_int_equal(n, 0);
    ut_ok(xichan__heap_reclaim(shm, 7, &n));
    assert_int_equal(n, 0);
    ut_ok(xichan__heap_reclaim(shm, 6, &n));
    assert_int_equal(n, 2);
    ut_heap_ok(shm);
    /* Hand the queued and owned blocks back to their owner and free them. */
    set_state(q5, XICHAN_BLK_LEASED, 5);
    ut_ok(xichan__heap_free(shm, q5, 5));
    set_state(o5, XICHAN_BLK_RESERVED, 5);
    ut_ok(xichan__heap_free(shm, o5, 5));
    assert_all_free();
}

static void test_heap_reclaim_merges_the_freed_blocks(void **state)
{
    uint32_t keep = alloc_ok(1, 10);

    for (int i = 0; i < 50; i++)
        (void)alloc_ok(9, (uint64_t)i * 37);
    ut_ok(xichan__heap_free(shm, keep, 1));
    {
        uint64_t n;
        ut_ok(xichan__heap_reclaim(shm, 9, &n));
        assert_int_equal(n, 50);
    }
    assert_all_free();
}

/* ------------------------------------------------------------- repair */

static void test_heap_repair_rebuilds_scribbled_bins_and_prevs(void **state)
{
    uint32_t offs[20], off;
    int live[20];
    struct xichan_heap_report r;

    for (int i = 0; i < 20; i++) {
        offs[i] = alloc_ok(SID, (uint64_t)i * 100);
        live[i] = 1;
    }
    for (int i = 0; i < 20; i += 3) {
        ut_ok(xichan__heap_free(shm, offs[i], SID));
        live[i] = 0;
    }
    /* Turn two neighbours free behind the allocator's back: 3..6 all free. */
    set_state(offs[4], XICHAN_BLK_FREE, 0);
    set_state(offs[5], XICHAN_BLK_FREE, 0);
    live[4] = live[5] = 0;
    memset(shm->hdr->bins, 0, sizeof(shm->hdr->bins));
    shm->hdr->heap_bitmap = 0x5555;
    shm->hdr->heap_used = 1;
    shm->hdr->heap_blocks = 12345;
    for (off = 1; off < shm->heap_units; off += blk(off)->size)
        blk(off)->prev = 7;
    ut_ok(xichan__heap_check(shm, &r));
    assert_false(r.ok); /* the scribbles are seen */

    ut_ok(xichan__heap_repair(shm, NULL));
    r = report();
    assert_int_equal(r.blocks, shm->hdr->heap_blocks);
    assert_int_equal(r.reserved, 11);
    assert_int_equal(r.free_blocks, 7); /* 0, 3-6, 9, 12, 15, 18 and the tail */
    ut_ok(xichan__heap_repair(shm, NULL)); /* idempotent */
    ut_heap_ok(shm);
    /* The repaired heap still allocates and frees. */
    off = alloc_ok(SID, 5000);
    ut_ok(xichan__heap_free(shm, off, SID));
    for (int i = 0; i < 20; i++)
        if (live[i])
            ut_ok(xichan__heap_free(shm, offs[i], SID));
    assert_all_free();
}

static void test_heap_repair_with_garbage_bins_rebuilds_them(void **state)
{
    uint32_t a = alloc_ok(SID, 100), b = alloc_ok(SID, 100), c = alloc_ok(SID, 100);

    ut_ok(xichan__heap_free(shm, b, SID));
    for (uint32_t k = 0; k < XICHAN_NBINS; k++)
        shm->hdr->bins[k] = 0xDEADBEEF - k; /* out of range */
    shm->hdr->heap_bitmap = ~0ull;
    ut_ok(xichan__heap_repair(shm, NULL));
    ut_heap_ok(shm);
    ut_ok(xichan__heap_free(shm, a, SID));
    ut_ok(xichan__heap_free(shm, c, SID));
    assert_all_free();
}

static void test_heap_repair_of_zero_size_first_block_is_ecorrupt(void **state)
{
    (void)alloc_ok(SID, 100);
    blk(1)->size = 0; /* a valid block until now */
    ut_err(xichan__heap_repair(shm, NULL), XICHAN_ECORRUPT);
}

static void test_heap_repair_of_overlong_block_is_ecorrupt(void **state)
{
    uint32_t a = alloc_ok(SID, 100);
    struct xichan_blk *b = blk(a);

    b->size = shm->heap_units; /* runs past the end */
    ut_err(xichan__heap_repair(shm, NULL), XICHAN_ECORRUPT);
}

static void test_heap_repair_of_bad_state_is_ecorrupt(void **state)
{
    uint32_t a = alloc_ok(SID, 100);

    set_state(a, 9, SID);
    ut_err(xichan__heap_repair(shm, NULL), XICHAN_ECORRUPT);
}

static void test_heap_reclaim_of_corrupt_tiling_is_ecorrupt(void **state)
{
    uint32_t a = alloc_ok(SID, 100);
    uint64_t n = 7;

    blk(a)->size = 1;
    ut_err(xichan__heap_reclaim(shm, SID, &n), XICHAN_ECORRUPT);
    assert_int_equal(n, 0);
}

/* ------------------------------------------- scribbled free lists (trust) */

static struct xichan_freelinks *links_of(uint32_t off)
{
    return (struct xichan_freelinks *)(blk(off) + 1);
}

static void test_heap_alloc_with_garbage_bin_head_rebuilds_and_succeeds(void **state)
{
    uint32_t a = alloc_ok(SID, 100);

    shm->hdr->bins[3] = 0x7fffffff; /* outside the heap */
    shm->hdr->heap_bitmap |= 1ull << 3;
    (void)alloc_ok(SID, 100); /* 9 units: bin 3 */
    ut_heap_ok(shm);
    (void)a;
}

static void test_heap_alloc_over_a_self_linked_bin_rebuilds_and_succeeds(void **state)
{
    uint32_t a = alloc_ok(SID, 32), keep = alloc_ok(SID, 4), hole;

    ut_ok(xichan__heap_free(shm, a, SID)); /* a 4-unit hole, alone in bin 2 */
    hole = shm->hdr->bins[2];
    assert_int_equal(hole, a);
    links_of(hole)->next = hole;                   /* a cycle */
    shm->hdr->heap_bitmap = 1u << 2;               /* hides the big block */
    shm->hdr->heap_blocks = 1ull << 60;            /* caps nothing any more */
    (void)alloc_ok(SID, 80);                       /* 7 units: more than the hole */
    ut_heap_ok(shm);
    (void)keep;
}

static void test_heap_alloc_believes_enospc_only_from_an_agreeing_bitmap(void **state)
{
    (void)alloc_ok(SID, 100);
    shm->hdr->heap_bitmap = 0; /* every free block hidden */
    (void)alloc_ok(SID, 100);
    ut_heap_ok(shm);
}

static void test_heap_free_next_to_a_block_with_forged_links_rebuilds(void **state)
{
    uint32_t a = alloc_ok(SID, 100), b = alloc_ok(SID, 100), c = alloc_ok(SID, 100);

    ut_ok(xichan__heap_free(shm, b, SID));
    links_of(b)->prev = 0x7ffffff0; /* b's neighbours in its bin: nonsense */
    links_of(b)->next = 3;
    ut_ok(xichan__heap_free(shm, a, SID)); /* merges with b: must unlink it */
    ut_heap_ok(shm);
    ut_ok(xichan__heap_free(shm, c, SID));
    assert_all_free();
}

static void test_heap_free_next_to_a_zero_size_header_does_not_merge(void **state)
{
    uint32_t a = alloc_ok(SID, 100), b = alloc_ok(SID, 100);
    struct xichan_blk *pb = blk(b);
    struct xichan_heap_report r;

    (void)alloc_ok(SID, 100);
    pb->size = 0; /* a FREE neighbour of size 0: bin_of(0) would be clz(0) */
    xa_store_relaxed(&pb->state, xichan__blk_word(XICHAN_BLK_FREE, 0));
    ut_ok(xichan__heap_free(shm, a, SID)); /* a's own bin is sound */
    assert_int_equal(xichan__blk_state(state_of(a)), XICHAN_BLK_FREE);
    assert_int_equal(blk(a)->size, units_for(100)); /* not merged */
    ut_ok(xichan__heap_check(shm, &r));
    assert_false(r.ok); /* the tiling stays corrupt: nothing guessed */
}

static void test_heap_repair_of_a_corrupt_tiling_changes_nothing(void **state)
{
    uint32_t a = alloc_ok(SID, 100), b = alloc_ok(SID, 100);
    uint32_t bins[XICHAN_NBINS];

    ut_ok(xichan__heap_free(shm, a, SID));
    memcpy(bins, shm->hdr->bins, sizeof(bins));
    blk(b)->size = 1;
    ut_err(xichan__heap_repair(shm, NULL), XICHAN_ECORRUPT);
    assert_memory_equal(bins, shm->hdr->bins, sizeof(bins));
}

static void test_heap_check_reports_a_bitmap_that_disagrees(void **state)
{
    struct xichan_heap_report r;

    (void)alloc_ok(SID, 100);
    shm->hdr->heap_bitmap |= 1ull << 1;
    ut_ok(xichan__heap_check(shm, &r));
    assert_false(r.ok);
    assert_non_null(strstr(r.why, "bitmap"));
}

/* -------------------------------------------------------------- stress */

struct live {
    uint32_t off;
    uint32_t len;
    uint8_t fill;
};

static void check_fill(const struct live *l)
{
    const uint8_t *p = xichan__item_data(blk(l->off));

    for (uint32_t i = 0; i < l->len; i++)
        if (p[i] != l->fill)
            fail_msg("block %u byte %u: %#x, expected %#x", l->off, i, p[i], l->fill);
}

static void test_heap_random_alloc_free_keeps_invariants(void **state)
{
    static struct live live[2048];
    uint32_t nlive = 0, nenospc = 0;

    srand(1);
    for (int op = 1; op <= 20000; op++) {
        int do_alloc = nlive == 0 || (nlive < 2048 && rand() % 2);

        if (do_alloc) {
            struct live l = {0, (uint32_t)(rand() % 5001), (uint8_t)rand()};
            int rc = xichan__heap_alloc(shm, SID, l.len, &l.off);

            if (rc == XICHAN_ENOSPC) {
                nenospc++;
            } else {
                ut_ok(rc);
                assert_true(blk(l.off)->size >= units_for(l.len));
                memset(xichan__item_data(blk(l.off)), l.fill, l.len);
                live[nlive++] = l;
            }
        } else {
            uint32_t i = (uint32_t)rand() % nlive;

            check_fill(&live[i]);
            ut_ok(xichan__heap_free(shm, live[i].off, SID));
            live[i] = live[--nlive];
        }
        if (op % 1000 == 0) {
            ut_heap_ok(shm);
            for (uint32_t i = 0; i < nlive; i++)
                check_fill(&live[i]);
        }
    }
    while (nlive) {
        check_fill(&live[nlive - 1]);
        ut_ok(xichan__heap_free(shm, live[--nlive].off, SID));
    }
    assert_all_free();
}

/* --------------------------------------------------------- crash tests */

#define CHILD_SID 9u

/*
 * The child (session CHILD_SID) first allocates one block it keeps, then
 * arms the fault point and does the work that reaches it.  It must die there
 * by SIGKILL with heap_lock held; exit codes report a child that did not.
 */
static void crash_child(int point, long hit, int work)
{
    uint32_t keep, x, y;

    alarm(10);
    if (xichan__heap_alloc(shm, CHILD_SID, 500, &keep))
        _exit(2);
    xichan__fault_set(point, hit);
    switch (work) {
    case 0: /* one allocation */
        xichan__heap_alloc(shm, CHILD_SID, 1000, &x);
        break;
    case 1: /* two allocations, then free x, then y (y's free merges the tail) */
        if (xichan__heap_alloc(shm, CHILD_SID, 100, &x) ||
            xichan__heap_alloc(shm, CHILD_SID, 100, &y))
            _exit(4);
        xichan__heap_free(shm, x, CHILD_SID);
        xichan__heap_free(shm, y, CHILD_SID);
        break;
    }
    _exit(3); /* the fault point was not reached */
}

static void crash_at(int point, long hit, int work, uint64_t expect_reclaimed)
{
    uint32_t p1 = alloc_ok(1, 64), p2 = alloc_ok(1, 3000);
    struct xichan_heap_report r;
    uint64_t n = 99;
    int status;
    pid_t pid;

    fflush(NULL);
    pid = fork();
    assert_true(pid >= 0);
    if (pid == 0)
        crash_child(point, hit, work);
    assert_int_equal(waitpid(pid, &status, 0), pid);
    if (!WIFSIGNALED(status))
        fail_msg("child exited with %d instead of dying at fault point %d",
                 WIFEXITED(status) ? WEXITSTATUS(status) : -1, point);
    assert_int_equal(WTERMSIG(status), SIGKILL);
    /* It died holding heap_lock. */
    assert_int_equal(shm->hdr->heap_lock.holder_sid, CHILD_SID);

    /* The next locker repairs (EOWNERDEAD) and gets the lock. */
    ut_ok(xichan__heap_lock(shm, 1, xichan_now_ns() + 5000000000ll));
    assert_int_equal(shm->hdr->heap_lock.holder_sid, 1);
    xichan__heap_unlock(shm);
    assert_int_equal(xa_load_relaxed(&shm->hdr->heap_lock.broken), 0);
    ut_heap_ok(shm);

    /* The daemon reclaims the dead session's blocks. */
    ut_ok(xichan__heap_reclaim(shm, CHILD_SID, &n));
    assert_int_equal(n, expect_reclaimed);
    r = report();
    assert_int_equal(r.reserved, 2); /* the parent's */
    assert_int_equal(r.free_blocks, 1);
    assert_int_equal(r.blocks, 3);
    assert_int_equal(state_of(p1), xichan__blk_word(XICHAN_BLK_RESERVED, 1));
    assert_int_equal(state_of(p2), xichan__blk_word(XICHAN_BLK_RESERVED, 1));

    /* The heap works as before. */
    ut_ok(xichan__heap_free(shm, p1, 1));
    ut_ok(xichan__heap_free(shm, p2, 1));
    assert_all_free();
    p1 = alloc_ok(1, 100);
    ut_ok(xichan__heap_free(shm, p1, 1));
    assert_all_free();
}

static void test_heap_crash_at_alloc_split_is_repaired(void **state)
{
    crash_at(XICHAN_FAULT_ALLOC_SPLIT, 1, 0, 1);
}

static void test_heap_crash_at_alloc_reserved_is_repaired(void **state)
{
    crash_at(XICHAN_FAULT_ALLOC_RESERVED, 1, 0, 2);
}

static void test_heap_crash_at_free_marked_is_repaired(void **state)
{
    crash_at(XICHAN_FAULT_FREE_MARKED, 2, 1, 1); /* dies in the second free */
}

static void test_heap_crash_at_free_merged_is_repaired(void **state)
{
    crash_at(XICHAN_FAULT_FREE_MERGED, 1, 1, 1);
}

/* The environment variable arms a point too, in a child that has not read it. */
static void test_heap_crash_point_from_environment(void **state)
{
    char buf[16];
    int status;
    pid_t pid;
    uint64_t n;

    fflush(NULL);
    pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        uint32_t x;

        alarm(10);
        snprintf(buf, sizeof(buf), "%d", XICHAN_FAULT_ALLOC_RESERVED);
        setenv("XICHAN_FAULT", buf, 1);
        xichan__fault_set(-1, 1); /* forget whatever the parent cached */
        xichan__heap_alloc(shm, CHILD_SID, 10, &x);
        _exit(3);
    }
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFSIGNALED(status));
    assert_int_equal(WTERMSIG(status), SIGKILL);
    ut_heap_ok(shm);
    ut_ok(xichan__heap_reclaim(shm, CHILD_SID, &n));
    assert_int_equal(n, 1);
    assert_all_free();
}

int main(void)
{
    const struct CMUnitTest tests[] = {
#define T(fn) cmocka_unit_test_setup_teardown(fn, ut_seg_setup, ut_seg_teardown)
        T(test_heap_fresh_is_one_free_block),
        T(test_heap_alloc_sizes_reserve_enough_units),
        T(test_heap_alloc_blocks_do_not_overlap),
        T(test_heap_free_middle_last_merges_both_ways),
        T(test_heap_free_first_last_merges_forward),
        T(test_heap_free_last_last_merges_back_and_tail),
        T(test_heap_free_in_every_order_leaves_one_block),
        T(test_heap_free_between_live_blocks_does_not_merge),
        T(test_heap_free_wrong_sid_is_ecorrupt_and_changes_nothing),
        T(test_heap_free_of_a_free_block_is_ecorrupt),
        T(test_heap_free_of_queued_or_owned_block_is_ecorrupt),
        T(test_heap_free_of_bad_offset_is_ecorrupt),
        T(test_heap_alloc_over_max_item_is_e2big),
        T(test_heap_alloc_max_item_fits_an_empty_heap),
        T(test_heap_alloc_max_item_fails_on_a_used_heap),
        T(test_heap_full_is_enospc_and_a_free_makes_room),
        T(test_heap_alloc_first_fit_skips_small_holes_in_its_bin),
        T(test_heap_alloc_uses_a_larger_bin_when_its_own_is_empty),
        T(test_heap_alloc_keeps_a_one_unit_remainder_in_the_block),
        T(test_heap_full_takes_back_an_idle_sessions_cache),
        T(test_heap_reclaim_frees_a_dead_sessions_cache),
        T(test_heap_repair_finishes_a_dead_thiefs_steal),
        T(test_heap_reserve_some_takes_what_fits),
        T(test_heap_enospc_and_e2big_say_the_sizes),
        T(test_heap_reclaim_frees_only_that_sids_reserved_and_leased),
        T(test_heap_reclaim_merges_the_freed_blocks),
        T(test_heap_repair_rebuilds_scribbled_bins_and_prevs),
        T(test_heap_repair_with_garbage_bins_rebuilds_them),
        T(test_heap_repair_of_zero_size_first_block_is_ecorrupt),
        T(test_heap_repair_of_overlong_block_is_ecorrupt),
        T(test_heap_repair_of_bad_state_is_ecorrupt),
        T(test_heap_reclaim_of_corrupt_tiling_is_ecorrupt),
        T(test_heap_alloc_with_garbage_bin_head_rebuilds_and_succeeds),
        T(test_heap_alloc_over_a_self_linked_bin_rebuilds_and_succeeds),
        T(test_heap_alloc_believes_enospc_only_from_an_agreeing_bitmap),
        T(test_heap_free_next_to_a_block_with_forged_links_rebuilds),
        T(test_heap_free_next_to_a_zero_size_header_does_not_merge),
        T(test_heap_repair_of_a_corrupt_tiling_changes_nothing),
        T(test_heap_check_reports_a_bitmap_that_disagrees),
        T(test_heap_random_alloc_free_keeps_invariants),
        T(test_heap_crash_at_alloc_split_is_repaired),
        T(test_heap_crash_at_alloc_reserved_is_repaired),
        T(test_heap_crash_at_free_marked_is_repaired),
        T(test_heap_crash_at_free_merged_is_repaired),
        T(test_heap_crash_point_from_environment),
#undef T
    };

    alarm(30);
    return cmocka_run_group_tests(tests, NULL, NULL);
}
