/*
 * server.c -- xichand's event loop: sessions in, cleanups out.
 *
 * Each client session is one SOCK_SEQPACKET connection (proto.h), watched
 * with a uv_poll_t, plus a pidfd of the peer process: the session ends on
 * EOF, on BYE, or when the process exits (a forked child holding a copy of
 * the socket cannot keep a dead parent's session alive).
 *
 * Ending a session has two halves.  In the loop thread, the slot is marked
 * CLEANING (the session table has one writer, this thread, and no lock).
 * Then xichan__session_cleanup runs in a libuv worker, because it takes the
 * segment's locks, which clients hold too: the loop never blocks on them
 * (a lesson of shared-memory brokers: nobody may block the daemon).  Cleanups run one at a time,
 * in the order sessions ended.  One that meets a lock held by a stopped
 * process (XICHAN_ELOCKED, after the short bound of tag-lock-bound) waits
 * RETRY_MS on a side list and is queued again, while the others run.
 *
 * Sessions of an adopted segment (a previous daemon died) have no
 * connection: their processes are watched through pidfds alone, and those
 * already gone are cleaned up at once.
 */
#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <unistd.h>

#include <uv.h>

#include "daemon.h"
#include "proto.h"

#define RETRY_MS 1000
#define ACCEPT_PAUSE_MS 200

enum conn_state { C_HELLO, C_LIVE, C_ENDING };

struct conn {
    uv_poll_t poll;     /* the socket */
    uv_poll_t pidpoll;  /* the peer's pidfd, if any */
    int fd, pidfd;
    int handles;        /* open uv handles; the conn is freed at 0 */
    enum conn_state state;
    pid_t pid;             /* SO_PEERCRED, as captured at connect() */
    uid_t uid;
    gid_t gid;
    uint32_t slot, sid;
    int ack;            /* send BYE_ACK once cleaned up */
    int how;            /* XICHAN_ENDED_*: a BYE may ask for the unbind */
    struct conn *next;
};

struct job {
    uv_work_t work;
    uint32_t slot, sid;
    struct conn *conn;  /* NULL for adopted sessions */
    int status;
    int retries;        /* times it met a stuck lock */
    int64_t started;
    struct job *next;
};

struct ghost {
    uv_poll_t poll;
    int pidfd;
    uint32_t slot, sid;
    struct ghost *next;
};

static uv_loop_t *loop;
static uv_poll_t listen_poll;
static uv_signal_t sig_term, sig_int, sig_hup;
static uv_timer_t retry_timer, accept_timer;
static int listen_fd = -1;
static struct conn *conns;
static struct ghost *ghosts;
static struct job *jobs_head, *jobs_tail;
static int job_running, shutting_down;
static uint32_t *adopt_dead, n_adopt_dead;
static int *adopt_pidfd;
static uint32_t *adopt_slot, *adopt_sid, n_adopt_live;

static int pidfd_open(pid_t pid)
{
    return (int)syscall(SYS_pidfd_open, pid, 0);
}

/* ---------------------------------------------------------- cleanups */

static void run_next_job(void);

static void work_cb(uv_work_t *w)
{
    struct job *j = w->data;

    j->status = xichan__session_cleanup(xd.shm, j->slot, 0);
}

static void conn_release(struct conn *c);

/* Appends j to the queue of cleanups to run. */
static void job_queue(struct job *j)
{
    j->next = NULL;
    if (jobs_tail)
        jobs_tail->next = j;
    else
        jobs_head = j;
    jobs_tail = j;
}

/* Cleanups that met a stuck lock, back in the queue once RETRY_MS passed. */
static struct job *retry_head;

static void retry_due(uv_timer_t *t)
{
    (void)t;
    while (retry_head) {
        struct job *j = retry_head;
        retry_head = j->next;
        job_queue(j);
    }
    run_next_job();
}

