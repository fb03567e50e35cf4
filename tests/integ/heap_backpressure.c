/*
 * heap_backpressure.c -- a full segment is backpressure for blocking calls,
 * and blocks idle sessions keep cached are given back before anyone is
 * told the segment is full.
 *
 *   - nowait calls, and blocking ones whose deadline passes, fail with
 *     XICHAN_ENOSPC and queue nothing; the message gives the item's size,
 *     the heap's and how to raise it (--size, XICHAN_SIZE); an item bigger
 *     than the heap fails with XICHAN_E2BIG and says so;
 *   - a blocking put, put_many and channel send on a full segment complete
 *     once another process frees room (no polling: the waiter sleeps on
 *     the heap's futex word until a free wakes it; only hang bounds here);
 *   - the client's interrupt callback ends such a wait (XICHAN_EINTR);
 *   - an idle process's cached blocks are taken back when the heap fills,
 *     and that process's cache still works afterwards;
 *   - kill -9 of a process whose blocks are cached, of a waiter asleep on
 *     the heap word, and at each new kill point (a waiter registered but
 *     not asleep, a thief holding gates, a thief that freed, an owner
 *     holding its gate) leaves a heap that passes its check, no block
 *     cached by the dead, and later waiters still woken.
 *
 * The daemon gets a 4 MiB segment, so it fills in a moment.
 */
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "harness.h"
#include "internal.h"

#define BIG (64 * 1024)
#define SMALL 64

static char blob[BIG];
static xichan_queue_id q;
static xichan_chan_id ch;
static xt_pipe_t ready, go;
static size_t fault_len = BIG; /* DO_PUT_FAULT's item */

static void heap_ok(xichan_client *cl, struct xichan_heap_report *r)
{
    XT_OK(xichan__heap_check(cl->shm, r));
    if (!r->ok)
        xt__fail(__FILE__, __LINE__, "heap check: %s", r->why);
}

/* Puts BIG items, then SMALL ones, until ENOSPC: the heap has no room left
 * for a SMALL item, whatever caches held.  Returns how many went in. */
static int fill(xichan_client *cl)
{
    int n = 0, err;

    while ((err = xichan_queue_put(cl, q, 0, blob, BIG, 0, XICHAN_NOWAIT)) == 0)
        n++;
    XT_ERR(err, XICHAN_ENOSPC);
    while ((err = xichan_queue_put(cl, q, 0, blob, SMALL, 0, XICHAN_NOWAIT)) == 0)
        n++;
    XT_ERR(err, XICHAN_ENOSPC);
    return n;
}

static void drain(xichan_client *cl)
{
    xichan_item it;

    while (xichan_queue_get(cl, q, &it, XICHAN_NOWAIT) == 0)
        xichan_item_release(&it);
}

/* Takes (and frees) one BIG item from the queue. */
static void free_one_big(xichan_client *cl)
{
    xichan_item it;

    for (;;) {
        XT_OK(xichan_queue_get(cl, q, &it, XICHAN_NOWAIT));
        if (it.len == BIG) {
            xichan_item_release(&it);
            return;
        }
        xichan_item_release(&it);
    }
}

static void clear_heap_waiter(xichan_client *cl);

/* Waits (bounded) until an allocation is registered as waiting for room. */
static void await_heap_waiter(xichan_client *cl)
{
    double t0 = xt_now();

    while (!xa_load_acquire(&cl->shm->hdr->heap_waiters)) {
        if (xt_now() - t0 > 10)
            xt__fail(__FILE__, __LINE__, "no allocation waits for room");
        xt_sleep_ms(1);
    }
}

/* Forgets the waiter flag (left by our own fill's last try, or by a killed
 * waiter), so that await_heap_waiter sees the next waiter. */
static void clear_heap_waiter(xichan_client *cl)
{
    XT_OK(xichan__heap_lock(cl->shm, cl->sid, XICHAN_NOWAIT));
    xa_store_relaxed(&cl->shm->hdr->heap_waiters, 0);
    xichan__heap_unlock(cl->shm);
}

