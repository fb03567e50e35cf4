/*
 * client.c -- opening and closing a session: find (or start) the
 * namespace's daemon, say HELLO, map the segment it names.
 *
 * The connection stays open for the session's whole life and carries nothing
 * after WELCOME until BYE: its end is the daemon's notice that the session
 * ended (proto.h).  It is SOCK_CLOEXEC, so an exec'd child does not keep a
 * dead parent's session alive; a forked child gets XICHAN_ESTALE from every
 * call through the parent's handle (xichan__pid_cache, updated by a
 * pthread_atfork child handler), and closing that handle in the child only
 * closes the child's copy of the socket.
 *
 * Autostart: if no daemon answers and autostart is allowed, the client runs
 * `xichand --name N --runtime-dir D --daemon` (which detaches and exits its
 * launcher) and retries for up to five seconds.  Two clients racing to start
 * one are fine: the second daemon finds the lock file taken and exits, and
 * both clients connect to the first.
 */
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "internal.h"
#include "paths.h"
#include "proto.h"

#define CONNECT_WAIT_NS (5 * 1000000000ll)
#define REPLY_WAIT_MS 10000

extern char **environ;

pid_t xichan__pid_cache;
static pthread_once_t init_once = PTHREAD_ONCE_INIT;

static void atfork_child(void)
{
    xichan__pid_cache = getpid();
}

static void init(void)
{
    xichan__pid_cache = getpid();
    pthread_atfork(NULL, NULL, atfork_child);
}

static void debug(const char *fmt, const char *arg)
{
    if (getenv("XICHAN_DEBUG")) {
        fprintf(stderr, "libxichan: ");
        fprintf(stderr, fmt, arg);
        fprintf(stderr, "\n");
    }
}

/* ---------------------------------------------------------- connecting */

static int connect_to(const char *path, int *fd_out)
{
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    int fd, err;

    if (strlen(path) >= sizeof(sa.sun_path))
        return XICHAN_ENAMETOOLONG;
    memcpy(sa.sun_path, path, strlen(path) + 1);
    /* Never 0, 1 or 2: a program with a closed stdout would printf into it. */
    fd = xichan__fd_above_stdio(socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0));
    if (fd < 0)
        return XICHAN_EIO;
    if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0) {
        *fd_out = fd;
        return 0;
    }
    err = errno;
    close(fd);
    if (err == ENOENT || err == ECONNREFUSED || err == ENOTDIR)
        return XICHAN_ENODAEMON;
    /* The socket's or the dir's mode kept us out (access.c). */
    return err == EACCES || err == EPERM ? XICHAN_EACCES : XICHAN_EIO;
}

static int executable(const char *path)
{
    struct stat st;

    return stat(path, &st) == 0 && S_ISREG(st.st_mode) && access(path, X_OK) == 0;
}

/* dir + "/" + rel into buf if that is an executable file. */
static int try_dir(char *buf, size_t cap, const char *dir, const char *rel)
{
    int n = snprintf(buf, cap, "%s/%s", dir, rel);

    return n > 0 && (size_t)n < cap && executable(buf);
}

/* Where is xichand?  $XICHAN_DAEMON, beside the library, beside us, PATH. */
static int find_daemon(char *buf, size_t cap)
{
    const char *env = getenv("XICHAN_DAEMON"), *path;
    char dir[4096], *slash;
    Dl_info info;
    ssize_t n;

    if (env && *env) {
        if (executable(env))
            return snprintf(buf, cap, "%s", env) < (int)cap;
        if (try_dir(buf, cap, env, "xichand"))
            return 1;
    }
    if (dladdr((void *)xichan_client_open, &info) && info.dli_fname &&
        snprintf(dir, sizeof(dir), "%s", info.dli_fname) < (int)sizeof(dir) &&
        (slash = strrchr(dir, '/'))) {
        *slash = '\0';
        if (try_dir(buf, cap, dir, "../bin/xichand") || try_dir(buf, cap, dir, "xichand"))
            return 1;
    }
    n = readlink("/proc/self/exe", dir, sizeof(dir) - 1);
    if (n > 0) {
        dir[n] = '\0';
        if ((slash = strrchr(dir, '/'))) {
            *slash = '\0';
            if (try_dir(buf, cap, dir, "xichand") || try_dir(buf, cap, dir, "../bin/xichand"))
                return 1;
        }
    }
    path = getenv("PATH");
    while (path && *path) {
        const char *end = strchr(path, ':');
        size_t len = end ? (size_t)(end - path) : strlen(path);
        if (len && len < sizeof(dir)) {
            memcpy(dir, path, len);
            dir[len] = '\0';
            if (try_dir(buf, cap, dir, "xichand"))
                return 1;
        }
        path = end ? end + 1 : NULL;
    }
    return 0;
}

