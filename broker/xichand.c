/*
 * xichand.c -- the xichan broker daemon: start-up, options, shutdown.
 *
 * One daemon serves one namespace.  It takes an flock'ed lock file in the
 * runtime dir (a second daemon exits with status 3 and says who holds it),
 * creates the segment -- or adopts the one a predecessor left, after
 * validating it -- and holds an flock on the segment itself, so that no
 * other daemon, from whatever runtime dir, serves or adopts it meanwhile
 * (shm.c, tag-seg-lock).  It listens for sessions (server.c) and on
 * SIGTERM/SIGINT stops: the socket, pid and lock files go, but the segment
 * stays with every object, item and id counter -- clients attached to it
 * go on working, and the next daemon adopts it.  Stopping never loses
 * data; removing a namespace is explicit (xichanctl stop --discard).
 *
 * Who may use the namespace -- the modes and group of its files, --group,
 * the check of each peer -- is decided in access.c.
 *
 * The daemon is not on the data path: clients work on the segment directly.
 * Its jobs are sessions (registration, and cleanup when one ends) and
 * ownership of the namespace's files.  Its loop thread never takes a lock
 * that lives in the segment; cleanups, which must, run in a libuv worker
 * (server.c).
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <pthread.h>
#include <pwd.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <systemd/sd-daemon.h>
#include <time.h>
#include <unistd.h>

#include "daemon.h"
#include "paths.h"

#define EXIT_USAGE 2
#define EXIT_BUSY 3
#define EXIT_SEGMENT 4
/* 64G: the heap's 32-bit unit offsets reach no further (a larger segment would be waste). */
#define MAX_SIZE (64ull << 30)

struct xd xd;

/*
 * A whole number with an optional K, M, G or T suffix (and B): 0, -1 if s
 * is not one (a sign, a fraction, garbage), -2 if it does not fit 64 bits.
 * strtoull alone would take "-1" as 2^64 - 1 and wrap "17179869185G".
 */
static int parse_size(const char *s, uint64_t *out)
{
    unsigned shift = 0;
    char *end;
    unsigned long long v;

    if (*s < '0' || *s > '9')
        return -1;
    errno = 0;
    v = strtoull(s, &end, 10);
    if (errno == ERANGE)
        return -2;
    switch (*end) {
    case 'k': case 'K': shift = 10; end++; break;
    case 'm': case 'M': shift = 20; end++; break;
    case 'g': case 'G': shift = 30; end++; break;
    case 't': case 'T': shift = 40; end++; break;
    default: break;
    }
    if (*end == 'B' || *end == 'b')
        end++;
    if (*end)
        return -1;
    if (shift && v > (UINT64_MAX >> shift))
        return -2;
    *out = (uint64_t)v << shift;
    return 0;
}

/* "64M", "1.5G": a size for people. */
static const char *human(uint64_t v, char *buf, size_t cap)
{
    const char *units = "KMGT";
    int u = -1;
    double d = (double)v;

    while (d >= 1024 && u < 3)
        d /= 1024, u++;
    if (u < 0)
        snprintf(buf, cap, "%llu bytes", (unsigned long long)v);
    else
        snprintf(buf, cap, "%.*f%c", d == (double)(uint64_t)d ? 0 : 1, d, units[u]);
    return buf;
}

/*
 * The segment's size from an option or its variable (what: "--size" or
 * "XICHAN_SIZE"): 0, or -1 after saying what is wrong.
 */
static int size_arg(const char *what, const char *s, uint64_t *out)
{
    int rc = parse_size(s, out);

    if (rc < 0 || *out > MAX_SIZE) {
        fprintf(stderr,
                "xichand: %s: '%s' is %s: give bytes as a whole number with an optional K, M, "
                "G or T suffix, at most 64G (e.g. 64M)\n",
                what, s, rc == -1 ? "not a size" : "too large");
        return -1;
    }
    return 0;
}

