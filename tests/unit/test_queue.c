/*
 * test_queue.c -- queues through the public API, in one process, with
 * several in-process sessions standing in for processes (unit.h).
 */
#include <pthread.h>
#include <time.h>

#include "unit.h"

static xichan_queue_id mkq(int64_t maxsize, int op)
{
    xichan_queue_opts o = {.maxsize = maxsize, .unboundop = op};
    xichan_queue_id q;

    ut_ok(xichan_queue_create(cl, &o, &q));
    return q;
}

static void put_int(xichan_client *c, xichan_queue_id q, int v, int op)
{
    ut_ok(xichan_queue_put(c, q, XICHAN_FMT_RAW, &v, sizeof(v), op, XICHAN_NOWAIT));
}

static int get_int(xichan_client *c, xichan_queue_id q)
{
    xichan_item it;
    int v;

    ut_ok(xichan_queue_get(c, q, &it, XICHAN_NOWAIT));
    assert_int_equal(it.len, sizeof(v));
    memcpy(&v, it.data, sizeof(v));
    xichan_item_release(&it);
    return v;
}

/* ------------------------------------------------------------ basics */

static void test_queue_ids_start_at_one_and_are_never_reused(void **state)
{
    xichan_queue_id a = mkq(0, 0), b = mkq(0, 0), c;

    assert_int_equal(a.id, 1);
    assert_int_equal(b.id, 2);
    ut_ok(xichan_queue_destroy(cl, b));
    c = mkq(0, 0);
    assert_int_equal(c.id, 3);
}

static void test_queue_put_get_is_fifo(void **state)
{
    xichan_queue_id q = mkq(0, 0);

    for (int i = 0; i < 100; i++)
        put_int(cl, q, i, 0);
    assert_int_equal(xichan_queue_count(cl, q), 100);
    for (int i = 0; i < 100; i++)
        assert_int_equal(get_int(cl, q), i);
    assert_int_equal(xichan_queue_count(cl, q), 0);
}

static void test_queue_item_keeps_format_and_producer(void **state)
{
    xichan_queue_id q = mkq(0, 0);
    xichan_item it;

    ut_ok(xichan_queue_put(cl, q, XICHAN_FMT_MSGPACK, "\x93\x01\x02\x03", 4, 0, XICHAN_NOWAIT));
    ut_ok(xichan_queue_get(cl, q, &it, XICHAN_NOWAIT));
    assert_int_equal(it.fmt, XICHAN_FMT_MSGPACK);
    assert_int_equal(it.producer, xichan_client_session(cl));
    assert_int_equal(it.unbound, 0);
    assert_memory_equal(it.data, "\x93\x01\x02\x03", 4);
    xichan_item_release(&it);
    xichan_item_release(&it); /* idempotent */
}

static void test_queue_empty_item_round_trips(void **state)
{
    xichan_queue_id q = mkq(0, 0);
    xichan_item it;

    ut_ok(xichan_queue_put(cl, q, XICHAN_FMT_RAW, NULL, 0, 0, XICHAN_NOWAIT));
    ut_ok(xichan_queue_get(cl, q, &it, XICHAN_NOWAIT));
    assert_int_equal(it.len, 0);
    xichan_item_release(&it);
}

static void test_queue_get_empty_returns_eempty(void **state)
{
    xichan_queue_id q = mkq(0, 0);
    xichan_item it;

    ut_err(xichan_queue_get(cl, q, &it, XICHAN_NOWAIT), XICHAN_EEMPTY);
    assert_null(it.data);
}

/* SEMANTICS §3 70: qsize sequence; 71/72: full(). */
static void test_queue_qsize_and_full_sequences(void **state)
{
    xichan_queue_id q = mkq(3, 0), u = mkq(0, 0), n = mkq(-10, 0);
    int full[7], k = 0;

    full[k++] = xichan_queue_full(cl, q);
    for (int i = 0; i < 3; i++) {
        put_int(cl, q, i, 0);
        full[k++] = xichan_queue_full(cl, q);
    }
    for (int i = 0; i < 3; i++) {
        get_int(cl, q);
        if (k < 7)
            full[k++] = xichan_queue_full(cl, q);
    }
    int want[7] = {0, 0, 0, 1, 0, 0, 0};
    assert_memory_equal(full, want, sizeof(want));
    /* [F] maxsize <= 0 is never full, empty or not. */
    assert_int_equal(xichan_queue_full(cl, u), 0);
    for (int i = 0; i < 10000; i++)
        put_int(cl, u, i, 0);
    assert_int_equal(xichan_queue_full(cl, u), 0);
    assert_int_equal(xichan_queue_full(cl, n), 0);
    put_int(cl, n, 1, 0);
    assert_int_equal(xichan_queue_full(cl, n), 0);
}

static void test_queue_put_full_returns_efull_and_keeps_items(void **state)
{
    xichan_queue_id q = mkq(2, 0);
    int v = 9;

    put_int(cl, q, 1, 0);
    put_int(cl, q, 2, 0);
    ut_err(xichan_queue_put(cl, q, 0, &v, sizeof(v), 0, XICHAN_NOWAIT), XICHAN_EFULL);
    assert_int_equal(xichan_queue_count(cl, q), 2);
    assert_int_equal(get_int(cl, q), 1);
    put_int(cl, q, 3, 0);
    assert_int_equal(get_int(cl, q), 2);
    assert_int_equal(get_int(cl, q), 3);
    ut_heap_ok(shm);
}