/* Waits (bounded) until n session slots are in use: the daemon finished
 * ending the others (a slot stays CLEANING until its blocks are freed). */
static void await_sessions(xichan_client *cl, uint32_t n)
{
    double t0 = xt_now();

    for (;;) {
        uint32_t used = 0;

        for (uint32_t i = 0; i < cl->shm->nsessions; i++)
            used += __atomic_load_n(&cl->shm->sessions[i].state, __ATOMIC_ACQUIRE) !=
                    XICHAN_SESS_FREE;
        if (used == n)
            return;
        if (xt_now() - t0 > 10)
            xt__fail(__FILE__, __LINE__, "%u sessions, expected %u", used, n);
        xt_sleep_ms(5);
    }
}

/* Blocks other sessions hold cached (ours are given back first). */
static uint64_t cached_blocks(xichan_client *cl)
{
    struct xichan_heap_report r;

    XT_CHECK(xichan__cache_flush(cl) >= 0);
    heap_ok(cl, &r);
    return r.cached;
}

/* --------------------------------------------------------- children */

/* A blocking call on the full heap; signals ready first, exits 0 if it
 * returned what arg expects, then waits for go. */
enum { DO_PUT, DO_PUT_MANY, DO_SEND, DO_PUT_INTR, DO_PUT_FAULT };
static volatile sig_atomic_t stop_flag;

static int stop_check(void *arg)
{
    return stop_flag;
}

static void on_usr1(int sig)
{
    stop_flag = 1;
}

static void blocker(void *arg)
{
    int what = (int)(long)arg;
    xichan_client *cl;
    xichan_iov v[3] = {{blob, BIG, 0}, {blob, BIG, 0}, {blob, BIG, 0}};
    int64_t before;

    XT_OK(xichan_client_open(&cl, NULL));
    switch (what) {
    case DO_PUT:
        xt_signal(&ready);
        XT_OK(xichan_queue_put(cl, q, 0, blob, BIG, 0, XICHAN_FOREVER));
        break;
    case DO_PUT_MANY:
        xt_signal(&ready);
        XT_EQ_INT(xichan_queue_put_many(cl, q, v, 3, 0, XICHAN_FOREVER), 3);
        break;
    case DO_SEND:
        xt_signal(&ready);
        XT_OK(xichan_chan_send(cl, ch, 0, blob, BIG, 0, XICHAN_FOREVER));
        break;
    case DO_PUT_INTR: {
        struct sigaction sa;
        memset(&sa, 0, sizeof(sa));
        sa.sa_handler = on_usr1; /* no SA_RESTART: the wait sees EINTR at once */
        sigaction(SIGUSR1, &sa, NULL);
        xichan_client_set_interrupt(cl, stop_check, NULL, 1000);
        before = xichan_queue_count(cl, q);
        xt_signal(&ready);
        XT_ERR(xichan_queue_put(cl, q, 0, blob, BIG, 0, XICHAN_FOREVER), XICHAN_EINTR);
        XT_EQ_INT(xichan_queue_count(cl, q), before); /* nothing queued */
        break;
    }
    case DO_PUT_FAULT: { /* dies at the armed kill point */
        char *p = calloc(1, fault_len);
        XT_CHECK(p != NULL);
        xt_signal(&ready);
        (void)xichan_queue_put(cl, q, 0, p, fault_len, 0, XICHAN_FOREVER);
        _exit(3);
    }
    }
    xt_signal(&ready);
    xt_await(&go, 20000);
}

/* An idle process with a full block cache: 8 items of each cached size
 * put and taken back.  Signals ready, then sleeps until go (or a kill),
 * then checks that its cache still works and exits. */
