/*
 * fault_sweep.c -- kill a process at every numbered kill point, then check
 * that the segment recovers and that nothing committed is lost.
 *
 * For each kill point P (internal.h; for the first and third time it is
 * reached):
 *   1. a fresh segment; session A fills a queue with NA items and a
 *      channel with one item;
 *   2. a forked child, session B, arms P and runs a workload that touches
 *      every mutating path (put, get, send_nowait, recv, a rendezvous send
 *      that times out and is withdrawn, bind, release, create, destroy, a
 *      forced close of a channel holding items, a put that finds the heap
 *      full (taking back C's cached block, waiting, giving up), a wait set
 *      on the queue, and -- playing the daemon --
 *      registering and ending a session D and the cleanup of a third
 *      session C).  It counts in a shared page each call that returned
 *      success, just after it returned;
 *   3. the child dies by SIGKILL at P (or finishes, if the workload never
 *      reaches P that often);
 *   4. the parent does what the daemon does -- ends every session but A's,
 *      rerunning any cleanup the child died in -- and then checks: no lock
 *      is broken; the heap passes its invariant check with no block still
 *      reserved or leased; the queue holds exactly A's items not taken by
 *      B's returned gets (plus at most the one B was taking) followed by
 *      B's returned puts as UNBOUND markers (plus at most the one B was
 *      putting), each once and in order; the channel likewise; A's next put
 *      and get finish within a second; and, once A ends, the heap is empty
 *      and every session slot free.
 * Then repair_twice(): a process killed while it repairs a lock a dead
 * process left (REPAIR_DONE) makes the next locker repair again.
 *
 * Coverage is checked per point, not as a total: every kill point must have
 * killed a child at least once, or be listed in covered_elsewhere[] with
 * the test that fires it.  A table of kills per point ends the output.
 *
 * No daemon: the segment is private (unlinked at once), and the daemon's
 * cleanup function is called directly.  Bounded: one child per point and
 * hit, each waited for with a timeout.  fault_fail.c sweeps the fail points.
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
#include "private.h"

extern pid_t xichan__pid_cache;

#define NA 6
#define NB_PUTS 5
#define NB_GETS 3

struct shared {
    int puts_done;   /* B's puts that returned 0 */
    int gets_done;   /* B's gets that returned 0 */
    int sends_done;  /* B's send_nowait calls on ch that returned */
    int recvs_done;  /* B's recvs on ch that returned an item */
    int finished;
};

static struct xichan_shm *shm;
static struct shared *sh;

static xichan_client *mkclient(void)
{
    return private_client(shm, "sweep");
}

static void end_session(xichan_client *cl)
{
    int err;

    CHECK(xichan__session_ending(shm, cl->slot, cl->sid, XICHAN_ENDED_KEEP) == 0, "end sid %u",
          cl->sid);
    err = xichan__session_cleanup(shm, cl->slot, 0);
    CHECK(err == 0, "cleanup of sid %u: %s", cl->sid, xichan_err_name(err));
}

/*
 * Ends every session but keep's, as the daemon does: the unbinder's (if
 * still live) by an unbind, the others as dead processes; a session that
 * ended already is cleaned up again the way it ended.
 */
static void end_others(const xichan_client *keep, const xichan_client *unbinder)
{
    for (uint32_t i = 0; i < shm->nsessions; i++) {
        int err, how = unbinder && i == unbinder->slot ? XICHAN_ENDED_UNBIND : XICHAN_ENDED_KEEP;

        if (i == keep->slot || xa_load_relaxed(&shm->sessions[i].state) == XICHAN_SESS_FREE)
            continue;
        (void)xichan__session_ending(shm, i, shm->sessions[i].sid, how);
        err = xichan__session_cleanup(shm, i, 0);
        CHECK(err == 0, "cleanup of slot %u: %s", i, xichan_err_name(err));
    }
}

