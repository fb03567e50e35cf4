/*
 * exhaust_segment.c -- a full segment, through every kind of object: queue
 * puts (single and batched), channel sends (send_nowait and rendezvous),
 * shared buffers and buffer items all fail with XICHAN_ENOSPC (a blocking
 * call once its deadline passed), whose message names --size; what was queued before stays intact and in order; and after
 * draining, every one of them succeeds again.  (bad_input.c covers the
 * plain queue case; this covers the rest.)
 *
 * The daemon gets a small segment (--size 4M, small tables) so that it
 * fills in a fraction of a second.
 */
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "harness.h"

#define CHUNK (64 * 1024)

static char blob[CHUNK];

static void stamp(int i)
{
    memset(blob, (char)i, sizeof(blob));
    memcpy(blob, &i, sizeof(i));
}

static void check_item(const xichan_item *it, int i)
{
    int v;

    XT_EQ_INT(it->len, CHUNK);
    XT_CHECK(!it->unbound);
    memcpy(&v, it->data, sizeof(v));
    XT_EQ_INT(v, i);
    XT_EQ_INT(((const unsigned char *)it->data)[CHUNK - 1], (unsigned char)i);
}

static void heap_empty(xichan_client *cl)
{
    xichan_stats st;

    XT_OK(xichan_stats_get(cl, &st));
    XT_EQ_INT(st.heap_used, 0);
}

static void enospc(int err)
{
    XT_ERR(err, XICHAN_ENOSPC);
    XT_CHECK(strstr(xichan_strerror(err), "--size") != NULL);
}

/* Queue: single puts until ENOSPC, a batch that fails whole, drain, again. */
static int fill_queue(xichan_client *cl, xichan_queue_id q)
{
    xichan_iov v[3] = {{blob, CHUNK, 0}, {blob, CHUNK, 0}, {blob, CHUNK, 0}};
    int n = 0, err;

    for (;;) {
        stamp(n);
        if ((err = xichan_queue_put(cl, q, 0, blob, CHUNK, 0, XICHAN_NOWAIT)) != 0)
            break;
        n++;
    }
    enospc(err);
    /* Room for none of three: the batch fails and queues nothing. */
    enospc(xichan_queue_put_many(cl, q, v, 3, 0, XICHAN_NOWAIT));
    /* A blocking put waits for room until its deadline, then ENOSPC
     * (heap_backpressure.c: the wait ends when room is made). */
    enospc(xichan_queue_put(cl, q, 0, blob, CHUNK, 0, xichan_deadline(0.2)));
    XT_EQ_INT(xichan_queue_count(cl, q), n);
    return n;
}

static void test_queue(xichan_client *cl)
{
    xichan_queue_id q;
    xichan_item it;
    int n, again = 0;

    XT_OK(xichan_queue_create(cl, NULL, &q));
    n = fill_queue(cl, q);
    XT_CHECK(n > 10);
    for (int i = 0; i < n; i++) {
        XT_OK(xichan_queue_get(cl, q, &it, XICHAN_NOWAIT));
        check_item(&it, i);
        xichan_item_release(&it);
    }
    XT_ERR(xichan_queue_get(cl, q, &it, XICHAN_NOWAIT), XICHAN_EEMPTY);
    heap_empty(cl);
    /* As much fits again, batches included. */
    for (;;) {
        xichan_iov v[2] = {{blob, CHUNK, 0}, {blob, CHUNK, 0}};
        int k = xichan_queue_put_many(cl, q, v, 2, 0, XICHAN_NOWAIT);
        if (k < 0) {
            enospc(k);
            break;
        }
        XT_EQ_INT(k, 2);
        again += 2;
    }
    XT_CHECK(again >= n - 2);
    XT_OK(xichan_queue_destroy(cl, q));
    heap_empty(cl);
    printf("queue: %d items of 64 KiB, ENOSPC, drained in order, %d again\n", n, again);
}