/* A table size (k: 0 sessions, 1 objects, 2 bindings) from its option or
 * variable: 0, or -1 after saying what is wrong. */
static int count_arg(int k, const char *what, const char *s, uint32_t *out)
{
    /* A session table needs two slots: this daemon's clients and one more. */
    unsigned lo = k == 0 ? 2 : 1, hi = 1u << 24;
    uint64_t v;

    if (parse_size(s, &v) < 0 || v < lo || v > hi) {
        fprintf(stderr, "xichand: %s needs a whole number from %u to %u, not '%s'\n", what, lo, hi,
                s);
        return -1;
    }
    *out = (uint32_t)v;
    return 0;
}

/*
 * The geometry the options left unset: from XICHAN_SIZE, XICHAN_SESSIONS,
 * XICHAN_OBJECTS, XICHAN_BINDINGS, checked as the options are, else the
 * built-in defaults.  A client's autostart runs xichand with only --name,
 * --runtime-dir and --daemon, so this is how such a daemon is sized.  0, or
 * -1 after saying which variable is wrong (one an option overrides is not
 * read).
 */
static int geometry_from_env(void)
{
    static const char *const names[] = {"XICHAN_SESSIONS", "XICHAN_OBJECTS", "XICHAN_BINDINGS"};
    static const uint32_t defaults[] = {1024, 16384, 65536};
    uint32_t *counts[] = {&xd.nsessions, &xd.nobjects, &xd.nbindings};
    const char *v;

    if (xd.size == UINT64_MAX) {
        xd.size = 64u << 20;
        if ((v = getenv("XICHAN_SIZE")) && size_arg("XICHAN_SIZE", v, &xd.size) < 0)
            return -1;
        if (v)
            xd.given |= 1;
    } else {
        xd.given |= 1;
    }
    for (int i = 0; i < 3; i++) {
        if (*counts[i]) { /* set by its option */
            xd.given |= 2u << i;
            continue;
        }
        *counts[i] = defaults[i];
        if ((v = getenv(names[i])) && count_arg(i, names[i], v, counts[i]) < 0)
            return -1;
        if (v)
            xd.given |= 2u << i;
    }
    return 0;
}

static void usage(FILE *f)
{
    fprintf(f,
            "usage: xichand [--name N] [--runtime-dir D] [--group G] [--size BYTES]\n"
            "               [--sessions N] [--objects N] [--bindings N] [--foreground | --daemon]\n"
            "               [--pid-file F] [--log-file F | --syslog]\n"
            "               [--log-level error|warn|info|debug]\n"
            "\n"
            "Serves the xichan namespace N ($XICHAN_NAME, default 'default') from a\n"
            "shared-memory segment of BYTES (default $XICHAN_SIZE, else 64M; K, M, G suffixes), with its\n"
            "socket and lock file in D ($XICHAN_RUNTIME_DIR, $XDG_RUNTIME_DIR/xichan,\n"
            "else /tmp/xichan-$UID).  SIGTERM or SIGINT (or xichanctl stop) stops it; the\n"
            "segment, with every queue, channel and item, stays for the next daemon.\n"
            "Only its own uid (and root) may connect; --group G ($XICHAN_GROUP), a group\n"
            "name or gid, also lets members of G in (runtime dir 0710, socket and\n"
            "segment 0660, all of group G).\n"
            "--daemon detaches once the daemon serves (stdin and stdout go to /dev/null);\n"
            "--log-file appends the log once the daemon serves (start-up errors still go\n"
            "to stderr) and is reopened on SIGHUP; --syslog logs to syslog (daemon).\n"
            "Under systemd (Type=notify) it says READY=1 once it serves.\n"
            "$XICHAN_SESSIONS, $XICHAN_OBJECTS and $XICHAN_BINDINGS are the defaults of\n"
            "--sessions, --objects and --bindings, as $XICHAN_SIZE is of --size: a daemon\n"
            "a client starts gets them from the client's environment.\n"
            "Exit status: 0 stopped by a signal, 2 usage, 3 namespace already served,\n"
            "4 existing segment cannot be adopted, 1 other start-up failures.\n");
}

