/*
 * queue_blocking.c -- blocking across processes: a get blocked in one
 * process wakes for a put in another; a put blocked on a full queue
 * completes after a get elsewhere; timeouts are precise; QueueFull and
 * QueueEmpty paths.
 */
#include <stdio.h>

#include "harness.h"

static xichan_queue_id q;
static xt_pipe_t ready, finish;

static void blocked_getter(void *arg)
{
    xichan_client *cl;
    xichan_item it;
    double t0;

    XT_OK(xichan_client_open(&cl, NULL));
    xt_signal(&ready);
    t0 = xt_now();
    XT_OK(xichan_queue_get(cl, q, &it, xichan_deadline(10)));
    XT_EQ_INT(it.len, 5);
    XT_CHECK(xt_now() - t0 < 5);
    xichan_item_release(&it);
    xichan_client_close(cl);
}

static void blocked_putter(void *arg)
{
    xichan_client *cl;

    XT_OK(xichan_client_open(&cl, NULL));
    xt_signal(&ready);
    XT_OK(xichan_queue_put(cl, q, 0, "second", 6, 0, xichan_deadline(10)));
    /* Stay until it is read: our items become UNBOUND once we are gone. */
    xt_await(&finish, 10000);
    xichan_client_close(cl);
}

int main(void)
{
    xichan_client *cl;
    xichan_item it;
    double t0, dt;
    pid_t pid;

    xt_start_daemon(NULL);
    xt_pipe_init(&ready);
    xt_pipe_init(&finish);
    XT_OK(xichan_client_open(&cl, NULL));
    XT_OK(xichan_queue_create(cl, &(xichan_queue_opts){.maxsize = 1}, &q));

    /* A get blocked in another process wakes for our put. */
    pid = xt_fork(blocked_getter, NULL);
    XT_EQ_INT(xt_await(&ready, 5000), 0);
    xt_sleep_ms(100);
    t0 = xt_now();
    XT_OK(xichan_queue_put(cl, q, 0, "hello", 5, 0, XICHAN_NOWAIT));
    XT_EQ_INT(xt_wait(pid, 10000), 0);
    printf("blocked get woke and exited %.1f ms after the put\n", (xt_now() - t0) * 1e3);

    /* Empty: get times out after its timeout, not before, and not much after. */
    t0 = xt_now();
    XT_ERR(xichan_queue_get(cl, q, &it, xichan_deadline(0.25)), XICHAN_EEMPTY);
    dt = xt_now() - t0;
    XT_CHECK(dt >= 0.25 && dt < 2.0);
    XT_ERR(xichan_queue_get(cl, q, &it, XICHAN_NOWAIT), XICHAN_EEMPTY);

    /* Full: put_nowait fails, put with a timeout fails after it. */
    XT_OK(xichan_queue_put(cl, q, 0, "first", 5, 0, XICHAN_NOWAIT));
    XT_ERR(xichan_queue_put(cl, q, 0, "x", 1, 0, XICHAN_NOWAIT), XICHAN_EFULL);
    t0 = xt_now();
    XT_ERR(xichan_queue_put(cl, q, 0, "x", 1, 0, xichan_deadline(0.25)), XICHAN_EFULL);
    dt = xt_now() - t0;
    XT_CHECK(dt >= 0.25 && dt < 2.0);
    XT_EQ_INT(xichan_queue_count(cl, q), 1);

    /* A put blocked on the full queue in another process completes after our get. */
    pid = xt_fork(blocked_putter, NULL);
    XT_EQ_INT(xt_await(&ready, 5000), 0);
    xt_sleep_ms(100);
    XT_OK(xichan_queue_get(cl, q, &it, XICHAN_NOWAIT));
    XT_EQ_INT(it.len, 5);
    xichan_item_release(&it);
    XT_OK(xichan_queue_get(cl, q, &it, xichan_deadline(5)));
    XT_EQ_INT(it.len, 6);
    xichan_item_release(&it);
    xt_signal(&finish);
    XT_EQ_INT(xt_wait(pid, 10000), 0);
    xichan_client_close(cl);
    return 0;
}
