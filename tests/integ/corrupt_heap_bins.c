/*
 * corrupt_heap_bins.c -- a scribbled heap free list does not crash xichand,
 * and the heap heals: the next alloc or free rebuilds the lists.
 *
 * alloc.c keeps its free lists in the segment: hdr->bins[k] and the
 * next/prev links in each free block, "transient" state a client that maps
 * the segment can overwrite.  They used to be followed without a bounds
 * check, so one scribbled word -- here hdr->bins[2] -- made the next free of
 * a small block store through it, 32 GiB past the heap; the block is freed
 * by the daemon's own session cleanup when the client closes, so xichand
 * died with SIGSEGV (found by tests/fuzz/fuzz_segment, then "known bug
 * bins").  Now every entry is validated before use and an inconsistent
 * list is rebuilt from the block walk (alloc.c, tag-heap-trust).
 *
 * Checks: the daemon survives the cleanup; a new client can then allocate
 * and free through the rebuilt lists, and the heap passes its check.  The
 * same with a free-list link into a forged "block" inside another block's
 * payload (fuzz repro segment-interior) and a free neighbour header of
 * size 0 (segment-bins-clz0) is covered by `make fuzz-repro`.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "internal.h"
#include "harness.h"

/* 0 while the daemon is alive (WNOWAIT: the harness reaps it at exit). */
static int daemon_died(pid_t pid, siginfo_t *si)
{
    si->si_pid = 0;
    return waitid(P_PID, (id_t)pid, si, WEXITED | WNOHANG | WNOWAIT) == 0 && si->si_pid == pid;
}

int main(void)
{
    struct xichan_heap_report r;
    xichan_client *cl, *cl2;
    xichan_queue_id q;
    xichan_item it;
    siginfo_t si;
    pid_t pid;
    char big[100]; /* 9 units: bin 3 */

    xt_start_daemon("--size 8M");
    pid = xt_daemon_pid();
    XT_OK(xichan_client_open(&cl, NULL));
    XT_OK(xichan_queue_create(cl, NULL, &q));
    /* Three items of 4 units each: freeing the first merges with nothing. */
    XT_OK(xichan_queue_put(cl, q, 0, "0123456789abcdef0123456789abcdef", 32, 0, XICHAN_NOWAIT));
    XT_OK(xichan_queue_put(cl, q, 0, "second", 6, 0, XICHAN_NOWAIT));
    XT_OK(xichan_queue_put(cl, q, 0, "third", 5, 0, XICHAN_NOWAIT));

    /* The corruption: one free-list head, bin 2 (blocks of 4..7 units). */
    cl->shm->hdr->bins[2] = 0x7fffffff;

    /* Closing ends the session: the daemon destroys q and frees its items. */
    xichan_client_close(cl);
    for (int i = 0; i < 50; i++) {
        if (daemon_died(pid, &si)) {
            printf("xichand died (%s %d) freeing a block after a client scribbled hdr->bins[2]\n",
                   si.si_code == CLD_EXITED ? "exit status" : "signal", si.si_status);
            return 1;
        }
        xt_sleep_ms(10);
    }

    /* The lists were rebuilt: the namespace works and the heap is sound. */
    XT_OK(xichan_client_open(&cl2, NULL));
    XT_OK(xichan_queue_create(cl2, NULL, &q));
    cl2->shm->hdr->bins[3] = 12345; /* once more, now in this client's own alloc */
    cl2->shm->hdr->heap_bitmap |= 1ull << 40;
    memset(big, 'x', sizeof(big));
    XT_OK(xichan_queue_put(cl2, q, 0, big, sizeof(big), 0, XICHAN_NOWAIT));
    XT_OK(xichan_queue_get(cl2, q, &it, XICHAN_NOWAIT));
    XT_EQ_INT(it.len, 100);
    xichan_item_release(&it);
    XT_OK(xichan__heap_check(cl2->shm, &r));
    if (!r.ok) {
        printf("heap check after the rebuild: %s\n", r.why);
        return 1;
    }
    xichan_client_close(cl2);
    XT_CHECK(!daemon_died(pid, &si));
    printf("xichand survived a scribbled free list, and the lists were rebuilt\n");
    return 0;
}