/*
 * The lock file: held for the daemon's whole life, its pid inside.  Opened
 * in the dir we checked, never through a symlink, and only if it is a
 * regular file of ours: we truncate and write it.
 */
static int take_lock(void)
{
    struct stat st;
    char buf[32];
    ssize_t n;
    int fd = openat(xd.dir_fd, xd.lock_name, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);

    if (fd < 0) {
        xd_log(XD_ERROR, "cannot open lock file %s: %s%s", xd.lock_path, strerror(errno),
               errno == ELOOP ? " (it is a symlink: remove it)" : "");
        return -1;
    }
    if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode) || st.st_uid != geteuid()) {
        xd_log(XD_ERROR, "lock file %s is not a regular file of uid %u: remove it", xd.lock_path,
               (unsigned)geteuid());
        close(fd);
        return -1;
    }
    if (flock(fd, LOCK_EX | LOCK_NB) < 0) {
        n = pread(fd, buf, sizeof(buf) - 1, 0);
        buf[n > 0 ? n : 0] = '\0';
        buf[strcspn(buf, "\n")] = '\0';
        fprintf(stderr,
                "xichand: another xichand (pid %s) already serves namespace '%s' in %s\n",
                buf[0] ? buf : "?", xd.ns, xd.dir);
        close(fd);
        return -2;
    }
    n = snprintf(buf, sizeof(buf), "%d\n", (int)getpid());
    if (ftruncate(fd, 0) < 0 || pwrite(fd, buf, (size_t)n, 0) != n)
        xd_log(XD_WARN, "cannot write pid to %s: %s", xd.lock_path, strerror(errno));
    xd.lock_fd = fd;
    return 0;
}

/* ----------------------------------------------------------- segment */

/*
 * The pid of the daemon that serves the segment, for messages only: the
 * segment's flock says whether one does (tag-seg-lock); the pid in the
 * header is untrusted, so it is only looked at: alive, and a xichand.
 */
static pid_t serving_daemon(const char *seg_name)
{
    struct xichan_shm *shm;
    char path[64], line[128] = "";
    pid_t pid;
    FILE *f;

    if (xichan__shm_open(seg_name, &shm))
        return 0;
    pid = (pid_t)xa_load_acquire(&shm->hdr->daemon_pid);
    xichan__shm_unmap(shm);
    if (pid <= 0 || pid == getpid() || kill(pid, 0) != 0)
        return 0;
    /* "pid (comm) state ...": a zombie no longer serves anything. */
    snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
    if (!(f = fopen(path, "re")))
        return 0;
    if (!fgets(line, sizeof(line), f))
        line[0] = '\0';
    fclose(f);
    return strstr(line, " (xichand) ") && !strstr(line, " (xichand) Z") ? pid : 0;
}

/*
 * An existing segment we cannot adopt: say whose file it is and what clears
 * it.  Another user's (planted, or left by a daemon of theirs under our
 * name) only that user or root can remove; ours, `xichanctl cleanup`.
 */
static void segment_refused(int err)
{
    char path[128], who[80];
    struct passwd *pw;
    struct stat st;

    snprintf(path, sizeof(path), "/dev/shm%s", xd.seg_name);
    if (stat(path, &st) == 0 && st.st_uid != geteuid()) {
        pw = getpwuid(st.st_uid);
        snprintf(who, sizeof(who), "uid %u%s%s%s", (unsigned)st.st_uid, pw ? " (" : "",
                 pw ? pw->pw_name : "", pw ? ")" : "");
        fprintf(stderr,
                "xichand: the segment %s of namespace '%s' belongs to %s, not to this user\n"
                "(uid %u): another user created it, so this namespace cannot be served.\n"
                "It is left untouched.  That user or root must remove it:\n"
                "  sudo rm %s\n"
                "or serve another namespace (--name).\n",
                path, xd.ns, who, (unsigned)geteuid(), path);
        return;
    }
    fprintf(stderr,
            "xichand: the existing segment %s cannot be adopted: %s.\n"
            "It is left untouched.  If no process uses it any more,\n"
            "  xichanctl cleanup %s --yes\n"
            "removes it (or: rm %s).\n",
            path, xichan_strerror(err), xd.ns, path);
}

