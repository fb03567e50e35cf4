/*
 * memory.c -- what a queue, a channel and an item cost in the segment.
 *
 *   memory [-n COUNT] [--json]
 *
 * Layout constants (from libclient/shm_layout.h): an object slot
 * (struct xichan_obj) lives in a table reserved when the segment is created,
 * and each (session, object) binding takes one struct xichan_binding; items
 * live in the heap as [xichan_blk | xichan_itemhdr | payload] rounded up to
 * 16-byte units.
 *
 * Measured: heap_used and the object count (xichan_stats_get) before and
 * after creating COUNT empty queues (and channels), and before and after
 * putting COUNT items of each size into one queue.  Per-queue segment bytes
 * = one object slot + the creator's binding + heap delta / COUNT; per-item
 * overhead = heap delta / COUNT - payload bytes (the 16-byte rounding of the
 * payload included, so sizes that are multiples of 16 show the bare header).
 * Run it against an otherwise idle namespace: other sessions' puts would
 * show up in the deltas.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "shm_layout.h"
#include "xichan.h"

static void die(const char *what, int err)
{
    fprintf(stderr, "memory: %s: %s\n", what, xichan_strerror(err));
    exit(1);
}

static xichan_stats stats(xichan_client *cl)
{
    xichan_stats s;
    int err = xichan_stats_get(cl, &s);

    if (err)
        die("stats", err);
    return s;
}

int main(int argc, char **argv)
{
    static const size_t sizes[] = {1, 8, 16, 64, 100, 1024, 4096, 65536};
    enum { NSIZES = sizeof(sizes) / sizeof(sizes[0]) };
    long n = 1000;
    int json = 0, err;
    xichan_client *cl;
    xichan_stats s0, s1;
    xichan_queue_id *qs;
    xichan_chan_id *cs;
    long long q_heap, q_objs, c_heap, c_objs;
    double item_bytes[NSIZES];
    char *buf;

    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "-n") && i + 1 < argc)
            n = atol(argv[++i]);
        else if (!strcmp(argv[i], "--json"))
            json = 1;
        else {
            fprintf(stderr, "usage: memory [-n COUNT] [--json]\n");
            return 2;
        }
    }
    if (n < 1) {
        fprintf(stderr, "memory: need -n >= 1\n");
        return 2;
    }
    if ((err = xichan_client_open(&cl, NULL)))
        die("xichan_client_open", err);
    qs = calloc((size_t)n, sizeof(*qs));
    cs = calloc((size_t)n, sizeof(*cs));
    buf = calloc(1, 65536);

    /* Empty queues, then empty channels. */
    s0 = stats(cl);
    for (long i = 0; i < n; i++)
        if ((err = xichan_queue_create(cl, NULL, &qs[i])))
            die("queue_create", err);
    s1 = stats(cl);
    q_heap = (long long)s1.heap_used - (long long)s0.heap_used;
    q_objs = (long long)s1.objects - (long long)s0.objects;
    for (long i = 0; i < n; i++)
        xichan_queue_destroy(cl, qs[i]);

    s0 = stats(cl);
    for (long i = 0; i < n; i++)
        if ((err = xichan_chan_create(cl, NULL, &cs[i])))
            die("chan_create", err);
    s1 = stats(cl);
    c_heap = (long long)s1.heap_used - (long long)s0.heap_used;
    c_objs = (long long)s1.objects - (long long)s0.objects;
    for (long i = 0; i < n; i++)
        xichan_chan_destroy(cl, cs[i]);

    /* Items of each size in one queue. */
    for (int k = 0; k < NSIZES; k++) {
        xichan_queue_id q;
        long m = sizes[k] >= 65536 ? (n < 100 ? n : 100) : n;

        if ((err = xichan_queue_create(cl, NULL, &q)))
            die("queue_create", err);
        s0 = stats(cl);
        for (long i = 0; i < m; i++)
            if ((err = xichan_queue_put(cl, q, XICHAN_FMT_RAW, buf, sizes[k], 0, XICHAN_FOREVER)))
                die("put", err);
        s1 = stats(cl);
        item_bytes[k] = ((double)s1.heap_used - (double)s0.heap_used) / (double)m;
        xichan_queue_destroy(cl, q);
    }

    if (json) {
        printf("{\"count\":%ld,\"unit\":%u,\"sizeof_obj\":%zu,\"sizeof_binding\":%zu,"
               "\"item_overhead_const\":%zu,\"max_objects\":%u,"
               "\"queue\":{\"heap_delta\":%lld,\"objects_delta\":%lld},"
               "\"channel\":{\"heap_delta\":%lld,\"objects_delta\":%lld},\"items\":[",
               n, XICHAN_UNIT, sizeof(struct xichan_obj), sizeof(struct xichan_binding),
               (size_t)XICHAN_ITEM_OVERHEAD, s1.max_objects, q_heap, q_objs, c_heap, c_objs);
        for (int k = 0; k < NSIZES; k++)
            printf("%s{\"payload\":%zu,\"heap_per_item\":%.1f,\"overhead\":%.1f}", k ? "," : "",
                   sizes[k], item_bytes[k], item_bytes[k] - (double)sizes[k]);
        printf("]}\n");
    } else {
        printf("object slot %zu B, binding %zu B, item header %zu B, heap unit %u B\n",
               sizeof(struct xichan_obj), sizeof(struct xichan_binding),
               (size_t)XICHAN_ITEM_OVERHEAD, XICHAN_UNIT);
        printf("%ld empty queues: heap +%lld B, objects +%lld; %ld channels: heap +%lld B, "
               "objects +%lld\n", n, q_heap, q_objs, n, c_heap, c_objs);
        printf("%10s %14s %10s\n", "payload", "heap/item", "overhead");
        for (int k = 0; k < NSIZES; k++)
            printf("%10zu %14.1f %10.1f\n", sizes[k], item_bytes[k],
                   item_bytes[k] - (double)sizes[k]);
    }
    free(buf);
    free(cs);
    free(qs);
    xichan_client_close(cl);
    return 0;
}
