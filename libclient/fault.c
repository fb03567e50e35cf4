/*
 * fault.c -- numbered fault points for crash and error-path tests (built
 * with -DXICHAN_FAULTS; internal.h lists the points).
 *
 * XICHAN_FAULT=N arms point N for the first time it is reached;
 * XICHAN_FAULT_HIT=K waits for the Kth time instead.  A kill point then
 * SIGKILLs the process -- SIGKILL and not abort(): the point is to die
 * exactly as a kill -9 would, with no handler, no atexit and no unlocking.
 * A fail point makes that one pass fail (xichan__fault_fail returns 1) and
 * is disarmed afterwards, so the caller's retry or the test's next step
 * runs normally.  Tests that fork set the point in the child with
 * xichan__fault_set(), which overrides the environment.
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

/* 1 when this pass of point is the armed one. */
static int fires(enum xichan_fault point)
{
    if (fault_point < 0) {
        const char *p = getenv("XICHAN_FAULT"), *h = getenv("XICHAN_FAULT_HIT");
        fault_point = p ? atoi(p) : 0;
        fault_hit = h ? atol(h) : 1;
    }
    if ((int)point != fault_point)
        return 0;
    return __atomic_add_fetch(&fault_seen, 1, __ATOMIC_RELAXED) == fault_hit;
}

void xichan__fault(enum xichan_fault point)
{
    if (fires(point))
        kill(getpid(), SIGKILL);
}

int xichan__fault_fail(enum xichan_fault point)
{
    return fires(point);
}

long xichan__fault_passes(void)
{
    return __atomic_load_n(&fault_seen, __ATOMIC_RELAXED);
}
#else
/* Keep the translation unit non-empty in normal builds. */
typedef int xichan_fault_unused;
#endif