/* Channel: send_nowait until ENOSPC; a rendezvous send too, at its deadline. */
static void test_channel(xichan_client *cl)
{
    xichan_chan_id c;
    xichan_item it;
    int n = 0, err;

    XT_OK(xichan_chan_create(cl, NULL, &c));
    for (;;) {
        stamp(n);
        if ((err = xichan_chan_send_nowait(cl, c, 0, blob, CHUNK, 0)) < 0)
            break;
        n++;
    }
    enospc(err);
    enospc(xichan_chan_send(cl, c, 0, blob, CHUNK, 0, xichan_deadline(0.2)));
    XT_EQ_INT(xichan_chan_count(cl, c), n);
    for (int i = 0; i < n; i++) {
        XT_OK(xichan_chan_recv(cl, c, &it, XICHAN_NOWAIT));
        check_item(&it, i);
        xichan_item_release(&it);
    }
    XT_ERR(xichan_chan_recv(cl, c, &it, XICHAN_NOWAIT), XICHAN_EEMPTY);
    heap_empty(cl);
    /* Room again: a send_nowait, and a rendezvous send that times out
     * (no receiver) and withdraws its item. */
    XT_CHECK(xichan_chan_send_nowait(cl, c, 0, blob, CHUNK, 0) >= 0);
    XT_ERR(xichan_chan_send(cl, c, 0, blob, CHUNK, 0, XICHAN_NOWAIT), XICHAN_ETIMEDOUT);
    XT_EQ_INT(xichan_chan_count(cl, c), 1);
    XT_OK(xichan_chan_destroy(cl, c));
    heap_empty(cl);
    printf("channel: %d items of 64 KiB, ENOSPC (send_nowait and send), drained in order\n", n);
}

/* Shared buffers and buffer items. */
static void test_buffers(xichan_client *cl)
{
    enum { MAXB = 256 };
    static xichan_buf_id bufs[MAXB];
    int64_t shape[1] = {CHUNK};
    xichan_bufdesc copy = {.mode = XICHAN_BUF_COPY, .itemsize = 1, .ndim = 1, .shape = shape,
                           .nbytes = CHUNK, .data = blob};
    xichan_bufdesc shared = {.mode = XICHAN_BUF_SHARED, .itemsize = 1, .ndim = 1, .shape = shape,
                             .nbytes = CHUNK};
    int64_t sshape[1] = {16};
    xichan_queue_id q;
    xichan_item it;
    int nb = 0, err, nq = 0;

    XT_OK(xichan_queue_create(cl, NULL, &q));
    /* Buffers until the segment is full. */
    for (;;) {
        XT_CHECK(nb < MAXB);
        if ((err = xichan_buf_create(cl, CHUNK, &bufs[nb])) != 0)
            break;
        nb++;
    }
    enospc(err);
    XT_CHECK(nb > 10);
    /* No room for a copy, nor for a reference to a shared buffer. */
    enospc(xichan_queue_put_buffer(cl, q, &copy, 0, XICHAN_NOWAIT));
    shared.buf = bufs[0];
    shared.shape = sshape;
    shared.nbytes = 16;
    err = xichan_queue_put_buffer(cl, q, &shared, 0, XICHAN_NOWAIT);
    if (err == 0)
        nq++; /* a few bytes may still fit in a left-over fragment */
    else
        enospc(err);
    /* The buffers are intact: each still maps and holds what we wrote. */
    for (int i = 0; i < nb; i++) {
        void *p;
        size_t size;
        XT_OK(xichan_buf_map(cl, bufs[i], &p, &size));
        XT_EQ_INT(size, CHUNK);
        memset(p, i, 16);
    }
    /* Free two buffers: buffer items fit again. */
    XT_OK(xichan_buf_unbind(cl, bufs[nb - 1]));
    XT_OK(xichan_buf_unbind(cl, bufs[nb - 2]));
    nb -= 2;
    XT_OK(xichan_queue_put_buffer(cl, q, &copy, 0, XICHAN_NOWAIT));
    XT_OK(xichan_queue_put_buffer(cl, q, &shared, 0, XICHAN_NOWAIT));
    nq += 2;
    XT_EQ_INT(xichan_queue_count(cl, q), nq);
    for (int i = 0; i < nq; i++) {
        int64_t shapebuf[XICHAN_BUF_MAXDIM];
        char fmtbuf[256];
        xichan_bufdesc d;
        void *ptr;

        XT_OK(xichan_queue_get(cl, q, &it, XICHAN_NOWAIT));
        XT_OK(xichan_item_buffer(cl, &it, &d, fmtbuf, shapebuf, &ptr));
        if (d.mode == XICHAN_BUF_SHARED) {
            XT_EQ_INT(((unsigned char *)ptr)[0], 0); /* bufs[0], as written above */
            XT_OK(xichan_buf_unbind(cl, d.buf));
        } else {
            XT_EQ_INT(d.nbytes, CHUNK);
        }
        xichan_item_release(&it);
    }
    for (int i = 0; i < nb; i++)
        XT_OK(xichan_buf_unbind(cl, bufs[i]));
    XT_OK(xichan_queue_destroy(cl, q));
    heap_empty(cl);
    /* All the room is back. */
    for (int i = 0; i < nb + 2; i++)
        XT_OK(xichan_buf_create(cl, CHUNK, &bufs[i]));
    for (int i = 0; i < nb + 2; i++)
        XT_OK(xichan_buf_unbind(cl, bufs[i]));
    heap_empty(cl);
    printf("buffers: %d of 64 KiB, ENOSPC for buffers and buffer items, intact, room again\n", nb + 2);
}

