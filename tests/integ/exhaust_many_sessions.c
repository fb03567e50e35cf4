/*
 * exhaust_many_sessions.c -- 1,000 sessions at once (xichand --sessions
 * 1100): 10 forked processes open 100 clients each; every client puts one
 * item, stamped (process, client), into one shared queue; all 1,000 items
 * arrive exactly once, while all 1,000 sessions are open (1,001 with ours);
 * then every client closes and the session count is back at its baseline,
 * with no object and nothing on the heap left behind by them.
 */
#include <string.h>

#include "harness.h"

#define NPROC 10
#define PER 100

static xichan_queue_id q;
static xt_pipe_t ready, go;

static void child(void *arg)
{
    int p = (int)(long)arg;
    xichan_client *cl[PER];

    for (int i = 0; i < PER; i++) {
        int stamp = p * PER + i;
        XT_OK(xichan_client_open(&cl[i], NULL));
        XT_OK(xichan_queue_put(cl[i], q, 0, &stamp, sizeof(stamp), 0, XICHAN_NOWAIT));
    }
    xt_signal(&ready);
    XT_EQ_INT(xt_await(&go, 50000), 0);
    for (int i = 0; i < PER; i++)
        xichan_client_close(cl[i]);
}

static xichan_client *me;
static int sessions(void)
{
    xichan_stats st;

    XT_OK(xichan_stats_get(me, &st));
    return (int)st.sessions;
}

int main(void)
{
    static unsigned char seen[NPROC * PER];
    pid_t pids[NPROC];
    xichan_item it;
    xichan_stats st;
    double t0 = xt_now(), t;
    int base;

    xt_start_daemon("--sessions 1100");
    xt_pipe_init(&ready);
    xt_pipe_init(&go);
    XT_OK(xichan_client_open(&me, NULL));
    XT_OK(xichan_queue_create(me, &(xichan_queue_opts){.name = "many"}, &q));
    base = sessions();
    XT_EQ_INT(base, 1);

    for (int p = 0; p < NPROC; p++)
        pids[p] = xt_fork(child, (void *)(long)p);
    for (int p = 0; p < NPROC; p++)
        XT_EQ_INT(xt_await(&ready, 50000), 0);
    t = xt_now();
    XT_EQ_INT(sessions(), base + NPROC * PER);
    printf("%d sessions opened by %d processes in %.2f s\n", NPROC * PER, NPROC, t - t0);

    /* Every item, exactly once, while its session is open. */
    for (int k = 0; k < NPROC * PER; k++) {
        int stamp;
        XT_OK(xichan_queue_get(me, q, &it, XICHAN_NOWAIT));
        XT_CHECK(!it.unbound);
        XT_EQ_INT(it.len, sizeof(stamp));
        memcpy(&stamp, it.data, sizeof(stamp));
        XT_CHECK(stamp >= 0 && stamp < NPROC * PER);
        XT_EQ_INT(seen[stamp], 0);
        seen[stamp] = 1;
        xichan_item_release(&it);
    }
    XT_ERR(xichan_queue_get(me, q, &it, XICHAN_NOWAIT), XICHAN_EEMPTY);

    for (int p = 0; p < NPROC; p++)
        xt_signal(&go);
    for (int p = 0; p < NPROC; p++)
        XT_EQ_INT(xt_wait(pids[p], 50000), 0);
    /* Each close waited for its cleanup: the count is back already. */
    XT_EQ_INT(sessions(), base);
    XT_OK(xichan_queue_destroy(me, q));
    XT_OK(xichan_stats_get(me, &st));
    XT_EQ_INT(st.objects, 0);
    XT_EQ_INT(st.heap_used, 0);
    printf("all %d items arrived once; all closed in %.2f s; sessions back to %d\n",
           NPROC * PER, xt_now() - t, base);
    xichan_client_close(me);
    return 0;
}
