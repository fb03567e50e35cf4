/*
 * queue_session_death.c -- when a producer process ends (kill -9, or a
 * clean close), the daemon applies each of its items' unbound ops:
 * REPLACE leaves a marker, ERROR makes get fail once, REMOVE removes.
 * Items of live producers are untouched and keep their order.
 */
#include <stdio.h>
#include <string.h>

#include "harness.h"

static xichan_queue_id q;
static xt_pipe_t done, go;

static void producer(void *arg)
{
    int clean = (int)(long)arg;
    xichan_client *cl;

    XT_OK(xichan_client_open(&cl, NULL));
    XT_OK(xichan_queue_put(cl, q, 0, "R", 1, XICHAN_UNBOUND_REPLACE, XICHAN_NOWAIT));
    XT_OK(xichan_queue_put(cl, q, 0, "E", 1, XICHAN_UNBOUND_ERROR, XICHAN_NOWAIT));
    XT_OK(xichan_queue_put(cl, q, 0, "X", 1, XICHAN_UNBOUND_REMOVE, XICHAN_NOWAIT));
    XT_OK(xichan_queue_put(cl, q, 0, "D", 1, 0, XICHAN_NOWAIT)); /* queue default: REMOVE */
    xt_signal(&done);
    if (clean) {
        xt_await(&go, 10000);
        xichan_client_close(cl); /* returns after the daemon's cleanup */
        return;
    }
    for (;;)
        xt_sleep_ms(1000); /* until killed */
}

/* Polls until the queue holds n items (the daemon's cleanup is async). */
static void await_count(xichan_client *cl, int n)
{
    double t0 = xt_now();

    while (xichan_queue_count(cl, q) != n) {
        if (xt_now() - t0 > 10)
            xt__fail(__FILE__, __LINE__, "count stuck at %lld, expected %d",
                     (long long)xichan_queue_count(cl, q), n);
        xt_sleep_ms(5);
    }
}

static void check_after(xichan_client *cl)
{
    xichan_item it;

    XT_OK(xichan_queue_get(cl, q, &it, XICHAN_NOWAIT));
    XT_CHECK(it.len == 1 && memcmp(it.data, "a", 1) == 0);
    xichan_item_release(&it);
    XT_OK(xichan_queue_get(cl, q, &it, XICHAN_NOWAIT));
    XT_CHECK(it.unbound && it.len == 0);
    xichan_item_release(&it);
    XT_ERR(xichan_queue_get(cl, q, &it, XICHAN_NOWAIT), XICHAN_EUNBOUND);
    XT_OK(xichan_queue_get(cl, q, &it, XICHAN_NOWAIT));
    XT_CHECK(it.len == 1 && memcmp(it.data, "b", 1) == 0);
    xichan_item_release(&it);
    XT_ERR(xichan_queue_get(cl, q, &it, XICHAN_NOWAIT), XICHAN_EEMPTY);
    /* [F] the tail item was removed; a later put is still delivered. */
    XT_OK(xichan_queue_put(cl, q, 0, "c", 1, 0, XICHAN_NOWAIT));
    XT_OK(xichan_queue_get(cl, q, &it, XICHAN_NOWAIT));
    XT_CHECK(it.len == 1 && memcmp(it.data, "c", 1) == 0);
    xichan_item_release(&it);
}

static void run(xichan_client *cl, int clean)
{
    pid_t pid;

    XT_OK(xichan_queue_put(cl, q, 0, "a", 1, 0, XICHAN_NOWAIT));
    pid = xt_fork(producer, (void *)(long)clean);
    XT_EQ_INT(xt_await(&done, 10000), 0);
    XT_OK(xichan_queue_put(cl, q, 0, "b", 1, 0, XICHAN_NOWAIT));
    XT_EQ_INT(xichan_queue_count(cl, q), 6);
    if (clean) {
        xt_signal(&go);
        XT_EQ_INT(xt_wait(pid, 10000), 0);
        XT_EQ_INT(xichan_queue_count(cl, q), 4); /* close was synchronous */
    } else {
        xt_kill9(pid);
        await_count(cl, 4);
    }
    check_after(cl);
    printf("session death (%s): unbound ops applied\n", clean ? "clean close" : "kill -9");
}

int main(void)
{
    xichan_client *cl;

    xt_start_daemon(NULL);
    xt_pipe_init(&done);
    xt_pipe_init(&go);
    XT_OK(xichan_client_open(&cl, NULL));
    XT_OK(xichan_queue_create(cl, &(xichan_queue_opts){.unboundop = XICHAN_UNBOUND_REMOVE}, &q));
    run(cl, 0);
    run(cl, 1);
    xichan_client_close(cl);
    return 0;
}
