/*
 * throughput.c -- one-way and MPMC throughput through xichan queues.
 *
 *   throughput [--quick] [--json]
 *
 * one-way: one producer process puts N items of a size into a bounded
 * queue, one consumer process gets them; items/s and MB/s from the first
 * put to the last get, for 8 B ... 16 MiB, with put/get and with
 * put_many/get_many (batches of 64).  mpmc: P producers and C consumers on
 * one queue (1x1, 4x4, 20x20), small items.  Needs a daemon whose segment
 * holds a few 16 MiB items (xichand --size 256M).
 *
 * A put_many batch is capped at the queue's maxsize and at BATCH_BYTES of
 * payload: put_many allocates the whole batch in one pass, so a batch larger
 * than the free segment fails with XICHAN_ENOSPC instead of waiting.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "xichan.h"

#define BATCH 64
#define BATCH_BYTES (32u << 20)

static int json, quick;

static void die(const char *what, int err)
{
    fprintf(stderr, "throughput: %s: %s\n", what, xichan_strerror(err));
    exit(1);
}

static xichan_client *client(void)
{
    xichan_client *cl;
    int err = xichan_client_open(&cl, NULL);

    if (err)
        die("open", err);
    return cl;
}

/* Items per put_many for this size and bound (see the top of the file). */
static int batch_for(size_t size, int64_t maxsize)
{
    size_t k = BATCH;

    if (maxsize > 0 && (size_t)maxsize < k)
        k = (size_t)maxsize;
    if (size * k > BATCH_BYTES)
        k = BATCH_BYTES / size ? BATCH_BYTES / size : 1;
    return (int)k;
}

/* batch: items per put_many, 0 for single puts. */
static void produce(xichan_queue_id q, long n, size_t size, int batch)
{
    xichan_client *cl = client();
    char *buf = calloc(1, size);
    xichan_iov iov[BATCH];
    int err;

    for (int i = 0; i < BATCH; i++)
        iov[i] = (xichan_iov){buf, size, XICHAN_FMT_RAW};
    for (long i = 0; i < n;) {
        if (batch) {
            int k = n - i < batch ? (int)(n - i) : batch;
            err = xichan_queue_put_many(cl, q, iov, (size_t)k, 0, xichan_deadline(60));
            if (err < 0)
                die("put_many", err);
            i += err;
        } else {
            if ((err = xichan_queue_put(cl, q, 0, buf, size, 0, xichan_deadline(60))))
                die("put", err);
            i++;
        }
    }
    free(buf);
    /* Our items outlive us only as UNBOUND markers: wait until they are taken. */
    while (xichan_queue_count(cl, q) > 0)
        usleep(1000);
    xichan_client_close(cl);
}

static void consume(xichan_queue_id q, long n, int batch)
{
    xichan_client *cl = client();
    xichan_item it[BATCH];
    int err;

    for (long i = 0; i < n;) {
        if (batch) {
            /* Never take more than our share: the others would starve. */
            size_t want = n - i < BATCH ? (size_t)(n - i) : BATCH;
            err = xichan_queue_get_many(cl, q, it, want, xichan_deadline(60));
            if (err < 0)
                die("get_many", err);
            xichan_items_release(it, (size_t)err);
            i += err;
        } else {
            if ((err = xichan_queue_get(cl, q, &it[0], xichan_deadline(60))))
                die("get", err);
            xichan_item_release(&it[0]);
            i++;
        }
    }
    xichan_client_close(cl);
}

/* P producers and C consumers, n items in all; returns seconds. */
static double run(int np, int nc, long n, size_t size, int batch, int64_t maxsize)
{
    xichan_client *cl = client();
    xichan_queue_id q;
    pid_t pids[64];
    int64_t t0;
    int err, k = 0, status;

    if ((err = xichan_queue_create(cl, &(xichan_queue_opts){.maxsize = maxsize}, &q)))
        die("create", err);
    t0 = xichan_now_ns();
    for (int i = 0; i < nc; i++)
        if ((pids[k++] = fork()) == 0) {
            consume(q, n / nc + (i < n % nc), batch);
            _exit(0);
        }
    for (int i = 0; i < np; i++)
        if ((pids[k++] = fork()) == 0) {
            produce(q, n / np + (i < n % np), size, batch ? batch_for(size, maxsize) : 0);
            _exit(0);
        }
    for (int i = 0; i < k; i++) {
        waitpid(pids[i], &status, 0);
        if (!WIFEXITED(status) || WEXITSTATUS(status))
            die("worker failed", XICHAN_EIO);
    }
    xichan_queue_destroy(cl, q);
    xichan_client_close(cl);
    return (xichan_now_ns() - t0) / 1e9;
}

static int first = 1;

static void report(const char *shape, size_t size, int batch, long n, double secs)
{
    double ips = n / secs, mbs = ips * (double)size / 1e6;

    if (json) {
        printf("%s{\"shape\":\"%s\",\"size\":%zu,\"batch\":%s,\"items\":%ld,\"seconds\":%.4f,"
               "\"items_per_s\":%.0f,\"mb_per_s\":%.1f}",
               first ? "" : ",", shape, size, batch ? "true" : "false", n, secs, ips, mbs);
        first = 0;
    } else {
        printf("%-8s %10zu %-9s %9ld %12.0f %10.1f\n", shape, size, batch ? "many" : "single", n,
               ips, mbs);
    }
    fflush(stdout);
}

int main(int argc, char **argv)
{
    static const size_t sizes[] = {8, 64, 1024, 4096, 65536, 1 << 20, 16 << 20};
    static const int shapes[][2] = {{1, 1}, {4, 4}, {20, 20}};

    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--json"))
            json = 1;
        else if (!strcmp(argv[i], "--quick"))
            quick = 1;
        else {
            fprintf(stderr, "usage: throughput [--quick] [--json]\n");
            return 2;
        }
    }
    if (json)
        printf("{\"throughput\":[");
    else
        printf("%-8s %10s %-9s %9s %12s %10s\n", "shape", "bytes", "ops", "items", "items/s",
               "MB/s");
    for (size_t s = 0; s < sizeof(sizes) / sizeof(sizes[0]); s++) {
        size_t size = sizes[s];
        long n = size <= 64 ? 200000 : size <= 4096 ? 100000 : size <= 65536 ? 20000
                 : size <= (1 << 20) ? 1000 : 60;
        if (quick)
            n /= 10;
        for (int batch = 0; batch < 2; batch++)
            report("1x1", size, batch, n, run(1, 1, n, size, batch, size > (1 << 20) ? 4 : 256));
    }
    for (size_t k = 0; k < sizeof(shapes) / sizeof(shapes[0]); k++) {
        long n = quick ? 20000 : 200000;
        char name[16];
        snprintf(name, sizeof(name), "%dx%d", shapes[k][0], shapes[k][1]);
        for (int batch = 0; batch < 2; batch++)
            report(name, 64, batch, n, run(shapes[k][0], shapes[k][1], n, 64, batch, 1024));
    }
    if (json)
        printf("]}\n");
    return 0;
}
