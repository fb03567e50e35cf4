/*
 * lock_crash.c -- a process killed while it holds a queue's lock (at each
 * fault point inside the locked part of put and get) leaves a lock that the
 * next caller, in another process, repairs: its own put and get then work,
 * within a bound, and no committed item is lost or duplicated.
 */
#include <stdio.h>
#include <string.h>

#include "harness.h"
#include "internal.h"

/* Items too big for the clients' block cache (items.c), so that a get's
 * release takes the heap lock and reaches the free's fault points. */
#define BIG 256

static xichan_queue_id q;

struct job {
    int point;
    int get; /* 1: die inside a get, else inside a put */
};

static void victim(void *arg)
{
    struct job *j = arg;
    xichan_client *cl;
    xichan_item it;
    char v[BIG] = {99};

    XT_OK(xichan_client_open(&cl, NULL));
    xichan__fault_set(j->point, 1);
    if (j->get) {
        XT_OK(xichan_queue_get(cl, q, &it, XICHAN_NOWAIT));
        xichan_item_release(&it); /* the free takes the heap lock */
    } else
        XT_OK(xichan_queue_put(cl, q, 0, v, sizeof(v), 0, XICHAN_NOWAIT));
    xt__fail(__FILE__, __LINE__, "fault point %d was not reached", j->point);
}

int main(void)
{
    static const struct job jobs[] = {
        {XICHAN_FAULT_PUSH_LINKED, 0},  {XICHAN_FAULT_PUSH_DONE, 0},
        {XICHAN_FAULT_ALLOC_SPLIT, 0},  {XICHAN_FAULT_ALLOC_RESERVED, 0},
        {XICHAN_FAULT_POP_LEASED, 1},   {XICHAN_FAULT_POP_UNLINKED, 1},
        {XICHAN_FAULT_FREE_MARKED, 1},  {XICHAN_FAULT_GET_LEASED, 1},
    };
    xichan_client *cl;

    xt_start_daemon(NULL);
    XT_OK(xichan_client_open(&cl, NULL));
    XT_OK(xichan_queue_create(cl, NULL, &q));
    for (size_t i = 0; i < sizeof(jobs) / sizeof(jobs[0]); i++) {
        char v[BIG] = {(char)i};
        int n0, n1, status, expect_lo, expect_hi;
        xichan_item it;
        double t0;
        pid_t pid;

        XT_OK(xichan_queue_put(cl, q, 0, v, sizeof(v), 0, XICHAN_NOWAIT));
        n0 = (int)xichan_queue_count(cl, q);
        pid = xt_fork(victim, (void *)&jobs[i]);
        status = xt_wait(pid, 10000);
        XT_EQ_INT(status, 128 + 9); /* SIGKILL at the fault point */
        t0 = xt_now();
        /* Our next operations repair whatever it held and work. */
        n1 = (int)xichan_queue_count(cl, q);
        expect_lo = jobs[i].get ? n0 - 1 : n0;
        expect_hi = jobs[i].get ? n0 : n0 + 1;
        XT_CHECK(n1 >= expect_lo && n1 <= expect_hi);
        XT_OK(xichan_queue_put(cl, q, 0, v, sizeof(v), 0, XICHAN_NOWAIT));
        XT_OK(xichan_queue_get(cl, q, &it, XICHAN_NOWAIT));
        xichan_item_release(&it);
        XT_CHECK(xt_now() - t0 < 1.0);
        printf("fault point %2d (%s): killed holding the lock; next caller repaired in %.2f ms, "
               "%d -> %d items\n",
               jobs[i].point, jobs[i].get ? "get" : "put", (xt_now() - t0) * 1e3, n0, n1);
    }
    /* Drain; the daemon has cleaned every dead session's blocks by now. */
    for (;;) {
        xichan_item it;
        int err = xichan_queue_get(cl, q, &it, XICHAN_NOWAIT);
        if (err == XICHAN_EEMPTY)
            break;
        XT_OK(err);
        xichan_item_release(&it);
    }
    XT_OK(xichan_queue_destroy(cl, q));
    {
        double t0 = xt_now();
        xichan_stats st;
        for (;;) {
            XT_OK(xichan_stats_get(cl, &st));
            if (st.heap_used == 0 || xt_now() - t0 > 5)
                break;
            xt_sleep_ms(10);
        }
        if (st.heap_used != 0)
            xt__fail(__FILE__, __LINE__, "%llu heap bytes still used after cleanup",
                     (unsigned long long)st.heap_used);
    }
    xichan_client_close(cl);
    return 0;
}