static void test_queue_timeouts_are_precise(void **state)
{
    xichan_queue_id q = mkq(1, 0);
    xichan_item it;
    int v = 1;
    int64_t t0 = xichan_now_ns();

    ut_err(xichan_queue_get(cl, q, &it, xichan_deadline(0.15)), XICHAN_EEMPTY);
    assert_true(xichan_now_ns() - t0 >= 150000000);
    assert_true(xichan_now_ns() - t0 < (150 + UT_HANG_MS) * 1000000ll);
    put_int(cl, q, 1, 0);
    t0 = xichan_now_ns();
    ut_err(xichan_queue_put(cl, q, 0, &v, sizeof(v), 0, xichan_deadline(0.1)), XICHAN_EFULL);
    assert_true(xichan_now_ns() - t0 >= 100000000);
    t0 = xichan_now_ns();
    ut_err(xichan_queue_put(cl, q, 0, &v, sizeof(v), 0, XICHAN_NOWAIT), XICHAN_EFULL);
    assert_true(xichan_now_ns() - t0 < UT_HANG_MS * 1000000ll);
}

struct waker {
    xichan_client *c;
    xichan_queue_id q;
    int delay_ms;
    int what; /* 0 put, 1 get, 2 destroy, 3 purge */
};

static void *waker_main(void *arg)
{
    struct waker *w = arg;
    struct timespec ts = {0, w->delay_ms * 1000000L};

    nanosleep(&ts, NULL);
    if (w->what == 0)
        put_int(w->c, w->q, 42, 0);
    else if (w->what == 1)
        get_int(w->c, w->q);
    else if (w->what == 2)
        ut_ok(xichan_queue_destroy(w->c, w->q));
    else
        assert_int_equal(xichan_queue_purge(w->c, w->q), 1);
    return NULL;
}

/* A get blocked on an empty queue, ended by the waker's action what: a put
 * (0) gives it the 42 put, a destroy (2) XICHAN_ENOTFOUND. */
static void blocked_get_ended_by(int what)
{
    xichan_queue_id q = mkq(0, 0);
    struct waker w = {cl, q, 30, what};
    pthread_t t;
    xichan_item it;

    pthread_create(&t, NULL, waker_main, &w);
    if (what == 0) {
        ut_ok(xichan_queue_get(cl, q, &it, xichan_deadline(5)));
        assert_int_equal(*(const int *)it.data, 42);
        xichan_item_release(&it);
    } else {
        ut_err(xichan_queue_get(cl, q, &it, xichan_deadline(5)), XICHAN_ENOTFOUND);
    }
    pthread_join(t, NULL);
}

static void test_queue_blocked_get_wakes_on_put(void **state)
{
    blocked_get_ended_by(0);
}

/*
 * A put blocked on a full queue (maxsize 1) with no deadline, released by
 * the waker's action what (1 get, 3 purge): only that call's wake can end
 * the wait -- the binary's alarm is the hang bound.
 */
static void blocked_put_released_by(int what)
{
    xichan_queue_id q = mkq(1, 0);
    struct waker w = {cl, q, 30, what};
    pthread_t t;
    int v = 7;

    put_int(cl, q, 1, 0);
    pthread_create(&t, NULL, waker_main, &w);
    ut_ok(xichan_queue_put(cl, q, 0, &v, sizeof(v), 0, XICHAN_FOREVER));
    pthread_join(t, NULL);
    assert_int_equal(get_int(cl, q), 7);
}

static void test_queue_blocked_put_completes_after_get(void **state)
{
    blocked_put_released_by(1);
}

static void test_queue_destroy_wakes_blocked_get_with_enotfound(void **state)
{
    blocked_get_ended_by(2);
}

static int stop_after(void *arg)
{
    return ++*(int *)arg >= 3;
}

static void test_queue_interrupt_callback_stops_a_wait(void **state)
{
    xichan_queue_id q = mkq(0, 0);
    xichan_item it;
    int calls = 0;

    xichan_client_set_interrupt(cl, stop_after, &calls, 10);
    ut_err(xichan_queue_get(cl, q, &it, xichan_deadline(5)), XICHAN_EINTR);
    assert_int_equal(calls, 3);
    xichan_client_set_interrupt(cl, NULL, NULL, 0);
}

/* ------------------------------------------------------------- errors */

static void test_queue_bad_ids_and_args_change_nothing(void **state)
{
    xichan_queue_id q = mkq(0, 0), bad = {999999};
    xichan_item it;
    int v = 1;

    ut_err(xichan_queue_put(cl, bad, 0, &v, sizeof(v), 0, XICHAN_NOWAIT), XICHAN_ENOTFOUND);
    ut_err(xichan_queue_get(cl, bad, &it, XICHAN_NOWAIT), XICHAN_ENOTFOUND);
    ut_err((int)xichan_queue_count(cl, bad), XICHAN_ENOTFOUND);
    ut_err(xichan_queue_destroy(cl, bad), XICHAN_ENOTFOUND);
    ut_err(xichan_queue_bind(cl, bad), XICHAN_ENOTFOUND);
    ut_err(xichan_queue_put(cl, q, 0, &v, sizeof(v), 7, XICHAN_NOWAIT), XICHAN_EINVAL);
    ut_err(xichan_queue_put(cl, q, 256, &v, sizeof(v), 0, XICHAN_NOWAIT), XICHAN_EINVAL);
    ut_err(xichan_queue_put(cl, q, 0, NULL, 4, 0, XICHAN_NOWAIT), XICHAN_EINVAL);
    ut_err(xichan_queue_get(cl, q, NULL, XICHAN_NOWAIT), XICHAN_EINVAL);
    ut_err(xichan_queue_create(cl, NULL, NULL), XICHAN_EINVAL);
    ut_err(xichan_queue_create(cl, &(xichan_queue_opts){.unboundop = 9}, &bad), XICHAN_EINVAL);
    assert_int_equal(xichan_queue_count(cl, q), 0);
    ut_heap_ok(shm);
}