/*
 * An adopted segment keeps its geometry: a size or table count asked for
 * (option or variable) that differs is ignored, and said so, since only a
 * fresh segment can take it.
 */
static void warn_geometry(void)
{
    const uint64_t want[4] = {xd.size, xd.nsessions, xd.nobjects, xd.nbindings};
    const uint64_t have[4] = {xd.shm->size, xd.shm->nsessions, xd.shm->nobjects,
                              xd.shm->nbindings};
    static const char *const what[4] = {"--size/XICHAN_SIZE", "--sessions/XICHAN_SESSIONS",
                                        "--objects/XICHAN_OBJECTS", "--bindings/XICHAN_BINDINGS"};

    for (int i = 0; i < 4; i++)
        if ((xd.given & (1u << i)) && want[i] != have[i])
            xd_log(XD_WARN, "%s %llu ignored: the adopted segment keeps its %llu (to resize, "
                   "`xichanctl stop --discard` the namespace first, which drops its items)",
                   what[i], (unsigned long long)want[i], (unsigned long long)have[i]);
}

/* 0, -1 (a segment that cannot be adopted or created: printed), -2 served elsewhere. */
static int open_segment(void)
{
    struct xichan_shm_geometry geo = {xd.size, xd.nsessions, xd.nobjects, xd.nbindings};
    int err;

    xichan__shm_name(xd.seg_name, sizeof(xd.seg_name), xd.ns);
    for (int tries = 0; tries < 3; tries++) {
        err = xichan__shm_claim(xd.seg_name, &xd.shm);
        if (err == 0) {
            /* Only a segment of our own uid, brought to the current mode (access.c). */
            if (xd_share_segment() < 0)
                return -1;
            xd_log(XD_INFO, "adopting the existing segment %s (%llu bytes) left by a previous "
                   "daemon", xd.seg_name, (unsigned long long)xd.shm->size);
            warn_geometry();
            return xd_adopt();
        }
        if (err == XICHAN_EBUSY) {
            char who[32] = "?";
            pid_t other = serving_daemon(xd.seg_name);
            if (other)
                snprintf(who, sizeof(who), "%d", (int)other);
            fprintf(stderr,
                    "xichand: another xichand (pid %s) serves segment /dev/shm%s of namespace "
                    "'%s',\nfrom another runtime dir: stop it (xichanctl stop with its "
                    "--runtime-dir), or use another --name\n",
                    who, xd.seg_name, xd.ns);
            return -2;
        }
        if (err != XICHAN_ENOTFOUND) {
            segment_refused(err);
            return -1;
        }
        err = xichan__shm_create(xd.seg_name, &geo, &xd.shm);
        if (err != XICHAN_EEXIST) /* EEXIST: another daemon created it just now */
            break;
    }
    if (err) {
        fprintf(stderr, "xichand: cannot create segment /dev/shm%s of %llu bytes: %s\n",
                xd.seg_name, (unsigned long long)xd.size,
                err == XICHAN_ENOSPC ? "/dev/shm has not that much room (free some, or give a "
                                       "smaller --size)"
                                     : xichan_strerror(err));
        return -1;
    }
    /* Born 0600; with --group it becomes 0660 of the group only now (access.c). */
    if (xd_share_segment() < 0) {
        xichan__shm_unlink(xd.seg_name);
        return -1;
    }
    xd_log(XD_INFO, "created segment %s: %llu bytes, %u sessions, %u objects", xd.seg_name,
           (unsigned long long)xd.size, xd.nsessions, xd.nobjects);
    return 0;
}