static int spawn_daemon(const char *ns, const char *dir)
{
    char bin[4096];
    char *argv[] = {bin, "--name", (char *)ns, "--runtime-dir", (char *)dir, "--daemon", NULL};
    posix_spawn_file_actions_t fa;
    pid_t pid;
    int status, rc;

    if (!find_daemon(bin, sizeof(bin))) {
        debug("autostart: no xichand found (%s)", "set XICHAN_DAEMON or PATH");
        return XICHAN_ENODAEMON;
    }
    debug("autostart: running %s", bin);
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
    posix_spawn_file_actions_addopen(&fa, 1, "/dev/null", O_WRONLY, 0);
    /* Our stderr may be a pipe someone waits on to close: not the daemon's. */
    if (!getenv("XICHAN_DEBUG"))
        posix_spawn_file_actions_addopen(&fa, 2, "/dev/null", O_WRONLY, 0);
    rc = posix_spawn(&pid, bin, &fa, NULL, argv, environ);
    posix_spawn_file_actions_destroy(&fa);
    if (rc != 0)
        return XICHAN_ENODAEMON;
    /* The launcher exits once the daemon has detached (or lost a race). */
    while ((rc = waitpid(pid, &status, 0)) < 0 && errno == EINTR)
        ;
    /* It would not start at all: say so now rather than wait for a socket.
     * 3 is a lost race (another daemon serves): connect to that one. */
    if (rc == pid && WIFEXITED(status) && WEXITSTATUS(status) != 0 && WEXITSTATUS(status) != 3) {
        xichan__set_refusal(XICHAN_ENODAEMON,
                            "xichand did not start for namespace '%s' (exit status %d%s); run "
                            "`xichand --name %s --runtime-dir %s` to see why",
                            ns, WEXITSTATUS(status),
                            WEXITSTATUS(status) == 2
                                ? ": a bad option or environment value, such as XICHAN_SIZE, "
                                  "XICHAN_SESSIONS, XICHAN_OBJECTS or XICHAN_BINDINGS"
                                : "",
                            ns, dir);
        return XICHAN_ENODAEMON;
    }
    return 0;
}

/*
 * No socket answered.  If the namespace's lock file names a live xichand,
 * one does run, and its socket was deleted: say so, instead of "no xichand
 * runs" (a second daemon would only be refused, exit 3).
 */
static void explain_no_socket(const char *dir, const char *ns)
{
    char path[512], buf[32], comm[32] = "";
    ssize_t n;
    long pid;
    int fd;

    if (xichan__lock_path(path, sizeof(path), dir, ns) ||
        (fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW)) < 0)
        return;
    n = pread(fd, buf, sizeof(buf) - 1, 0);
    close(fd);
    buf[n > 0 ? n : 0] = '\0';
    if ((pid = strtol(buf, NULL, 10)) <= 0 || (kill((pid_t)pid, 0) < 0 && errno != EPERM))
        return;
    snprintf(path, sizeof(path), "/proc/%ld/comm", pid);
    if ((fd = open(path, O_RDONLY | O_CLOEXEC)) >= 0) {
        n = read(fd, comm, sizeof(comm) - 1);
        comm[n > 0 ? n : 0] = '\0';
        close(fd);
    }
    if (strncmp(comm, "xichand", 7) != 0)
        return;
    xichan__set_refusal(XICHAN_ENODAEMON,
                        "xichand (pid %ld) serves namespace '%s' but its socket %s/%s.sock is "
                        "gone (deleted?): clients cannot reach it; stop it (kill %ld) and start "
                        "xichand again, which keeps every item",
                        pid, ns, dir, ns, pid);
}

static int connect_or_start(const char *ns, const char *dir, int autostart, int *fd)
{
    char path[512];
    int64_t until;
    int err;

    if ((err = xichan__sock_path(path, sizeof(path), dir, ns)))
        return err;
    err = connect_to(path, fd);
    if (err == XICHAN_EACCES)
        xichan__explain_denied(path, dir, ns);
    if (err == XICHAN_ENODAEMON)
        explain_no_socket(dir, ns);
    if (err != XICHAN_ENODAEMON || !autostart)
        return err;
    if ((err = xichan__may_autostart(dir, ns)) || (err = spawn_daemon(ns, dir)))
        return err;
    until = xichan_now_ns() + CONNECT_WAIT_NS;
    do {
        struct timespec ts = {0, 10 * 1000000};
        if ((err = connect_to(path, fd)) == XICHAN_EACCES)
            xichan__explain_denied(path, dir, ns);
        if (err != XICHAN_ENODAEMON)
            return err;
        nanosleep(&ts, NULL);
    } while (xichan_now_ns() < until);
    return XICHAN_ENODAEMON;
}