static void after_work_cb(uv_work_t *w, int status)
{
    struct job *j = w->data;

    job_running = 0;
    if ((j->status == XICHAN_ELOCKED || j->status == XICHAN_ETIMEDOUT) && !shutting_down) {
        /*
         * A process holds a lock and is stopped (or slow): this cleanup
         * comes back later, and the others go on now -- one stuck object
         * must not hold up every session that ends after it.
         */
        if (!j->retries++)
            xd_log(XD_WARN, "session %u: cleanup left for later: %s", j->sid,
                   xichan_strerror(j->status));
        if (j->conn && j->conn->ack) {
            /* A closing client does not wait for the stopped process either. */
            struct xichan_msg_bye ack = {XICHAN_PROTO_MAGIC, XICHAN_MSG_BYE_ACK, j->status, 0};
            (void)send(j->conn->fd, &ack, sizeof(ack), MSG_NOSIGNAL | MSG_DONTWAIT);
            j->conn->ack = 0;
        }
        j->next = retry_head;
        retry_head = j;
        if (!uv_is_active((uv_handle_t *)&retry_timer))
            uv_timer_start(&retry_timer, retry_due, RETRY_MS, 0);
        run_next_job();
        return;
    }
    if (j->status)
        xd_log(XD_WARN, "session %u: cleanup finished with %s", j->sid, xichan_err_name(j->status));
    else
        xd_log(XD_INFO, "session %u released in %.2f ms", j->sid,
               (xichan_now_ns() - j->started) / 1e6);
    if (j->conn) {
        if (j->conn->ack) {
            struct xichan_msg_bye ack = {XICHAN_PROTO_MAGIC, XICHAN_MSG_BYE_ACK, j->status, 0};
            (void)send(j->conn->fd, &ack, sizeof(ack), MSG_NOSIGNAL | MSG_DONTWAIT);
        }
        conn_release(j->conn);
    }
    free(j);
    if (shutting_down)
        uv_stop(loop);
    else
        run_next_job();
}

static void run_next_job(void)
{
    struct job *j = jobs_head;

    if (job_running || !j || shutting_down)
        return;
    jobs_head = j->next;
    if (!jobs_head)
        jobs_tail = NULL;
    job_running = 1;
    j->work.data = j;
    j->started = xichan_now_ns();
    xd_log(XD_DEBUG, "session %u: cleanup started in the worker thread", j->sid);
    uv_queue_work(loop, &j->work, work_cb, after_work_cb);
}

/* Queues the cleanup of the ended session (slot, sid). */
static void queue_cleanup(uint32_t slot, uint32_t sid, struct conn *c)
{
    struct job *j = calloc(1, sizeof(*j));

    if (!j) {
        xd_log(XD_ERROR, "out of memory: session in slot %u stays until restart", slot);
        if (c)
            conn_release(c);
        return;
    }
    j->slot = slot;
    j->sid = sid;
    j->conn = c;
    job_queue(j);
    run_next_job();
}

/*
 * Marks the live session (slot, sid) ended now -- how (XICHAN_ENDED_*) says
 * what becomes of its items (sessions.c) -- and queues its cleanup.  A
 * stale notice for a slot that no longer holds that session does nothing.
 */
static void end_session(uint32_t slot, uint32_t sid, int how, struct conn *c)
{
    if (xichan__session_ending(xd.shm, slot, sid, how) != 0) {
        xd_log(XD_WARN, "session %u in slot %u had already ended; nothing to clean up", sid, slot);
        if (c)
            conn_release(c);
        return;
    }
    queue_cleanup(slot, sid, c);
}

/* ------------------------------------------------------- connections */

static void handle_closed(uv_handle_t *h)
{
    struct conn *c = h->data;

    if (--c->handles == 0) {
        struct conn **p = &conns;
        while (*p && *p != c)
            p = &(*p)->next;
        if (*p)
            *p = c->next;
        close(c->fd);
        if (c->pidfd >= 0)
            close(c->pidfd);
        free(c);
    }
}

/* Stops watching and frees once libuv lets go of the handles. */
static void conn_release(struct conn *c)
{
    if (!uv_is_closing((uv_handle_t *)&c->poll))
        uv_close((uv_handle_t *)&c->poll, handle_closed);
    if (c->pidfd >= 0 && !uv_is_closing((uv_handle_t *)&c->pidpoll))
        uv_close((uv_handle_t *)&c->pidpoll, handle_closed);
}