static void test_queue_oversized_item_fails_at_once(void **state)
{
    xichan_queue_id q = mkq(0, 0);
    size_t big = (size_t)xichan__heap_max_item(shm) + 1;
    char *buf = calloc(1, big);

    ut_err(xichan_queue_put(cl, q, 0, buf, big, 0, XICHAN_FOREVER), XICHAN_E2BIG);
    free(buf);
    assert_int_equal(xichan_queue_count(cl, q), 0);
}

static void test_queue_segment_full_is_enospc_and_recovers(void **state)
{
    xichan_queue_id q = mkq(0, 0);
    char buf[65536] = {0};
    int n = 0, err;

    while ((err = xichan_queue_put(cl, q, 0, buf, sizeof(buf), 0, XICHAN_NOWAIT)) == 0)
        n++;
    ut_err(err, XICHAN_ENOSPC);
    assert_true(n > 10);
    assert_int_equal(xichan_queue_count(cl, q), n);
    {
        xichan_item it;
        ut_ok(xichan_queue_get(cl, q, &it, XICHAN_NOWAIT));
        assert_int_equal(it.len, sizeof(buf));
        xichan_item_release(&it);
    }
    ut_ok(xichan_queue_put(cl, q, 0, buf, sizeof(buf), 0, XICHAN_NOWAIT));
    ut_ok(xichan_queue_destroy(cl, q));
    ut_heap_ok(shm);
}

/* ------------------------------------------------- a full segment */

/* 1 once an allocation is registered as waiting for room (under heap_lock,
 * where the flag is written). */
static int heap_has_waiter(void)
{
    int w;

    ut_ok(xichan__heap_lock(shm, cl->sid, XICHAN_NOWAIT));
    w = xa_load_relaxed(&shm->hdr->heap_waiters) != 0;
    xichan__heap_unlock(shm);
    return w;
}

struct room_maker {
    xichan_client *c;
    xichan_queue_id q;
    int gets; /* items to take, each once a put waits for room */
};

static void *room_maker_main(void *arg)
{
    struct room_maker *m = arg;
    struct timespec ts = {0, 1000000};

    for (int i = 0; i < m->gets; i++) {
        xichan_item it;
        int64_t t0 = xichan_now_ns();

        while (!heap_has_waiter()) { /* a hang bound, not a timing check */
            if (xichan_now_ns() - t0 > 10 * 1000000000ll)
                return (void *)1;
            nanosleep(&ts, NULL);
        }
        ut_ok(xichan_queue_get(m->c, m->q, &it, xichan_deadline(10)));
        xichan_item_release(&it);
    }
    return NULL;
}

static int fill_big(xichan_queue_id q, size_t len)
{
    char *buf = calloc(1, len);
    int n = 0, err;

    while ((err = xichan_queue_put(cl, q, 0, buf, len, 0, XICHAN_NOWAIT)) == 0)
        n++;
    ut_err(err, XICHAN_ENOSPC);
    free(buf);
    return n;
}

/* Our own tries leave the waiter flag set: only the waiter should set it. */
static void clear_waiter_flag(void)
{
    ut_ok(xichan__heap_lock(shm, cl->sid, XICHAN_NOWAIT));
    xa_store_relaxed(&shm->hdr->heap_waiters, 0);
    xichan__heap_unlock(shm);
}

static void test_queue_put_waits_for_room_in_a_full_segment(void **state)
{
    xichan_queue_id q = mkq(0, 0);
    xichan_client *other = ut_client(shm);
    struct room_maker m = {other, q, 1};
    char buf[65536] = {0};
    pthread_t t;
    void *rc;
    int n = fill_big(q, sizeof(buf));

    /* Nowait and an expired deadline: ENOSPC, nothing queued. */
    ut_err(xichan_queue_put(cl, q, 0, buf, sizeof(buf), 0, XICHAN_NOWAIT), XICHAN_ENOSPC);
    ut_err(xichan_queue_put(cl, q, 0, buf, sizeof(buf), 0, xichan_deadline(0.05)),
           XICHAN_ENOSPC);
    assert_int_equal(xichan_queue_count(cl, q), n);
    /* Blocking: woken by the other session's get. */
    clear_waiter_flag();
    pthread_create(&t, NULL, room_maker_main, &m);
    ut_ok(xichan_queue_put(cl, q, 0, buf, sizeof(buf), 0, xichan_deadline(30)));
    pthread_join(t, &rc);
    assert_null(rc);
    assert_int_equal(xichan_queue_count(cl, q), n);
    ut_ok(xichan_queue_destroy(cl, q));
    ut_client_end(other);
}

