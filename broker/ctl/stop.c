/*
 * stop.c -- xichanctl stop: stop a namespace's daemon, keeping its data,
 * or (--discard) remove the namespace's segment.
 *
 * Stopping never loses data (xichand(8)): the daemon's SIGTERM leaves the
 * segment, with every object, item and id counter, for the next daemon,
 * and clients attached meanwhile go on working on it.  So stop is: find
 * the daemon that holds the runtime dir's lock file, SIGTERM it, and wait
 * until it has let go of the lock (it has then let go of the segment too).
 *
 * Removing a namespace is explicit, and refuses to pull the segment from
 * under processes that still use it:
 *
 *   --discard  holds the runtime dir's lock file (so no daemon starts here
 *              meanwhile) and the segment's own flock (shm.c, tag-seg-lock:
 *              so no daemon from any runtime dir serves or adopts it), then
 *              counts the sessions whose process still runs.  None: the
 *              segment is unlinked.  Some: refused, naming their pids,
 *              unless --force.  A process that maps a removed segment keeps
 *              working on its own copy, which nobody else sees: what it
 *              puts then is lost, hence the refusal.
 *
 * The daemon's pid comes from its lock file, which only a daemon holding
 * the lock writes; before signalling it, stop checks that the process is a
 * xichand (a stale pid may have been reused).
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <time.h>
#include <unistd.h>

#include "ctl.h"
#include "paths.h"

#define STOP_WAIT_S 10.0
#define POLL_NS (20 * 1000000L)

/* 1 if pid runs a program called xichand. */
static int is_xichand(pid_t pid)
{
    char path[64], comm[32] = "";
    FILE *f;

    snprintf(path, sizeof(path), "/proc/%d/comm", (int)pid);
    if (!(f = fopen(path, "re")))
        return 0;
    if (!fgets(comm, sizeof(comm), f))
        comm[0] = '\0';
    fclose(f);
    comm[strcspn(comm, "\n")] = '\0';
    return strcmp(comm, "xichand") == 0;
}

/*
 * The lock file, open (O_NOFOLLOW) in *fd, or -1 if there is none.  Returns
 * the pid of the daemon holding it, 0 if no daemon does, -1 on error.
 */
static pid_t lock_holder(const char *path, int *fd)
{
    char buf[32];
    ssize_t n;

    *fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    if (*fd < 0)
        return errno == ENOENT ? 0 : -1;
    if (flock(*fd, LOCK_EX | LOCK_NB) == 0)
        return 0; /* ours now: no daemon here */
    if (errno != EWOULDBLOCK)
        return -1;
    n = pread(*fd, buf, sizeof(buf) - 1, 0);
    buf[n > 0 ? n : 0] = '\0';
    return (pid_t)strtol(buf, NULL, 10);
}

/* SIGTERMs the daemon pid and waits until the lock on fd is free. */
static int stop_daemon(struct ctl *c, pid_t pid, int fd, double wait_s)
{
    int64_t until = xichan_deadline(wait_s);

    if (pid <= 0 || !is_xichand(pid))
        return ctl_fail(c, 0, "the runtime dir's lock is held, but not by a xichand "
                        "(pid %d): not signalled", (int)pid);
    if (kill(pid, SIGTERM) < 0)
        return ctl_fail(c, 0, "cannot signal xichand (pid %d): %s", (int)pid, strerror(errno));
    ctl_catch_signals(c);
    while (flock(fd, LOCK_EX | LOCK_NB) < 0) {
        if (ctl_interrupted)
            return ctl_fail(c, XICHAN_EINTR, "waiting for xichand (pid %d) to stop", (int)pid);
        if (xichan_now_ns() >= until)
            return ctl_fail(c, 0, "xichand (pid %d) did not stop within %g s", (int)pid, wait_s);
        nanosleep(&(struct timespec){0, POLL_NS}, NULL);
    }
    return CTL_OK;
}

