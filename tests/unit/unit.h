/*
 * unit.h -- helpers for the cmocka unit tests: a private segment and
 * in-process sessions, no daemon.
 *
 * ut_seg_new() creates a fresh segment with a unique name (unlinked at once,
 * so a crashed test leaves nothing in /dev/shm), and ut_client() makes a
 * session in it the way the daemon would (xichan__session_new) and wraps it
 * in a xichan_client that the public API accepts.  ut_client_end() runs the
 * daemon's session cleanup, as when a process dies.
 *
 * Fixtures: ut_seg_setup/ut_seg_teardown give each test a fresh segment in
 * shm; ut_client_setup/ut_client_teardown also a session cl in it, which the
 * teardown ends (as a dying process) and then checks that the heap is whole
 * -- with ut_client_teardown_empty, also that it holds nothing any more.
 */
#ifndef XICHAN_UNIT_H
#define XICHAN_UNIT_H

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "internal.h"

extern pid_t xichan__pid_cache;

/*
 * Timing in these tests is checked one way only: a timed wait never ends
 * before its deadline (a lower bound), and nothing hangs -- an upper bound
 * of at least UT_HANG_MS beyond what is expected, since they run on busy
 * 2-core boxes and under valgrind.  How fast things are is the bench's
 * business (scripts/bench), not a test's.
 */
#define UT_HANG_MS 2000

static inline struct xichan_shm *ut_seg_new_geo(uint64_t size, uint32_t nobjects, uint32_t nbindings)
{
    static int counter;
    struct xichan_shm_geometry g = {size, 64, nobjects, nbindings};
    struct xichan_shm *shm = NULL;
    char name[64];

    snprintf(name, sizeof(name), "/xichan-ut-%d-%d", (int)getpid(), counter++);
    xichan__pid_cache = getpid();
    assert_int_equal(xichan__shm_create(name, &g, &shm), 0);
    xichan__shm_unlink(name);
    return shm;
}

static inline struct xichan_shm *ut_seg_new(void)
{
    return ut_seg_new_geo(4u << 20, 256, 1024);
}

static inline xichan_client *ut_client(struct xichan_shm *shm)
{
    xichan_client *cl = calloc(1, sizeof(*cl));

    assert_non_null(cl);
    assert_int_equal(xichan__session_new(shm, getpid(), getuid(), "unit", &cl->slot, &cl->sid), 0);
    cl->shm = shm;
    cl->fd = -1;
    cl->pid = getpid();
    return cl;
}

/* The session ends how (XICHAN_ENDED_*): the daemon's cleanup runs. */
static inline void ut_client_end_how(xichan_client *cl, int how)
{
    assert_int_equal(xichan__session_ending(cl->shm, cl->slot, cl->sid, how), 0);
    assert_int_equal(xichan__session_cleanup(cl->shm, cl->slot, 0), 0);
    free(cl);
}

/* The session ends as if its process died: its items stay. */
static inline void ut_client_end(xichan_client *cl)
{
    ut_client_end_how(cl, XICHAN_ENDED_KEEP);
}

/* The session ends by an unbind (a destroyed subinterpreter): unbound ops apply. */
static inline void ut_client_unbind(xichan_client *cl)
{
    ut_client_end_how(cl, XICHAN_ENDED_UNBIND);
}

static inline void ut_heap_ok(struct xichan_shm *shm)
{
    struct xichan_heap_report r;

    assert_int_equal(xichan__heap_check(shm, &r), 0);
    if (!r.ok)
        fail_msg("heap check: %s", r.why);
}

/* Reaps a forked child (each has an alarm: none can hang) and checks that
 * it exited with code. */
static inline void ut_child_exit(pid_t pid, int code)
{
    int status;

    assert_int_equal(waitpid(pid, &status, 0), pid);
    if (!WIFEXITED(status))
        fail_msg("child ended by signal %d, expected exit %d",
                 WIFSIGNALED(status) ? WTERMSIG(status) : -1, code);
    assert_int_equal(WEXITSTATUS(status), code);
}

/* ------------------------------------------------------------ fixtures */

static struct xichan_shm *shm; /* the test's segment */
static xichan_client *cl;      /* with ut_client_setup: a session in it */

static inline int ut_seg_setup(void **state)
{
    (void)state;
    shm = ut_seg_new();
    return 0;
}

static inline int ut_seg_teardown(void **state)
{
    (void)state;
    xichan__shm_unmap(shm);
    shm = NULL;
    return 0;
}

static inline int ut_client_setup(void **state)
{
    ut_seg_setup(state);
    cl = ut_client(shm);
    return 0;
}

static inline int ut_client_teardown_how(int empty)
{
    struct xichan_heap_report r;

    ut_client_end(cl);
    cl = NULL;
    assert_int_equal(xichan__heap_check(shm, &r), 0);
    if (!r.ok)
        fail_msg("heap check: %s", r.why);
    if (empty)
        assert_int_equal(r.used_bytes, 0);
    return ut_seg_teardown(NULL);
}

static inline int ut_client_teardown(void **state)
{
    (void)state;
    return ut_client_teardown_how(0);
}

static inline int ut_client_teardown_empty(void **state)
{
    (void)state;
    return ut_client_teardown_how(1);
}

#define ut_ok(expr)                                                                                \
    do {                                                                                           \
        int ut_rc_ = (int)(expr);                                                                  \
        if (ut_rc_ != 0)                                                                           \
            fail_msg("%s -> %s (%s)", #expr, xichan_err_name(ut_rc_), xichan_strerror(ut_rc_));    \
    } while (0)

#define ut_err(expr, code)                                                                         \
    do {                                                                                           \
        int ut_rc_ = (int)(expr);                                                                  \
        if (ut_rc_ != (code))                                                                      \
            fail_msg("%s -> %s, expected %s", #expr, xichan_err_name(ut_rc_),                      \
                     xichan_err_name(code));                                                       \
    } while (0)

#endif /* XICHAN_UNIT_H */