static void test_queue_put_many_goes_in_piece_by_piece(void **state)
{
    xichan_queue_id q = mkq(0, 0);
    xichan_client *other = ut_client(shm);
    size_t len = (size_t)(shm->heap_size / 3);
    struct room_maker m = {other, q, 2}; /* two fit; the third and fourth wait */
    char *buf = calloc(1, len);
    xichan_iov v[4] = {{buf, len, 0}, {buf, len, 0}, {buf, len, 0}, {buf, len, 0}};
    pthread_t t;
    void *rc;

    /* Four items of a third of the heap: never all at once. */
    pthread_create(&t, NULL, room_maker_main, &m);
    assert_int_equal(xichan_queue_put_many(cl, q, v, 4, 0, xichan_deadline(30)), 4);
    pthread_join(t, &rc);
    assert_null(rc);
    assert_int_equal(xichan_queue_count(cl, q), 2);
    free(buf);
    ut_ok(xichan_queue_destroy(cl, q));
    ut_client_end(other);
}

static int stop_now(void *arg)
{
    return 1;
}

static void test_queue_interrupt_stops_a_wait_for_room(void **state)
{
    xichan_queue_id q = mkq(0, 0);
    char buf[65536] = {0};
    int n = fill_big(q, sizeof(buf));

    xichan_client_set_interrupt(cl, stop_now, NULL, 10);
    ut_err(xichan_queue_put(cl, q, 0, buf, sizeof(buf), 0, xichan_deadline(30)), XICHAN_EINTR);
    xichan_client_set_interrupt(cl, NULL, NULL, 0);
    assert_int_equal(xichan_queue_count(cl, q), n);
    ut_ok(xichan_queue_destroy(cl, q));
}

static void test_queue_channel_id_is_not_a_queue(void **state)
{
    uint64_t cid;
    xichan_queue_id q;

    /* Channel ids start at 0, queue ids at 1: id 0 names only a channel. */
    ut_ok(xichan__obj_create(shm, cl->sid, XICHAN_KIND_CHANNEL, 0, 0, 0, NULL, &cid));
    assert_int_equal(cid, 0);
    q.id = cid;
    ut_err(xichan_queue_bind(cl, q), XICHAN_ENOTFOUND);
}

/* ----------------------------------------------------------- lifetime */

static void test_queue_last_release_destroys_with_items(void **state)
{
    xichan_queue_id q = mkq(0, 0);
    xichan_obj_info info;

    put_int(cl, q, 1, 0);
    ut_ok(xichan_queue_bind(cl, q)); /* 2 binds */
    ut_ok(xichan_info(cl, XICHAN_KIND_QUEUE, q.id, &info));
    assert_int_equal(info.nbound, 2);
    ut_ok(xichan_queue_unbind(cl, q));  /* the name */
    ut_ok(xichan_queue_release(cl, q)); /* its CPython-style alias: the same */
    ut_err(xichan_queue_unbind(cl, q), XICHAN_ENOTFOUND);
    ut_err((int)xichan_queue_count(cl, q), XICHAN_ENOTFOUND);
    ut_heap_ok(shm);
}

static void test_queue_release_without_bind_is_enotbound(void **state)
{
    xichan_queue_id q = mkq(0, 0);
    xichan_client *other = ut_client(shm);

    ut_err(xichan_queue_release(other, q), XICHAN_ENOTBOUND);
    ut_err(xichan_queue_unbind(other, q), XICHAN_ENOTBOUND);
    assert_int_equal(xichan_queue_count(cl, q), 0);
    ut_client_end(other);
}

static void test_queue_session_end_releases_bindings(void **state)
{
    xichan_client *other = ut_client(shm);
    xichan_queue_id q;

    ut_ok(xichan_queue_create(other, NULL, &q));
    ut_ok(xichan_queue_bind(cl, q));
    ut_client_end(other);
    assert_int_equal(xichan_queue_count(cl, q), 0); /* still alive: cl binds it */
    ut_ok(xichan_queue_release(cl, q));
    ut_err((int)xichan_queue_count(cl, q), XICHAN_ENOTFOUND);
}

static void test_queue_named_outlives_its_creator(void **state)
{
    xichan_client *other = ut_client(shm);
    xichan_queue_opts o = {.name = "jobs"};
    xichan_queue_id q, found;

    ut_ok(xichan_queue_create(other, &o, &q));
    put_int(other, q, 5, XICHAN_UNBOUND_REPLACE);
    ut_err(xichan_queue_create(cl, &o, &found), XICHAN_EEXIST);
    ut_client_end(other);
    ut_ok(xichan_queue_open(cl, "jobs", &found));
    assert_int_equal(found.id, q.id);
    assert_int_equal(xichan_queue_count(cl, q), 1);
    ut_ok(xichan_queue_destroy(cl, q));
    ut_err(xichan_queue_open(cl, "jobs", &found), XICHAN_ENOTFOUND);
    o.name = "";
    ut_err(xichan_queue_create(cl, &o, &found), XICHAN_EINVAL);
    o.name = "0123456789012345678901234567890123456789012345678901234567890123456789";
    ut_err(xichan_queue_create(cl, &o, &found), XICHAN_ENAMETOOLONG);
}

