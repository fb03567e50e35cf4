/*
 * bug_heap_bins.c -- KNOWN BUG (fails until fixed): a corrupt heap free
 * list in the segment crashes xichand.
 *
 * alloc.c keeps its free lists in the segment: hdr->bins[k] and the
 * next/prev links in each free block.  They are "transient" state (rebuilt
 * by xichan__heap_repair only after a lock holder died), and bin_insert,
 * bin_remove and bin_first_fit follow them without any bounds check.  So
 * one scribbled word -- here hdr->bins[2], written by a client that maps
 * the segment -- makes the next free of a small block store through it:
 * links(at(shm, bins[k]))->prev = off, 32 GiB past the heap.  The block is
 * freed by the daemon's own session cleanup when the client closes, so
 * xichand dies with SIGSEGV (DESIGN.md: "a corrupt segment may make an
 * operation fail, never the daemon crash").  Found by tests/fuzz/
 * fuzz_segment (known bug "bins").
 *
 * Other faces of the same trust, found by the fuzzer (tests/fuzz/repro/):
 * a free-list link into a forged "block" inside another block makes
 * bin_remove store out of bounds (segment-interior); a free neighbour
 * header of size 0 reaches bin_of(0), i.e. __builtin_clz(0), undefined
 * behaviour (segment-bins-clz0); bin_first_fit's walk is capped by
 * hdr->heap_blocks, itself untrusted (bug_heap_walk_hang.c).
 *
 * Passes once the daemon survives (the close may report an error).
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <sys/wait.h>
#include <unistd.h>

#include "internal.h"
#include "../integ/harness.h"

int main(void)
{
    xichan_client *cl;
    xichan_queue_id q;
    siginfo_t si;
    pid_t pid;

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
    /* Did it die?  (WNOWAIT: the harness reaps it at exit.) */
    for (int i = 0; i < 100; i++) {
        si.si_pid = 0;
        if (waitid(P_PID, (id_t)pid, &si, WEXITED | WNOHANG | WNOWAIT) == 0 && si.si_pid == pid) {
            printf("KNOWN BUG (alloc.c free lists): xichand died (%s %d) freeing a block after "
                   "a client scribbled hdr->bins[2]\n",
                   si.si_code == CLD_EXITED ? "exit status" : "signal", si.si_status);
            return 1;
        }
        xt_sleep_ms(10);
    }
    printf("xichand survived a scribbled free list\n");
    return 0;
}
