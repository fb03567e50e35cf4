/*
 * users.h -- other users for the security tests (security_*.c).
 *
 * Decision: no useradd.  A test running as root forks a child and drops it
 * to a numeric uid and gid that have no passwd or group entry (the kernel
 * needs none), so nothing is created on the machine, nothing is left behind
 * when a test is killed, and a fresh Debian CI box needs no setup.  Without
 * root, or where root cannot switch uids (a user namespace that maps only
 * itself), the tests skip (77).
 *
 * Changing credentials clears PR_SET_PDEATHSIG, so xt_become() arms it
 * again: a child left by a dying test still dies with it.
 */
#ifndef XICHAN_TEST_USERS_H
#define XICHAN_TEST_USERS_H

#include <errno.h>
#include <grp.h>
#include <pwd.h>
#include <signal.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include "harness.h"

/*
 * Skips unless this process may become uid (and gid) id: root, and not in a
 * user namespace that maps no such id (a rootless container's "root").
 */
static inline void xt_need_other_uids(unsigned id)
{
    pid_t pid;
    int st;

    if (geteuid() != 0)
        xt_skip("needs root to run clients as other uids");
    fflush(NULL);
    if ((pid = fork()) == 0)
        _exit(setgroups(0, NULL) == 0 && setgid((gid_t)id) == 0 && setuid((uid_t)id) == 0 ? 0 : 1);
    if (pid < 0 || waitpid(pid, &st, 0) != pid || !WIFEXITED(st) || WEXITSTATUS(st) != 0)
        xt_skip("root here cannot become another uid (a user namespace that maps none?)");
}

/* The lowest id >= from that is neither a user's nor a group's. */
static inline unsigned xt_free_id(unsigned from)
{
    while (getpwuid((uid_t)from) || getgrgid((gid_t)from))
        from++;
    return from;
}

/* Makes the calling (forked) process uid/gid with exactly these supplementary groups. */
static inline void xt_become(uid_t uid, gid_t gid, const gid_t *groups, size_t n)
{
    pid_t parent = getppid();

    if (setgroups(n, groups) != 0 || setgid(gid) != 0 || setuid(uid) != 0)
        xt__fail(__FILE__, __LINE__, "cannot become uid %u gid %u: %s", (unsigned)uid,
                 (unsigned)gid, strerror(errno));
    XT_EQ_INT(getuid(), uid);
    XT_EQ_INT(geteuid(), uid);
    XT_EQ_INT(getegid(), gid);
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (getppid() != parent)
        _exit(127);
}

/*
 * Runs argv (argv[0] a path) with stdout and stderr into out (NUL-ended,
 * truncated to cap) and returns its exit status (128 + signal), giving up
 * after timeout_ms.
 */
static inline int xt_run(char *const argv[], char *out, size_t cap, int timeout_ms)
{
    size_t len = 0;
    int p[2], rc;
    pid_t pid;

    if (pipe(p) != 0)
        xt__fail(__FILE__, __LINE__, "pipe: %s", strerror(errno));
    fflush(NULL);
    pid = fork();
    if (pid < 0)
        xt__fail(__FILE__, __LINE__, "fork: %s", strerror(errno));
    if (pid == 0) {
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        dup2(p[1], 1);
        dup2(p[1], 2);
        close(p[0]);
        close(p[1]);
        execv(argv[0], argv);
        _exit(127);
    }
    close(p[1]);
    for (;;) {
        ssize_t n = read(p[0], out + len, cap - 1 - len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0 || (len += (size_t)n) >= cap - 1)
            break;
    }
    out[len] = '\0';
    close(p[0]);
    rc = xt_wait(pid, timeout_ms);
    if (rc == -1)
        xt__fail(__FILE__, __LINE__, "%s did not finish within %d ms", argv[0], timeout_ms);
    return rc;
}

/* "<dir of xichand>/<name>": the other binaries of the build. */
static inline const char *xt_bin(const char *name)
{
    static char buf[1024];
    const char *d = xt_daemon_path(), *slash = strrchr(d, '/');
    int n = slash ? (int)(slash - d) : 1;

    snprintf(buf, sizeof(buf), "%.*s/%s", n, slash ? d : ".", name);
    return buf;
}

#endif /* XICHAN_TEST_USERS_H */
