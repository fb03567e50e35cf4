/*
 * fault_sweep.c -- kill a process at every numbered fault point, then check
 * that the segment recovers and that nothing committed is lost.
 *
 * For each point P (and for the first and third time it is reached):
 *   1. a fresh segment; session A fills a queue with NA items and a
 *      channel with one item;
 *   2. a forked child, session B, arms P and runs a workload that touches
 *      every mutating path (put, get, send_nowait, recv, bind, release,
 *      create, destroy, close, and -- playing the daemon -- the cleanup of a
 *      third session C).  It counts in a shared page each call that
 *      returned success, just after it returned;
 *   3. the child dies by SIGKILL at P (or finishes, if the workload never
 *      reaches P that often);
 *   4. the parent does what the daemon does -- ends B's session and reruns
 *      C's cleanup if the child died in it -- and then checks: no lock is
 *      broken; the heap passes its invariant check with no block still
 *      reserved or leased by B or C; the queue holds exactly A's items
 *      not taken by B's returned gets (plus at most the one B was taking)
 *      followed by B's returned puts as UNBOUND markers (plus at most the one
 *      B was putting), each once and in order; and A's next put and get
 *      finish within a second.
 *
 * No daemon: the segment is private (unlinked at once), and the daemon's
 * cleanup function is called directly.  Bounded: one child per point and
 * hit, each waited for with a timeout.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include "internal.h"

extern pid_t xichan__pid_cache;

#define NA 6
#define NB_PUTS 5
#define NB_GETS 3

#define CHECK(cond, ...)                                                                           \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            fprintf(stderr, "%s:%d: check failed: %s: ", __FILE__, __LINE__, #cond);              \
            fprintf(stderr, __VA_ARGS__);                                                          \
            fprintf(stderr, "\n");                                                                 \
            exit(1);                                                                               \
        }                                                                                          \
    } while (0)

struct shared {
    int puts_done;   /* B's puts that returned 0 */
    int gets_done;   /* B's gets that returned 0 */
    int in_cleanup;  /* B was running C's cleanup */
    int finished;
};

static struct xichan_shm *shm;
static struct shared *sh;

static xichan_client *mkclient(void)
{
    xichan_client *cl = calloc(1, sizeof(*cl));

    CHECK(cl, "calloc");
    CHECK(xichan__session_new(shm, getpid(), getuid(), "sweep", &cl->slot, &cl->sid) == 0,
          "session_new");
    cl->shm = shm;
    cl->fd = -1;
    cl->pid = getpid();
    return cl;
}

static void end_session(xichan_client *cl)
{
    int err;

    xichan__session_ending(shm, cl->slot);
    err = xichan__session_cleanup(shm, cl->slot, 0);
    CHECK(err == 0, "cleanup of sid %u: %s", cl->sid, xichan_err_name(err));
}

static void workload(xichan_client *b, xichan_client *c, xichan_queue_id q, xichan_chan_id ch,
                     int point, long hit)
{
    xichan_queue_id tmp;
    xichan_item it;
    int v;

    xichan__pid_cache = getpid();
    b->pid = c->pid = getpid();
    xichan__fault_set(point, hit);
    for (int i = 0; i < NB_PUTS; i++) {
        v = 1000 + i;
        CHECK(xichan_queue_put(b, q, 0, &v, sizeof(v), 0, XICHAN_NOWAIT) == 0, "put");
        sh->puts_done++;
        if (i < NB_GETS) {
            CHECK(xichan_queue_get(b, q, &it, XICHAN_NOWAIT) == 0, "get");
            sh->gets_done++;
            xichan_item_release(&it);
        }
    }
    CHECK(xichan_queue_bind(b, q) == 0, "bind");
    CHECK(xichan_queue_release(b, q) == 0, "release");
    CHECK(xichan_queue_create(b, NULL, &tmp) == 0, "create");
    v = 7;
    CHECK(xichan_queue_put(b, tmp, 0, &v, sizeof(v), 0, XICHAN_NOWAIT) == 0, "put tmp");
    CHECK(xichan_queue_destroy(b, tmp) == 0, "destroy");
    CHECK(xichan_chan_send_nowait(b, ch, 0, &v, sizeof(v), 0) >= 0, "send_nowait");
    CHECK(xichan_chan_recv(b, ch, &it, XICHAN_NOWAIT) == 0, "recv");
    xichan_item_release(&it);
    /* Play the daemon: clean up session C. */
    sh->in_cleanup = 1;
    xichan__session_ending(shm, c->slot);
    CHECK(xichan__session_cleanup(shm, c->slot, 0) == 0, "cleanup C");
    sh->in_cleanup = 0;
    sh->finished = 1;
    _exit(0);
}