static void workload(xichan_client *b, xichan_client *c, xichan_client *e, xichan_queue_id q,
                     xichan_chan_id ch, int point, long hit)
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
    sh->sends_done++;
    CHECK(xichan_chan_recv(b, ch, &it, XICHAN_NOWAIT) == 0, "recv");
    sh->recvs_done++;
    xichan_item_release(&it);
    /* A rendezvous nobody answers: withdrawn at the deadline. */
    v = 8;
    CHECK(xichan_chan_send(b, ch, 0, &v, sizeof(v), 0, xichan_now_ns() + 1000000) ==
              XICHAN_ETIMEDOUT, "timed send");
    /* A forced close of a channel with items, then its destroy. */
    {
        xichan_chan_id tmpc;
        CHECK(xichan_chan_create(b, NULL, &tmpc) == 0, "create tmp channel");
        for (int i = 0; i < 2; i++)
            CHECK(xichan_chan_send_nowait(b, tmpc, 0, &v, sizeof(v), 0) >= 0, "send tmp");
        CHECK(xichan_chan_close(b, tmpc, XICHAN_CLOSE_FORCE) == 0, "force close");
        CHECK(xichan_chan_destroy(b, tmpc) == 0, "destroy tmp channel");
    }
    /*
     * A full heap: C keeps a block cached, B asks for the whole heap, which
     * takes C's cache back (alloc.c, tag-cache-steal), waits a moment for
     * room (tag-heap-wait) and gives up with ENOSPC.
     */
    {
        size_t huge = (size_t)xichan__heap_max_item(shm);
        char *p = calloc(1, huge);
        xichan_queue_id tmpq;
        CHECK(p != NULL, "calloc");
        CHECK(xichan_queue_create(b, NULL, &tmpq) == 0, "create tmp queue");
        CHECK(xichan_queue_put(c, tmpq, 0, &v, sizeof(v), 0, XICHAN_NOWAIT) == 0, "put C tmp");
        CHECK(xichan_queue_get(c, tmpq, &it, XICHAN_NOWAIT) == 0, "get C tmp");
        xichan_item_release(&it);
        CHECK(xichan_queue_put(b, tmpq, 0, p, huge, 0, xichan_now_ns() + 1000000) ==
                  XICHAN_ENOSPC, "put of the whole heap");
        CHECK(xichan_queue_destroy(b, tmpq) == 0, "destroy tmp queue");
        free(p);
    }
    /* A wait set on the queue, a wait that finds it ready, then its removal. */
    {
        xichan_waitset *ws;
        xichan_ready r[1];
        CHECK(xichan_waitset_create(b, &ws) == 0, "waitset");
        CHECK(xichan_waitset_add_queue(ws, q, XICHAN_EV_READABLE, 0) >= 0, "waitset add");
        CHECK(xichan_waitset_wait(ws, r, 1, XICHAN_NOWAIT) == 1, "waitset wait");
        xichan_waitset_destroy(ws);
    }
    /* Play the daemon: register session D and end it at once. */
    {
        uint32_t dslot, dsid;
        CHECK(xichan__session_new(shm, getpid(), getuid(), "sweep", &dslot, &dsid) == 0,
              "session D");
        CHECK(xichan__session_ending(shm, dslot, dsid, XICHAN_ENDED_KEEP) == 0, "end D");
        CHECK(xichan__session_cleanup(shm, dslot, 0) == 0, "cleanup D");
    }
    /* Play the daemon: E's process ended, so its items are kept. */
    CHECK(xichan__session_ending(shm, e->slot, e->sid, XICHAN_ENDED_KEEP) == 0, "end E");
    CHECK(xichan__session_cleanup(shm, e->slot, 0) == 0, "cleanup E");
    /* Play the daemon: C ends by an unbind (a destroyed subinterpreter). */
    CHECK(xichan__session_ending(shm, c->slot, c->sid, XICHAN_ENDED_UNBIND) == 0, "end C");
    CHECK(xichan__session_cleanup(shm, c->slot, 0) == 0, "cleanup C");
    sh->finished = 1;
    _exit(0);
}