static void conn_end(struct conn *c, int ack, const char *why)
{
    if (c->state != C_LIVE) {
        if (c->state == C_HELLO)
            conn_release(c);
        return;
    }
    c->state = C_ENDING;
    c->ack = ack;
    uv_poll_stop(&c->poll);
    if (c->pidfd >= 0)
        uv_poll_stop(&c->pidpoll);
    xd_log(XD_INFO, "session %u (pid %d) ended: %s", c->sid, (int)c->pid, why);
    end_session(c->slot, c->sid, c->how, c);
}

static void welcome(struct conn *c, int status, const char *msg)
{
    struct xichan_msg_welcome w = {0};

    w.magic = XICHAN_PROTO_MAGIC;
    w.type = XICHAN_MSG_WELCOME;
    w.status = status;
    w.sid = c->sid;
    w.slot = c->slot;
    w.layout_hash = xichan__layout_hash();
    w.seg_size = xd.shm->size;
    snprintf(w.seg_name, sizeof(w.seg_name), "%s", xd.seg_name);
    snprintf(w.message, sizeof(w.message), "%s", msg ? msg : "");
    (void)send(c->fd, &w, sizeof(w), MSG_NOSIGNAL | MSG_DONTWAIT);
}

static void on_pidfd(uv_poll_t *h, int status, int events)
{
    conn_end(h->data, 0, "process exited");
}

static void watch_pid(struct conn *c);
static void ghost_drop(struct ghost *g);

/*
 * A process whose daemon died claims its session back (proto.h).  Only the
 * process that owns a live session of an adopted segment may: the slot,
 * sid and pid must all match, and no connection may own it already.
 */
static void reattach(struct conn *c, uint32_t sid, uint32_t slot)
{
    struct ghost *g;

    for (g = ghosts; g && g->slot != slot; g = g->next)
        ;
    if (!g || slot >= xd.shm->nsessions || xd.shm->sessions[slot].sid != sid ||
        xa_load_acquire(&xd.shm->sessions[slot].state) != XICHAN_SESS_LIVE ||
        xd.shm->sessions[slot].pid != (uint32_t)c->pid) {
        welcome(c, XICHAN_EREFUSED, "no such session of this process to reattach");
        xd_log(XD_WARN, "refused pid %d: reattach to session %u not allowed", (int)c->pid, sid);
        conn_release(c);
        return;
    }
    ghost_drop(g);
    c->slot = slot;
    c->sid = sid;
    c->state = C_LIVE;
    welcome(c, 0, NULL);
    xd_log(XD_INFO, "session %u (pid %d) reattached", sid, (int)c->pid);
    watch_pid(c);
}

/*
 * A peer the file modes let through but access.c does not (its top says
 * when) is answered at its first message, whatever it is, rather than at
 * accept: closing a socket whose HELLO we have not read would make the
 * client's kernel report ECONNRESET instead of our WELCOME.
 */
static int refused(struct conn *c)
{
    struct ucred cred = {.pid = c->pid, .uid = c->uid, .gid = c->gid};
    char why[sizeof(((struct xichan_msg_welcome *)0)->message)];

    if (xd_peer_allowed(c->fd, &cred, why, sizeof(why)))
        return 0;
    welcome(c, XICHAN_EACCES, why);
    xd_log(XD_WARN, "refused pid %d: %s", (int)c->pid, why);
    conn_release(c);
    return 1;
}

static uint32_t count_cleaning(void)
{
    uint32_t n = 0;

    for (uint32_t i = 0; i < xd.shm->nsessions; i++)
        n += xichan__sess_ending(xa_load_relaxed(&xd.shm->sessions[i].state));
    return n;
}