static void cacher(void *arg)
{
    long point = (long)arg;
    xichan_client *cl;
    xichan_item it;

    XT_OK(xichan_client_open(&cl, NULL));
    if (point == XICHAN_FAULT_CACHE_GATED)
        xichan__fault_set(XICHAN_FAULT_CACHE_GATED, 5); /* in the fifth keep */
    for (int len = 0; len < 128; len += 16)
        for (int i = 0; i < 8; i++)
            XT_OK(xichan_queue_put(cl, q, 0, blob, (size_t)len, 0, XICHAN_NOWAIT));
    for (int i = 0; i < 64; i++) {
        XT_OK(xichan_queue_get(cl, q, &it, XICHAN_NOWAIT));
        xichan_item_release(&it);
    }
    xt_signal(&ready);
    XT_OK(xt_await(&go, 30000));
    /* Its blocks were taken while it slept: the cache forgets them. */
    for (int i = 0; i < 20; i++) {
        XT_OK(xichan_queue_put(cl, q, 0, blob, SMALL, 0, XICHAN_NOWAIT));
        XT_OK(xichan_queue_get(cl, q, &it, XICHAN_NOWAIT));
        xichan_item_release(&it);
    }
    xt_signal(&ready);
}

/* --------------------------------------------------------------- tests */

static void test_errors(xichan_client *cl)
{
    char len_text[64];
    int64_t n;
    int err;

    fill(cl);
    n = xichan_queue_count(cl, q);
    err = xichan_queue_put(cl, q, 0, blob, SMALL, 0, XICHAN_NOWAIT);
    XT_ERR(err, XICHAN_ENOSPC);
    snprintf(len_text, sizeof(len_text), "item of %d bytes", SMALL);
    XT_HAS(xichan_strerror(err), len_text);
    snprintf(len_text, sizeof(len_text), "%llu bytes", (unsigned long long)cl->shm->heap_size);
    XT_HAS(xichan_strerror(err), len_text);
    XT_HAS(xichan_strerror(err), "--size");
    XT_HAS(xichan_strerror(err), "XICHAN_SIZE");
    /* A deadline passes: ENOSPC, nothing queued. */
    XT_ERR(xichan_queue_put(cl, q, 0, blob, BIG, 0, xichan_deadline(0.2)), XICHAN_ENOSPC);
    XT_ERR(xichan_chan_send(cl, ch, 0, blob, BIG, 0, xichan_deadline(0.2)), XICHAN_ENOSPC);
    XT_ERR(xichan_chan_send_nowait(cl, ch, 0, blob, SMALL, 0), XICHAN_ENOSPC);
    XT_EQ_INT(xichan_queue_count(cl, q), n);
    XT_EQ_INT(xichan_chan_count(cl, ch), 0);
    /* Bigger than the heap: never fits, told at once, whatever the deadline. */
    {
        size_t huge = (size_t)cl->shm->heap_size + 1;
        char *p = calloc(1, huge);

        XT_CHECK(p != NULL);
        err = xichan_queue_put(cl, q, 0, p, huge, 0, XICHAN_FOREVER);
        XT_ERR(err, XICHAN_E2BIG);
        snprintf(len_text, sizeof(len_text), "item of %zu bytes", huge);
        XT_HAS(xichan_strerror(err), len_text);
        XT_HAS(xichan_strerror(err), "XICHAN_SIZE");
        free(p);
    }
    drain(cl);
    printf("full: nowait and expired deadlines give ENOSPC naming the sizes, nothing queued\n");
}

/* A blocking call of kind what, on the full heap, completes once room is made. */
static void blocked_until_room(xichan_client *cl, int what, int frees)
{
    int64_t n;
    pid_t pid;

    fill(cl);
    clear_heap_waiter(cl);
    n = xichan_queue_count(cl, q);
    pid = xt_fork(blocker, (void *)(long)what);
    XT_OK(xt_await(&ready, 10000));
    await_heap_waiter(cl);
    for (int i = 0; i < frees; i++) {
        free_one_big(cl);
        n--;
        if (i + 1 < frees)
            await_heap_waiter(cl); /* put_many: the rest waits again */
    }
    if (what == DO_SEND) {
        xichan_item it;
        XT_OK(xichan_chan_recv(cl, ch, &it, xichan_deadline(10.0)));
        XT_EQ_INT(it.len, BIG);
        xichan_item_release(&it);
    }
    XT_OK(xt_await(&ready, 10000)); /* the call returned */
    if (what != DO_SEND)
        XT_EQ_INT(xichan_queue_count(cl, q), n + frees);
    xt_signal(&go);
    XT_EQ_INT(xt_wait(pid, 10000), 0);
    drain(cl);
}

