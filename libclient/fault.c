/*
 * fault.c -- numbered fault points for crash tests (built with -DXICHAN_FAULTS).
 *
 * XICHAN_FAULT=N makes the process SIGKILL itself the first time point N is
 * reached; XICHAN_FAULT_HIT=K waits for the Kth time instead.  SIGKILL and
 * not abort(): the point is to die exactly as a kill -9 would, with no
 * handler, no atexit and no unlocking.  Tests that fork set the point in
 * the child with xichan__fault_set(), which overrides the environment.
 */
#ifdef XICHAN_FAULTS
#include <signal.h>
#include <stdlib.h>
#include <unistd.h>

#include "internal.h"

static int fault_point = -1;
static long fault_hit = 1;
static long fault_seen;

void xichan__fault_set(int point, long hit)
{
    fault_point = point;
    fault_hit = hit > 0 ? hit : 1;
    fault_seen = 0;
}

void xichan__fault(enum xichan_fault point)
{
    if (fault_point < 0) {
        const char *p = getenv("XICHAN_FAULT"), *h = getenv("XICHAN_FAULT_HIT");
        fault_point = p ? atoi(p) : 0;
        fault_hit = h ? atol(h) : 1;
    }
    if ((int)point != fault_point)
        return;
    if (__atomic_add_fetch(&fault_seen, 1, __ATOMIC_RELAXED) == fault_hit)
        kill(getpid(), SIGKILL);
}
#else
/* Keep the translation unit non-empty in normal builds. */
typedef int xichan_fault_unused;
#endif