/* Returns 1 if the child died at the point. */
static int run_one(int point, long hit)
{
    struct xichan_shm_geometry g = {2u << 20, 16, 32, 256};
    struct xichan_heap_report r;
    xichan_client *a, *b, *c, *e;
    xichan_queue_id qk;
    xichan_queue_id q;
    xichan_chan_id ch;
    int status, v, killed, na_seen = 0, nb_seen = 0, errors = 0, c_marks = 0, expect_a;
    int64_t t0;
    pid_t pid;

    shm = private_segment("sweep", &g);
    memset(sh, 0, sizeof(*sh));
    a = mkclient();
    b = mkclient();
    c = mkclient();
    e = mkclient();
    CHECK(xichan_queue_create(a, NULL, &q) == 0, "create q");
    CHECK(xichan_chan_create(a, NULL, &ch) == 0, "create ch");
    /* E's items, for a cleanup that keeps them (its process ended). */
    CHECK(xichan_queue_create(a, NULL, &qk) == 0, "create qk");
    CHECK(xichan_queue_bind(e, qk) == 0, "bind E");
    for (int op = XICHAN_UNBOUND_REMOVE; op <= XICHAN_UNBOUND_REPLACE; op++) {
        v = 600 + op;
        CHECK(xichan_queue_put(e, qk, 0, &v, sizeof(v), op, XICHAN_NOWAIT) == 0, "put E");
    }
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
        workload(b, c, e, q, ch, point, hit);
    status = xt_wait(pid, 10000);
    CHECK(status >= 0, "point %d hit %ld: child hung", point, hit);
    killed = status == XT_KILLED;
    CHECK(killed || status == 0, "point %d hit %ld: child failed (status %d)", point, hit, status);

    /* What the daemon does once it notices. */
    t0 = xichan_now_ns();
    /*
     * Every session but A's ends: B as a dead process, C by an unbind (B
     * may have run part of that cleanup, playing the daemon) and D (which
     * B registered and cleaned up).
     */
    end_others(a, c);
    private_check_locks(shm, "after the cleanups");
    CHECK(xichan__heap_check(shm, &r) == 0 && r.ok, "point %d: heap: %s", point, r.why);
    CHECK(r.reserved == 0 && r.leased == 0, "point %d: %llu reserved, %llu leased left", point,
          (unsigned long long)r.reserved, (unsigned long long)r.leased);

    /*
     * Drain: A's items first (in order), then C's items (REMOVE gone, ERROR
     * raising, REPLACE a marker), then B's puts, kept as they were put
     * (B's process died: its items stay deliverable).
     */
    expect_a = NA - sh->gets_done;
    for (;;) {
        xichan_item it;
        int err = xichan_queue_get(a, q, &it, XICHAN_NOWAIT);
        if (err == XICHAN_EEMPTY)
            break;
        if (err == XICHAN_EUNBOUND) { /* C's UNBOUND_ERROR item */
            CHECK(nb_seen == 0, "point %d: C's item after a B item", point);
            errors++;
            continue;
        }
        CHECK(err == 0, "point %d: drain: %s", point, xichan_err_name(err));
        if (it.unbound) {
            CHECK(nb_seen == 0, "point %d: C's marker after a B item", point);
            c_marks++;
        } else {
            memcpy(&v, it.data, sizeof(v));
            if (v >= 1000) {
                CHECK(v == 1000 + nb_seen, "point %d: B item %d out of order", point, v);
                nb_seen++;
            } else {
                CHECK(nb_seen == 0 && errors == 0 && c_marks == 0,
                      "point %d: A item %d after a B or C item", point, v);
                CHECK(v == NA - expect_a + na_seen || v == NA - expect_a + na_seen + 1,
                      "point %d: A item %d out of order", point, v);
                na_seen++;
            }
        }
        xichan_item_release(&it);
    }
    CHECK(na_seen == expect_a || (killed && na_seen == expect_a - 1),
          "point %d hit %ld: %d of A's items left, expected %d", point, hit, na_seen, expect_a);
    {
        /*
         * B's gets took A's items first (FIFO), so all of B's returned puts
         * stay; a put in flight at the kill may or may not.
         */
        int committed = sh->puts_done;
        CHECK(errors == 1 && c_marks == 1, "point %d hit %ld: C left %d UNBOUND_ERROR items and %d markers", point, hit, errors, c_marks);
        CHECK(nb_seen == committed || (killed && nb_seen == committed + 1),
              "point %d hit %ld: %d of B's %d committed puts left", point, hit, nb_seen,
              committed);
    }
    /*
     * The channel: A's item unless B's recv took it (FIFO: it was first),
     * then B's send_nowait item (7), plus the rendezvous item (8) if B
     * died before withdrawing it -- kept as sent.
     */
    {
        int a_left = 0, sevens = 0, eights = 0, err;
        xichan_item it;

        while ((err = xichan_chan_recv(a, ch, &it, XICHAN_NOWAIT)) == 0) {
            CHECK(!it.unbound, "point %d: a dead process's channel item was unbound", point);
            memcpy(&v, it.data, sizeof(v));
            if (v == -1) {
                CHECK(sevens == 0 && eights == 0, "point %d: channel item -1 out of place", point);
                a_left++;
            } else if (v == 7) {
                CHECK(eights == 0, "point %d: channel item 7 after 8", point);
                sevens++;
            } else {
                CHECK(v == 8, "point %d: channel item %d", point, v);
                eights++;
            }
            xichan_item_release(&it);
        }
        CHECK(err == XICHAN_EEMPTY, "point %d: channel drain: %s", point, xichan_err_name(err));
        CHECK(a_left == 1 - sh->recvs_done || (killed && !sh->recvs_done && !a_left),
              "point %d hit %ld: channel kept %d of A's items (B received %d)", point, hit,
              a_left, sh->recvs_done);
        CHECK(sevens + eights == sh->sends_done || (killed && sevens + eights == sh->sends_done + 1),
              "point %d hit %ld: %d channel items left for %d sends", point, hit,
              sevens + eights, sh->sends_done);
        CHECK(eights == 0 || killed, "point %d: a withdrawn rendezvous item stayed", point);
    }
    /* E's items, whatever their ops: all there, in order, as put. */
    for (int op = XICHAN_UNBOUND_REMOVE; op <= XICHAN_UNBOUND_REPLACE; op++) {
        xichan_item it;
        CHECK(xichan_queue_get(a, qk, &it, XICHAN_NOWAIT) == 0, "point %d: E's item", point);
        memcpy(&v, it.data, sizeof(v));
        CHECK(!it.unbound && v == 600 + op, "point %d: E's item %d (unbound %d), expected %d",
              point, v, it.unbound, 600 + op);
        xichan_item_release(&it);
    }
    CHECK(xichan_queue_count(a, qk) == 0, "point %d: E left more items", point);
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
    /* No wait set or registration outlives its session. */
    for (uint32_t i = 0; i < shm->nwregs; i++)
        CHECK(xa_load_relaxed(&shm->wregs[i].sid) == 0, "point %d: registration %u left", point, i);
    for (uint32_t i = 0; i < shm->nwsets; i++)
        CHECK(xa_load_relaxed(&shm->wsets[i].owner) == 0, "point %d: wait set %u left", point, i);
    /* A session the "daemon" was registering when it died never went live. */
    for (uint32_t i = 0; i < shm->nsessions; i++)
        CHECK(xa_load_relaxed(&shm->sessions[i].state) == XICHAN_SESS_FREE,
              "point %d: session slot %u left in state %u", point, i,
              xa_load_relaxed(&shm->sessions[i].state));
    free(a);
    free(b);
    free(c);
    free(e);
    xichan__shm_unmap(shm);
    return killed;
}

