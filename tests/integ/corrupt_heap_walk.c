/*
 * corrupt_heap_walk.c -- an allocation over a cyclic free list neither
 * loops nor fails: the list is found inconsistent, rebuilt, and the
 * allocation served.
 *
 * find_block's last resort used to walk the request's own bin for up to
 * hdr->heap_blocks + 1 entries; heap_blocks is a statistic in the segment
 * (transient, like the bins), so it capped nothing once scribbled, and a
 * free-list link pointing back at its own block made the walk endless while
 * it held heap_lock, stalling every process of the namespace and the
 * daemon's cleanups.  Now each step checks the back link (which no cycle
 * passes), walks are capped by the geometry (xichan__heap_max_blocks), a
 * bitmap that disagrees with the bins is not believed, and an inconsistent
 * list is rebuilt from the block walk (alloc.c, tag-heap-trust).  Every word
 * written below lies inside the heap.
 *
 * No daemon: a private segment.  The put runs in a child with a 5 s alarm
 * and must succeed; the heap must then pass its check.
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

#include "internal.h"
#include "private.h"

extern pid_t xichan__pid_cache;

int main(void)
{
    struct xichan_shm_geometry g = {4u << 20, 8, 16, 64};
    struct xichan_shm *shm;
    xichan_client *cl;
    xichan_queue_id q;
    xichan_item it;
    struct xichan_blk *f;
    char big[80] = {0};
    int status;
    pid_t pid;

    xichan__pid_cache = getpid();
    shm = private_segment("corrupt-walk", &g);
    cl = private_client(shm, "test");
    /* A free block of 4 units at the start of the heap (bin 2). */
    if (xichan_queue_create(cl, NULL, &q) ||
        xichan_queue_put(cl, q, 0, "0123456789abcdef0123456789abcdef", 32, 0, XICHAN_NOWAIT) ||
        xichan_queue_put(cl, q, 0, "keep", 4, 0, XICHAN_NOWAIT) ||
        xichan_queue_get(cl, q, &it, XICHAN_NOWAIT))
        return 2;
    xichan_item_release(&it);
    xichan__cache_flush(cl); /* to the heap, not the client's block cache */
    f = xichan__blk(shm, shm->hdr->bins[2]);
    if (!f || f->size != 4)
        return 2;

    /* The corruption: the block links to itself, the big free block is
     * hidden from the bitmap, and the block count is huge. */
    ((struct xichan_freelinks *)(f + 1))->next = shm->hdr->bins[2];
    shm->hdr->heap_bitmap = 1u << 2;
    shm->hdr->heap_blocks = 1ull << 60;

    fflush(NULL);
    pid = fork();
    if (pid == 0) {
        struct xichan_heap_report r;

        xichan__pid_cache = getpid();
        cl->pid = getpid();
        alarm(5);
        /* 80 bytes: 7 units, bin 2, more than the looping block holds. */
        if (xichan_queue_put(cl, q, 0, big, sizeof(big), 0, XICHAN_NOWAIT) != 0)
            _exit(3);
        if (xichan__heap_check(shm, &r) != 0 || !r.ok) {
            printf("heap check after the put: %s\n", r.why);
            _exit(4);
        }
        _exit(0);
    }
    waitpid(pid, &status, 0);
    if (WIFSIGNALED(status) && WTERMSIG(status) == SIGALRM) {
        printf("an 80-byte put still looped after 5 s, holding heap_lock\n");
        return 1;
    }
    if (WIFSIGNALED(status)) {
        printf("the put died of signal %d\n", WTERMSIG(status));
        return 1;
    }
    if (WEXITSTATUS(status) != 0) {
        printf("the put over a cyclic free list failed (child status %d)\n", WEXITSTATUS(status));
        return 1;
    }
    printf("a put over a cyclic free list succeeded, the list rebuilt\n");
    xichan__shm_unmap(shm);
    free(cl);
    return 0;
}
