/*
 * lock_stopped.c -- a process that holds a queue's lock and is stopped
 * (SIGSTOP: Ctrl-Z, `docker pause`, a debugger) hangs nobody.
 *
 * A forked client takes the queue's lock through the library's own lock
 * call and stops itself.  While it is stopped, with every wait bounded by
 * a generous hang bound (5 s), this process checks that:
 *   - a timed get gives up at its deadline with XICHAN_ELOCKED (never a
 *     wrong "empty"), and its message names the stopped pid;
 *   - get/put nowait, count and full fail with XICHAN_ELOCKED too;
 *   - a get with no deadline ends when the interrupt callback says so;
 *   - xichanctl list and show print the queue as locked by that pid, and
 *     xichanctl get --timeout 1 fails naming it;
 *   - another queue works normally; a client opens and closes (its
 *     cleanup, which meets the stuck lock, is left for later and the close
 *     does not wait for it);
 * and after SIGCONT the item is still there, once, and the deferred
 * cleanup finishes (the session table empties).
 */
#include <errno.h>
#include <signal.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "harness.h"
#include "internal.h"

#define HANG_MS 5000

static xichan_queue_id q;
static xt_pipe_t locked;

static void holder(void *arg)
{
    struct xichan_objref ref;
    xichan_client *cl;

    (void)arg;
    XT_OK(xichan_client_open(&cl, NULL));
    XT_OK(xichan__resolve(cl, XICHAN_KIND_QUEUE, q.id, &ref));
    XT_OK(xichan__obj_lock(cl->shm, &ref, cl->sid));
    xt_signal(&locked);
    raise(SIGSTOP); /* stopped inside the critical section */
    xichan__obj_unlock(ref.o);
    xichan_client_close(cl);
}

static void open_and_close(void *arg)
{
    xichan_client *cl;

    (void)arg;
    XT_OK(xichan_client_open(&cl, NULL));
    xichan_client_close(cl);
}

static int interrupts;
static int stop_third(void *arg)
{
    (void)arg;
    return ++interrupts >= 3;
}

/* The message of the last ELOCKED in this thread names pid. */
static void names_pid(pid_t pid)
{
    char want[32];

    snprintf(want, sizeof(want), "process %d", (int)pid);
    XT_HAS(xichan_strerror(XICHAN_ELOCKED), want);
}

/* Session slots not FREE: live ones and those whose cleanup is pending. */
static int taken_sessions(xichan_client *cl)
{
    int n = 0;

    for (uint32_t i = 0; i < cl->shm->nsessions; i++)
        n += xa_load_acquire(&cl->shm->sessions[i].state) != XICHAN_SESS_FREE;
    return n;
}

int main(void)
{
    xichan_queue_opts qo = {.maxsize = 0, .name = "jobs"};
    xichan_queue_id other;
    xichan_client *cl;
    xichan_item it;
    char out[8192], want[64];
    double t0;
    pid_t pid, closer;
    int status;

    xt_start_daemon(NULL);
    XT_OK(xichan_client_open(&cl, NULL));
    XT_OK(xichan_queue_create(cl, &qo, &q));
    XT_OK(xichan_queue_create(cl, NULL, &other));
    XT_OK(xichan_queue_put(cl, q, 0, "x", 1, 0, XICHAN_NOWAIT));

    xt_pipe_init(&locked);
    pid = xt_fork(holder, NULL);
    XT_EQ_INT(xt_await(&locked, HANG_MS), 0);
    XT_EQ_INT(waitpid(pid, &status, WUNTRACED), pid);
    XT_CHECK(WIFSTOPPED(status));

    /* A timed get keeps its deadline and says why it failed. */
    t0 = xt_now();
    XT_ERR(xichan_queue_get(cl, q, &it, xichan_deadline(0.3)), XICHAN_ELOCKED);
    XT_CHECK(xt_now() - t0 >= 0.3);
    XT_CHECK(xt_now() - t0 < HANG_MS / 1000.0);
    names_pid(pid);
    XT_HAS(xichan_strerror(XICHAN_ELOCKED), "stopped");

    /* Calls with no deadline of their own fail after the short bound. */
    t0 = xt_now();
    XT_ERR(xichan_queue_get(cl, q, &it, XICHAN_NOWAIT), XICHAN_ELOCKED);
    XT_ERR(xichan_queue_put(cl, q, 0, "y", 1, 0, XICHAN_NOWAIT), XICHAN_ELOCKED);
    XT_ERR(xichan_queue_count(cl, q), XICHAN_ELOCKED);
    XT_ERR(xichan_queue_full(cl, q), XICHAN_ELOCKED);
    XT_CHECK(xt_now() - t0 < HANG_MS / 1000.0);
    names_pid(pid);

    /* Forever, until the interrupt callback stops it. */
    xichan_client_set_interrupt(cl, stop_third, NULL, 10);
    XT_ERR(xichan_queue_get(cl, q, &it, XICHAN_FOREVER), XICHAN_EINTR);
    XT_EQ_INT(interrupts, 3);
    xichan_client_set_interrupt(cl, NULL, NULL, 0);

    /* Other objects are not affected. */
    XT_OK(xichan_queue_put(cl, other, 0, "o", 1, 0, XICHAN_NOWAIT));
    XT_OK(xichan_queue_get(cl, other, &it, XICHAN_NOWAIT));
    xichan_item_release(&it);

    /* xichanctl shows what it can, and who holds the lock. */
    snprintf(want, sizeof(want), "locked by pid %d", (int)pid);
    XT_EQ_INT(xt_sh(out, sizeof(out), "timeout 5 xichanctl list"), 0);
    XT_HAS(out, "jobs");
    XT_HAS(out, want);
    XT_EQ_INT(xt_sh(out, sizeof(out), "timeout 5 xichanctl list --json"), 0);
    snprintf(want, sizeof(want), "\"locked_by\":%d", (int)pid);
    XT_HAS(out, want);
    XT_EQ_INT(xt_sh(out, sizeof(out), "timeout 5 xichanctl show jobs"), 0);
    snprintf(want, sizeof(want), "locked by pid %d", (int)pid);
    XT_HAS(out, want);
    status = xt_sh(out, sizeof(out), "timeout 5 xichanctl get --timeout 1 jobs");
    XT_CHECK(status != 0 && status != 124);
    snprintf(want, sizeof(want), "process %d", (int)pid);
    XT_HAS(out, want);

    /* A client comes and goes; its close does not wait for the stopped one. */
    closer = xt_fork(open_and_close, NULL);
    XT_EQ_INT(xt_wait(closer, HANG_MS), 0);

    /* Continue the holder: the item is there, once; cleanups catch up. */
    XT_EQ_INT(kill(pid, SIGCONT), 0);
    XT_EQ_INT(xt_wait(pid, HANG_MS), 0);
    XT_OK(xichan_queue_get(cl, q, &it, xichan_deadline(5)));
    XT_CHECK(it.len == 1 && memcmp(it.data, "x", 1) == 0);
    xichan_item_release(&it);
    XT_ERR(xichan_queue_get(cl, q, &it, XICHAN_NOWAIT), XICHAN_EEMPTY);
    t0 = xt_now();
    while (taken_sessions(cl) != 1) {
        XT_CHECK(xt_now() - t0 < 10);
        xt_sleep_ms(20);
    }
    xichan_client_close(cl);
    printf("lock_stopped: ok\n");
    return 0;
}