/*
 * 0644 whatever the umask, and never through a symlink: a pid file anyone
 * could write would let them aim whoever reads it (systemd's PIDFile=) at
 * another process.
 */
static void write_pid_file(void)
{
    int fd = open(xd.pid_file, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0644);
    FILE *f = fd >= 0 && fchmod(fd, 0644) == 0 ? fdopen(fd, "w") : NULL;
    int bad;

    if (!f) {
        xd_log(XD_WARN, "cannot write pid file %s: %s", xd.pid_file, strerror(errno));
        if (fd >= 0)
            close(fd);
        return;
    }
    bad = fprintf(f, "%d\n", (int)getpid()) < 0;
    if (fclose(f) != 0 || bad)
        xd_log(XD_WARN, "cannot write pid file %s: %s", xd.pid_file, strerror(errno));
}

void xd_remove_files(void)
{
    xa_store_relaxed(&xd.stopping, 1); /* the warming thread ends (its madvise cannot fault) */
    if (xd.shm) {
        /* The segment stays (tag-seg-lock: unmapping lets go of it): say
         * no daemon serves it now, for xichanctl and the next daemon. */
        xa_store_release(&xd.shm->hdr->daemon_pid, 0);
        xichan__shm_unmap(xd.shm);
        xd.shm = NULL;
    }
    if (xd.sock_path[0])
        unlinkat(xd.dir_fd, xd.sock_name, 0);
    if (xd.pid_file)
        unlink(xd.pid_file);
    if (xd.lock_fd >= 0) {
        unlinkat(xd.dir_fd, xd.lock_name, 0); /* while we still hold it */
        close(xd.lock_fd);
        xd.lock_fd = -1;
    }
}

/* Start-up failed: the files this daemon made in the runtime dir go (the
 * lock file, and the dir itself if it made it); a segment always stays. */
static void remove_startup_files(void)
{
    if (xd.lock_fd >= 0) {
        unlinkat(xd.dir_fd, xd.lock_name, 0);
        close(xd.lock_fd);
        xd.lock_fd = -1;
    }
    if (xd.made_dir && xd.dir_fd >= 0)
        (void)rmdir(xd.dir); /* only if empty: another daemon's files stay */
}

/* ----------------------------------------------------------- detach */

/*
 * --daemon: the launcher waits on a pipe until the detached daemon is ready
 * (a 0 byte) or has failed (its exit status as the byte, or EOF), and exits
 * with that status: 0 only once the daemon serves, which clients that
 * autostart rely on, and 3 when another daemon holds the namespace, as in
 * the foreground.
 */
static int detach(void)
{
    int p[2];
    pid_t pid;
    char c;

    if (pipe(p) < 0)
        return -1;
    pid = fork();
    if (pid < 0)
        return -1;
    if (pid > 0) {
        close(p[1]);
        _exit(read(p[0], &c, 1) == 1 ? (unsigned char)c : 1);
    }
    close(p[0]);
    setsid();
    pid = fork();
    if (pid < 0)
        _exit(1);
    if (pid > 0)
        _exit(0); /* the session leader goes; the grandchild can never get a tty */
    xd.ready_fd = p[1];
    return 0;
}

/* A start-up failure: a --daemon launcher exits with the same status. */
static int startup_failed(int status)
{
    unsigned char c = (unsigned char)status;

    if (xd.ready_fd >= 0 && status != 0) {
        if (write(xd.ready_fd, &c, 1) < 0) {
            /* The launcher then sees EOF and exits 1. */
        }
        close(xd.ready_fd);
        xd.ready_fd = -1;
    }
    return status;
}

/*
 * A daemon started by a client inherits whatever descriptors the client
 * left open without O_CLOEXEC; holding a pipe a test harness or a shell
 * waits on would block it for the daemon's whole life.
 */
