/*
 * lease_crash.c -- leases (lease.c): a held item goes back to its queue, in
 * order, when its holder dies at any step, and nothing committed comes back.
 *
 * For each kill point on the lease paths (and the get/pop points the lease
 * passes through), for its 1st, 2nd and 3rd pass:
 *   1. a fresh private segment; session A puts NA numbered items;
 *   2. child B arms the point and leases, commits and aborts (see
 *      workload), recording in a shared page each commit that returned and
 *      the value whose commit was under way; it ends holding one lease;
 *   3. child D plays the daemon: it arms the same point and runs B's
 *      session cleanup (which returns B's held items), and may die in it;
 *   4. the parent runs the cleanup again (as a restarted daemon would) and
 *      checks: no lock broken; the queue holds every value but the
 *      committed ones (the one being committed may be either way), each
 *      once, in increasing order; the heap holds no block reserved or
 *      leased by anyone but A; after A ends the heap is empty.
 * Then demand(): a child blocked in get makes xichan_queue_wait_getters
 * return 1 and a put wakes it; one blocked in get_many(300) counts 256.
 * Bounded: every child is waited for with a timeout.
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include "internal.h"
#include "private.h"

extern pid_t xichan__pid_cache;

#define NA 8

struct shared {
    int committed[NA]; /* 1: a commit of that value returned */
    int committing;    /* value whose commit is under way, else -1 */
    int finished;
};

static struct xichan_shm *shm;
static struct shared *sh;

static int value_of(const xichan_item *it)
{
    int v;

    CHECK(it->len == sizeof(v), "item length %zu", it->len);
    memcpy(&v, it->data, sizeof(v));
    return v;
}

static void commit(xichan_item *it)
{
    int v = value_of(it);

    sh->committing = v;
    CHECK(xichan_queue_lease_commit(it) == 0, "commit %d", v);
    sh->committed[v] = 1;
    sh->committing = -1;
}

static void workload(xichan_client *b, xichan_queue_id q, int point, long hit)
{
    xichan_item x0, x1, x2, x3;

    xichan__pid_cache = getpid();
    b->pid = getpid();
    xichan__fault_set(point, hit);
    CHECK(xichan_queue_lease(b, q, &x0, XICHAN_NOWAIT) == 0, "lease 0");
    commit(&x0);
    if (point == 0) { /* (the fault-free run) B's own items are not leased */
        int mine = 99;
        xichan_queue_id q2;
        CHECK(xichan_queue_create(b, NULL, &q2) == 0, "q2");
        CHECK(xichan_queue_put(b, q2, 0, &mine, sizeof(mine), 0, XICHAN_NOWAIT) == 0, "put own");
        CHECK(xichan_queue_lease(b, q2, &x1, XICHAN_NOWAIT) == XICHAN_EEMPTY, "own item leased");
        CHECK(xichan_queue_destroy(b, q2) == 0, "destroy q2");
    }
    CHECK(xichan_queue_lease(b, q, &x1, XICHAN_NOWAIT) == 0, "lease 1");
    CHECK(xichan_queue_lease_abort(&x1) == 0, "abort 1");
    CHECK(xichan_queue_lease(b, q, &x1, XICHAN_NOWAIT) == 0, "lease 1 again");
    CHECK(value_of(&x1) == 1, "the aborted item came back first, got %d", value_of(&x1));
    CHECK(xichan_queue_lease(b, q, &x2, XICHAN_NOWAIT) == 0, "lease 2");
    CHECK(xichan_queue_lease(b, q, &x3, XICHAN_NOWAIT) == 0, "lease 3");
    CHECK(xichan_queue_lease_abort(&x2) == 0, "abort 2");
    commit(&x3);
    /* A commit or abort of what is not a lease is refused. */
    CHECK(xichan_queue_lease_commit(&x3) == XICHAN_EINVAL, "commit twice");
    sh->finished = 1;
    _exit(0); /* holding x1 */
}