/*
 * A repairer killed mid-repair: child 1 dies holding the queue's lock
 * (PUSH_DONE), child 2 gets EOWNERDEAD on its get, repairs, and dies at
 * REPAIR_DONE, before pthread_mutex_consistent.  The next locker must get
 * EOWNERDEAD again and repair again (lock.c: repairs are idempotent).
 */
static void repair_twice(void)
{
    struct xichan_shm_geometry g = {2u << 20, 16, 32, 256};
    struct xichan_heap_report r;
    static const int points[2] = {XICHAN_FAULT_PUSH_DONE, XICHAN_FAULT_REPAIR_DONE};
    xichan_client *a, *k[2];
    xichan_queue_id q;
    int v, status, seen = 0, marks = 0;

    shm = private_segment("sweep2", &g);
    a = mkclient();
    CHECK(xichan_queue_create(a, NULL, &q) == 0, "create q");
    for (v = 0; v < NA; v++)
        CHECK(xichan_queue_put(a, q, 0, &v, sizeof(v), 0, XICHAN_NOWAIT) == 0, "fill");
    for (int i = 0; i < 2; i++) {
        pid_t pid;

        k[i] = mkclient();
        CHECK((pid = fork()) >= 0, "fork");
        if (pid == 0) {
            xichan_item it;

            xichan__pid_cache = getpid();
            k[i]->pid = getpid();
            xichan__fault_set(points[i], 1);
            v = 100 + i;
            if (i == 0)
                xichan_queue_put(k[i], q, 0, &v, sizeof(v), 0, XICHAN_NOWAIT);
            else
                xichan_queue_get(k[i], q, &it, XICHAN_NOWAIT);
            _exit(0);
        }
        status = xt_wait(pid, 10000);
        CHECK(status == XT_KILLED, "repair_twice: child %d did not die at point %d (status %d)", i,
              points[i], status);
    }
    end_others(a, NULL);
    private_check_locks(shm, "repair_twice");
    CHECK(xichan__heap_check(shm, &r) == 0 && r.ok && r.reserved == 0 && r.leased == 0,
          "repair_twice: heap: %s", r.why);
    /* A's items in order (child 2 died before taking one), then child 1's
     * item, kept (its process died). */
    for (;;) {
        xichan_item it;
        int err = xichan_queue_get(a, q, &it, XICHAN_NOWAIT);
        if (err == XICHAN_EEMPTY)
            break;
        CHECK(err == 0 && !it.unbound, "repair_twice: drain: %s", xichan_err_name(err));
        memcpy(&v, it.data, sizeof(v));
        if (v == 100) {
            marks++;
        } else {
            CHECK(v == seen && !marks, "repair_twice: item %d out of order", v);
            seen++;
        }
        xichan_item_release(&it);
    }
    CHECK(seen == NA && marks == 1, "repair_twice: %d items and %d of child 1's", seen, marks);
    end_session(a);
    CHECK(xichan__heap_check(shm, &r) == 0 && r.ok && r.used_bytes == 0,
          "repair_twice: heap not empty at the end: %s", r.why);
    free(a);
    free(k[0]);
    free(k[1]);
    xichan__shm_unmap(shm);
    printf("repair killed mid-repair: repaired again, nothing lost\n");
}