static void on_hello(struct conn *c, const void *buf, size_t n)
{
    struct xichan_msg_hello m;
    char msg[160];
    int err;

    if (refused(c))
        return;
    err = xichan__proto_hello(buf, n, &m);
    if (err) {
        welcome(c, err, err == XICHAN_EVERSION
                            ? "client and daemon were built from different xichan versions"
                            : "malformed hello");
        xd_log(XD_WARN, "refused pid %d: %s hello", (int)c->pid,
               err == XICHAN_EVERSION ? "version mismatch in its" : "a malformed");
        conn_release(c);
        return;
    }
    if (m.reattach_sid) {
        reattach(c, m.reattach_sid, m.reattach_slot);
        return;
    }
    err = xichan__session_new(xd.shm, c->pid, c->uid, m.kind, &c->slot, &c->sid);
    if (err) {
        /* ELIMIT means no free slot (ids wrap: sessions.c, tag-sid-reuse).
         * Slots whose cleanup failed stay taken; say so, since a larger
         * table is then not the cure. */
        uint32_t cleaning = count_cleaning();
        if (cleaning)
            snprintf(msg, sizeof(msg),
                     "session table full (%u sessions, %u of them ended but not cleaned up: see "
                     "the log)", xd.shm->nsessions, cleaning);
        else
            snprintf(msg, sizeof(msg),
                     "session table full (%u sessions); restart xichand with a larger --sessions",
                     xd.shm->nsessions);
        welcome(c, err, msg);
        xd_log(XD_WARN, "refused pid %d: %s", (int)c->pid, msg);
        conn_release(c);
        return;
    }
    c->state = C_LIVE;
    welcome(c, 0, NULL);
    xd_log(XD_INFO, "session %u (pid %d, %s) connected", c->sid, (int)c->pid, m.kind);
    watch_pid(c);
}

/* The session also ends when its process exits, whoever holds the socket. */
static void watch_pid(struct conn *c)
{
    c->pidfd = pidfd_open(c->pid);
    if (c->pidfd < 0) {
        /* The connection's EOF still ends the session, unless a forked
         * child keeps a copy of the socket open. */
        xd_log(XD_WARN, "session %u: cannot watch pid %d: %s", c->sid, (int)c->pid,
               strerror(errno));
        return;
    }
    if (uv_poll_init(loop, &c->pidpoll, c->pidfd) == 0) {
        c->pidpoll.data = c;
        c->handles++;
        uv_poll_start(&c->pidpoll, UV_READABLE, on_pidfd);
    } else {
        close(c->pidfd);
        c->pidfd = -1;
    }
}

static void on_conn(uv_poll_t *h, int status, int events)
{
    struct conn *c = h->data;
    char m[512];
    uint32_t flags;
    ssize_t n;

    do
        n = recv(c->fd, &m, sizeof(m), MSG_DONTWAIT);
    while (n < 0 && errno == EINTR);
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
        return;
    if (n <= 0) {
        conn_end(c, 0, n == 0 ? "connection closed" : "connection error");
        return;
    }
    if (c->state == C_HELLO) {
        on_hello(c, m, (size_t)n);
    } else if (c->state == C_LIVE && xichan__proto_bye(m, (size_t)n, &flags) == 0) {
        c->how = flags & XICHAN_BYE_UNBIND ? XICHAN_ENDED_UNBIND : XICHAN_ENDED_KEEP;
        conn_end(c, 1, c->how == XICHAN_ENDED_UNBIND ? "unbound by the client" : "closed by the client");
    } else {
        xd_log(XD_WARN, "session %u sent an unexpected %zd-byte message; ignored", c->sid, n);
    }
}

static void on_accept(uv_poll_t *h, int status, int events);

static void resume_accept(uv_timer_t *t)
{
    if (!shutting_down)
        uv_poll_start(&listen_poll, UV_READABLE, on_accept);
}

static void on_accept(uv_poll_t *h, int status, int events)
{
    struct ucred cred;
    socklen_t len = sizeof(cred);
    struct conn *c;
    int fd = accept4(listen_fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);

    if (fd < 0) {
        if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR || errno == ECONNABORTED)
            return;
        /*
         * Out of descriptors or memory: the connection stays queued, so the
         * socket stays readable and the level-triggered poll would spin.
         * Stop listening for a moment; sessions that end free descriptors.
         */
        xd_log(XD_ERROR, "cannot accept a connection: %s; not accepting for %d ms",
               strerror(errno), ACCEPT_PAUSE_MS);
        uv_poll_stop(&listen_poll);
        uv_timer_start(&accept_timer, resume_accept, ACCEPT_PAUSE_MS, 0);
        return;
    }
    c = calloc(1, sizeof(*c));
    if (!c || getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) < 0 ||
        uv_poll_init(loop, &c->poll, fd) != 0) {
        xd_log(XD_ERROR, "cannot accept a connection: %s", strerror(errno));
        free(c);
        close(fd);
        return;
    }
    c->fd = fd;
    c->pidfd = -1;
    c->pid = cred.pid;
    c->uid = cred.uid;
    c->gid = cred.gid;
    c->handles = 1;
    c->poll.data = c;
    c->next = conns;
    conns = c;
    xd_log(XD_DEBUG, "accepted a connection from pid %d (uid %u)", (int)cred.pid,
           (unsigned)cred.uid);
    uv_poll_start(&c->poll, UV_READABLE | UV_DISCONNECT, on_conn);
}