/* Returns 1 if B or D died at the point. */
static int run_one(int point, long hit)
{
    struct xichan_shm_geometry g = {1u << 20, 8, 16, 64};
    struct xichan_heap_report r;
    xichan_client *a, *b;
    xichan_queue_id q;
    xichan_item it;
    int status, killed = 0, last = -1, seen = 0, err;
    pid_t pid;

    shm = private_segment("lease", &g);
    memset(sh, 0, sizeof(*sh));
    sh->committing = -1;
    a = private_client(shm, "lease");
    b = private_client(shm, "lease");
    CHECK(xichan_queue_create(a, NULL, &q) == 0, "create q");
    for (int v = 0; v < NA; v++)
        CHECK(xichan_queue_put(a, q, 0, &v, sizeof(v), 0, XICHAN_NOWAIT) == 0, "fill");

    if ((pid = fork()) == 0)
        workload(b, q, point, hit);
    status = xt_wait(pid, 10000);
    CHECK(status >= 0, "B hung at point %d hit %ld", point, hit);
    killed |= status == XT_KILLED;
    CHECK(killed || (status == 0 && sh->finished), "B failed at point %d hit %ld (status %d)",
          point, hit, status);

    /* D: the daemon's cleanup of B, with the point armed too. */
    (void)xichan__session_ending(shm, b->slot, b->sid, XICHAN_ENDED_KEEP);
    if ((pid = fork()) == 0) {
        xichan__pid_cache = getpid();
        xichan__fault_set(point, 1);
        _exit(xichan__session_cleanup(shm, b->slot, 0) == 0 ? 0 : 2);
    }
    status = xt_wait(pid, 10000);
    CHECK(status >= 0, "D hung at point %d", point);
    if (status == XT_KILLED)
        killed = 1;
    else
        CHECK(status == 0, "D's cleanup failed (status %d)", status);
    /* The restarted daemon runs it again (a no-op if D finished). */
    if (xa_load_relaxed(&shm->sessions[b->slot].state) != XICHAN_SESS_FREE) {
        err = xichan__session_cleanup(shm, b->slot, 0);
        CHECK(err == 0, "cleanup rerun: %s", xichan_err_name(err));
    }
    private_check_locks(shm, "after the cleanups");

    /* Every value not committed is back, once, in order. */
    while ((err = xichan_queue_get(a, q, &it, XICHAN_NOWAIT)) == 0) {
        int v = value_of(&it);
        CHECK(v > last, "value %d after %d: out of order or twice (point %d hit %ld)", v, last,
              point, hit);
        CHECK(!sh->committed[v], "committed value %d came back (point %d hit %ld)", v, point, hit);
        for (int m = last + 1; m < v; m++)
            CHECK(sh->committed[m] || m == sh->committing, "value %d lost (point %d hit %ld)", m,
                  point, hit);
        last = v;
        seen++;
        xichan_item_release(&it);
    }
    CHECK(err == XICHAN_EEMPTY, "get: %s", xichan_err_name(err));
    for (int m = last + 1; m < NA; m++)
        CHECK(sh->committed[m] || m == sh->committing, "value %d lost at the end (point %d)", m,
              point);
    CHECK(xichan__heap_check(shm, &r) == 0 && r.ok, "heap: %s", r.why);
    (void)xichan__session_ending(shm, a->slot, a->sid, XICHAN_ENDED_KEEP);
    CHECK(xichan__session_cleanup(shm, a->slot, 0) == 0, "cleanup A");
    CHECK(xichan__heap_check(shm, &r) == 0 && r.ok, "heap after A: %s", r.why);
    CHECK(r.reserved == 0 && r.leased == 0 && r.queued == 0,
          "heap not empty: %llu reserved, %llu leased, %llu queued (point %d hit %ld)",
          (unsigned long long)r.reserved, (unsigned long long)r.leased,
          (unsigned long long)r.queued, point, hit);
    free(a);
    free(b);
    xichan__shm_unmap(shm);
    (void)seen;
    return killed;
}

