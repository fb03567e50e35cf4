/*
 * lock_crash.c -- a process killed while it holds a queue's lock (at each
 * fault point inside the locked part of put and get) leaves a lock that the
 * next caller, in another process, repairs: its own put and get then work,
 * within a hang bound, and no committed item is lost or duplicated.
 *
 * "Lost or duplicated" is checked exactly: every item carries a unique
 * value, this process keeps the list the queue must hold (a model), and
 * every count and every item taken is compared with it, value by value and
 * in order.  Each fault point has one outcome (fifo.c, tag-fifo-commit):
 * a put killed after its link store (PUSH_LINKED, PUSH_DONE) is queued, one
 * killed in the allocator is not; a get killed before its unlink
 * (POP_LEASED) leaves the item for the next getter, one killed after it
 * (POP_UNLINKED, GET_LEASED, FREE_MARKED in its release) took it.  An
 * item whose producer process died is delivered as put, never as an
 * UNBOUND marker.
 */
#include <stdio.h>
#include <string.h>

#include "harness.h"
#include "internal.h"

/* Items too big for the clients' block cache (items.c), so that a get's
 * release takes the heap lock and reaches the free's fault points. */
#define BIG 256
#define MODEL_MAX 64

static xichan_queue_id q;

struct job {
    int point;
    int get;    /* 1: die inside a get, else inside a put */
    int stays;  /* put: the item is queued; get: the item is still queued */
};

/* What the queue must hold, oldest first. */
static int model[MODEL_MAX], model_n;

static void model_push(int v)
{
    XT_CHECK(model_n < MODEL_MAX);
    model[model_n++] = v;
}

static int model_pop(void)
{
    int v = model[0];

    XT_CHECK(model_n > 0);
    memmove(model, model + 1, (size_t)--model_n * sizeof(model[0]));
    return v;
}

static void put_value(xichan_client *cl, int v)
{
    char buf[BIG];

    memset(buf, 0, sizeof(buf));
    memcpy(buf, &v, sizeof(v));
    XT_OK(xichan_queue_put(cl, q, 0, buf, sizeof(buf), 0, XICHAN_NOWAIT));
}

/* The value an item carries. */
static int item_value(const xichan_item *it)
{
    int v;

    XT_EQ_INT(it->unbound, 0);
    XT_EQ_INT(it->len, BIG);
    memcpy(&v, it->data, sizeof(v));
    return v;
}

/* Takes the next item and checks it is the model's next value. */
static void get_expected(xichan_client *cl)
{
    xichan_item it;
    int want = model_pop(), got;

    XT_OK(xichan_queue_get(cl, q, &it, XICHAN_NOWAIT));
    got = item_value(&it);
    xichan_item_release(&it);
    XT_EQ_INT(got, want);
}

static int victim_value;

static void victim(void *arg)
{
    struct job *j = arg;
    xichan_client *cl;
    xichan_item it;

    XT_OK(xichan_client_open(&cl, NULL));
    xichan__fault_set(j->point, 1);
    if (j->get) {
        XT_OK(xichan_queue_get(cl, q, &it, XICHAN_NOWAIT));
        xichan_item_release(&it); /* the free takes the heap lock */
    } else
        put_value(cl, victim_value);
    xt__fail(__FILE__, __LINE__, "fault point %d was not reached", j->point);
}

int main(void)
{
    static const struct job jobs[] = {
        {XICHAN_FAULT_PUSH_LINKED, 0, 1},  {XICHAN_FAULT_PUSH_DONE, 0, 1},
        {XICHAN_FAULT_ALLOC_SPLIT, 0, 0},  {XICHAN_FAULT_ALLOC_RESERVED, 0, 0},
        {XICHAN_FAULT_POP_LEASED, 1, 1},   {XICHAN_FAULT_POP_UNLINKED, 1, 0},
        {XICHAN_FAULT_FREE_MARKED, 1, 0},  {XICHAN_FAULT_GET_LEASED, 1, 0},
    };
    xichan_client *cl;

    xt_start_daemon(NULL);
    XT_OK(xichan_client_open(&cl, NULL));
    XT_OK(xichan_queue_create(cl, NULL, &q));
    for (int i = 0; i < (int)(sizeof(jobs) / sizeof(jobs[0])); i++) {
        const struct job *j = &jobs[i];
        int n0, n1, status;
        double t0;
        pid_t pid;

        /* Two items of ours, so that a get always has one to take. */
        put_value(cl, 100 * i + 1);
        model_push(100 * i + 1);
        put_value(cl, 100 * i + 2);
        model_push(100 * i + 2);
        n0 = model_n;
        victim_value = 100 * i + 50;
        pid = xt_fork(victim, (void *)j);
        status = xt_wait(pid, 10000);
        XT_EQ_INT(status, 128 + 9); /* SIGKILL at the fault point */
        if (!j->get && j->stays)
            model_push(victim_value);
        else if (j->get && !j->stays)
            (void)model_pop(); /* the dead getter took the head */
        t0 = xt_now();
        /* Our next operations repair whatever it held and work. */
        n1 = (int)xichan_queue_count(cl, q);
        XT_EQ_INT(n1, model_n);
        put_value(cl, 100 * i + 3);
        model_push(100 * i + 3);
        get_expected(cl);
        /* A hang bound, not a speed test: the repair is one walk. */
        XT_CHECK(xt_now() - t0 < 5.0);
        printf("fault point %2d (%s): killed holding the lock; next caller repaired in %.2f ms, "
               "%d -> %d items, the victim's item %s\n",
               j->point, j->get ? "get" : "put", (xt_now() - t0) * 1e3, n0, n1,
               j->stays ? "stayed queued" : "is gone");
    }
    /* Drain: exactly the model's values, in order, then nothing. */
    printf("draining %d items, each checked against the model\n", model_n);
    while (model_n > 0)
        get_expected(cl);
    {
        xichan_item it;
        XT_ERR(xichan_queue_get(cl, q, &it, XICHAN_NOWAIT), XICHAN_EEMPTY);
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
