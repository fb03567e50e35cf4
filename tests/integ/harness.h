/*
 * harness.h -- a small harness for the integration and crash tests.
 *
 * Each test is a standalone program tests/integ/<name>.c whose main() uses
 * these helpers; tests/run-integ.sh runs one process per test with a fresh
 * runtime dir and namespace.  Exit status: 0 passed, 1 failed, 77 skipped.
 *
 * Environment (set by run-integ.sh; defaults make a test runnable by hand):
 *   XICHAN_RUNTIME_DIR  runtime dir; unset: a fresh mkdtemp dir, removed at exit
 *   XICHAN_NAME         namespace; unset: "xt<pid>"
 *   XICHAN_DAEMON       the xichand binary; unset: build/bin/xichand
 *   XICHAN_AUTOSTART    set to 0 if unset, so no client starts a daemon by itself
 * The first harness call fills in the unset ones with setenv(), so clients
 * opened with NULL options (and their forked children) find the same
 * namespace as the daemon.
 *
 * The daemon.  xt_start_daemon() runs
 *     $XICHAN_DAEMON --foreground --name N --runtime-dir D [extra args]
 * as a child, stdout and stderr appended to D/xichand.log, and returns once
 * D/N.sock accepts a connection (at most 5 s; otherwise the test fails and
 * the log is printed).  Each pid started is appended to D/xt-daemon.pids so
 * that run-integ.sh can kill a daemon left behind by a test it timed out.
 * The daemon gets PR_SET_PDEATHSIG SIGTERM: if the test process dies, so
 * does its daemon.  At exit the process that started it stops it.
 *
 * Children.  xt_fork() runs a function in a forked child; a failed check in
 * the child ends only the child, with status 1, which the parent sees in
 * xt_wait().  Children leave with _exit(): they run no atexit handler of the
 * parent (stdio is flushed before the fork and before the exit).
 *
 * Checks print file:line, the expression and the values, then end the
 * process with status 1.
 */
#ifndef XICHAN_TEST_HARNESS_H
#define XICHAN_TEST_HARNESS_H

#include <stdio.h> /* tests print with printf; one include less in each */
#include <stdlib.h>
#include <string.h> /* XT_HAS */
#include <sys/types.h>

#include "xichan.h"

/* ------------------------------------------------------------- checks */