/* ------------------------------------------------------------ unbound */

static void test_queue_unbound_ops_apply_per_item(void **state)
{
    xichan_client *prod = ut_client(shm);
    xichan_queue_id q = mkq(0, XICHAN_UNBOUND_REPLACE);
    xichan_item it;

    ut_ok(xichan_queue_bind(prod, q));
    put_int(cl, q, 100, 0); /* a live producer's item */
    put_int(prod, q, 1, 0); /* default: REPLACE */
    put_int(prod, q, 2, XICHAN_UNBOUND_REMOVE);
    put_int(prod, q, 3, XICHAN_UNBOUND_ERROR);
    put_int(prod, q, 4, XICHAN_UNBOUND_REMOVE); /* the tail (gh-146427) */
    ut_client_unbind(prod);

    assert_int_equal(xichan_queue_count(cl, q), 3);
    assert_int_equal(get_int(cl, q), 100);
    ut_ok(xichan_queue_get(cl, q, &it, XICHAN_NOWAIT));
    assert_int_equal(it.unbound, 1);
    assert_int_equal(it.len, 0);
    xichan_item_release(&it);
    ut_err(xichan_queue_get(cl, q, &it, XICHAN_NOWAIT), XICHAN_EUNBOUND);
    assert_int_equal(xichan_queue_count(cl, q), 0);
    /* [F] after the tail was removed, a later put can still be got. */
    put_int(cl, q, 9, 0);
    assert_int_equal(get_int(cl, q), 9);
    ut_heap_ok(shm);
}

static void test_queue_unbound_keeps_other_producers_order(void **state)
{
    xichan_client *a = ut_client(shm), *b = ut_client(shm);
    xichan_queue_id q = mkq(0, XICHAN_UNBOUND_REMOVE);

    for (int i = 0; i < 6; i++)
        put_int(i % 2 ? a : b, q, i, 0);
    ut_client_unbind(a);
    assert_int_equal(xichan_queue_count(cl, q), 3);
    assert_int_equal(get_int(cl, q), 0);
    assert_int_equal(get_int(cl, q), 2);
    assert_int_equal(get_int(cl, q), 4);
    ut_client_end(b);
}

/*
 * A producer whose process ended leaves every item as it put it, whatever
 * the op, and a later session reusing its id that unbinds does not touch
 * them (they are marked KEPT).
 */
static void test_queue_ended_process_items_are_kept(void **state)
{
    xichan_client *prod = ut_client(shm);
    xichan_queue_id q = mkq(0, XICHAN_UNBOUND_REPLACE);
    uint32_t sid = prod->sid;
    xichan_item it;

    ut_ok(xichan_queue_bind(prod, q));
    put_int(prod, q, 1, 0);
    put_int(prod, q, 2, XICHAN_UNBOUND_REMOVE);
    put_int(prod, q, 3, XICHAN_UNBOUND_ERROR);
    ut_client_end(prod);
    assert_int_equal(xichan_queue_count(cl, q), 3);
    /* Same id again (as after 2^28 sessions), then an unbind. */
    {
        xichan_client *again = ut_client(shm);
        again->sid = sid;
        shm->sessions[again->slot].sid = sid;
        ut_client_unbind(again);
    }
    for (int v = 1; v <= 3; v++) {
        ut_ok(xichan_queue_get(cl, q, &it, XICHAN_NOWAIT));
        assert_int_equal(it.unbound, 0);
        assert_int_equal(it.producer, sid);
        assert_int_equal(*(const int *)it.data, v);
        xichan_item_release(&it);
    }
    ut_err(xichan_queue_get(cl, q, &it, XICHAN_NOWAIT), XICHAN_EEMPTY);
    ut_heap_ok(shm);
}

/* An unnamed queue that only the ended session bound goes with its items. */
static void test_queue_ended_process_sole_binding_destroys(void **state)
{
    xichan_client *prod = ut_client(shm);
    xichan_queue_id q;

    ut_ok(xichan_queue_create(prod, NULL, &q));
    put_int(prod, q, 1, 0);
    ut_client_end(prod);
    ut_err(xichan_queue_count(cl, q), XICHAN_ENOTFOUND);
    ut_heap_ok(shm);
}

static void test_queue_dead_getter_lease_is_reclaimed(void **state)
{
    xichan_client *g = ut_client(shm);
    xichan_queue_id q = mkq(0, 0);
    xichan_item it;
    struct xichan_heap_report r;

    put_int(cl, q, 1, 0);
    ut_ok(xichan_queue_get(g, q, &it, XICHAN_NOWAIT)); /* never released */
    ut_ok(xichan__heap_check(shm, &r));
    assert_int_equal(r.leased, 1);
    ut_client_end(g);
    ut_ok(xichan__heap_check(shm, &r));
    assert_int_equal(r.leased, 0);
}

/* -------------------------------------------------------------- list */

