/*
 * bug_fifo_tail.c -- KNOWN BUG (fails until fixed): a corrupt fifo.tail in
 * the segment makes a put store outside the segment.
 *
 * fifo.tail is derived state (shm_layout.h: recomputed by
 * xichan__fifo_repair after a crash), but xichan__fifo_push stores through
 * it unchecked: blk_at(shm, f->tail)->link = off.  A queue whose tail word
 * was scribbled (here to 0x10000000 units, 4 GiB past the heap) kills the
 * next process that puts into it with SIGSEGV -- while it holds the
 * queue's lock, so the next locker must repair.  Found by tests/fuzz/
 * fuzz_segment (known bug "tail").  The same holds for a tail inside the
 * heap that is not the last linked block: the put then links its item
 * into some other block, possibly a free one.
 *
 * No daemon: a private segment, as in fault_sweep.c.  The put runs in a
 * child; passes once the child survives (an error return is fine).
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

#include "internal.h"

extern pid_t xichan__pid_cache;

int main(void)
{
    struct xichan_shm_geometry g = {4u << 20, 8, 16, 64};
    struct xichan_shm *shm;
    xichan_client *cl = calloc(1, sizeof(*cl));
    struct xichan_objref ref;
    xichan_queue_id q;
    char name[64];
    int status;
    pid_t pid;

    xichan__pid_cache = getpid();
    snprintf(name, sizeof(name), "/xichan-bug-tail-%d", (int)getpid());
    if (!cl || xichan__shm_create(name, &g, &shm) != 0)
        return 2;
    xichan__shm_unlink(name);
    if (xichan__session_new(shm, getpid(), getuid(), "bug", &cl->slot, &cl->sid) != 0)
        return 2;
    cl->shm = shm;
    cl->fd = -1;
    cl->pid = getpid();
    if (xichan_queue_create(cl, NULL, &q) || xichan_queue_put(cl, q, 0, "one", 3, 0, XICHAN_NOWAIT) ||
        xichan__obj_find(shm, XICHAN_KIND_QUEUE, q.id, &ref))
        return 2;

    ref.o->fifo.tail = 0x10000000; /* the corruption */

    fflush(NULL);
    pid = fork();
    if (pid == 0) {
        xichan__pid_cache = getpid();
        cl->pid = getpid();
        alarm(10);
        (void)xichan_queue_put(cl, q, 0, "two", 3, 0, XICHAN_NOWAIT);
        _exit(0);
    }
    waitpid(pid, &status, 0);
    if (WIFSIGNALED(status)) {
        printf("KNOWN BUG (fifo.c push): a put into a queue with a scribbled fifo.tail died of "
               "signal %d\n", WTERMSIG(status));
        return 1;
    }
    printf("a put into a queue with a scribbled tail returned\n");
    return 0;
}
