/*
 * queue_session_death.c -- what becomes of a producer's items when its
 * session ends.  Its process ending (kill -9, or a clean
 * xichan_client_close) leaves every item deliverable as it was put,
 * whatever its unbound op; an explicit unbind (xichan_client_close_unbind,
 * what a destroyed subinterpreter does) applies each item's op: REPLACE
 * leaves a marker, ERROR makes get fail once, REMOVE removes.  Items of
 * live producers are untouched and keep their order either way.
 */
#include <stdio.h>
#include <string.h>

#include "harness.h"

enum { KILLED, CLOSED, UNBOUND };
static const char *mode_name[] = {"kill -9", "clean close", "close_unbind"};

static xichan_queue_id q;
static xt_pipe_t done, go;

static void producer(void *arg)
{
    int mode = (int)(long)arg;
    xichan_client *cl;

    XT_OK(xichan_client_open(&cl, NULL));
    XT_OK(xichan_queue_put(cl, q, 0, "R", 1, XICHAN_UNBOUND_REPLACE, XICHAN_NOWAIT));
    XT_OK(xichan_queue_put(cl, q, 0, "E", 1, XICHAN_UNBOUND_ERROR, XICHAN_NOWAIT));
    XT_OK(xichan_queue_put(cl, q, 0, "X", 1, XICHAN_UNBOUND_REMOVE, XICHAN_NOWAIT));
    XT_OK(xichan_queue_put(cl, q, 0, "D", 1, 0, XICHAN_NOWAIT)); /* queue default: REMOVE */
    xt_signal(&done);
    if (mode == KILLED) {
        for (;;)
            xt_sleep_ms(1000); /* until killed */
    }
    xt_await(&go, 10000);
    /* Both return after the daemon's cleanup. */
    if (mode == UNBOUND)
        xichan_client_close_unbind(cl);
    else
        xichan_client_close(cl);
}

static void expect(xichan_client *cl, const char *want)
{
    xichan_item it;

    XT_OK(xichan_queue_get(cl, q, &it, XICHAN_NOWAIT));
    XT_CHECK(!it.unbound && it.len == 1 && memcmp(it.data, want, 1) == 0);
    xichan_item_release(&it);
}

static void check_unbound(xichan_client *cl)
{
    xichan_item it;

    expect(cl, "a");
    XT_OK(xichan_queue_get(cl, q, &it, XICHAN_NOWAIT));
    XT_CHECK(it.unbound && it.len == 0);
    xichan_item_release(&it);
    XT_ERR(xichan_queue_get(cl, q, &it, XICHAN_NOWAIT), XICHAN_EUNBOUND);
    expect(cl, "b");
    XT_ERR(xichan_queue_get(cl, q, &it, XICHAN_NOWAIT), XICHAN_EEMPTY);
    /* [F] the tail item was removed; a later put is still delivered. */
    XT_OK(xichan_queue_put(cl, q, 0, "c", 1, 0, XICHAN_NOWAIT));
    expect(cl, "c");
}

static void check_kept(xichan_client *cl)
{
    xichan_item it;

    for (const char *p = "aREXDb"; *p; p++)
        expect(cl, (char[]){*p, 0});
    XT_ERR(xichan_queue_get(cl, q, &it, XICHAN_NOWAIT), XICHAN_EEMPTY);
}

/* The daemon's cleanup of a killed process is asynchronous: wait for it. */
static void await_sessions(xichan_client *cl, uint32_t n)
{
    double t0 = xt_now();
    xichan_stats st;

    for (;;) {
        XT_OK(xichan_stats_get(cl, &st));
        if (st.sessions == n)
            return;
        if (xt_now() - t0 > 10)
            xt__fail(__FILE__, __LINE__, "%u sessions left, expected %u", st.sessions, n);
        xt_sleep_ms(5);
    }
}

static void run(xichan_client *cl, int mode)
{
    pid_t pid;

    XT_OK(xichan_queue_put(cl, q, 0, "a", 1, 0, XICHAN_NOWAIT));
    pid = xt_fork(producer, (void *)(long)mode);
    XT_EQ_INT(xt_await(&done, 10000), 0);
    XT_OK(xichan_queue_put(cl, q, 0, "b", 1, 0, XICHAN_NOWAIT));
    XT_EQ_INT(xichan_queue_count(cl, q), 6);
    if (mode == KILLED) {
        xt_kill9(pid);
    } else {
        xt_signal(&go);
        XT_EQ_INT(xt_wait(pid, 10000), 0);
    }
    await_sessions(cl, 1); /* no-op for the closes: they were synchronous */
    if (mode == UNBOUND) {
        XT_EQ_INT(xichan_queue_count(cl, q), 4);
        check_unbound(cl);
    } else {
        XT_EQ_INT(xichan_queue_count(cl, q), 6);
        check_kept(cl);
    }
    printf("session end (%s): %s\n", mode_name[mode],
           mode == UNBOUND ? "unbound ops applied" : "every item kept, in order");
}

int main(void)
{
    xichan_client *cl;

    xt_start_daemon(NULL);
    xt_pipe_init(&done);
    xt_pipe_init(&go);
    XT_OK(xichan_client_open(&cl, NULL));
    XT_OK(xichan_queue_create(cl, &(xichan_queue_opts){.unboundop = XICHAN_UNBOUND_REMOVE}, &q));
    run(cl, KILLED);
    run(cl, CLOSED);
    run(cl, UNBOUND);
    xichan_client_close(cl);
    return 0;
}
