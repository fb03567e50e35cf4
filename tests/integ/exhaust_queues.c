/*
 * exhaust_queues.c -- 10,000 queues in one namespace (xichand --objects
 * 10000): each is created, takes a put and gives it back with a get;
 * xichan_list returns all 10,000 in creation order with the right counts;
 * the 10,001st create fails with XICHAN_ELIMIT; destroying them all leaves
 * no object and an empty heap, and a new queue can be made again.
 */
#include <stdlib.h>
#include <string.h>

#include "harness.h"

#define NQ 10000

int main(void)
{
    xichan_queue_id *ids = calloc(NQ, sizeof(*ids)), extra;
    xichan_obj_info *infos = calloc(NQ + 1, sizeof(*infos));
    xichan_client *cl;
    xichan_item it;
    xichan_stats st;
    double t0 = xt_now(), t;
    int n;

    XT_CHECK(ids && infos);
    xt_start_daemon("--objects 10000 --bindings 16384 --size 16M");
    XT_OK(xichan_client_open(&cl, NULL));

    for (int i = 0; i < NQ; i++)
        XT_OK(xichan_queue_create(cl, NULL, &ids[i]));
    XT_ERR(xichan_queue_create(cl, NULL, &extra), XICHAN_ELIMIT);
    t = xt_now();
    printf("created %d queues in %.2f s; the next one: ELIMIT\n", NQ, t - t0);

    for (int i = 0; i < NQ; i++)
        XT_OK(xichan_queue_put(cl, ids[i], 0, &i, sizeof(i), 0, XICHAN_NOWAIT));
    n = xichan_list(cl, infos, NQ + 1);
    XT_EQ_INT(n, NQ);
    for (int i = 0; i < NQ; i++) {
        XT_EQ_INT(infos[i].id, ids[i].id); /* creation order */
        XT_EQ_INT(infos[i].kind, XICHAN_KIND_QUEUE);
        XT_EQ_INT(infos[i].count, 1);
        if (i)
            XT_CHECK(infos[i].id > infos[i - 1].id);
    }
    for (int i = 0; i < NQ; i++) {
        int v;
        XT_OK(xichan_queue_get(cl, ids[i], &it, XICHAN_NOWAIT));
        XT_EQ_INT(it.len, sizeof(v));
        memcpy(&v, it.data, sizeof(v));
        XT_EQ_INT(v, i);
        xichan_item_release(&it);
    }
    printf("put and get on each, list in creation order: %.2f s\n", xt_now() - t);
    t = xt_now();
    XT_EQ_INT(xichan_list(cl, NULL, 0), NQ);
    XT_OK(xichan_stats_get(cl, &st));
    XT_EQ_INT(st.objects, NQ);
    XT_EQ_INT(st.heap_used, 0);

    for (int i = 0; i < NQ; i++)
        XT_OK(xichan_queue_destroy(cl, ids[i]));
    XT_EQ_INT(xichan_list(cl, infos, NQ), 0);
    XT_OK(xichan_stats_get(cl, &st));
    XT_EQ_INT(st.objects, 0);
    XT_EQ_INT(st.heap_used, 0);
    XT_OK(xichan_queue_create(cl, NULL, &extra));
    XT_CHECK(extra.id > ids[NQ - 1].id); /* ids are never reused */
    XT_OK(xichan_queue_destroy(cl, extra));
    printf("destroyed all in %.2f s; %.2f s in all\n", xt_now() - t, xt_now() - t0);
    xichan_client_close(cl);
    free(ids);
    free(infos);
    return 0;
}