static void test_queue_list_is_in_creation_order(void **state)
{
    xichan_queue_id a = mkq(5, 0), b = mkq(0, 0), c = mkq(0, 0);
    xichan_obj_info info[8];
    uint32_t sids[4];

    ut_ok(xichan_queue_destroy(cl, b));
    put_int(cl, c, 1, 0);
    assert_int_equal(xichan_list(cl, info, 8), 2);
    assert_int_equal(info[0].id, a.id);
    assert_int_equal(info[0].maxsize, 5);
    assert_int_equal(info[1].id, c.id);
    assert_int_equal(info[1].count, 1);
    assert_int_equal(info[1].bytes, sizeof(int));
    assert_int_equal(info[1].kind, XICHAN_KIND_QUEUE);
    assert_int_equal(xichan_list(cl, info, 1), 2);
    assert_int_equal(xichan_obj_sessions(cl, XICHAN_KIND_QUEUE, a.id, sids, 4), 1);
    assert_int_equal(sids[0], xichan_client_session(cl));
}

static void test_queue_defaults_are_kept(void **state)
{
    xichan_queue_opts o = {.maxsize = -10, .fmt = 2, .unboundop = XICHAN_UNBOUND_ERROR};
    xichan_queue_id q;
    int64_t maxsize;
    int fmt, op;

    ut_ok(xichan_queue_create(cl, &o, &q));
    ut_ok(xichan_queue_defaults(cl, q, &maxsize, &fmt, &op));
    assert_int_equal(maxsize, -10);
    assert_int_equal(fmt, 2);
    assert_int_equal(op, XICHAN_UNBOUND_ERROR);
    ut_ok(xichan_queue_create(cl, NULL, &q));
    ut_ok(xichan_queue_defaults(cl, q, &maxsize, &fmt, &op));
    assert_int_equal(op, XICHAN_UNBOUND_REPLACE);
}

/* --------------------------------------------------------- batches */

static void test_queue_put_many_get_many_keep_order(void **state)
{
    xichan_queue_id q = mkq(0, 0);
    static int vals[1000];
    static xichan_iov iov[1000];
    xichan_item got[300];
    int n, seen = 0;

    for (int i = 0; i < 1000; i++) {
        vals[i] = i;
        iov[i] = (xichan_iov){&vals[i], sizeof(int), XICHAN_FMT_RAW};
    }
    assert_int_equal(xichan_queue_put_many(cl, q, iov, 1000, 0, XICHAN_NOWAIT), 1000);
    assert_int_equal(xichan_queue_count(cl, q), 1000);
    while ((n = xichan_queue_get_many(cl, q, got, 300, XICHAN_NOWAIT)) > 0) {
        for (int i = 0; i < n; i++)
            assert_int_equal(*(const int *)got[i].data, seen++);
        xichan_items_release(got, (size_t)n);
    }
    ut_err(n, XICHAN_EEMPTY);
    assert_int_equal(seen, 1000);
    ut_heap_ok(shm);
}

static void test_queue_put_many_stops_when_full(void **state)
{
    xichan_queue_id q = mkq(3, 0);
    int v[5] = {0, 1, 2, 3, 4};
    xichan_iov iov[5];
    xichan_item got[5];

    for (int i = 0; i < 5; i++)
        iov[i] = (xichan_iov){&v[i], sizeof(int), 0};
    assert_int_equal(xichan_queue_put_many(cl, q, iov, 5, 0, XICHAN_NOWAIT), 3);
    ut_err(xichan_queue_put_many(cl, q, iov, 5, 0, XICHAN_NOWAIT), XICHAN_EFULL);
    assert_int_equal(xichan_queue_get_many(cl, q, got, 5, XICHAN_NOWAIT), 3);
    assert_int_equal(*(const int *)got[2].data, 2);
    xichan_items_release(got, 3);
    ut_err(xichan_queue_put_many(cl, q, iov, 1, 9, XICHAN_NOWAIT), XICHAN_EINVAL);
    ut_err(xichan_queue_get_many(cl, q, got, 0, XICHAN_NOWAIT), XICHAN_EINVAL);
    ut_heap_ok(shm);
}

static void test_queue_get_many_reports_unbound_error_alone(void **state)
{
    xichan_client *p = ut_client(shm);
    xichan_queue_id q = mkq(0, 0);
    xichan_item got[8];

    put_int(cl, q, 1, 0);
    put_int(p, q, 2, XICHAN_UNBOUND_ERROR);
    put_int(cl, q, 3, 0);
    ut_client_unbind(p);
    assert_int_equal(xichan_queue_get_many(cl, q, got, 8, XICHAN_NOWAIT), 1);
    xichan_items_release(got, 1);
    ut_err(xichan_queue_get_many(cl, q, got, 8, XICHAN_NOWAIT), XICHAN_EUNBOUND);
    assert_int_equal(xichan_queue_get_many(cl, q, got, 8, XICHAN_NOWAIT), 1);
    assert_int_equal(*(const int *)got[0].data, 3);
    xichan_items_release(got, 1);
}

/* ---------------------------------------------- counters, peek, purge */

static void test_queue_counters_count_puts_gets_and_bytes(void **state)
{
    xichan_queue_id q = mkq(0, 0), other = mkq(0, 0);
    xichan_obj_info info;
    char big[100] = {0};

    put_int(cl, q, 1, 0);
    put_int(cl, q, 2, 0);
    ut_ok(xichan_queue_put(cl, q, XICHAN_FMT_RAW, big, sizeof(big), 0, XICHAN_NOWAIT));
    get_int(cl, q);
    ut_ok(xichan_info(cl, XICHAN_KIND_QUEUE, q.id, &info));
    assert_int_equal(info.puts, 3);
    assert_int_equal(info.gets, 1);
    assert_int_equal(info.put_bytes, 2 * sizeof(int) + sizeof(big));
    assert_int_equal(info.count, 2);
    /* A purge drops items: they were put, never got. */
    assert_int_equal(xichan_queue_purge(cl, q), 2);
    ut_ok(xichan_info(cl, XICHAN_KIND_QUEUE, q.id, &info));
    assert_int_equal(info.puts, 3);
    assert_int_equal(info.gets, 1);
    /* Per object: the other queue saw nothing. */
    ut_ok(xichan_info(cl, XICHAN_KIND_QUEUE, other.id, &info));
    assert_int_equal(info.puts + info.gets + info.put_bytes, 0);
}

