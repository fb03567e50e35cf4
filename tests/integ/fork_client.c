/*
 * fork_client.c -- after fork() the child must not use its parent's
 * session: every call through the inherited handle fails with
 * XICHAN_ESTALE, closing it there leaves the parent's session alone, and
 * the child can open a session of its own.  When the parent exits, its
 * session ends even though the child still holds a copy of the socket.
 */
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "harness.h"

static xichan_client *parent_cl;
static xichan_queue_id q;
static xt_pipe_t done, go;

static void child(void *arg)
{
    xichan_client *mine;
    xichan_item it;

    XT_ERR(xichan_queue_put(parent_cl, q, 0, "x", 1, 0, XICHAN_NOWAIT), XICHAN_ESTALE);
    XT_ERR(xichan_queue_get(parent_cl, q, &it, XICHAN_NOWAIT), XICHAN_ESTALE);
    XT_ERR(xichan_queue_create(parent_cl, NULL, &q), XICHAN_ESTALE);
    xichan_client_close(parent_cl); /* the child's copy only */
    XT_OK(xichan_client_open(&mine, NULL));
    XT_CHECK(xichan_client_session(mine) != 0);
    XT_OK(xichan_queue_put(mine, q, 0, "child", 5, XICHAN_UNBOUND_REPLACE, XICHAN_NOWAIT));
    xt_signal(&done);
    xt_await(&go, 10000);
    xichan_client_close(mine);
}

/* The parent of a fork that keeps the socket copy, then dies. */
static void dying_parent(void *arg)
{
    xichan_client *cl;
    pid_t pid;

    XT_OK(xichan_client_open(&cl, NULL));
    XT_OK(xichan_queue_put(cl, q, 0, "gone", 4, XICHAN_UNBOUND_REMOVE, XICHAN_NOWAIT));
    pid = fork();
    if (pid == 0) { /* grandchild: keeps the inherited socket open a while */
        xt_sleep_ms(8000);
        _exit(0);
    }
    xt_signal(&done);
    xt_sleep_ms(100000); /* until killed */
}

int main(void)
{
    xichan_item it;
    pid_t pid;
    double t0;

    xt_start_daemon(NULL);
    xt_pipe_init(&done);
    xt_pipe_init(&go);
    XT_OK(xichan_client_open(&parent_cl, NULL));
    XT_OK(xichan_queue_create(parent_cl, NULL, &q));
    pid = xt_fork(child, NULL);
    XT_EQ_INT(xt_await(&done, 10000), 0);
    /* Our session survived the child's close of its copy. */
    XT_OK(xichan_queue_get(parent_cl, q, &it, XICHAN_NOWAIT));
    XT_CHECK(it.len == 5 && memcmp(it.data, "child", 5) == 0);
    XT_CHECK(it.producer != xichan_client_session(parent_cl));
    xichan_item_release(&it);
    xt_signal(&go);
    XT_EQ_INT(xt_wait(pid, 10000), 0);

    /* A session ends with its process, whoever holds a copy of the socket. */
    pid = xt_fork(dying_parent, NULL);
    XT_EQ_INT(xt_await(&done, 10000), 0);
    XT_EQ_INT(xichan_queue_count(parent_cl, q), 1);
    xt_kill9(pid);
    t0 = xt_now();
    for (;;) { /* its session goes: only ours is left */
        xichan_stats st;
        XT_OK(xichan_stats_get(parent_cl, &st));
        if (st.sessions == 1)
            break;
        /* Well before the grandchild lets go (a loaded machine gets slack). */
        XT_CHECK(xt_now() - t0 < 6.0);
        xt_sleep_ms(5);
    }
    /* Its item stays (its process ended), REMOVE op or not. */
    XT_EQ_INT(xichan_queue_count(parent_cl, q), 1);
    printf("fork_client: stale handle refused, child session separate, pidfd death notice\n");
    xichan_client_close(parent_cl);
    return 0;
}
