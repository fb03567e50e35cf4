/*
 * purge_crash.c -- a purger killed at each step of each item it drops.
 *
 * xichan_queue_purge unlinks the queue's items one at a time through
 * fifo.c's drop_all (queue.c's crash argument): a purger that dies has
 * dropped a prefix of the queue and left the rest queued, whole and in
 * order.  For every kill point a purge passes (the head leased, the head
 * unlinked) and for the first, second and last item, a forked session B
 * purges a queue of N items that session A put, and dies there by SIGKILL.
 * Then, playing the daemon, B's session is ended and cleaned up, and:
 *   - no lock is broken, the heap's invariants hold, nothing is left
 *     reserved or leased (the item B held is reclaimed);
 *   - the queue holds exactly A's items k..N-1 for some k in 0..N, in order
 *     (k = the items B had dropped), its count agrees, and the counters
 *     were not touched by the purge;
 *   - A can purge the rest, and put and get again.
 * No daemon: the segment is private.  Each child is waited for with a
 * timeout.
 */
#include <signal.h>
#include <sys/wait.h>
#include <time.h>

#include "private.h"

extern pid_t xichan__pid_cache;

#define N 5

static void one(enum xichan_fault point, long hit)
{
    struct xichan_shm_geometry g = {1u << 20, 8, 16, 64};
    struct xichan_shm *shm = private_segment("purgecrash", &g);
    xichan_client *a = private_client(shm, "a"), *b = private_client(shm, "b");
    struct xichan_heap_report r;
    xichan_queue_id q;
    xichan_obj_info info;
    int status, k, v;
    pid_t pid;

    CHECK(xichan_queue_create(a, NULL, &q) == 0, "create");
    for (v = 0; v < N; v++)
        CHECK(xichan_queue_put(a, q, XICHAN_FMT_RAW, &v, sizeof(v), 0, XICHAN_NOWAIT) == 0, "put");
    fflush(NULL);
    CHECK((pid = fork()) >= 0, "fork");
    if (pid == 0) {
        xichan__pid_cache = b->pid = getpid(); /* B's session is this child's */
        xichan__fault_set(point, hit);
        (void)xichan_queue_purge(b, q);
        _exit(0);
    }
    status = xt_wait(pid, 10000);
    CHECK(status >= 0, "point %d hit %ld: the purger hung", point, hit);
    CHECK(status == XT_KILLED, "point %d hit %ld: the purger was not killed there (status %d)",
          point, hit, status);

    /* What the daemon does once it notices B is gone. */
    xichan__session_ending(shm, b->slot, b->sid, XICHAN_ENDED_KEEP);
    CHECK(xichan__session_cleanup(shm, b->slot, 0) == 0, "cleanup B");
    free(b);
    CHECK(xichan__heap_check(shm, &r) == 0 && r.ok, "point %d hit %ld: heap: %s", point, hit,
          r.why);
    CHECK(r.reserved == 0 && r.leased == 0, "point %d hit %ld: %llu reserved, %llu leased", point,
          hit, (unsigned long long)r.reserved, (unsigned long long)r.leased);

    /* A prefix was dropped; the rest is whole and in order. */
    CHECK(xichan_info(a, XICHAN_KIND_QUEUE, q.id, &info) == 0, "info");
    CHECK(info.state != XICHAN_STATE_BROKEN, "point %d hit %ld: queue broken", point, hit);
    CHECK(info.puts == N && info.gets == 0, "point %d: counters %llu/%llu", point,
          (unsigned long long)info.puts, (unsigned long long)info.gets);
    k = N - (int)info.count;
    CHECK(k >= hit - 1 && k <= N, "point %d hit %ld: %d items dropped", point, hit, k);
    CHECK(xichan_queue_count(a, q) == N - k, "count");
    for (int i = k; i < N; i++) {
        xichan_item it;
        CHECK(xichan_queue_get(a, q, &it, XICHAN_NOWAIT) == 0, "get item %d", i);
        CHECK(it.len == sizeof(v) && *(const int *)it.data == i, "point %d hit %ld: item %d is %d",
              point, hit, i, *(const int *)it.data);
        xichan_item_release(&it);
    }
    CHECK(xichan_queue_count(a, q) == 0, "drained");

    /* The queue works on. */
    v = 42;
    CHECK(xichan_queue_put(a, q, XICHAN_FMT_RAW, &v, sizeof(v), 0, XICHAN_NOWAIT) == 0, "put");
    CHECK(xichan_queue_purge(a, q) == 1, "purge after the crash");
    CHECK(xichan_queue_put(a, q, XICHAN_FMT_RAW, &v, sizeof(v), 0, XICHAN_NOWAIT) == 0, "put");
    {
        xichan_item it;
        CHECK(xichan_queue_get(a, q, &it, XICHAN_NOWAIT) == 0, "get");
        xichan_item_release(&it);
    }
    xichan__session_ending(shm, a->slot, a->sid, XICHAN_ENDED_KEEP);
    CHECK(xichan__session_cleanup(shm, a->slot, 0) == 0, "cleanup A");
    free(a);
    xichan__shm_unmap(shm);
}

int main(void)
{
    static const enum xichan_fault points[] = {XICHAN_FAULT_POP_LEASED,
                                               XICHAN_FAULT_POP_UNLINKED};
    static const long hits[] = {1, 2, N};
    int runs = 0;

    xichan__pid_cache = getpid();
    for (size_t i = 0; i < sizeof(points) / sizeof(points[0]); i++)
        for (size_t j = 0; j < sizeof(hits) / sizeof(hits[0]); j++, runs++)
            one(points[i], hits[j]);
    printf("purge_crash: %d kills mid-purge; each left a dropped prefix and a whole rest\n", runs);
    return 0;
}