/* ------------------------------------------------------------ adopt */

int xd_adopt(void)
{
    uint32_t n = xd.shm->nsessions;

    adopt_dead = calloc(n, sizeof(*adopt_dead));
    adopt_slot = calloc(n, sizeof(*adopt_slot));
    adopt_sid = calloc(n, sizeof(*adopt_sid));
    adopt_pidfd = calloc(n, sizeof(*adopt_pidfd));
    if (!adopt_dead || !adopt_slot || !adopt_sid || !adopt_pidfd)
        return -1;
    for (uint32_t i = 0; i < n; i++) {
        struct xichan_session *s = &xd.shm->sessions[i];
        uint32_t st = xa_load_acquire(&s->state);
        int fd;

        if (st != XICHAN_SESS_LIVE && !xichan__sess_ending(st))
            continue;
        /* An ended slot's process is gone already: finish its cleanup. */
        fd = st == XICHAN_SESS_LIVE && s->pid ? pidfd_open((pid_t)s->pid) : -1;
        if (fd < 0 && st == XICHAN_SESS_LIVE && s->pid && errno != ESRCH) {
            /* It may well be alive: never clean up a running session. */
            xd_log(XD_WARN,
                   "cannot watch pid %u of session %u: %s; it ends when its process closes it "
                   "or at the next restart",
                   s->pid, s->sid, strerror(errno));
            continue;
        }
        if (fd < 0) {
            adopt_dead[n_adopt_dead++] = i;
        } else {
            adopt_slot[n_adopt_live] = i;
            adopt_sid[n_adopt_live] = s->sid;
            adopt_pidfd[n_adopt_live++] = fd;
        }
    }
    xd_log(XD_INFO, "adopted segment: %u sessions gone (cleaning up), %u still running (watched)",
           n_adopt_dead, n_adopt_live);
    return 0;
}

static void ghost_close(uv_handle_t *h)
{
    struct ghost *g = h->data;

    close(g->pidfd);
    free(g);
}

/* Stops watching a ghost (it exited, or its process reattached). */
static void ghost_drop(struct ghost *g)
{
    struct ghost **p = &ghosts;

    while (*p && *p != g)
        p = &(*p)->next;
    if (*p)
        *p = g->next;
    uv_close((uv_handle_t *)&g->poll, ghost_close);
}

static void on_ghost_exit(uv_poll_t *h, int status, int events)
{
    struct ghost *g = h->data;

    xd_log(XD_INFO, "session %u (from the previous daemon) ended: process exited", g->sid);
    end_session(g->slot, g->sid, XICHAN_ENDED_KEEP, NULL);
    ghost_drop(g);
}

static void start_adopted(void)
{
    for (uint32_t i = 0; i < n_adopt_dead; i++) {
        const struct xichan_session *s = &xd.shm->sessions[adopt_dead[i]];
        uint32_t st = xa_load_acquire(&s->state);
        /* Ended already (the previous daemon died during its cleanup): run
         * that cleanup again, of the kind it was. */
        if (xichan__sess_ending(st))
            queue_cleanup(adopt_dead[i], s->sid, NULL);
        else
            end_session(adopt_dead[i], s->sid, XICHAN_ENDED_KEEP, NULL);
    }
    for (uint32_t i = 0; i < n_adopt_live; i++) {
        struct ghost *g = calloc(1, sizeof(*g));
        if (!g || uv_poll_init(loop, &g->poll, adopt_pidfd[i]) != 0) {
            free(g);
            continue;
        }
        g->pidfd = adopt_pidfd[i];
        g->slot = adopt_slot[i];
        g->sid = adopt_sid[i];
        g->poll.data = g;
        g->next = ghosts;
        ghosts = g;
        uv_poll_start(&g->poll, UV_READABLE, on_ghost_exit);
    }
    free(adopt_dead);
    free(adopt_slot);
    free(adopt_sid);
    free(adopt_pidfd);
}

