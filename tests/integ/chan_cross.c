/*
 * chan_cross.c -- channels across processes: a rendezvous, a timed-out send
 * leaving the channel empty, closes racing with blocked sends and receives
 * in other processes, and kill -9 of a sender blocked in send and of a
 * receiver blocked in recv.
 */
#include <stdio.h>
#include <string.h>

#include "harness.h"

static xichan_chan_id c;
static xt_pipe_t ready;

static xichan_client *open_cl(void)
{
    xichan_client *cl;

    XT_OK(xichan_client_open(&cl, NULL));
    return cl;
}

static void late_receiver(void *arg)
{
    xichan_client *cl = open_cl();
    xichan_item it;

    xt_signal(&ready);
    xt_sleep_ms(150);
    XT_OK(xichan_chan_recv(cl, c, &it, xichan_deadline(10)));
    XT_CHECK(it.len == 4 && memcmp(it.data, "ping", 4) == 0);
    xichan_item_release(&it);
    xichan_client_close(cl);
}

static void blocked_receiver(void *arg)
{
    int expect = (int)(long)arg;
    xichan_client *cl = open_cl();
    xichan_item it;

    xt_signal(&ready);
    XT_ERR(xichan_chan_recv(cl, c, &it, xichan_deadline(10)), expect);
    xichan_client_close(cl);
}

static void blocked_sender(void *arg)
{
    int expect = (int)(long)arg;
    xichan_client *cl = open_cl();

    xt_signal(&ready);
    XT_ERR(xichan_chan_send(cl, c, 0, "s", 1, XICHAN_UNBOUND_REPLACE, xichan_deadline(10)), expect);
    xichan_client_close(cl);
}

static void fresh(xichan_client *cl)
{
    XT_OK(xichan_chan_create(cl, NULL, &c));
}

static void await_count(xichan_client *cl, int n)
{
    double t0 = xt_now();

    while (xichan_chan_count(cl, c) != n) {
        if (xt_now() - t0 > 10)
            xt__fail(__FILE__, __LINE__, "channel count stuck at %lld, expected %d",
                     (long long)xichan_chan_count(cl, c), n);
        xt_sleep_ms(5);
    }
}

int main(void)
{
    xichan_client *cl;
    xichan_item it;
    double t0;
    pid_t pid;

    xt_start_daemon(NULL);
    xt_pipe_init(&ready);
    cl = open_cl();

    /* Rendezvous: send returns only once the other process has received. */
    fresh(cl);
    pid = xt_fork(late_receiver, NULL);
    XT_EQ_INT(xt_await(&ready, 5000), 0);
    t0 = xt_now();
    XT_OK(xichan_chan_send(cl, c, 0, "ping", 4, 0, xichan_deadline(10)));
    XT_CHECK(xt_now() - t0 >= 0.1);
    XT_EQ_INT(xt_wait(pid, 10000), 0);
    printf("rendezvous: send returned after %.1f ms\n", (xt_now() - t0) * 1e3);

    /* A timed-out send leaves the channel empty. */
    t0 = xt_now();
    XT_ERR(xichan_chan_send(cl, c, 0, "late", 4, 0, xichan_deadline(0.2)), XICHAN_ETIMEDOUT);
    XT_CHECK(xt_now() - t0 >= 0.2);
    XT_EQ_INT(xichan_chan_count(cl, c), 0);
    XT_ERR(xichan_chan_recv(cl, c, &it, XICHAN_NOWAIT), XICHAN_EEMPTY);

    /* Close vs a receiver blocked in another process. */
    pid = xt_fork(blocked_receiver, (void *)(long)XICHAN_ECLOSED);
    XT_EQ_INT(xt_await(&ready, 5000), 0);
    xt_sleep_ms(100);
    XT_OK(xichan_chan_close(cl, c, 0));
    XT_EQ_INT(xt_wait(pid, 10000), 0);

    /* Force close vs a sender blocked in another process. */
    fresh(cl);
    XT_ERR(xichan_chan_recv(cl, c, &it, XICHAN_NOWAIT), XICHAN_EEMPTY); /* associate recv */
    pid = xt_fork(blocked_sender, (void *)(long)XICHAN_ECLOSED);
    XT_EQ_INT(xt_await(&ready, 5000), 0);
    await_count(cl, 1);
    XT_OK(xichan_chan_close(cl, c, XICHAN_CLOSE_FORCE));
    XT_EQ_INT(xt_wait(pid, 10000), 0);

    /* Destroy vs a sender blocked in another process. */
    fresh(cl);
    XT_ERR(xichan_chan_recv(cl, c, &it, XICHAN_NOWAIT), XICHAN_EEMPTY);
    pid = xt_fork(blocked_sender, (void *)(long)XICHAN_ECLOSED);
    XT_EQ_INT(xt_await(&ready, 5000), 0);
    await_count(cl, 1);
    XT_OK(xichan_chan_destroy(cl, c));
    XT_EQ_INT(xt_wait(pid, 10000), 0);

    /* kill -9 of a sender blocked in send: its item stays, as sent (its
     * process ended: no unbound op, whatever the item's). */
    fresh(cl);
    XT_ERR(xichan_chan_recv(cl, c, &it, XICHAN_NOWAIT), XICHAN_EEMPTY); /* keeps it open */
    pid = xt_fork(blocked_sender, (void *)(long)0);
    XT_EQ_INT(xt_await(&ready, 5000), 0);
    await_count(cl, 1);
    xt_kill9(pid);
    /* The daemon notices: the dead session leaves the send end's list ... */
    t0 = xt_now();
    while (xichan_chan_sessions(cl, c, XICHAN_END_SEND, NULL, 0) != 0) {
        XT_CHECK(xt_now() - t0 < 10);
        xt_sleep_ms(5);
    }
    /* ... the channel stays open, and its item is delivered as sent. */
    XT_OK(xichan_chan_recv(cl, c, &it, XICHAN_NOWAIT));
    XT_CHECK(!it.unbound && it.len == 1 && memcmp(it.data, "s", 1) == 0);
    xichan_item_release(&it);
    XT_EQ_INT(xichan_chan_count(cl, c), 0);

    /* kill -9 of a receiver blocked in recv: nothing hangs, others go on. */
    pid = xt_fork(blocked_receiver, (void *)(long)0);
    XT_EQ_INT(xt_await(&ready, 5000), 0);
    xt_sleep_ms(100);
    xt_kill9(pid);
    XT_CHECK(xichan_chan_send_nowait(cl, c, 0, "after", 5, 0) >= 0);
    XT_OK(xichan_chan_recv(cl, c, &it, xichan_deadline(5)));
    XT_CHECK(it.len == 5);
    xichan_item_release(&it);
    printf("chan_cross: rendezvous, timeout, close races and kill -9 cases passed\n");
    xichan_client_close(cl);
    return 0;
}
