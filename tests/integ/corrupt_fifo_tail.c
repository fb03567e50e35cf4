/*
 * corrupt_fifo_tail.c -- a scribbled fifo.tail costs nothing: a put
 * recomputes it from head and links its item at the real end.
 *
 * fifo.tail is derived state (shm_layout.h: recomputed by
 * xichan__fifo_repair after a crash), and xichan__fifo_push used to store
 * through it unchecked, so a tail scribbled to 0x10000000 units (4 GiB past
 * the heap) killed the next process that put into the queue, while it held
 * the queue's lock; a tail inside the heap that was not the last linked
 * block made the put link its item into some other block (found by
 * tests/fuzz/fuzz_segment, then "known bug tail").  Now a push uses tail
 * only if it names a QUEUED block that ends the list, and otherwise
 * recomputes it (fifo.c, tag-fifo-trust); emptiness is asked of head.
 *
 * Three scribbles, each followed by a put that must succeed and keep FIFO
 * order with nothing lost: a tail far outside the heap, a tail at the first
 * of two items (inside the heap, not the end), and a tail of 0 on a queue
 * that is not empty.  No daemon: a private segment, as in fault_sweep.c;
 * the puts run in a child, which must not die.
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "internal.h"
#include "private.h"
#include "harness.h"

extern pid_t xichan__pid_cache;

static xichan_client *cl;
static xichan_queue_id q;
static struct xichan_objref ref;

static void put(const char *s)
{
    XT_OK(xichan_queue_put(cl, q, 0, s, strlen(s), 0, XICHAN_NOWAIT));
}

static void get(const char *want)
{
    xichan_item it;

    XT_OK(xichan_queue_get(cl, q, &it, XICHAN_NOWAIT));
    XT_EQ_INT(it.len, strlen(want));
    XT_CHECK(memcmp(it.data, want, it.len) == 0);
    xichan_item_release(&it);
}

static void scribbles(void *unused)
{
    struct xichan_fifo *f = &ref.o->fifo;

    xichan__pid_cache = getpid();
    cl->pid = getpid();
    alarm(10);
    put("one");
    f->tail = 0x10000000; /* far outside the heap */
    put("two");
    XT_EQ_INT(f->count, 2);
    f->tail = f->head; /* inside the heap, but not the end */
    put("three");
    f->tail = 0; /* "empty", which head says it is not */
    put("four");
    XT_EQ_INT(f->count, 4);
    get("one");
    get("two");
    get("three");
    get("four");
    XT_ERR(xichan_queue_get(cl, q, &(xichan_item){0}, XICHAN_NOWAIT), XICHAN_EEMPTY);
}

int main(void)
{
    struct xichan_shm_geometry g = {4u << 20, 8, 16, 64};
    struct xichan_shm *shm;
    int status;

    xichan__pid_cache = getpid();
    shm = private_segment("corrupt-tail", &g);
    cl = private_client(shm, "test");
    XT_OK(xichan_queue_create(cl, NULL, &q));
    XT_OK(xichan__obj_find(shm, XICHAN_KIND_QUEUE, q.id, &ref));

    status = xt_wait(xt_fork(scribbles, NULL), 20000);
    if (status > 128) {
        printf("a put into a queue with a scribbled fifo.tail died of signal %d\n", status - 128);
        return 1;
    }
    XT_EQ_INT(status, 0);
    printf("puts over scribbled tails kept every item, in order\n");
    return 0;
}
