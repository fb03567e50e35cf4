/*
 * errors.c -- messages and names for XICHAN_E* codes, and the clock helpers.
 *
 * Both tables come from the one XICHAN_ERRNO_MAP in xichan.h, so a code
 * cannot exist without its message.
 */
#include <math.h>
#include <time.h>

#include "internal.h"

const char *xichan_strerror(int err)
{
    switch (err) {
    case 0:
        return "success";
#define XICHAN_ERR_MSG_(name, value, msg)                                                          \
    case value:                                                                                    \
        return msg;
        XICHAN_ERRNO_MAP(XICHAN_ERR_MSG_)
#undef XICHAN_ERR_MSG_
    default:
        return "unknown xichan error";
    }
}

const char *xichan_err_name(int err)
{
    switch (err) {
    case 0:
        return "0";
#define XICHAN_ERR_NAME_(name, value, msg)                                                         \
    case value:                                                                                    \
        return "XICHAN_" #name;
        XICHAN_ERRNO_MAP(XICHAN_ERR_NAME_)
#undef XICHAN_ERR_NAME_
    default:
        return "XICHAN_E?";
    }
}

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