static void close_inherited(void)
{
    struct rlimit rl;

    if (close_range(3, ~0u, 0) == 0)
        return;
    if (getrlimit(RLIMIT_NOFILE, &rl) < 0 || rl.rlim_cur == RLIM_INFINITY || rl.rlim_cur > 65536)
        rl.rlim_cur = 65536;
    for (int fd = 3; fd < (int)rl.rlim_cur; fd++)
        close(fd);
}

/*
 * Each session costs two descriptors (its socket and its process's pidfd),
 * so the usual soft limit of 1024 would run out well before the default
 * 1024 sessions: raise it to the hard limit.
 */
static void raise_nofile(void)
{
    struct rlimit rl;

    if (getrlimit(RLIMIT_NOFILE, &rl) < 0 || rl.rlim_cur >= rl.rlim_max)
        return;
    rl.rlim_cur = rl.rlim_max;
    if (setrlimit(RLIMIT_NOFILE, &rl) < 0)
        xd_log(XD_WARN, "cannot raise the open-file limit to %llu: %s",
               (unsigned long long)rl.rlim_max, strerror(errno));
}

/*
 * Warming the heap.  A page of a new segment is zeroed and mapped by the
 * first process that touches it, one fault per 4 KiB page: a client's
 * first 16 MiB item into never-touched pages measured 7-23 ms against
 * 0.8 ms into pages written once before, and libclient's one-call mapping
 * of a big item's pages (items.c, xichan__prefault) only batches pages
 * that exist.  So once serving, a thread of the daemon touches the whole
 * heap, 2 MiB per call (MADV_POPULATE_WRITE: the kernel allocates, zeroes
 * and maps; no byte a client wrote is changed), off every client's path.
 * It changes no state of the segment, so it needs no crash argument: a
 * daemon killed meanwhile leaves pages touched or not.  Errors (a kernel
 * before 5.14) end it quietly; the pages are then made at first touch.
 */
#ifndef MADV_POPULATE_WRITE
#define MADV_POPULATE_WRITE 23
#endif
static void *warm_heap(void *arg)
{
    struct xichan_shm *shm = arg;
    uintptr_t p = (uintptr_t)shm->heap & ~(uintptr_t)4095, end = (uintptr_t)shm->heap + shm->heap_size;

    while (p < end && !xa_load_relaxed(&xd.stopping)) {
        size_t n = end - p < (2u << 20) ? end - p : (2u << 20);
        if (madvise((void *)p, n, MADV_POPULATE_WRITE) != 0)
            break;
        p += n;
    }
    return NULL;
}

static void start_warming(void)
{
    pthread_attr_t a;
    pthread_t t;

    if (pthread_attr_init(&a) == 0) {
        pthread_attr_setdetachstate(&a, PTHREAD_CREATE_DETACHED);
        if (pthread_create(&t, &a, warm_heap, xd.shm) != 0)
            xd_log(XD_DEBUG, "cannot start the heap warming thread");
        pthread_attr_destroy(&a);
    }
}

void xd_ready(void)
{
    char zero = 0;
    int fd;

    if (xd.ready_fd >= 0) {
        if (write(xd.ready_fd, &zero, 1) < 0)
            xd_log(XD_WARN, "cannot signal the launcher: %s", strerror(errno));
        close(xd.ready_fd);
        xd.ready_fd = -1;
        fd = open("/dev/null", O_RDWR | O_CLOEXEC);
        if (fd < 0 || dup2(fd, 0) < 0 || dup2(fd, 1) < 0)
            xd_log(XD_WARN, "cannot point stdin and stdout at /dev/null: %s", strerror(errno));
        if (fd > 2)
            close(fd);
    }
    /* Start-up errors went to the terminal; the log from here on to the file. */
    if (xd.log_fd >= 0) {
        if (dup2(xd.log_fd, 2) < 0)
            xd_log(XD_WARN, "cannot send the log to the --log-file: %s", strerror(errno));
        close(xd.log_fd);
        xd.log_fd = -1;
    }
    /* Type=notify: the socket accepts sessions from now on. */
    {
        char state[160];
        snprintf(state, sizeof(state), "READY=1\nMAINPID=%d\nSTATUS=serving namespace '%s'",
                 (int)getpid(), xd.ns);
        xd_notify(state);
    }
    start_warming();
}

