/*
 * heap_steal_stress.c -- block caches in use while other processes fill the
 * heap and take the caches back (alloc.c tag-cache-steal, items.c).
 *
 * Two hand-off processes pass small items of every cached size through a
 * queue of their own as fast as they can (their caches are busy all the
 * time), while a filler process repeatedly fills the heap with big items
 * until ENOSPC -- every ENOSPC passes over the busy caches -- and a blocking
 * put then waits for the drainer, which empties the filler's queue.  At the
 * end: every small item arrived exactly once and intact, every big put
 * either went in or failed whole, the heap passes its check, and once the
 * processes are gone no block is left cached, reserved or leased.
 */
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "harness.h"
#include "internal.h"

#define ROUNDS 40
#define PAIRS 20000
#define BIG (128 * 1024)

static xichan_queue_id small_q, big_q;

struct counts {
    int sent[2], received[2], bad[2];
    int big_put, big_got, rounds_done;
    uint64_t steals[2]; /* generations of the hand-offs' gates at the end */
};
static struct counts *cnt;
static xt_pipe_t go;

/* Each side puts items of varied small sizes and takes as many, PAIRS at
 * least and until the filler is done. */
static void handoff(void *arg)
{
    int me = (int)(long)arg;
    unsigned char buf[128];
    xichan_client *cl;
    xichan_item it;

    XT_OK(xichan_client_open(&cl, NULL));
    XT_OK(xt_await(&go, 10000));
    for (int i = 0; i < PAIRS || __atomic_load_n(&cnt->rounds_done, __ATOMIC_ACQUIRE) < ROUNDS;
         i++) {
        size_t len = (size_t)(i % 8) * 16 + 4;

        memset(buf, (unsigned char)i, len);
        memcpy(buf, &i, sizeof(i));
        buf[sizeof(i)] = (unsigned char)me;
        XT_OK(xichan_queue_put(cl, small_q, 0, buf, len, 0, xichan_deadline(30)));
        cnt->sent[me]++;
        XT_OK(xichan_queue_get(cl, small_q, &it, xichan_deadline(30)));
        {
            int v;
            const unsigned char *d = it.data;
            memcpy(&v, d, sizeof(v));
            /* The length its index gives; past the index and the sender's
             * byte, the index's low byte throughout. */
            if (it.len != (size_t)(v % 8) * 16 + 4 || (it.len > 5 && d[it.len - 1] != (unsigned char)v))
                cnt->bad[me]++;
        }
        cnt->received[me]++;
        xichan_item_release(&it);
    }
    cnt->steals[me] = xa_load_acquire(&cl->shm->sessions[cl->slot].cache_gate) >>
                      XICHAN_GATE_GEN_SHIFT;
}

/* Fills the heap until ENOSPC, then waits in a blocking put for room. */
static void filler(void *arg)
{
    static char big[BIG];
    xichan_client *cl;
    int err;

    XT_OK(xichan_client_open(&cl, NULL));
    XT_OK(xt_await(&go, 10000));
    for (int r = 0; r < ROUNDS; r++) {
        while ((err = xichan_queue_put(cl, big_q, 0, big, BIG, 0, XICHAN_NOWAIT)) == 0)
            __atomic_add_fetch(&cnt->big_put, 1, __ATOMIC_RELAXED);
        XT_ERR(err, XICHAN_ENOSPC);
        XT_OK(xichan_queue_put(cl, big_q, 0, big, BIG, 0, xichan_deadline(30)));
        __atomic_add_fetch(&cnt->big_put, 1, __ATOMIC_RELAXED);
        __atomic_add_fetch(&cnt->rounds_done, 1, __ATOMIC_RELEASE);
    }
}

/* Takes big items as they come until the filler is done and the queue empty. */
static void drainer(void *arg)
{
    xichan_client *cl;
    xichan_item it;
    int err;

    XT_OK(xichan_client_open(&cl, NULL));
    XT_OK(xt_await(&go, 10000));
    for (;;) {
        err = xichan_queue_get(cl, big_q, &it, xichan_deadline(0.05));
        if (err == 0) {
            XT_EQ_INT(it.len, BIG);
            __atomic_add_fetch(&cnt->big_got, 1, __ATOMIC_RELAXED);
            xichan_item_release(&it);
            continue;
        }
        XT_ERR(err, XICHAN_EEMPTY);
        if (__atomic_load_n(&cnt->rounds_done, __ATOMIC_ACQUIRE) == ROUNDS)
            break;
    }
}

int main(void)
{
    xichan_client *cl;
    struct xichan_heap_report r;
    pid_t pids[4];
    xichan_queue_opts o = {.name = NULL};

    alarm(240);
    cnt = mmap(NULL, sizeof(*cnt), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    XT_CHECK(cnt != MAP_FAILED);
    memset(cnt, 0, sizeof(*cnt));
    xt_pipe_init(&go);
    xt_start_daemon("--size 4M --objects 64 --sessions 32 --bindings 512");
    XT_OK(xichan_client_open(&cl, NULL));
    XT_OK(xichan_queue_create(cl, &o, &small_q));
    XT_OK(xichan_queue_create(cl, &o, &big_q));
    pids[0] = xt_fork(handoff, (void *)0L);
    pids[1] = xt_fork(handoff, (void *)1L);
    pids[2] = xt_fork(filler, NULL);
    pids[3] = xt_fork(drainer, NULL);
    for (int i = 0; i < 4; i++)
        xt_signal(&go);
    for (int i = 0; i < 4; i++)
        XT_EQ_INT(xt_wait(pids[i], 200000), 0);
    for (int me = 0; me < 2; me++) {
        XT_CHECK(cnt->sent[me] >= PAIRS);
        XT_EQ_INT(cnt->received[me], cnt->sent[me]);
        XT_EQ_INT(cnt->bad[me], 0);
    }
    XT_EQ_INT(xichan_queue_count(cl, small_q), 0);
    /* The test did what it says: the full heap took busy caches back. */
    XT_CHECK(cnt->steals[0] + cnt->steals[1] > 0);
    XT_EQ_INT(cnt->big_got + xichan_queue_count(cl, big_q), cnt->big_put);
    /* The children's sessions end; then nothing is left but our queues. */
    {
        double t0 = xt_now();
        for (;;) {
            uint32_t used = 0;
            for (uint32_t i = 0; i < cl->shm->nsessions; i++)
                used += xa_load_acquire(&cl->shm->sessions[i].state) != XICHAN_SESS_FREE;
            if (used == 1)
                break;
            XT_CHECK(xt_now() - t0 < 10);
            xt_sleep_ms(5);
        }
    }
    {
        xichan_item it;
        while (xichan_queue_get(cl, big_q, &it, XICHAN_NOWAIT) == 0)
            xichan_item_release(&it);
    }
    XT_CHECK(xichan__cache_flush(cl) >= 0);
    XT_OK(xichan__heap_check(cl->shm, &r));
    if (!r.ok)
        xt__fail(__FILE__, __LINE__, "heap check: %s", r.why);
    XT_EQ_INT(r.cached + r.reserved + r.leased + r.queued, 0);
    printf("%d rounds of a full heap beside %d + %d busy hand-offs: %d big items, their "
           "caches taken back %llu times, every small one once and intact, heap clean\n",
           ROUNDS, cnt->sent[0], cnt->sent[1], cnt->big_put,
           (unsigned long long)(cnt->steals[0] + cnt->steals[1]));
    xichan_client_close(cl);
    return 0;
}
