/*
 * daemon_stop.c -- stopping the daemon never loses data.
 *
 * SIGTERM (what systemctl stop/restart sends), SIGINT and `xichanctl stop`
 * leave the segment: clients attached meanwhile go on working on it, named
 * objects, their items and the id counters survive, and the next daemon
 * adopts it; an attached client then closes its session properly through
 * the new daemon (reattach).  Removing the namespace is explicit:
 * `xichanctl stop --discard` refuses while a process is attached (naming
 * it) unless --force, and removes the segment when none is.
 */
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "harness.h"

static char out[8192];
static xt_pipe_t ready, go;
static xichan_queue_id jobs;

#define run(...) xt_sh(out, sizeof(out), __VA_ARGS__)

/* A client attached across the stop: it puts while no daemon runs. */
static void attached(void *arg)
{
    xichan_client *cl;

    XT_OK(xichan_client_open(&cl, NULL));
    XT_OK(xichan_queue_put(cl, jobs, 0, "before", 6, XICHAN_UNBOUND_REMOVE, XICHAN_NOWAIT));
    xt_signal(&ready);
    XT_EQ_INT(xt_await(&go, 20000), 0); /* the daemon is gone now */
    XT_OK(xichan_queue_put(cl, jobs, 0, "meanwhile", 9, XICHAN_UNBOUND_REMOVE, XICHAN_NOWAIT));
    xt_signal(&ready);
    XT_EQ_INT(xt_await(&go, 20000), 0); /* a new daemon runs */
    xichan_client_close(cl);            /* reattaches, then ends properly */
    xt_signal(&ready);
    XT_EQ_INT(xt_await(&go, 20000), 0);
}

static void expect(xichan_client *cl, const char *want)
{
    xichan_item it;

    XT_OK(xichan_queue_get(cl, jobs, &it, XICHAN_NOWAIT));
    XT_CHECK(!it.unbound && it.len == strlen(want) && !memcmp(it.data, want, it.len));
    xichan_item_release(&it);
}

static uint32_t live_sessions(xichan_client *cl)
{
    xichan_stats st;

    XT_OK(xichan_stats_get(cl, &st));
    return st.sessions;
}

int main(void)
{
    xichan_client *a, *b;
    xichan_queue_id q2, q3;
    double t0;
    pid_t pid;

    xt_pipe_init(&ready);
    xt_pipe_init(&go);
    xt_start_daemon(NULL);
    XT_OK(xichan_client_open(&a, NULL));
    XT_OK(xichan_queue_create(a, &(xichan_queue_opts){.name = "jobs"}, &jobs));
    XT_OK(xichan_queue_create(a, NULL, &q2));
    pid = xt_fork(attached, NULL);
    XT_EQ_INT(xt_await(&ready, 10000), 0);

    /* SIGTERM: the daemon goes, the segment stays, and so do the sessions. */
    XT_EQ_INT(xt_stop_daemon(), 0);
    XT_CHECK(xt_shm_exists());
    xt_signal(&go);
    XT_EQ_INT(xt_await(&ready, 10000), 0);
    XT_OK(xichan_queue_put(a, jobs, 0, "from a", 6, 0, XICHAN_NOWAIT));
    XT_EQ_INT(xichan_queue_count(a, jobs), 3);
    printf("SIGTERM: segment kept, clients went on working\n");

    /* The next daemon adopts it: items, names and ids are all there; a
     * size asked for is ignored, and it says so. */
    xt_start_daemon("--size 32M");
    XT_EQ_INT(run("grep -c 'size/XICHAN_SIZE 33554432 ignored: the adopted segment keeps its "
                  "67108864' '%s/xichand.log'", xt_runtime_dir()), 0);
    XT_OK(xichan_client_open(&b, NULL));
    XT_OK(xichan_queue_open(b, "jobs", &q3));
    XT_EQ_INT(q3.id, jobs.id);
    XT_EQ_INT(xichan_queue_count(b, jobs), 3);
    XT_OK(xichan_queue_create(b, NULL, &q3));
    XT_EQ_INT(q3.id, q2.id + 1); /* the id counter survived */
    XT_OK(xichan_queue_destroy(b, q3));
    /* The attached process ends its session through the new daemon. */
    xt_signal(&go);
    XT_EQ_INT(xt_await(&ready, 10000), 0);
    XT_EQ_INT(xichan_queue_count(b, jobs), 3); /* its items stay */
    xt_signal(&go);
    XT_EQ_INT(xt_wait(pid, 10000), 0);
    printf("restart: adopted, nothing lost, the attached client reattached and closed\n");

    /* xichanctl stop: the same, by the lock file's pid. */
    XT_EQ_INT(run("xichanctl stop"), 0);
    XT_HAS(out, "stopped; the namespace and its items are kept");
    XT_EQ_INT(xt_reap_daemon(5000), 0);
    XT_CHECK(xt_shm_exists());
    XT_EQ_INT(run("xichanctl stop"), 2);
    XT_HAS(out, "no xichand runs for namespace");
    xt_start_daemon(NULL); /* adopts again; the harness stops it at exit */
    expect(b, "before");
    expect(b, "meanwhile");
    expect(b, "from a");

    /* --discard refuses while processes are attached (a and b: us); the
     * daemon it stopped on the way is stopped all the same. */
    XT_EQ_INT(run("xichanctl stop --force"), 1);
    XT_HAS(out, "--force goes with --discard");
    XT_EQ_INT(run("xichanctl stop --discard"), 5);
    XT_HAS(out, "still attached to namespace");
    XT_CHECK(strstr(out, "--force") != NULL);
    XT_EQ_INT(xt_reap_daemon(5000), 0);
    XT_CHECK(xt_shm_exists());
    /* Our sessions end through a daemon: then --discard goes through. */
    xt_start_daemon(NULL);
    xichan_client_close(a);
    xichan_client_close(b);
    t0 = xt_now();
    while (run("xichanctl --json stop --discard") != 0) {
        XT_CHECK(xt_now() - t0 < 10);
        XT_EQ_INT(xt_reap_daemon(5000), 0);
        xt_start_daemon(NULL);
        xt_sleep_ms(50);
    }
    XT_EQ_INT(xt_reap_daemon(5000), 0);
    XT_HAS(out, "\"discarded\":true");
    XT_CHECK(!xt_shm_exists());
    XT_EQ_INT(run("xichanctl stop --discard"), 0);
    XT_HAS(out, "nothing to discard");

    /* --force removes it with a process attached. */
    xt_start_daemon(NULL);
    XT_OK(xichan_client_open(&a, NULL));
    XT_EQ_INT(live_sessions(a), 1);
    XT_EQ_INT(run("xichanctl stop --discard --force"), 0);
    XT_HAS(out, "discarded");
    XT_EQ_INT(xt_reap_daemon(5000), 0);
    XT_CHECK(!xt_shm_exists());
    xichan_client_close(a); /* no daemon: returns at once */
    printf("xichanctl stop, stop --discard (refused while attached, --force) passed\n");
    return 0;
}