static int wait_child(pid_t pid, int *status)
{
    for (int i = 0; i < 1000; i++) {
        pid_t r = waitpid(pid, status, WNOHANG);
        if (r == pid)
            return 0;
        usleep(10000);
    }
    kill(pid, SIGKILL);
    waitpid(pid, status, 0);
    return -1;
}

static void check_locks(void)
{
    CHECK(!xa_load_relaxed(&shm->hdr->table_lock.broken), "table lock broken");
    CHECK(!xa_load_relaxed(&shm->hdr->heap_lock.broken), "heap lock broken");
    for (uint32_t i = 0; i < shm->nobjects; i++)
        CHECK(!xa_load_relaxed(&shm->objects[i].lock.broken), "object %u lock broken", i);
}

/* Returns 1 if the child died at the point. */
static int run_one(int point, long hit)
{
    struct xichan_shm_geometry g = {2u << 20, 16, 32, 256};
    struct xichan_heap_report r;
    xichan_client *a, *b, *c;
    xichan_queue_id q;
    xichan_chan_id ch;
    char name[64];
    int status, v, killed, na_seen = 0, nb_seen = 0, errors = 0, expect_a;
    int64_t t0;
    pid_t pid;

    snprintf(name, sizeof(name), "/xichan-sweep-%d", (int)getpid());
    CHECK(xichan__shm_create(name, &g, &shm) == 0, "create segment");
    xichan__shm_unlink(name);
    memset(sh, 0, sizeof(*sh));
    a = mkclient();
    b = mkclient();
    c = mkclient();
    CHECK(xichan_queue_create(a, NULL, &q) == 0, "create q");
    CHECK(xichan_chan_create(a, NULL, &ch) == 0, "create ch");
    for (int i = 0; i < NA; i++) {
        v = i;
        CHECK(xichan_queue_put(a, q, 0, &v, sizeof(v), 0, XICHAN_NOWAIT) == 0, "fill");
    }
    /* C leaves items of each unbound op for B's cleanup to process. */
    CHECK(xichan_queue_bind(c, q) == 0, "bind C");
    for (int op = XICHAN_UNBOUND_REMOVE; op <= XICHAN_UNBOUND_REPLACE; op++) {
        v = 500 + op;
        CHECK(xichan_queue_put(c, q, 0, &v, sizeof(v), op, XICHAN_NOWAIT) == 0, "put C");
    }
    v = -1;
    CHECK(xichan_chan_send_nowait(a, ch, 0, &v, sizeof(v), 0) >= 0, "ch fill");

    pid = fork();
    CHECK(pid >= 0, "fork");
    if (pid == 0)
        workload(b, c, q, ch, point, hit);
    CHECK(wait_child(pid, &status) == 0, "point %d hit %ld: child hung", point, hit);
    killed = WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL;
    CHECK(killed || (WIFEXITED(status) && WEXITSTATUS(status) == 0),
          "point %d hit %ld: child failed (status 0x%x)", point, hit, status);

    /* What the daemon does once it notices. */
    t0 = xichan_now_ns();
    /* C ends too: its cleanup either never ran, or ran (part way) in B. */
    if (xa_load_relaxed(&shm->sessions[c->slot].state) != XICHAN_SESS_FREE)
        end_session(c);
    end_session(b);
    check_locks();
    CHECK(xichan__heap_check(shm, &r) == 0 && r.ok, "point %d: heap: %s", point, r.why);
    CHECK(r.reserved == 0 && r.leased == 0, "point %d: %llu reserved, %llu leased left", point,
          (unsigned long long)r.reserved, (unsigned long long)r.leased);

    /*
     * Drain: A's items first (in order), then C's items (REMOVE gone, ERROR
     * raising, REPLACE a marker), then B's puts as UNBOUND markers.
     */
    expect_a = NA - sh->gets_done;
    for (;;) {
        xichan_item it;
        int err = xichan_queue_get(a, q, &it, XICHAN_NOWAIT);
        if (err == XICHAN_EEMPTY)
            break;
        if (err == XICHAN_EUNBOUND) { /* C's UNBOUND_ERROR item */
            errors++;
            continue;
        }
        CHECK(err == 0, "point %d: drain: %s", point, xichan_err_name(err));
        if (it.unbound) {
            nb_seen++;
        } else {
            memcpy(&v, it.data, sizeof(v));
            CHECK(nb_seen == 0, "point %d: A item %d after a B item", point, v);
            CHECK(v == NA - expect_a + na_seen || v == NA - expect_a + na_seen + 1,
                  "point %d: A item %d out of order", point, v);
            na_seen++;
        }
        xichan_item_release(&it);
    }
    CHECK(na_seen == expect_a || (killed && na_seen == expect_a - 1),
          "point %d hit %ld: %d of A's items left, expected %d", point, hit, na_seen, expect_a);
    {
        /*
         * B's gets took A's items first (FIFO), so all of B's returned puts
         * stay, as markers; a put in flight at the kill may or may not.
         */
        int committed = sh->puts_done + 1; /* + C's REPLACE marker */
        CHECK(errors == 1, "point %d hit %ld: %d UNBOUND_ERROR items", point, hit, errors);
        CHECK(nb_seen == committed || (killed && nb_seen == committed + 1),
              "point %d hit %ld: %d of B's %d committed puts left", point, hit, nb_seen,
              committed);
    }
    /* The next operation by another process works at once. */
    v = 42;
    CHECK(xichan_queue_put(a, q, 0, &v, sizeof(v), 0, XICHAN_NOWAIT) == 0, "put after");
    {
        xichan_item it;
        CHECK(xichan_queue_get(a, q, &it, XICHAN_NOWAIT) == 0, "get after");
        xichan_item_release(&it);
    }
    CHECK(xichan_now_ns() - t0 < 1000000000ll, "point %d: recovery took too long", point);
    end_session(a);
    CHECK(xichan__heap_check(shm, &r) == 0 && r.ok && r.free_blocks == 1 && r.used_bytes == 0,
          "point %d: heap not empty at the end: %s", point, r.why);
    free(a);
    free(b);
    free(c);
    xichan__shm_unmap(shm);
    return killed;
}

int main(void)
{
    int fired = 0, total = 0;

    alarm(240);
    xichan__pid_cache = getpid();
    sh = mmap(NULL, sizeof(*sh), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    CHECK(sh != MAP_FAILED, "mmap");
    for (int point = 1; point < XICHAN_FAULT_MAX_; point++) {
        for (long hit = 1; hit <= 3; hit += 2) {
            int k = run_one(point, hit);
            fired += k;
            total++;
            printf("fault point %2d hit %ld: %s\n", point, hit, k ? "killed, recovered" : "not reached");
        }
    }
    printf("fault sweep: %d runs, %d kills, all recovered\n", total, fired);
    CHECK(fired >= XICHAN_FAULT_MAX_ - 2, "too few points fired (%d)", fired);
    return 0;
}