static void test_queue_peek_copies_and_leaves_items(void **state)
{
    xichan_client *p = ut_client(shm);
    xichan_queue_id q = mkq(0, XICHAN_UNBOUND_REPLACE);
    xichan_item it;
    char buf[16];
    int v;

    ut_err(xichan_peek(cl, XICHAN_KIND_QUEUE, q.id, 0, buf, sizeof(buf), &it), XICHAN_EEMPTY);
    for (int i = 0; i < 3; i++)
        put_int(cl, q, 10 + i, 0);
    put_int(p, q, 99, 0);
    ut_client_end_how(p, XICHAN_ENDED_UNBIND); /* its item becomes UNBOUND */
    for (int i = 0; i < 3; i++) {
        ut_ok(xichan_peek(cl, XICHAN_KIND_QUEUE, q.id, (uint64_t)i, buf, sizeof(buf), &it));
        assert_ptr_equal(it.data, buf);
        assert_int_equal(it.len, sizeof(int));
        assert_int_equal(it.unbound, 0);
        assert_int_equal(it.producer, xichan_client_session(cl));
        memcpy(&v, buf, sizeof(v));
        assert_int_equal(v, 10 + i);
        xichan_item_release(&it); /* owns nothing: a no-op */
    }
    ut_ok(xichan_peek(cl, XICHAN_KIND_QUEUE, q.id, 3, buf, sizeof(buf), &it));
    assert_int_equal(it.unbound, 1);
    assert_int_equal(it.len, 0);
    ut_err(xichan_peek(cl, XICHAN_KIND_QUEUE, q.id, 4, buf, sizeof(buf), &it), XICHAN_EEMPTY);
    /* Too small a buffer: E2BIG, and the size it needs. */
    ut_err(xichan_peek(cl, XICHAN_KIND_QUEUE, q.id, 0, buf, 2, &it), XICHAN_E2BIG);
    assert_int_equal(it.len, sizeof(int));
    ut_err(xichan_peek(cl, XICHAN_KIND_QUEUE, q.id + 100, 0, buf, sizeof(buf), &it),
           XICHAN_ENOTFOUND);
    ut_err(xichan_peek(cl, XICHAN_KIND_QUEUE, q.id, 0, NULL, 4, &it), XICHAN_EINVAL);
    /* Nothing was taken. */
    assert_int_equal(xichan_queue_count(cl, q), 4);
    for (int i = 0; i < 3; i++)
        assert_int_equal(get_int(cl, q), 10 + i);
}

static void test_queue_purge_keeps_the_queue(void **state)
{
    xichan_queue_id q = mkq(0, 0);
    xichan_stats st;
    uint64_t used;

    ut_ok(xichan_stats_get(cl, &st));
    used = st.heap_used;
    assert_int_equal(xichan_queue_purge(cl, q), 0);
    for (int i = 0; i < 50; i++)
        put_int(cl, q, i, 0);
    assert_int_equal(xichan_queue_purge(cl, q), 50);
    assert_int_equal(xichan_queue_count(cl, q), 0);
    ut_ok(xichan_stats_get(cl, &st));
    assert_int_equal(st.heap_used, used); /* every item's block is free again */
    put_int(cl, q, 7, 0);                 /* still a working queue */
    assert_int_equal(get_int(cl, q), 7);
    ut_err(xichan_queue_purge(cl, (xichan_queue_id){q.id + 100}), XICHAN_ENOTFOUND);
}

static void test_queue_purge_wakes_a_blocked_putter(void **state)
{
    blocked_put_released_by(3);
}

/* ---------------------------------------------------------- hand-off */

static void test_queue_handoff_returns_once_taken(void **state)
{
    xichan_queue_id q = mkq(0, 0);
    struct waker w = {cl, q, 30, 1}; /* a getter, 30 ms later */
    pthread_t t;
    int v = 42;

    pthread_create(&t, NULL, waker_main, &w);
    /* No deadline: only the getter's take ends it (the alarm is the bound). */
    ut_ok(xichan_queue_handoff(cl, q, XICHAN_FMT_RAW, &v, sizeof(v), 0, XICHAN_FOREVER));
    pthread_join(t, NULL);
    assert_int_equal(xichan_queue_count(cl, q), 0);
}

