/*
 * ctl.h -- for the tests that run xichanctl as a user does (ctl_*.c):
 *
 *   run(fmt, ...)   runs a shell command line: its exit status, its
 *                   stdout+stderr in out;
 *   HAS(s)          out holds s;
 *   EXPECT(status, want, fmt, ...)
 *                   runs the command line, whose status must be status and
 *                   whose output must hold want (unless want is NULL).
 */
#ifndef XICHAN_TEST_CTL_H
#define XICHAN_TEST_CTL_H

#include "harness.h"

static char out[65536];

#define run(...) xt_sh(out, sizeof(out), __VA_ARGS__)
#define HAS(s) XT_HAS(out, s)
#define EXPECT(status, want, ...)                                                                  \
    do {                                                                                           \
        const char *want_ = (want);                                                                \
        XT_EQ_INT(run(__VA_ARGS__), status);                                                       \
        if (want_)                                                                                 \
            HAS(want_);                                                                            \
    } while (0)

#endif