/* A getter blocked on the empty queue wakes xichan_queue_wait_getters. */
static void demand(void)
{
    struct xichan_shm_geometry g = {1u << 20, 8, 16, 64};
    xichan_client *a, *c;
    xichan_queue_id q;
    xichan_item it;
    int status, v = 42, n;
    pid_t pid;

    shm = private_segment("demand", &g);
    a = private_client(shm, "lease");
    c = private_client(shm, "lease");
    CHECK(xichan_queue_create(a, NULL, &q) == 0, "create q");
    CHECK(xichan_queue_wait_getters(a, q, XICHAN_NOWAIT) == XICHAN_ETIMEDOUT, "no getter yet");
    if ((pid = fork()) == 0) {
        xichan__pid_cache = getpid();
        c->pid = getpid();
        if (xichan_queue_get(c, q, &it, xichan_deadline(10.0)) != 0)
            _exit(2);
        _exit(value_of(&it) == 42 ? 0 : 3);
    }
    n = xichan_queue_wait_getters(a, q, xichan_deadline(10.0));
    CHECK(n >= 1, "wait_getters: %d (%s)", n, n < 0 ? xichan_err_name(n) : "");
    /* The getter is woken by an item that went back from a lease. */
    CHECK(xichan_queue_put(a, q, 0, &v, sizeof(v), 0, XICHAN_NOWAIT) == 0, "put");
    CHECK(xichan_queue_wait_getters(a, q, XICHAN_NOWAIT) == XICHAN_ETIMEDOUT ||
              xichan_queue_count(a, q) == 0, "demand with an item queued");
    CHECK((status = xt_wait(pid, 10000)) == 0, "getter (status %d)", status);
    /* A get_many counts for the items it wants. */
    if ((pid = fork()) == 0) {
        xichan_item many[300];
        xichan__pid_cache = getpid();
        c->pid = getpid();
        n = xichan_queue_get_many(c, q, many, 300, xichan_deadline(10.0));
        if (n > 0)
            xichan_items_release(many, (size_t)n);
        _exit(n == 1 ? 0 : 2);
    }
    n = xichan_queue_wait_getters(a, q, xichan_deadline(10.0));
    CHECK(n == (int)XICHAN_DEMAND_MAX, "a get_many of 300 wants %d", n);
    CHECK(xichan_queue_put(a, q, 0, &v, sizeof(v), 0, XICHAN_NOWAIT) == 0, "put");
    CHECK((status = xt_wait(pid, 10000)) == 0, "get_many (status %d)", status);
    free(a);
    free(c);
    xichan__shm_unmap(shm);
}

int main(void)
{
    static const int points[] = {
        XICHAN_FAULT_HOLD_MARKED,   XICHAN_FAULT_POP_LEASED,      XICHAN_FAULT_HOLD_UNLINKED,
        XICHAN_FAULT_GET_LEASED,    XICHAN_FAULT_LEASE_TAKEN,     XICHAN_FAULT_LEASE_COMMITTED,
        XICHAN_FAULT_UNHOLD_LINKING, XICHAN_FAULT_UNHOLD_LINKED,  XICHAN_FAULT_REPAIR_DONE,
    };
    int fired[sizeof(points) / sizeof(points[0])] = {0};

    xichan__pid_cache = getpid();
    sh = mmap(NULL, sizeof(*sh), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    CHECK(sh != MAP_FAILED, "mmap");
    CHECK(run_one(0, 1) == 0, "the run with no fault died");
    for (size_t i = 0; i < sizeof(points) / sizeof(points[0]); i++)
        for (long hit = 1; hit <= 3; hit++)
            fired[i] += run_one(points[i], hit);
    /* Every lease point is reached by the workload or the cleanup. */
    for (size_t i = 0; i < sizeof(points) / sizeof(points[0]); i++)
        CHECK(fired[i] > 0 || points[i] == XICHAN_FAULT_REPAIR_DONE, "point %d never fired",
              points[i]);
    demand();
    printf("lease_crash: %zu points x 3 passes, all recovered\n", sizeof(points) / sizeof(points[0]));
    return 0;
}