#define XT_CHECK(cond)                                                                             \
    do {                                                                                           \
        if (!(cond))                                                                               \
            xt__fail(__FILE__, __LINE__, "check failed: %s", #cond);                               \
    } while (0)

#define XT_EQ_INT(a, b)                                                                            \
    do {                                                                                           \
        long long xt_a_ = (long long)(a), xt_b_ = (long long)(b);                                  \
        if (xt_a_ != xt_b_)                                                                        \
            xt__fail(__FILE__, __LINE__, "%s == %s failed: %lld != %lld", #a, #b, xt_a_, xt_b_);   \
    } while (0)

/* expr returns 0 or a negative XICHAN_E* code. */
#define XT_OK(expr)                                                                                \
    do {                                                                                           \
        long long xt_rc_ = (long long)(expr);                                                      \
        if (xt_rc_ != 0)                                                                           \
            xt__fail(__FILE__, __LINE__, "%s returned %lld (%s: %s), expected 0", #expr, xt_rc_,   \
                     xichan_err_name((int)xt_rc_), xichan_strerror((int)xt_rc_));                  \
    } while (0)

/* expr must return exactly the XICHAN_E* code. */
#define XT_ERR(expr, code)                                                                         \
    do {                                                                                           \
        long long xt_rc_ = (long long)(expr), xt_want_ = (long long)(code);                        \
        if (xt_rc_ != xt_want_)                                                                    \
            xt__fail(__FILE__, __LINE__, "%s returned %lld (%s), expected %s (%lld)", #expr,       \
                     xt_rc_, xt_rc_ < 0 ? xichan_err_name((int)xt_rc_) : "not an error", #code,    \
                     xt_want_);                                                                    \
    } while (0)

/* Prints "file:line: <message>" to stderr and ends the test (or the child) with status 1. */
void xt__fail(const char *file, int line, const char *fmt, ...)
    __attribute__((format(printf, 3, 4), noreturn));

/* Fails unless the NUL-terminated text holds s; prints the text if not. */
#define XT_HAS(text, s)                                                                            \
    do {                                                                                           \
        if (!strstr((text), (s)))                                                                  \
            xt__fail(__FILE__, __LINE__, "output lacks '%s':\n%s", (s), (text));                   \
    } while (0)

/*
 * Runs a shell command line (printf-style) with stderr joined to stdout:
 * its exit status (128 + signal if a signal ended it), and up to cap - 1
 * bytes of its output in out, NUL-terminated.
 */
int xt_sh(char *out, size_t cap, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/* Prints "SKIP: why" and exits 77. */
void xt_skip(const char *why) __attribute__((noreturn));

/* ------------------------------------------------------- environment */

/* The namespace, runtime dir and daemon binary in use (never NULL). */
const char *xt_name(void);
const char *xt_runtime_dir(void);
const char *xt_daemon_path(void);
/* "/dev/shm/xichan-<uid>-<name>": where the namespace's segment lives. */
const char *xt_shm_path(void);
/* 1 if that file exists. */
int xt_shm_exists(void);
/* "<runtime dir>/name", in one of 4 static buffers used in turn. */
const char *xt_path(const char *name);
/* The file's first cap - 1 bytes into buf, NUL-terminated: how many, or -1
 * if it cannot be opened (buf is then ""). */
int xt_read_file(const char *path, char *buf, size_t cap);

/* ------------------------------------------------------------ daemon */

/* extra_args: NULL or space-separated arguments, e.g. "--size 8M". */
void xt_start_daemon(const char *extra_args);
/* The running daemon's pid, or 0 if none. */
pid_t xt_daemon_pid(void);
/*
 * SIGTERM, then waits up to 5 s (then SIGKILL).  Returns the daemon's exit
 * status (128 + signal if a signal ended it), -1 if it had to be killed, or
 * 0 if none was running.  Prints a note to stderr on any nonzero result.
 */
int xt_stop_daemon(void);
/* SIGKILL and reap: the segment and files stay, as after a crash. */
void xt_kill_daemon(void);
/* Waits (up to timeout_ms) for the daemon that something else stopped
 * (xichanctl stop) to exit, reaps it and forgets it: its exit status, or
 * -1 if it still ran (then it is killed). */
int xt_reap_daemon(int timeout_ms);

/* ---------------------------------------------------------- children */

/* Runs fn(arg) in a forked child that exits 0 when fn returns. */
pid_t xt_fork(void (*fn)(void *), void *arg);
/*
 * Waits for a child: its exit status, 128 + signal if a signal ended it, or
 * -1 if it had not ended after timeout_ms (it is then SIGKILLed and reaped).
 * timeout_ms < 0 waits forever.
 */
int xt_wait(pid_t pid, int timeout_ms);
/* SIGKILL and reap. */
void xt_kill9(pid_t pid);

/* ------------------------------------------------------ sync by pipe */

/*
 * A one-way signal: any process holding the pipe may xt_signal() (writes one
 * byte) and any may xt_await() (reads one).  Make one before forking; use
 * two for a two-way handshake.  Each xt_signal() releases exactly one
 * xt_await().
 */
typedef struct {
    int rd, wr;
} xt_pipe_t;

void xt_pipe_init(xt_pipe_t *p);
void xt_pipe_close(xt_pipe_t *p);
void xt_signal(xt_pipe_t *p);
/* 0 once a signal arrived, -1 on timeout (timeout_ms < 0: forever) or EOF. */
int xt_await(xt_pipe_t *p, int timeout_ms);

/* ------------------------------------------------------------- time */

/* CLOCK_MONOTONIC in seconds. */
double xt_now(void);
void xt_sleep_ms(int ms);

#endif /* XICHAN_TEST_HARNESS_H */