static void test_blocking(xichan_client *cl)
{
    blocked_until_room(cl, DO_PUT, 1);
    blocked_until_room(cl, DO_PUT_MANY, 3);
    blocked_until_room(cl, DO_SEND, 1);
    printf("full: blocked put, put_many and send complete when another process frees room\n");
}

static void test_interrupt(xichan_client *cl)
{
    pid_t pid;

    fill(cl);
    clear_heap_waiter(cl);
    pid = xt_fork(blocker, (void *)(long)DO_PUT_INTR);
    XT_OK(xt_await(&ready, 10000));
    await_heap_waiter(cl);
    kill(pid, SIGUSR1);
    XT_OK(xt_await(&ready, 10000));
    xt_signal(&go);
    XT_EQ_INT(xt_wait(pid, 10000), 0);
    drain(cl);
    printf("full: the interrupt callback ends a put waiting for room (EINTR, nothing queued)\n");
}

/* A cacher child, idle with 64 blocks in its cache (and none in ours). */
static pid_t start_cacher(xichan_client *cl)
{
    pid_t pid;

    drain(cl);
    XT_CHECK(xichan__cache_flush(cl) >= 0);
    pid = xt_fork(cacher, NULL);
    XT_OK(xt_await(&ready, 10000));
    XT_EQ_INT(cached_blocks(cl), 64);
    return pid;
}

static void test_steal(xichan_client *cl)
{
    struct xichan_heap_report r;
    pid_t pid = start_cacher(cl);

    /* Room for every SMALL item the idle cache held. */
    fill(cl);
    heap_ok(cl, &r);
    XT_EQ_INT(r.cached, 0);
    /* fill() ended on ENOSPC for a SMALL item: what is left is in pieces too small. */
    drain(cl);
    xt_signal(&go);
    XT_OK(xt_await(&ready, 10000));
    XT_EQ_INT(xt_wait(pid, 10000), 0);
    await_sessions(cl, 1);
    XT_EQ_INT(cached_blocks(cl), 0);
    printf("full: an idle process's 64 cached blocks were given back first; its cache still works\n");
}

static void test_kill_cached(xichan_client *cl)
{
    struct xichan_heap_report r;
    pid_t pid = start_cacher(cl);

    xt_kill9(pid);
    await_sessions(cl, 1);
    heap_ok(cl, &r);
    XT_EQ_INT(r.cached, 0);
    XT_EQ_INT(r.reserved + r.leased, 0);
    printf("kill -9 of a process with 64 cached blocks: the daemon freed them\n");
}

/* A waiter killed asleep on the heap word, or at point (armed in the child
 * through the environment of its fault build): the next waiter is woken. */
static void test_kill_waiter(xichan_client *cl, int point)
{
    pid_t pid;

    fill(cl);
    clear_heap_waiter(cl);
    if (point)
        xichan__fault_set(point, 1); /* inherited by the fork */
    pid = xt_fork(blocker, (void *)(long)(point ? DO_PUT_FAULT : DO_PUT));
    if (point)
        xichan__fault_set(0, 0);
    XT_OK(xt_await(&ready, 10000));
    if (point) {
        XT_EQ_INT(xt_wait(pid, 10000), 128 + SIGKILL); /* died at the point */
    } else {
        await_heap_waiter(cl);
        xt_kill9(pid);
    }
    await_sessions(cl, 1);
    clear_heap_waiter(cl);
    blocked_until_room(cl, DO_PUT, 1);
    printf("kill -9 of a waiter (%s): the next waiter is woken by a free\n",
           point ? "registered, not asleep" : "asleep");
}