/*
 * systemd's readiness protocol through libsystemd's sd_notify, which does
 * nothing when $NOTIFY_SOCKET is unset (no service manager asked).  The
 * variable is left set: MAINPID names us, and a --daemon grandchild is the
 * process that sends.
 */
void xd_notify(const char *state)
{
    int rc = sd_notify(0, state);

    if (rc < 0)
        xd_log(XD_WARN, "cannot notify the service manager (%.*s): %s",
               (int)strcspn(state, "\n"), state, strerror(-rc));
}

int main(int argc, char **argv)
{
    static const struct option opts[] = {
        {"name", required_argument, NULL, 'n'},
        {"runtime-dir", required_argument, NULL, 'r'},
        {"group", required_argument, NULL, 'g'},
        {"size", required_argument, NULL, 's'},
        {"sessions", required_argument, NULL, 'S'},
        {"objects", required_argument, NULL, 'O'},
        {"bindings", required_argument, NULL, 'B'},
        {"foreground", no_argument, NULL, 'f'},
        {"daemon", no_argument, NULL, 'd'},
        {"pid-file", required_argument, NULL, 'p'},
        {"log-file", required_argument, NULL, 'L'},
        {"log-level", required_argument, NULL, 'l'},
        {"syslog", no_argument, NULL, 'Y'},
        {"help", no_argument, NULL, 'h'},
        {"version", no_argument, NULL, 'V'},
        {NULL, 0, NULL, 0},
    };
    const char *name = NULL, *rdir = NULL, *log_file = NULL, *env, *group = getenv("XICHAN_GROUP");
    int c, daemonize = 0, use_syslog = 0, rc;

    xichan__stdio_guard(); /* before any file or socket is opened */
    xd.size = UINT64_MAX; /* unset: geometry_from_env fills these in after the options */
    xd.nsessions = xd.nobjects = xd.nbindings = 0;
    xd.lock_fd = xd.ready_fd = xd.log_fd = xd.dir_fd = -1;
    xd.log_level = XD_INFO;
    if ((env = getenv("XICHAN_LOG_LEVEL")) && xd_log_level(env) >= 0)
        xd.log_level = xd_log_level(env);
    while ((c = getopt_long(argc, argv, "n:r:s:fdh", opts, NULL)) != -1) {
        switch (c) {
        case 'n': name = optarg; break;
        case 'r': rdir = optarg; break;
        case 'g': group = optarg; break;
        case 's':
            if (size_arg("--size", optarg, &xd.size) < 0)
                return EXIT_USAGE;
            break;
        case 'S': case 'O': case 'B': {
            int k = c == 'S' ? 0 : c == 'O' ? 1 : 2;
            static const char *const opt[] = {"--sessions", "--objects", "--bindings"};
            if (count_arg(k, opt[k], optarg, k == 0 ? &xd.nsessions : k == 1 ? &xd.nobjects
                                                                         : &xd.nbindings) < 0)
                return EXIT_USAGE;
            break;
        }
        case 'f': daemonize = 0; break;
        case 'd': daemonize = 1; break;
        case 'p': xd.pid_file = optarg; break;
        case 'L': log_file = optarg; break;
        case 'Y': use_syslog = 1; break;
        case 'l':
            if ((xd.log_level = xd_log_level(optarg)) < 0) {
                fprintf(stderr, "xichand: --log-level: error, warn, info or debug\n");
                return EXIT_USAGE;
            }
            break;
        case 'h': usage(stdout); return 0;
        case 'V': printf("xichand %d.%d\n", XICHAN_VERSION_MAJOR, XICHAN_VERSION_MINOR); return 0;
        default: usage(stderr); return EXIT_USAGE;
        }
    }
    if (optind < argc) {
        fprintf(stderr, "xichand: unexpected argument '%s'\n", argv[optind]);
        return EXIT_USAGE;
    }
    if (geometry_from_env() < 0)
        return EXIT_USAGE;
    {
        struct xichan_shm_geometry geo = {xd.size, xd.nsessions, xd.nobjects, xd.nbindings};
        uint64_t min = xichan__shm_min_size(&geo);
        char a[32], b[32];
        if (xd.size < min) {
            fprintf(stderr,
                    "xichand: --size %s is too small for %u sessions, %u objects and %u "
                    "bindings: at least %s (%llu bytes); give a larger --size, or lower "
                    "--sessions, --objects or --bindings (or their XICHAN_* variables)\n",
                    human(xd.size, a, sizeof(a)), xd.nsessions, xd.nobjects, xd.nbindings,
                    human(min, b, sizeof(b)), (unsigned long long)min);
            return EXIT_USAGE;
        }
    }
    if (xichan__ns_name(xd.ns, sizeof(xd.ns), name)) {
        fprintf(stderr, "xichand: namespace '%s': use 1 to 40 of A-Z a-z 0-9 . _ -\n",
                name ? name : getenv("XICHAN_NAME"));
        return EXIT_USAGE;
    }
    if (xichan__runtime_dir(xd.dir, sizeof(xd.dir), rdir) ||
        xichan__sock_path(xd.sock_path, sizeof(xd.sock_path), xd.dir, xd.ns) ||
        xichan__lock_path(xd.lock_path, sizeof(xd.lock_path), xd.dir, xd.ns) ||
        strlen(xd.sock_path) >= 108) {
        fprintf(stderr, "xichand: runtime dir path too long\n");
        return EXIT_USAGE;
    }
    if (log_file && use_syslog) {
        fprintf(stderr, "xichand: --log-file and --syslog: choose one\n");
        return EXIT_USAGE;
    }
    snprintf(xd.sock_name, sizeof(xd.sock_name), "%s.sock", xd.ns);
    snprintf(xd.lock_name, sizeof(xd.lock_name), "%s.lock", xd.ns);
    if ((rc = xd_access_init(group)) < 0)
        return rc == -2 ? EXIT_USAGE : 1;
    signal(SIGPIPE, SIG_IGN);
    /* SIGHUP reopens the log (server.c); until the loop handles it, and
     * for a daemon whose terminal goes away, it must not end the daemon. */
    signal(SIGHUP, SIG_IGN);
    if (daemonize)
        close_inherited();
    if (xd_log_init(log_file, use_syslog) < 0)
        return 1;
    if (daemonize && detach() < 0) {
        fprintf(stderr, "xichand: cannot detach: %s\n", strerror(errno));
        return 1;
    }
    raise_nofile();
    if ((xd.dir_fd = xd_prepare_dir(xd.dir)) < 0)
        return startup_failed(1);
    if ((rc = take_lock()) < 0) {
        if (rc != -2)
            remove_startup_files();
        return startup_failed(rc == -2 ? EXIT_BUSY : 1);
    }
    if ((rc = open_segment()) < 0) {
        xd.sock_path[0] = '\0';
        remove_startup_files();
        return startup_failed(rc == -2 ? EXIT_BUSY : EXIT_SEGMENT);
    }
    if (xd.pid_file)
        write_pid_file();
    {
        struct timespec now;
        clock_gettime(CLOCK_REALTIME, &now);
        xa_store_relaxed(&xd.shm->hdr->daemon_start_ns,
                         (uint64_t)now.tv_sec * 1000000000u + (uint64_t)now.tv_nsec);
        xa_store_release(&xd.shm->hdr->daemon_pid, (uint32_t)getpid());
    }
    rc = xd_serve();
    /* Stopped (or never served): the segment stays for the next daemon. */
    xd_remove_files();
    return startup_failed(rc);
}