/* Another process fills the segment; this one still drains it. */
static xichan_queue_id shared_q;
static void filler(void *arg)
{
    xichan_client *cl;
    int *n = arg;

    XT_OK(xichan_client_open(&cl, NULL));
    XT_OK(xichan_queue_bind(cl, shared_q));
    *n = fill_queue(cl, shared_q);
    /* Exit without closing: the daemon ends the session. */
    _exit(*n > 10 ? 0 : 1);
}

static void test_cross_process(xichan_client *cl)
{
    xichan_item it;
    int *n, got = 0;
    pid_t pid;

    n = mmap(NULL, sizeof(*n), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    XT_CHECK(n != MAP_FAILED);
    XT_OK(xichan_queue_create(cl, NULL, &shared_q));
    pid = xt_fork(filler, n);
    XT_EQ_INT(xt_wait(pid, 30000), 0);
    /* The filler has exited: the daemon ends its session and drops its
     * binding; its items stay, as they were put. */
    {
        uint32_t sids[4];
        double t0 = xt_now();
        while (xichan_obj_sessions(cl, XICHAN_KIND_QUEUE, shared_q.id, sids, 4) != 1) {
            XT_CHECK(xt_now() - t0 < 10.0);
            xt_sleep_ms(5);
        }
    }
    /* Every item, in order: none lost. */
    for (;;) {
        int err = xichan_queue_get(cl, shared_q, &it, XICHAN_NOWAIT);
        if (err == XICHAN_EEMPTY)
            break;
        XT_OK(err);
        check_item(&it, got++);
        xichan_item_release(&it);
    }
    XT_EQ_INT(got, *n);
    XT_OK(xichan_queue_destroy(cl, shared_q));
    heap_empty(cl);
    printf("cross-process: a full segment left by a process that exited: %d items, all "
           "delivered\n", *n);
    munmap(n, sizeof(*n));
}

int main(void)
{
    xichan_client *cl;

    xt_start_daemon("--size 4M --objects 64 --bindings 256");
    XT_OK(xichan_client_open(&cl, NULL));
    heap_empty(cl);
    test_queue(cl);
    test_channel(cl);
    test_buffers(cl);
    test_cross_process(cl);
    xichan_client_close(cl);
    return 0;
}
