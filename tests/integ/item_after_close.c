/*
 * item_after_close.c -- an item outlives the client that received it.
 *
 * xichan_item_release() after xichan_client_close() used to read the
 * freed handle (valgrind, then SIGSEGV).  Now every item handed out holds
 * a reference to the handle and its mapping: after the close its release
 * frees nothing (the session's blocks went back to the heap with it, as
 * the daemon reclaims them) and the last one unmaps.  Checked for single
 * items, get_many batches and xichan_items_release, and that the session
 * ended at close (not at the last release); run under ASan and valgrind by
 * `make asan` / `make valgrind`.
 */
#include <string.h>

#include "harness.h"

int main(void)
{
    xichan_queue_opts qo = {.name = "keep"};
    xichan_client *a, *b;
    xichan_queue_id q;
    xichan_item one, many[3];
    xichan_stats st;

    xt_start_daemon(NULL);
    XT_OK(xichan_client_open(&a, NULL));
    XT_OK(xichan_queue_create(a, &qo, &q));
    for (int i = 0; i < 4; i++)
        XT_OK(xichan_queue_put(a, q, 0, "abcd", 4, 0, XICHAN_NOWAIT));

    XT_OK(xichan_client_open(&b, NULL));
    XT_OK(xichan_queue_get(b, q, &one, XICHAN_NOWAIT));
    XT_EQ_INT(xichan_queue_get_many(b, q, many, 3, XICHAN_NOWAIT), 3);
    XT_CHECK(one.len == 4 && memcmp(one.data, "abcd", 4) == 0);
    xichan_client_close(b);

    /* The session ended at the close: only a's is left. */
    XT_OK(xichan_stats_get(a, &st));
    XT_EQ_INT(st.sessions, 1);
    /* Still mapped: this read would fault if the close had unmapped it (the
     * bytes themselves may have been reused since). */
    {
        volatile char c = ((const char *)one.data)[0];
        (void)c;
    }
    xichan_item_release(&one);
    xichan_item_release(&one); /* idempotent */
    xichan_items_release(many, 2);
    xichan_item_release(&many[2]); /* the last reference: unmaps */

    /* The queue works on: nothing of b's is left in it. */
    XT_EQ_INT(xichan_queue_count(a, q), 0);
    XT_OK(xichan_queue_put(a, q, 0, "z", 1, 0, XICHAN_NOWAIT));
    XT_OK(xichan_queue_get(a, q, &one, XICHAN_NOWAIT));
    xichan_item_release(&one);
    xichan_client_close(a);
    printf("item_after_close: ok\n");
    return 0;
}
