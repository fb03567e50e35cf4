/*
 * daemon_restart.c -- kill -9 of xichand while clients work: they keep
 * using the segment; a restarted xichand adopts it (items, ids and named
 * objects preserved), notices the death of a client that was attached to
 * the old daemon (whose item stays deliverable), and lets a surviving client close its session properly
 * (it reattaches).  A segment with a scribbled header is refused with a
 * message and left untouched.
 */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "harness.h"

static xichan_queue_id keep;
static xt_pipe_t ready;

static void producer(void *arg)
{
    xichan_client *cl;

    XT_OK(xichan_client_open(&cl, NULL));
    XT_OK(xichan_queue_put(cl, keep, 0, "p1", 2, XICHAN_UNBOUND_REMOVE, XICHAN_NOWAIT));
    xt_signal(&ready);
    for (;;)
        xt_sleep_ms(1000); /* until killed */
}

int main(void)
{
    xichan_client *a, *n;
    xichan_queue_id q2, q3, found;
    xichan_item it;
    char cmd[1024];
    double t0;
    pid_t pid;
    int fd, st;

    xt_start_daemon(NULL);
    xt_pipe_init(&ready);
    XT_OK(xichan_client_open(&a, NULL));
    XT_OK(xichan_queue_create(a, &(xichan_queue_opts){.name = "keep"}, &keep));
    XT_OK(xichan_queue_create(a, NULL, &q2));
    XT_OK(xichan_queue_put(a, keep, 0, "k1", 2, 0, XICHAN_NOWAIT));
    pid = xt_fork(producer, NULL);
    XT_EQ_INT(xt_await(&ready, 5000), 0);

    xt_kill_daemon();
    /* No daemon: the data plane goes on. */
    XT_OK(xichan_queue_put(a, keep, 0, "k2", 2, 0, XICHAN_NOWAIT));
    XT_EQ_INT(xichan_queue_count(a, keep), 3);
    XT_CHECK(xt_shm_exists());

    xt_start_daemon(NULL);
    XT_OK(xichan_client_open(&n, NULL));
    XT_OK(xichan_queue_open(n, "keep", &found));
    XT_EQ_INT(found.id, keep.id);
    XT_EQ_INT(xichan_queue_count(n, keep), 3);
    XT_OK(xichan_queue_create(n, NULL, &q3));
    XT_EQ_INT(q3.id, q2.id + 1); /* ids continue: never reused */

    /* The producer, attached to the dead daemon, dies: the new daemon
     * notices (its session goes), and its item stays, REMOVE op or not. */
    xt_kill9(pid);
    t0 = xt_now();
    for (;;) {
        xichan_stats stats;
        XT_OK(xichan_stats_get(n, &stats));
        if (stats.sessions == 2) /* a and n */
            break;
        XT_CHECK(xt_now() - t0 < 10);
        xt_sleep_ms(5);
    }
    XT_EQ_INT(xichan_queue_count(n, keep), 3);
    XT_OK(xichan_queue_get(n, keep, &it, XICHAN_NOWAIT));
    XT_CHECK(it.len == 2 && memcmp(it.data, "k1", 2) == 0);
    xichan_item_release(&it);
    XT_OK(xichan_queue_get(n, keep, &it, XICHAN_NOWAIT));
    XT_CHECK(!it.unbound && it.len == 2 && memcmp(it.data, "p1", 2) == 0);
    xichan_item_release(&it);

    /* A closes: it reattaches, so its unnamed queue goes at once. */
    xichan_client_close(a);
    XT_ERR(xichan_queue_count(n, q2), XICHAN_ENOTFOUND);
    XT_EQ_INT(xichan_queue_count(n, keep), 1); /* named: kept */
    xichan_client_close(n);

    /* A scribbled segment is refused, and left as it was. */
    xt_kill_daemon();
    fd = open(xt_shm_path(), O_RDWR);
    XT_CHECK(fd >= 0);
    XT_CHECK(pwrite(fd, "garbage!", 8, 0) == 8);
    close(fd);
    snprintf(cmd, sizeof(cmd), "%s --name %s --runtime-dir %s > %s/refused.log 2>&1",
             xt_daemon_path(), xt_name(), xt_runtime_dir(), xt_runtime_dir());
    st = system(cmd);
    XT_EQ_INT(WEXITSTATUS(st), 4);
    snprintf(cmd, sizeof(cmd), "grep -q 'cannot be adopted' %s/refused.log", xt_runtime_dir());
    XT_EQ_INT(system(cmd), 0);
    {
        char head[8];
        fd = open(xt_shm_path(), O_RDONLY);
        XT_CHECK(fd >= 0 && pread(fd, head, 8, 0) == 8 && memcmp(head, "garbage!", 8) == 0);
        close(fd);
    }
    unlink(xt_shm_path());
    printf("daemon_restart: adopted, ids and items kept, ghost death handled, reattach worked, "
           "corrupt segment refused\n");
    return 0;
}
