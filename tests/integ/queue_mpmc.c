/*
 * queue_mpmc.c -- 4 producer and 4 consumer processes through one bounded
 * queue: every item arrives exactly once, and each producer's items arrive
 * in the order it put them (as seen by each consumer).
 */
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "harness.h"

#define NPROD 4
#define NCONS 4
#define PER_PROD 5000

struct rec {
    int prod, seq;
};

static xichan_queue_id q;
static unsigned char (*seen)[PER_PROD]; /* shared: [prod][seq] receipt counts */

static void producer(void *arg)
{
    int p = (int)(long)arg;
    xichan_client *cl;

    XT_OK(xichan_client_open(&cl, NULL));
    for (int i = 0; i < PER_PROD; i++) {
        struct rec r = {p, i};
        XT_OK(xichan_queue_put(cl, q, XICHAN_FMT_RAW, &r, sizeof(r), 0, xichan_deadline(30)));
    }
    xichan_client_close(cl);
}

static void consumer(void *arg)
{
    int last[NPROD];
    xichan_client *cl;

    memset(last, -1, sizeof(last));
    XT_OK(xichan_client_open(&cl, NULL));
    for (;;) {
        xichan_item it;
        struct rec r;

        XT_OK(xichan_queue_get(cl, q, &it, xichan_deadline(30)));
        XT_EQ_INT(it.len, sizeof(r));
        memcpy(&r, it.data, sizeof(r));
        xichan_item_release(&it);
        if (r.prod < 0)
            break;
        XT_CHECK(r.prod < NPROD && r.seq < PER_PROD);
        XT_CHECK(r.seq > last[r.prod]); /* per-producer FIFO */
        last[r.prod] = r.seq;
        __atomic_add_fetch(&seen[r.prod][r.seq], 1, __ATOMIC_RELAXED);
    }
    xichan_client_close(cl);
}

int main(void)
{
    xichan_client *cl;
    pid_t prod[NPROD], cons[NCONS];
    struct rec stop = {-1, -1};
    double t0;

    xt_start_daemon(NULL);
    seen = mmap(NULL, sizeof(*seen) * NPROD, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS,
                -1, 0);
    XT_CHECK(seen != MAP_FAILED);
    XT_OK(xichan_client_open(&cl, NULL));
    XT_OK(xichan_queue_create(cl, &(xichan_queue_opts){.maxsize = 64}, &q));
    t0 = xt_now();
    for (int i = 0; i < NCONS; i++)
        cons[i] = xt_fork(consumer, NULL);
    for (int i = 0; i < NPROD; i++)
        prod[i] = xt_fork(producer, (void *)(long)i);
    for (int i = 0; i < NPROD; i++)
        XT_EQ_INT(xt_wait(prod[i], 60000), 0);
    for (int i = 0; i < NCONS; i++)
        XT_OK(xichan_queue_put(cl, q, 0, &stop, sizeof(stop), 0, xichan_deadline(30)));
    for (int i = 0; i < NCONS; i++)
        XT_EQ_INT(xt_wait(cons[i], 60000), 0);
    for (int p = 0; p < NPROD; p++)
        for (int s = 0; s < PER_PROD; s++)
            if (seen[p][s] != 1)
                xt__fail(__FILE__, __LINE__, "item (%d,%d) received %d times", p, s, seen[p][s]);
    XT_EQ_INT(xichan_queue_count(cl, q), 0);
    printf("queue_mpmc: %d items, %d producers, %d consumers, exactly once, %.0f items/s\n",
           NPROD * PER_PROD, NPROD, NCONS, NPROD * PER_PROD / (xt_now() - t0));
    xichan_client_close(cl);
    return 0;
}