/* ------------------------------------------------------------- serve */

/* SIGHUP: the log file again (logrotate), nothing else. */
static void on_hup(uv_signal_t *h, int signum)
{
    xd_log_reopen();
}

static void on_signal(uv_signal_t *h, int signum)
{
    xd_log(XD_INFO, "%s: stopping; the segment stays, with its objects and items, for the next "
           "daemon", signum == SIGTERM ? "SIGTERM" : "SIGINT");
    xd_notify("STOPPING=1");
    shutting_down = 1;
    uv_poll_stop(&listen_poll);
    if (!job_running)
        uv_stop(loop);
}

static int listen_socket(void)
{
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    mode_t old_mask;
    int rc;

    listen_fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (listen_fd < 0)
        return -1;
    /*
     * Bound in the dir we checked (access.c), through its descriptor's
     * /proc link, so a swap of the path since cannot move the socket;
     * without /proc, by path.
     */
    snprintf(sa.sun_path, sizeof(sa.sun_path), "/proc/self/fd/%d", xd.dir_fd);
    if (access(sa.sun_path, F_OK) == 0)
        snprintf(sa.sun_path, sizeof(sa.sun_path), "/proc/self/fd/%d/%s", xd.dir_fd,
                 xd.sock_name);
    else
        memcpy(sa.sun_path, xd.sock_path, strlen(xd.sock_path) + 1);
    /* Only a daemon holding the lock gets here: any socket file is stale. */
    unlinkat(xd.dir_fd, xd.sock_name, 0);
    /*
     * Born 0600 whatever the caller's umask, then given its final mode and
     * group (access.c).  The loop and its worker threads do not run yet, so
     * changing the process-wide umask here races with nothing.
     */
    old_mask = umask(xd_socket_umask());
    rc = bind(listen_fd, (struct sockaddr *)&sa, sizeof(sa));
    umask(old_mask);
    if (rc < 0 || xd_share_socket(xd.sock_name) < 0 || listen(listen_fd, 128) < 0)
        return -1;
    return 0;
}

int xd_serve(void)
{
    int err;

    loop = uv_default_loop();
    if (listen_socket() < 0) {
        xd_log(XD_ERROR, "cannot listen on %s: %s", xd.sock_path, strerror(errno));
        return 1;
    }
    if ((err = uv_poll_init(loop, &listen_poll, listen_fd)) ||
        (err = uv_poll_start(&listen_poll, UV_READABLE, on_accept)) ||
        (err = uv_signal_init(loop, &sig_term)) ||
        (err = uv_signal_start(&sig_term, on_signal, SIGTERM)) ||
        (err = uv_signal_init(loop, &sig_int)) ||
        (err = uv_signal_start(&sig_int, on_signal, SIGINT)) ||
        (err = uv_signal_init(loop, &sig_hup)) ||
        (err = uv_signal_start(&sig_hup, on_hup, SIGHUP)) ||
        (err = uv_timer_init(loop, &retry_timer)) || (err = uv_timer_init(loop, &accept_timer))) {
        xd_log(XD_ERROR, "cannot set up the event loop: %s", uv_strerror(err));
        close(listen_fd);
        return 1;
    }
    start_adopted();
    xd_ready();
    /* After xd_ready, so that a --log-file starts with this line. */
    xd_log(XD_INFO, "serving namespace '%s' on %s", xd.ns, xd.sock_path);
    uv_run(loop, UV_RUN_DEFAULT);
    /* Stopped by a signal: the files go, the segment stays; connections close
     * with the process, and their sessions stay live in the segment for the
     * next daemon, which watches their processes (xd_adopt). */
    close(listen_fd);
    return 0;
}
