/*
 * bad_input.c -- every bad input gets its error code and changes nothing:
 * unknown ids, invalid arguments, an item too big for the segment, a full
 * segment (which recovers once drained), and no daemon with autostart off.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"

int main(void)
{
    xichan_client *cl;
    xichan_queue_id q, bad = {987654};
    xichan_chan_id badc = {987654};
    xichan_item it;
    xichan_stats st;
    char *big;
    int n = 0, err;

    /* No daemon and autostart off: a clear error, not a hang. */
    XT_ERR(xichan_client_open(&cl, &(xichan_client_opts){.autostart = XICHAN_AUTOSTART_OFF}), XICHAN_ENODAEMON);
    XT_CHECK(strstr(xichan_strerror(XICHAN_ENODAEMON), "xichand") != NULL);
    XT_ERR(xichan_client_open(&cl, &(xichan_client_opts){.name = "bad/name", .autostart = XICHAN_AUTOSTART_OFF}),
           XICHAN_EINVAL);

    xt_start_daemon("--size 8M");
    XT_OK(xichan_client_open(&cl, NULL));
    XT_OK(xichan_queue_create(cl, NULL, &q));

    XT_ERR(xichan_queue_put(cl, bad, 0, "x", 1, 0, XICHAN_NOWAIT), XICHAN_ENOTFOUND);
    XT_ERR(xichan_queue_get(cl, bad, &it, XICHAN_NOWAIT), XICHAN_ENOTFOUND);
    XT_ERR(xichan_queue_destroy(cl, bad), XICHAN_ENOTFOUND);
    XT_ERR(xichan_chan_send_nowait(cl, badc, 0, "x", 1, 0), XICHAN_ENOTFOUND);
    XT_ERR(xichan_chan_recv(cl, badc, &it, XICHAN_NOWAIT), XICHAN_ENOTFOUND);
    XT_ERR(xichan_queue_put(cl, q, -1, "x", 1, 0, XICHAN_NOWAIT), XICHAN_EINVAL);
    XT_ERR(xichan_queue_put(cl, q, 0, "x", 1, 4, XICHAN_NOWAIT), XICHAN_EINVAL);
    XT_ERR(xichan_queue_put(cl, q, 0, NULL, 1, 0, XICHAN_NOWAIT), XICHAN_EINVAL);
    XT_ERR(xichan_chan_close(cl, badc, 64), XICHAN_EINVAL);
    XT_ERR(xichan_queue_create(cl, &(xichan_queue_opts){.name = ""}, &q), XICHAN_EINVAL);
    XT_EQ_INT(xichan_queue_count(cl, q), 0);

    /* An item bigger than the whole segment fails at once, even with no deadline. */
    big = calloc(1, 16u << 20);
    XT_ERR(xichan_queue_put(cl, q, 0, big, 16u << 20, 0, XICHAN_FOREVER), XICHAN_E2BIG);
    XT_EQ_INT(xichan_queue_count(cl, q), 0);

    /* A full segment: ENOSPC, nothing lost, and room again after draining. */
    while ((err = xichan_queue_put(cl, q, 0, big, 256 * 1024, 0, XICHAN_NOWAIT)) == 0)
        n++;
    XT_ERR(err, XICHAN_ENOSPC);
    XT_CHECK(strstr(xichan_strerror(err), "--size") != NULL);
    XT_EQ_INT(xichan_queue_count(cl, q), n);
    for (int i = 0; i < n; i++) {
        XT_OK(xichan_queue_get(cl, q, &it, XICHAN_NOWAIT));
        XT_EQ_INT(it.len, 256 * 1024);
        xichan_item_release(&it);
    }
    XT_OK(xichan_stats_get(cl, &st));
    XT_EQ_INT(st.heap_used, 0);
    XT_OK(xichan_queue_put(cl, q, 0, big, 256 * 1024, 0, XICHAN_NOWAIT));
    printf("segment of 8 MiB held %d items of 256 KiB before ENOSPC; recovered after draining\n", n);
    free(big);
    xichan_client_close(cl);
    return 0;
}