/* A thief killed at point while it holds an idle process's gate. */
static void test_kill_thief(xichan_client *cl, int point)
{
    struct xichan_heap_report r;
    pid_t idle, thief;

    drain(cl);
    XT_CHECK(xichan__cache_flush(cl) >= 0);
    idle = xt_fork(cacher, NULL);
    XT_OK(xt_await(&ready, 10000));
    XT_EQ_INT(cached_blocks(cl), 64);
    /* The thief wants the whole heap: its first try finds no room and
     * steals the idle cache; it dies there, holding heap_lock. */
    fault_len = (size_t)xichan__heap_max_item(cl->shm);
    xichan__fault_set(point, 1);
    thief = xt_fork(blocker, (void *)(long)DO_PUT_FAULT);
    xichan__fault_set(0, 0);
    XT_OK(xt_await(&ready, 10000));
    XT_EQ_INT(xt_wait(thief, 10000), 128 + SIGKILL);
    await_sessions(cl, 2);
    /* The next holder of heap_lock finished the steal. */
    heap_ok(cl, &r);
    XT_EQ_INT(r.cached, 0);
    XT_EQ_INT(r.reserved + r.leased, 0);
    for (uint32_t s = 0; s < cl->shm->nsessions; s++)
        XT_CHECK(!(__atomic_load_n(&cl->shm->sessions[s].cache_gate, __ATOMIC_ACQUIRE) &
                   (XICHAN_GATE_THIEF | XICHAN_GATE_OWNER)));
    drain(cl);
    xt_signal(&go); /* the idle process's cache still works */
    XT_OK(xt_await(&ready, 10000));
    XT_EQ_INT(xt_wait(idle, 10000), 0);
    await_sessions(cl, 1);
    XT_EQ_INT(cached_blocks(cl), 0);
    printf("kill -9 of a thief at point %d: the steal was finished, the owner's cache works\n",
           point);
}

/* An owner killed holding its gate, in its fifth cache keep. */
static void test_kill_owner(xichan_client *cl)
{
    struct xichan_heap_report r;
    pid_t pid;

    drain(cl);
    pid = xt_fork(cacher, (void *)(long)XICHAN_FAULT_CACHE_GATED);
    XT_EQ_INT(xt_wait(pid, 10000), 128 + SIGKILL);
    await_sessions(cl, 1);
    drain(cl);
    XT_CHECK(xichan__cache_flush(cl) >= 0); /* what drain() cached is ours */
    heap_ok(cl, &r);
    XT_EQ_INT(r.cached, 0);
    XT_EQ_INT(r.reserved + r.leased, 0);
    fill(cl); /* the whole heap is usable */
    drain(cl);
    printf("kill -9 of an owner holding its cache gate: the daemon freed its blocks\n");
}

int main(void)
{
    xichan_client *cl;
    xichan_queue_opts qo = {0};
    struct xichan_heap_report r;

    alarm(240);
    memset(blob, 'b', sizeof(blob));
    xt_pipe_init(&ready);
    xt_pipe_init(&go);
    xt_start_daemon("--size 4M --objects 64 --sessions 32 --bindings 512");
    XT_OK(xichan_client_open(&cl, NULL));
    qo.unboundop = XICHAN_UNBOUND_REPLACE;
    XT_OK(xichan_queue_create(cl, &qo, &q));
    XT_OK(xichan_chan_create(cl, NULL, &ch));
    test_errors(cl);
    test_blocking(cl);
    test_interrupt(cl);
    test_steal(cl);
    test_kill_cached(cl);
    test_kill_waiter(cl, 0);
    test_kill_waiter(cl, XICHAN_FAULT_HEAP_WAITING);
    test_kill_thief(cl, XICHAN_FAULT_STEAL_GATED);
    test_kill_thief(cl, XICHAN_FAULT_STEAL_FREED);
    test_kill_owner(cl);
    drain(cl);
    XT_CHECK(xichan__cache_flush(cl) >= 0);
    heap_ok(cl, &r);
    XT_EQ_INT(r.used_bytes, 0);
    XT_EQ_INT(r.free_blocks, 1);
    xichan_client_close(cl);
    return 0;
}