static void test_queue_handoff_withdraws_what_nobody_took(void **state)
{
    xichan_queue_id q = mkq(0, 0), full = mkq(1, 0);
    xichan_obj_info info;
    int v = 1, calls = 0;

    put_int(cl, q, 7, 0); /* an item before ours stays */
    ut_err(xichan_queue_handoff(cl, q, XICHAN_FMT_RAW, &v, sizeof(v), 0, xichan_deadline(0.05)),
           XICHAN_ETIMEDOUT);
    assert_int_equal(xichan_queue_count(cl, q), 1);
    ut_ok(xichan_info(cl, XICHAN_KIND_QUEUE, q.id, &info));
    assert_int_equal(info.puts, 2); /* it was queued, then withdrawn */
    assert_int_equal(get_int(cl, q), 7);
    /* The interrupt callback withdraws it too. */
    xichan_client_set_interrupt(cl, stop_after, &calls, 10);
    ut_err(xichan_queue_handoff(cl, q, XICHAN_FMT_RAW, &v, sizeof(v), 0, xichan_deadline(5)),
           XICHAN_EINTR);
    xichan_client_set_interrupt(cl, NULL, NULL, 0);
    assert_int_equal(xichan_queue_count(cl, q), 0);
    /* No room: nothing queued. */
    put_int(cl, full, 1, 0);
    ut_err(xichan_queue_handoff(cl, full, XICHAN_FMT_RAW, &v, sizeof(v), 0, XICHAN_NOWAIT),
           XICHAN_EFULL);
    assert_int_equal(xichan_queue_count(cl, full), 1);
    ut_err(xichan_queue_handoff(cl, (xichan_queue_id){q.id + 100}, XICHAN_FMT_RAW, &v, sizeof(v),
                                0, XICHAN_NOWAIT),
           XICHAN_ENOTFOUND);
}

static void test_sessions_lists_each_session_with_its_objects(void **state)
{
    xichan_client *p = ut_client(shm);
    xichan_queue_id q = mkq(0, 0);
    xichan_session_info rows[8];
    int n;

    ut_ok(xichan_queue_bind(p, q));
    ut_ok(xichan_queue_bind(p, q)); /* one entry, two refs: one object */
    ut_err(xichan_sessions(cl, NULL, 4), XICHAN_EINVAL);
    assert_int_equal(xichan_sessions(cl, NULL, 0), 2);
    n = xichan_sessions(cl, rows, 8);
    assert_int_equal(n, 2);
    assert_true(rows[0].sid < rows[1].sid);
    for (int i = 0; i < n; i++) {
        assert_int_equal(rows[i].pid, getpid());
        assert_int_equal(rows[i].uid, getuid());
        assert_int_equal(rows[i].state, XICHAN_SESSION_LIVE);
        assert_string_equal(rows[i].kind, "unit");
        assert_true(rows[i].start_ns > 0);
        assert_int_equal(rows[i].nobjects, 1);
    }
    assert_int_equal(xichan_sessions(cl, rows, 1), 2); /* the total, one row filled */
    ut_client_end(p);
    assert_int_equal(xichan_sessions(cl, rows, 8), 1);
    assert_int_equal(rows[0].sid, xichan_client_session(cl));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
#define T(fn) cmocka_unit_test_setup_teardown(fn, ut_client_setup, ut_client_teardown)
        T(test_queue_ids_start_at_one_and_are_never_reused),
        T(test_queue_put_get_is_fifo),
        T(test_queue_item_keeps_format_and_producer),
        T(test_queue_empty_item_round_trips),
        T(test_queue_get_empty_returns_eempty),
        T(test_queue_qsize_and_full_sequences),
        T(test_queue_put_full_returns_efull_and_keeps_items),
        T(test_queue_timeouts_are_precise),
        T(test_queue_blocked_get_wakes_on_put),
        T(test_queue_blocked_put_completes_after_get),
        T(test_queue_destroy_wakes_blocked_get_with_enotfound),
        T(test_queue_interrupt_callback_stops_a_wait),
        T(test_queue_bad_ids_and_args_change_nothing),
        T(test_queue_oversized_item_fails_at_once),
        T(test_queue_segment_full_is_enospc_and_recovers),
        T(test_queue_put_waits_for_room_in_a_full_segment),
        T(test_queue_put_many_goes_in_piece_by_piece),
        T(test_queue_interrupt_stops_a_wait_for_room),
        T(test_queue_channel_id_is_not_a_queue),
        T(test_queue_last_release_destroys_with_items),
        T(test_queue_release_without_bind_is_enotbound),
        T(test_queue_session_end_releases_bindings),
        T(test_queue_named_outlives_its_creator),
        T(test_queue_unbound_ops_apply_per_item),
        T(test_queue_unbound_keeps_other_producers_order),
        T(test_queue_ended_process_items_are_kept),
        T(test_queue_ended_process_sole_binding_destroys),
        T(test_queue_dead_getter_lease_is_reclaimed),
        T(test_queue_list_is_in_creation_order),
        T(test_queue_defaults_are_kept),
        T(test_queue_put_many_get_many_keep_order),
        T(test_queue_put_many_stops_when_full),
        T(test_queue_get_many_reports_unbound_error_alone),
        T(test_queue_counters_count_puts_gets_and_bytes),
        T(test_queue_peek_copies_and_leaves_items),
        T(test_queue_purge_keeps_the_queue),
        T(test_queue_purge_wakes_a_blocked_putter),
        T(test_queue_handoff_returns_once_taken),
        T(test_queue_handoff_withdraws_what_nobody_took),
        T(test_sessions_lists_each_session_with_its_objects),
#undef T
    };

    alarm(60);
    return cmocka_run_group_tests(tests, NULL, NULL);
}
