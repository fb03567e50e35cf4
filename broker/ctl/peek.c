/*
 * peek.c -- xichanctl peek and purge: a queue's items looked at, or
 * dropped, without a getter.
 *
 *   peek    copies the first N items (xichan_peek) and prints them as get
 *           would, with their index; nothing is taken, and the handles an
 *           item carries keep the in-flight references they hold.  Each
 *           copy is a snapshot of one item: a getter may take items between
 *           two copies, and then the same item can show twice or one can be
 *           missed -- peek is for looking, not for accounting.
 *   purge   drops every item of a queue and keeps the queue
 *           (xichan_queue_purge).  Channels have none: an item on a channel
 *           belongs to a sender waiting for its receiver, and dropping it
 *           would tell that sender a lie.
 *
 * Both go through the public API only; shared state changes only in
 * libclient (purge: queue.c's crash argument).
 */
#include <stdlib.h>

#include "ctl.h"

#define PEEK_BUF0 4096 /* first copy buffer; grown to the largest item */

int ctl_cmd_peek(struct ctl *c)
{
    struct ctl_ref r;
    xichan_item item;
    char desc[128];
    size_t cap = PEEK_BUF0;
    void *buf = malloc(cap), *nb;
    long n = c->a.count ? c->a.count : 10, i;
    int rc = ctl_resolve(c, c->a.pos[0], &r), err = 0;

    if (!buf)
        return ctl_fail(c, XICHAN_ENOMEM, "peek");
    if (rc != CTL_OK)
        goto out;
    ctl_describe(&r, desc, sizeof(desc));
    for (i = 0; i < n && rc == CTL_OK; i++) {
        err = xichan_peek(c->cl, r.kind, r.id, (uint64_t)i, buf, cap, &item);
        if (err == XICHAN_E2BIG) {
            if (!(nb = realloc(buf, item.len))) {
                rc = ctl_fail(c, XICHAN_ENOMEM, "peek: an item of %zu bytes", item.len);
                break;
            }
            buf = nb;
            cap = item.len;
            i--; /* the same index again, with room */
            continue;
        }
        if (err)
            break;
        rc = ctl_print_item(c, &r, &item, i);
    }
    if (rc != CTL_OK)
        goto out;
    if (err == XICHAN_EEMPTY && i == 0) {
        fprintf(stderr, "xichanctl peek: %s is empty\n", desc);
        rc = CTL_EEMPTY;
    } else if (err && err != XICHAN_EEMPTY) {
        rc = ctl_fail(c, err, "cannot peek into %s", desc);
    }
out:
    free(buf);
    return rc;
}

int ctl_cmd_purge(struct ctl *c)
{
    struct ctl_ref r;
    char desc[128];
    int64_t n;
    int rc = ctl_resolve(c, c->a.pos[0], &r);

    if (rc != CTL_OK)
        return rc;
    ctl_describe(&r, desc, sizeof(desc));
    if (r.kind != XICHAN_KIND_QUEUE)
        return ctl_usage(c, "purge is for queues; %s holds only items its senders wait on", desc);
    if ((n = xichan_queue_purge(c->cl, (xichan_queue_id){r.id})) < 0)
        return ctl_fail(c, (int)n, "cannot purge %s", desc);
    if (c->json)
        printf("{\"purged\":{\"kind\":\"queue\",\"id\":%llu,\"items\":%lld}}\n",
               (unsigned long long)r.id, (long long)n);
    else
        printf("purged %s: %lld item%s dropped\n", desc, (long long)n, n == 1 ? "" : "s");
    return CTL_OK;
}