/* Reads one message of exactly len bytes, waiting up to timeout_ms. */
static int recv_msg(int fd, void *msg, size_t len, int timeout_ms)
{
    struct pollfd p = {.fd = fd, .events = POLLIN};
    ssize_t n;
    int rc;

    do
        rc = poll(&p, 1, timeout_ms);
    while (rc < 0 && errno == EINTR);
    if (rc == 0)
        return XICHAN_ETIMEDOUT;
    if (rc < 0)
        return XICHAN_EIO;
    do
        n = recv(fd, msg, len, MSG_CMSG_CLOEXEC);
    while (n < 0 && errno == EINTR);
    if (n == 0)
        return XICHAN_EDAEMONLOST;
    return n == (ssize_t)len ? 0 : XICHAN_EIO;
}

static int send_msg(int fd, const void *msg, size_t len)
{
    ssize_t n;

    do
        n = send(fd, msg, len, MSG_NOSIGNAL);
    while (n < 0 && errno == EINTR);
    if (n < 0)
        return errno == EPIPE || errno == ECONNRESET ? XICHAN_EDAEMONLOST : XICHAN_EIO;
    return 0;
}

/* HELLO on a fresh connection, WELCOME back; reattach names our session. */
static int greet(int fd, const char *kind, uint32_t reattach_sid, uint32_t reattach_slot,
                 struct xichan_msg_welcome *w)
{
    struct xichan_msg_hello hello = {0};
    int err;

    hello.magic = XICHAN_PROTO_MAGIC;
    hello.type = XICHAN_MSG_HELLO;
    hello.version = XICHAN_PROTO_VERSION;
    hello.layout_hash = xichan__layout_hash();
    hello.pid = (uint32_t)getpid();
    hello.reattach_sid = reattach_sid;
    hello.reattach_slot = reattach_slot;
    snprintf(hello.kind, sizeof(hello.kind), "%s", kind && *kind ? kind : "c");
    if ((err = send_msg(fd, &hello, sizeof(hello))) ||
        (err = recv_msg(fd, w, sizeof(*w), REPLY_WAIT_MS)))
        return err;
    if (w->magic != XICHAN_PROTO_MAGIC || w->type != XICHAN_MSG_WELCOME)
        return XICHAN_EVERSION;
    if (w->status) {
        w->message[sizeof(w->message) - 1] = '\0';
        debug("the daemon refused the session: %s", w->message);
        if (w->status == XICHAN_EACCES && w->message[0])
            xichan__set_refusal(XICHAN_EACCES, "%s", w->message);
        return w->status < 0 ? w->status : XICHAN_EREFUSED;
    }
    w->seg_name[sizeof(w->seg_name) - 1] = '\0';
    return 0;
}

/* --------------------------------------------------------------- open */

int xichan_client_open(xichan_client **out, const xichan_client_opts *opts)
{
    xichan_client_opts def = {.autostart = -1};
    struct xichan_msg_welcome w;
    xichan_client *cl;
    char dir[400];
    const char *env;
    int err, autostart, explicit_dir;

    if (!out)
        return XICHAN_EINVAL;
    *out = NULL;
    pthread_once(&init_once, init);
    xichan__clear_refusal();
    if (!opts)
        opts = &def;
    cl = calloc(1, sizeof(*cl));
    if (!cl)
        return XICHAN_ENOMEM;
    cl->fd = -1;
    if ((err = xichan__ns_name(cl->ns, sizeof(cl->ns), opts->name)) ||
        (err = xichan__runtime_dir(dir, sizeof(dir), opts->runtime_dir)))
        goto fail;
    autostart = opts->autostart;
    if (autostart < 0)
        autostart = !((env = getenv("XICHAN_AUTOSTART")) && !strcmp(env, "0"));
    if ((err = connect_or_start(cl->ns, dir, autostart, &cl->fd)))
        goto fail;

    snprintf(cl->dir, sizeof(cl->dir), "%s", dir);
    explicit_dir = (opts->runtime_dir && *opts->runtime_dir) ||
                   ((env = getenv("XICHAN_RUNTIME_DIR")) && *env);
    if ((err = xichan__trust_daemon(cl->fd, dir, explicit_dir, cl->ns, &cl->daemon_uid)) ||
        (err = greet(cl->fd, opts->kind, 0, 0, &w)))
        goto fail_conn;
    /* The daemon's answer names the segment: its owner's uid is in it, not ours. */
    if ((err = xichan__shm_acquire(w.seg_name, &cl->shm)))
        goto fail_conn;
    if ((err = xichan__trust_segment(cl->shm, cl->daemon_uid, cl->ns)))
        goto fail_map;
    /* The daemon is trusted, but its answer must still fit the segment. */
    if (w.slot >= cl->shm->nsessions || cl->shm->sessions[w.slot].sid != w.sid) {
        err = XICHAN_ECORRUPT;
        goto fail_map;
    }
    cl->sid = w.sid;
    cl->slot = w.slot;
    cl->gate_word = &cl->shm->sessions[w.slot].cache_gate; /* w.slot checked above */
    cl->pid = getpid();
    *out = cl;
    return 0;

fail_map:
    xichan__shm_release(cl->shm);
fail_conn:
    close(cl->fd);
fail:
    free(cl);
    return err;
}

