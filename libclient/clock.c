/*
 * clock.c -- the clock of every deadline: CLOCK_MONOTONIC nanoseconds, and
 * deadlines made from seconds.
 *
 * A deadline is absolute, so a wait that is interrupted and resumed (EINTR,
 * a spurious wake-up, a retry after a repair) never stretches it; wait.c
 * hands it to FUTEX_WAIT_BITSET as is.  Which code a deadline that passes
 * gives is one rule (xichan(7), Deadlines and timeouts).
 */
#include <time.h>

#include "internal.h"

int64_t xichan_now_ns(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

int64_t xichan_deadline(double seconds)
{
    int64_t now = xichan_now_ns();
    double ns;

    if (!(seconds > 0)) /* negative, zero and NaN: try once */
        return XICHAN_NOWAIT;
    ns = seconds * 1e9;
    if (ns >= (double)(XICHAN_FOREVER - now))
        return XICHAN_FOREVER;
    return now + (int64_t)ns;
}