/*
 * Kill points the sweep's workload cannot reach, each with the test that
 * fires it.  Every other point must kill the child at least once here.
 */
static const struct {
    int point;
    const char *where;
} covered_elsewhere[] = {
    {XICHAN_FAULT_REPAIR_DONE, "repair_twice() below (a repairer killed mid-repair)"},
    /* Leases (lease.c): lease_crash.c kills at each, in the taker and in
     * the daemon's return, and fails if one never fires. */
    {XICHAN_FAULT_HOLD_MARKED, "lease_crash.c"},
    {XICHAN_FAULT_HOLD_UNLINKED, "lease_crash.c"},
    {XICHAN_FAULT_LEASE_TAKEN, "lease_crash.c"},
    {XICHAN_FAULT_UNHOLD_LINKING, "lease_crash.c"},
    {XICHAN_FAULT_UNHOLD_LINKED, "lease_crash.c"},
    {XICHAN_FAULT_LEASE_COMMITTED, "lease_crash.c"},
};

static const char *elsewhere(int point)
{
    for (size_t i = 0; i < sizeof(covered_elsewhere) / sizeof(covered_elsewhere[0]); i++)
        if (covered_elsewhere[i].point == point)
            return covered_elsewhere[i].where;
    return NULL;
}

int main(void)
{
    int fired = 0, total = 0, missing = 0;
    int kills[XICHAN_FAULT_KILL_MAX_] = {0};

    alarm(240);
    xichan__pid_cache = getpid();
    sh = mmap(NULL, sizeof(*sh), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    CHECK(sh != MAP_FAILED, "mmap");
    for (int point = 1; point < XICHAN_FAULT_KILL_MAX_; point++) {
        for (long hit = 1; hit <= 3; hit += 2) {
            int k = run_one(point, hit);
            kills[point] += k;
            fired += k;
            total++;
            printf("fault point %2d hit %ld: %s\n", point, hit, k ? "killed, recovered" : "not reached");
        }
    }
    repair_twice();
    /* Per point: killed here, or named as covered by another test. */
    printf("fault sweep coverage (point: kills in the sweep):\n");
    for (int point = 1; point < XICHAN_FAULT_KILL_MAX_; point++) {
        const char *where = elsewhere(point);
        if (kills[point] > 0)
            printf("  %2d: %d%s\n", point, kills[point], where ? " (and elsewhere)" : "");
        else if (where)
            printf("  %2d: 0, covered by %s\n", point, where);
        else {
            printf("  %2d: 0 -- NEVER FIRED\n", point);
            missing++;
        }
    }
    printf("fault sweep: %d runs, %d kills, all recovered\n", total, fired);
    CHECK(missing == 0, "%d kill points never fired and are not covered elsewhere", missing);
    return 0;
}