/* -------------------------------------------------------------- close */

static int say_bye(int fd, const struct xichan_msg_bye *bye)
{
    struct xichan_msg_bye ack;
    int err;

    if ((err = send_msg(fd, bye, sizeof(*bye))) ||
        (err = recv_msg(fd, &ack, sizeof(ack), REPLY_WAIT_MS)))
        return err;
    if (ack.status)
        debug("session cleanup reported: %s", xichan_strerror(ack.status));
    return 0;
}

/*
 * Our daemon died and (perhaps) a new one adopted the segment: reconnect
 * and claim our session, so that closing it releases what it holds now
 * rather than when this process exits.  Never starts a daemon.
 */
static int reattach(xichan_client *cl)
{
    struct xichan_msg_welcome w;
    struct ucred cred;
    socklen_t len = sizeof(cred);
    int fd, err;

    if ((err = connect_or_start(cl->ns, cl->dir, 0, &fd)))
        return err;
    /* Only a daemon of the same uid as the first may hear about our session. */
    if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) < 0 || cred.uid != cl->daemon_uid)
        err = XICHAN_EPERM;
    else
        err = greet(fd, NULL, cl->sid, cl->slot, &w);
    if (!err && (w.sid != cl->sid || w.slot != cl->slot || strcmp(w.seg_name, cl->shm->name)))
        err = XICHAN_EREFUSED;
    if (err) {
        close(fd);
        return err;
    }
    close(cl->fd);
    cl->fd = fd;
    return 0;
}

/* Ends the session with a BYE carrying flags (XICHAN_BYE_*), unmaps. */
static void client_end(xichan_client *cl, uint32_t flags)
{
    struct xichan_msg_bye bye = {XICHAN_PROTO_MAGIC, XICHAN_MSG_BYE, 0, flags};

    if (!cl)
        return;
    if (xichan__client_ok(cl) != 0) {
        /* A forked child's copy: the session is the parent's.  Items the
         * parent held are counted in this copy too: the memory may stay. */
        close(cl->fd);
        if ((atomic_fetch_or_explicit(&cl->refs, XICHAN__CL_CLOSED, memory_order_acq_rel) &
             ~XICHAN__CL_CLOSED) == 0)
            free(cl);
        return;
    }
    /*
     * BYE, then wait for the daemon to have released what the session held,
     * so that whatever the caller does next sees it gone.  Every lock of
     * ours was released when its call returned, so unmapping afterwards is
     * safe (never unmap with a robust lock held: the kernel may write into
     * the range at exit).  With no daemon at all, the session ends when
     * the process does -- and then as a plain end, unbind or not.
     */
    if (say_bye(cl->fd, &bye) != 0 && reattach(cl) == 0)
        (void)say_bye(cl->fd, &bye);
    close(cl->fd);
    cl->fd = -1;
    /*
     * Items still out keep the handle and the mapping (not the session: its
     * blocks went back with it): their release after this is safe and frees
     * nothing, and the last one unmaps.
     */
    if ((atomic_fetch_or_explicit(&cl->refs, XICHAN__CL_CLOSED, memory_order_acq_rel) &
         ~XICHAN__CL_CLOSED) == 0) {
        xichan__shm_release(cl->shm);
        free(cl);
    }
}

void xichan__client_unref(xichan_client *cl, uint32_t n)
{
    /* acq_rel: the one that frees sees every other use before. */
    if (atomic_fetch_sub_explicit(&cl->refs, n, memory_order_acq_rel) == (XICHAN__CL_CLOSED | n)) {
        xichan__shm_release(cl->shm);
        free(cl);
    }
}

void xichan_client_close(xichan_client *cl)
{
    client_end(cl, 0);
}

void xichan_client_close_unbind(xichan_client *cl)
{
    client_end(cl, XICHAN_BYE_UNBIND);
}

uint32_t xichan_client_session(const xichan_client *cl)
{
    return cl ? cl->sid : 0;
}

void xichan_client_set_interrupt(xichan_client *cl, int (*check)(void *arg), void *arg,
                                 int period_ms)
{
    if (!cl)
        return;
    cl->waiter.check = check;
    cl->waiter.arg = arg;
    cl->waiter.period_ms = check ? (period_ms > 0 ? period_ms : 100) : 0;
}