static int discard(struct ctl *c, const char *ns, const char *seg, struct xichan_census *cs, int *gone)
{
    struct xichan_shm *shm;
    int err = xichan__shm_claim(seg, &shm), rc = CTL_OK;

    *gone = 0;
    if (err == XICHAN_ENOTFOUND)
        return CTL_OK; /* nothing to discard */
    if (err == XICHAN_EBUSY)
        return ctl_fail(c, 0, "a xichand from another runtime dir serves namespace '%s': "
                        "stop it first (xichanctl --runtime-dir DIR stop)", ns);
    if (err) {
        /* Unreadable (corrupt, another version): nothing could use it, and
         * its flock was free, so no daemon serves it. */
        if (xichan__shm_unlink(seg) != 0)
            return ctl_fail(c, 0, "cannot remove /dev/shm%s: %s", seg, strerror(errno));
        memset(cs, 0, sizeof(*cs));
        *gone = 1;
        return CTL_OK;
    }
    xichan__census(shm, cs);
    if (cs->sessions && !c->a.force) {
        char pids[160] = "";
        size_t len = 0;
        for (uint32_t i = 0; i < cs->sessions && i < sizeof(cs->pids) / sizeof(cs->pids[0]); i++)
            len += (size_t)snprintf(pids + len, sizeof(pids) - len, "%s%d", i ? ", " : "",
                                    (int)cs->pids[i]);
        rc = ctl_fail(c, 0,
                      "%u session%s still attached to namespace '%s' (pid %s%s): removing the "
                      "segment would lose what they put from now on; stop them, or use --force",
                      cs->sessions, cs->sessions == 1 ? "" : "s", ns, pids,
                      cs->sessions > sizeof(cs->pids) / sizeof(cs->pids[0]) ? ", ..." : "");
    } else if (xichan__shm_unlink(seg) != 0) {
        rc = ctl_fail(c, 0, "cannot remove /dev/shm%s: %s", seg, strerror(errno));
    } else {
        *gone = 1;
    }
    xichan__shm_unmap(shm); /* lets go of the segment's flock */
    return rc;
}

int ctl_cmd_stop(struct ctl *c)
{
    char ns[64], dir[400], seg[64], lock[512];
    double wait_s = c->a.timeout >= 0 ? c->a.timeout : STOP_WAIT_S;
    struct xichan_census cs = {0};
    int fd, rc = CTL_OK, err, gone = 0;
    pid_t pid;

    if (c->a.force && !c->a.discard)
        return ctl_usage(c, "--force goes with --discard");
    if ((err = xichan__ns_name(ns, sizeof(ns), c->co.name)) ||
        (err = xichan__runtime_dir(dir, sizeof(dir), c->co.runtime_dir)) ||
        (err = xichan__shm_name(seg, sizeof(seg), ns)) ||
        (err = xichan__lock_path(lock, sizeof(lock), dir, ns)))
        return ctl_fail(c, err, "namespace '%s'", c->co.name ? c->co.name : "default");
    pid = lock_holder(lock, &fd);
    if (pid < 0)
        return ctl_fail(c, 0, "cannot test the lock file %s: %s", lock, strerror(errno));
    if (pid > 0)
        rc = stop_daemon(c, pid, fd, wait_s);
    if (rc == CTL_OK && c->a.discard)
        rc = discard(c, ns, seg, &cs, &gone);
    if (fd >= 0)
        close(fd); /* the lock file's flock: a daemon may start here again */
    if (rc != CTL_OK)
        return rc;
    if (!pid && !c->a.discard) {
        struct xichan_shm *shm;
        int busy = xichan__shm_claim(seg, &shm);
        if (!busy)
            xichan__shm_unmap(shm);
        return ctl_fail(c, XICHAN_ENODAEMON, "no xichand runs for namespace '%s' in runtime dir "
                        "%s%s", ns, dir, busy == XICHAN_EBUSY ? " (one serves it from another "
                        "runtime dir: give that --runtime-dir)" : ": nothing to stop");
    }
    if (c->json) {
        printf("{\"namespace\":");
        ctl_json_str(stdout, ns);
        printf(",\"stopped_pid\":%d,\"discarded\":%s,\"objects\":%u,\"items\":%llu}\n",
               (int)pid, gone ? "true" : "false", cs.objects, (unsigned long long)cs.items);
        return CTL_OK;
    }
    if (pid)
        printf("xichand (pid %d) stopped%s\n", (int)pid,
               c->a.discard ? "" : "; the namespace and its items are kept for the next daemon");
    if (gone)
        printf("namespace '%s' discarded: /dev/shm%s removed with %u objects (%u named) and "
               "%llu items\n", ns, seg, cs.objects, cs.named, (unsigned long long)cs.items);
    else if (c->a.discard)
        printf("namespace '%s' has no segment: nothing to discard\n", ns);
    return CTL_OK;
}
