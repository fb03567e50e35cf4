/*
 * session_id_wrap.c -- sessions keep opening after the 28-bit session-id
 * counter runs out: ids wrap, skipping those still in use.
 *
 * Session ids come from hdr->next_sid (28 bits: XICHAN_SID_MAX =
 * 268,435,455).  They used to be never reused, so once the counter passed
 * the maximum every new client was refused with XICHAN_ELIMIT and the
 * daemon said "session table full (N sessions); restart xichand with a
 * larger --sessions" with 2 of 1024 slots in use -- advice that did not
 * help, since the counter survives restarts that adopt the segment.  A
 * namespace with 1000 short-lived sessions a second got there in three
 * days.  Now the counter wraps and skips ids that a LIVE or CLEANING slot
 * holds (sessions.c, tag-sid-reuse, which also argues why an id whose
 * session's cleanup completed may be reused).
 *
 * Checks: after the last id the next session gets the smallest id not in
 * use (not a's); an id is reused once its session ended and was cleaned
 * up; and the items the first holder of that id left (kept when its
 * session ended) are not touched when the second one ends by an unbind
 * (the cleanup selects only items not yet settled).
 * The test jumps the counter instead of opening 2^28 sessions.
 */
#include <stdio.h>
#include <string.h>

#include "internal.h"
#include "harness.h"

int main(void)
{
    xichan_client *a, *b, *c, *d;
    xichan_queue_id q;
    xichan_item it;
    uint32_t sa, sc;

    xt_start_daemon(NULL);
    XT_OK(xichan_client_open(&a, NULL));
    sa = xichan_client_session(a);
    XT_OK(xichan_queue_create(a, NULL, &q));
    xa_store_relaxed(&a->shm->hdr->next_sid, XICHAN_SID_MAX); /* 2^28 sessions later */
    XT_OK(xichan_client_open(&b, NULL));
    XT_EQ_INT(xichan_client_session(b), XICHAN_SID_MAX);

    /* The wrap: back to 1, and past a's id if a holds 1. */
    XT_OK(xichan_client_open(&c, NULL));
    sc = xichan_client_session(c);
    XT_EQ_INT(sc, sa == 1 ? 2 : 1);
    XT_CHECK(sc != xichan_client_session(b));

    /* c's item is kept (marked KEPT) when c closes; the close returns
     * once the daemon has cleaned up. */
    XT_OK(xichan_queue_put(c, q, 0, "from c", 6, XICHAN_UNBOUND_REPLACE, XICHAN_NOWAIT));
    xichan_client_close(c);

    /* The same id again, now that c's cleanup is complete. */
    xa_store_relaxed(&a->shm->hdr->next_sid, sc);
    XT_OK(xichan_client_open(&d, NULL));
    XT_EQ_INT(xichan_client_session(d), sc);
    XT_OK(xichan_queue_put(d, q, 0, "from d", 6, XICHAN_UNBOUND_ERROR, XICHAN_NOWAIT));
    xichan_client_close_unbind(d);

    /* c's item stayed as it was put; d's got its own op, ERROR. */
    XT_OK(xichan_queue_get(a, q, &it, XICHAN_NOWAIT));
    XT_EQ_INT(it.unbound, 0);
    XT_CHECK(it.len == 6 && memcmp(it.data, "from c", 6) == 0);
    XT_EQ_INT(it.producer, sc);
    xichan_item_release(&it);
    XT_ERR(xichan_queue_get(a, q, &it, XICHAN_NOWAIT), XICHAN_EUNBOUND);
    XT_ERR(xichan_queue_get(a, q, &it, XICHAN_NOWAIT), XICHAN_EEMPTY);

    xichan_client_close(b);
    xichan_client_close(a);
    printf("session ids wrap past the maximum, skip ids in use, and reuse ended ones\n");
    return 0;
}
