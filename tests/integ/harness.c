/*
 * harness.c -- see harness.h for what each helper promises.
 *
 * Decisions:
 *   - The environment is settled in a constructor, before main(), so a test
 *     that opens a client before calling any helper still finds the
 *     namespace the daemon will serve.
 *   - "The main process" is the one that ran the constructor.  Only it runs
 *     the exit-time cleanup; everywhere else (xt_fork children, or children
 *     a test forks by hand) a failed check leaves with _exit(1).
 *   - Children of xt_fork and the daemon get PR_SET_PDEATHSIG, so a test
 *     that fails or is killed leaves no process behind blocked in a wait.
 *   - Only public xichan.h functions are used (error names for messages).
 */
#include "harness.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define XT_READY_MS 5000
#define XT_STOP_MS 5000
#define XT_MAX_ARGS 64

static pid_t main_pid;            /* the process that ran the constructor */
static char runtime_dir[256];
static char ns_name[64];
static char daemon_path[1024];
static char shm_path[512];
static int own_runtime_dir;       /* we made it: remove it at exit */
static pid_t daemon_pid;
static pid_t daemon_owner;        /* who started it (and alone can reap it) */
static int own_name;              /* XICHAN_NAME was not given: the name is ours */

/* ------------------------------------------------------------- checks */

__attribute__((noreturn)) static void leave(int status)
{
    fflush(NULL);
    if (getpid() == main_pid)
        exit(status);
    _exit(status);
}

void xt__fail(const char *file, int line, const char *fmt, ...)
{
    va_list ap;

    fflush(stdout);
    fprintf(stderr, "%s:%d: ", file, line);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    if (getpid() != main_pid)
        fprintf(stderr, " [in child %d]", (int)getpid());
    fputc('\n', stderr);
    leave(1);
}

int xt_sh(char *out, size_t cap, const char *fmt, ...)
{
    char cmd[8192];
    va_list ap;
    size_t n;
    FILE *f;
    int st, len;

    va_start(ap, fmt);
    len = vsnprintf(cmd, sizeof(cmd) - sizeof(" 2>&1"), fmt, ap);
    va_end(ap);
    if (len < 0 || (size_t)len >= sizeof(cmd) - sizeof(" 2>&1"))
        xt__fail(__FILE__, __LINE__, "command line too long: %.80s...", cmd);
    strcat(cmd, " 2>&1");
    fflush(NULL);
    if (!(f = popen(cmd, "r")))
        xt__fail(__FILE__, __LINE__, "popen(%s): %s", cmd, strerror(errno));
    n = fread(out, 1, cap - 1, f);
    out[n] = '\0';
    st = pclose(f);
    return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + (WIFSIGNALED(st) ? WTERMSIG(st) : 0);
}

void xt_skip(const char *why)
{
    printf("SKIP: %s\n", why);
    leave(77);
}

/* ------------------------------------------------------------- time */

double xt_now(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

void xt_sleep_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};

    while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
        ;
}

/* ------------------------------------------------------- environment */

const char *xt_name(void)
{
    return ns_name;
}

const char *xt_runtime_dir(void)
{
    return runtime_dir;
}

const char *xt_daemon_path(void)
{
    return daemon_path;
}

const char *xt_shm_path(void)
{
    return shm_path;
}

int xt_shm_exists(void)
{
    return access(shm_path, F_OK) == 0;
}

const char *xt_path(const char *name)
{
    static char p[4][1024];
    static int k;

    k = (k + 1) % 4;
    if ((size_t)snprintf(p[k], sizeof(p[k]), "%s/%s", runtime_dir, name) >= sizeof(p[k]))
        xt__fail(__FILE__, __LINE__, "path too long: %s/%s", runtime_dir, name);
    return p[k];
}

int xt_read_file(const char *path, char *buf, size_t cap)
{
    FILE *f = fopen(path, "r");
    size_t n = 0;

    if (f) {
        n = fread(buf, 1, cap - 1, f);
        fclose(f);
    }
    buf[n] = '\0';
    return f ? (int)n : -1;
}

/* Removes a flat directory (sockets, lock, log); nothing below it is expected. */
static void remove_dir(const char *dir)
{
    DIR *d = opendir(dir);
    struct dirent *e;
    char path[512];

    if (!d)
        return;
    while ((e = readdir(d))) {
        if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
            continue;
        snprintf(path, sizeof(path), "%s/%s", dir, e->d_name);
        unlink(path);
    }
    closedir(d);
    if (rmdir(dir) != 0)
        fprintf(stderr, "harness: could not remove %s: %s\n", dir, strerror(errno));
}

static void at_exit(void)
{
    if (getpid() != main_pid)
        return;
    if (daemon_pid && daemon_owner == main_pid)
        xt_stop_daemon();
    /* A stopped daemon keeps its segment (xichand(8)); a test's namespace
     * is a throw-away: remove it if the name is ours or we ran its daemon. */
    if (own_name || daemon_owner == main_pid)
        unlink(shm_path);
    if (own_runtime_dir)
        remove_dir(runtime_dir);
}

static void copy_env(char *buf, size_t cap, const char *var, const char *fallback)
{
    const char *v = getenv(var);
    int n = snprintf(buf, cap, "%s", v && *v ? v : fallback);

    if (n < 0 || (size_t)n >= cap) {
        fprintf(stderr, "harness: $%s is too long\n", var);
        exit(1);
    }
}

__attribute__((constructor)) static void xt_init(void)
{
    char fallback[64];

    main_pid = getpid();
    snprintf(fallback, sizeof(fallback), "xt%d", (int)main_pid);
    own_name = !(getenv("XICHAN_NAME") && *getenv("XICHAN_NAME"));
    copy_env(ns_name, sizeof(ns_name), "XICHAN_NAME", fallback);
    copy_env(daemon_path, sizeof(daemon_path), "XICHAN_DAEMON", "build/bin/xichand");
    if (getenv("XICHAN_RUNTIME_DIR") && *getenv("XICHAN_RUNTIME_DIR")) {
        copy_env(runtime_dir, sizeof(runtime_dir), "XICHAN_RUNTIME_DIR", "");
    } else {
        snprintf(runtime_dir, sizeof(runtime_dir), "/tmp/xichan-xt.XXXXXX");
        if (!mkdtemp(runtime_dir)) {
            fprintf(stderr, "harness: mkdtemp: %s\n", strerror(errno));
            exit(1);
        }
        own_runtime_dir = 1;
    }
    snprintf(shm_path, sizeof(shm_path), "/dev/shm/xichan-%u-%s", (unsigned)getuid(), ns_name);
    if (setenv("XICHAN_NAME", ns_name, 1) || setenv("XICHAN_RUNTIME_DIR", runtime_dir, 1) ||
        setenv("XICHAN_DAEMON", daemon_path, 1) || setenv("XICHAN_AUTOSTART", "0", 0)) {
        fprintf(stderr, "harness: setenv: %s\n", strerror(errno));
        exit(1);
    }
    atexit(at_exit);
}

/* ---------------------------------------------------------- children */

static int decode_status(int st)
{
    if (WIFEXITED(st))
        return WEXITSTATUS(st);
    if (WIFSIGNALED(st))
        return 128 + WTERMSIG(st);
    return 255;
}

int xt_wait(pid_t pid, int timeout_ms)
{
    double deadline = xt_now() + timeout_ms / 1000.0;
    int st, nap = 1;
    pid_t r;

    for (;;) {
        r = waitpid(pid, &st, timeout_ms < 0 ? 0 : WNOHANG);
        if (r == pid)
            return decode_status(st);
        if (r < 0 && errno != EINTR)
            xt__fail(__FILE__, __LINE__, "waitpid(%d): %s", (int)pid, strerror(errno));
        if (r == 0 && xt_now() >= deadline) {
            kill(pid, SIGKILL);
            while (waitpid(pid, &st, 0) < 0 && errno == EINTR)
                ;
            return -1;
        }
        if (r == 0) {
            xt_sleep_ms(nap);
            if (nap < 10)
                nap++;
        }
    }
}

void xt_kill9(pid_t pid)
{
    int st;

    if (pid <= 0)
        return;
    kill(pid, SIGKILL);
    while (waitpid(pid, &st, 0) < 0 && errno == EINTR)
        ;
}

/* In a fresh child: die with the parent, so no test leaves a process behind. */
static void die_with_parent(pid_t parent, int sig)
{
    prctl(PR_SET_PDEATHSIG, sig);
    if (getppid() != parent)
        _exit(127);
}

pid_t xt_fork(void (*fn)(void *), void *arg)
{
    pid_t parent = getpid(), pid;

    fflush(NULL);
    pid = fork();
    if (pid < 0)
        xt__fail(__FILE__, __LINE__, "fork: %s", strerror(errno));
    if (pid == 0) {
        die_with_parent(parent, SIGKILL);
        fn(arg);
        fflush(NULL);
        _exit(0);
    }
    return pid;
}

/* ------------------------------------------------------ sync by pipe */

void xt_pipe_init(xt_pipe_t *p)
{
    int fds[2];

    if (pipe2(fds, O_CLOEXEC) != 0)
        xt__fail(__FILE__, __LINE__, "pipe2: %s", strerror(errno));
    /* Non-blocking reads: several processes may race for one byte. */
    if (fcntl(fds[0], F_SETFL, O_NONBLOCK) != 0)
        xt__fail(__FILE__, __LINE__, "fcntl: %s", strerror(errno));
    p->rd = fds[0];
    p->wr = fds[1];
}

void xt_pipe_close(xt_pipe_t *p)
{
    if (p->rd >= 0)
        close(p->rd);
    if (p->wr >= 0)
        close(p->wr);
    p->rd = p->wr = -1;
}

void xt_signal(xt_pipe_t *p)
{
    char c = 1;
    ssize_t n;

    while ((n = write(p->wr, &c, 1)) < 0 && errno == EINTR)
        ;
    if (n != 1)
        xt__fail(__FILE__, __LINE__, "xt_signal: write: %s", strerror(errno));
}

int xt_await(xt_pipe_t *p, int timeout_ms)
{
    double deadline = xt_now() + timeout_ms / 1000.0;
    struct pollfd pfd = {.fd = p->rd, .events = POLLIN};
    char c;

    for (;;) {
        int wait_ms = -1, r;
        ssize_t n;

        if (timeout_ms >= 0) {
            double left = deadline - xt_now();
            if (left < 0)
                left = 0;
            wait_ms = (int)(left * 1000.0) + 1;
        }
        r = poll(&pfd, 1, wait_ms);
        if (r < 0 && errno != EINTR)
            xt__fail(__FILE__, __LINE__, "xt_await: poll: %s", strerror(errno));
        if (r > 0) {
            n = read(p->rd, &c, 1);
            if (n == 1)
                return 0;
            if (n == 0)
                return -1; /* every writer closed its end */
            if (errno != EAGAIN && errno != EINTR)
                xt__fail(__FILE__, __LINE__, "xt_await: read: %s", strerror(errno));
            /* another reader took the byte: wait on */
        }
        if (timeout_ms >= 0 && xt_now() >= deadline)
            return -1;
    }
}

/* ------------------------------------------------------------ daemon */

static void print_log(void)
{
    char path[512], buf[4096];
    size_t n;
    FILE *f;

    snprintf(path, sizeof(path), "%s/xichand.log", runtime_dir);
    f = fopen(path, "r");
    if (!f)
        return;
    fprintf(stderr, "---- %s ----\n", path);
    while ((n = fread(buf, 1, sizeof(buf), f)) > 0)
        fwrite(buf, 1, n, stderr);
    fprintf(stderr, "---- end of xichand.log ----\n");
    fclose(f);
}

/* 1 if <dir>/<name>.sock accepts a connection (which is closed at once). */
static int socket_ready(void)
{
    static const int types[] = {SOCK_SEQPACKET, SOCK_STREAM};
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    int n = snprintf(sa.sun_path, sizeof(sa.sun_path), "%s/%s.sock", runtime_dir, ns_name);

    if (n < 0 || (size_t)n >= sizeof(sa.sun_path))
        xt__fail(__FILE__, __LINE__, "socket path %s/%s.sock is too long", runtime_dir, ns_name);
    for (size_t i = 0; i < sizeof(types) / sizeof(types[0]); i++) {
        int fd = socket(AF_UNIX, types[i] | SOCK_CLOEXEC, 0), ok, err;

        if (fd < 0)
            xt__fail(__FILE__, __LINE__, "socket: %s", strerror(errno));
        ok = connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0;
        err = errno;
        close(fd);
        if (ok)
            return 1;
        if (err != EPROTOTYPE)
            return 0;
    }
    return 0;
}

static void record_pid(pid_t pid)
{
    char path[512];
    FILE *f;

    snprintf(path, sizeof(path), "%s/xt-daemon.pids", runtime_dir);
    f = fopen(path, "a");
    if (!f)
        xt__fail(__FILE__, __LINE__, "%s: %s", path, strerror(errno));
    fprintf(f, "%d\n", (int)pid);
    fclose(f);
}

void xt_start_daemon(const char *extra_args)
{
    char *argv[XT_MAX_ARGS + 8], *extra = NULL, *save = NULL, *tok, logpath[512];
    int argc = 0, logfd, devnull, st;
    pid_t parent = getpid(), pid;
    double deadline;

    if (daemon_pid)
        xt__fail(__FILE__, __LINE__, "xt_start_daemon: xichand (pid %d) already runs",
                 (int)daemon_pid);
    if (access(daemon_path, X_OK) != 0)
        xt__fail(__FILE__, __LINE__, "no xichand at %s (%s): run make, or set XICHAN_DAEMON",
                 daemon_path, strerror(errno));
    argv[argc++] = daemon_path;
    argv[argc++] = "--foreground";
    argv[argc++] = "--name";
    argv[argc++] = ns_name;
    argv[argc++] = "--runtime-dir";
    argv[argc++] = runtime_dir;
    if (extra_args) {
        extra = strdup(extra_args);
        if (!extra)
            xt__fail(__FILE__, __LINE__, "out of memory");
        for (tok = strtok_r(extra, " \t\n", &save); tok; tok = strtok_r(NULL, " \t\n", &save)) {
            if (argc >= XT_MAX_ARGS + 6)
                xt__fail(__FILE__, __LINE__, "xt_start_daemon: too many arguments");
            argv[argc++] = tok;
        }
    }
    argv[argc] = NULL;

    snprintf(logpath, sizeof(logpath), "%s/xichand.log", runtime_dir);
    logfd = open(logpath, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
    devnull = open("/dev/null", O_RDONLY | O_CLOEXEC);
    if (logfd < 0 || devnull < 0)
        xt__fail(__FILE__, __LINE__, "open %s: %s", logpath, strerror(errno));
    fflush(NULL);
    pid = fork();
    if (pid < 0)
        xt__fail(__FILE__, __LINE__, "fork: %s", strerror(errno));
    if (pid == 0) {
        static const char msg[] = "harness: exec of xichand failed\n";
        ssize_t ignored;

        die_with_parent(parent, SIGTERM);
        dup2(devnull, 0);
        dup2(logfd, 1);
        dup2(logfd, 2);
        execv(argv[0], argv);
        ignored = write(2, msg, sizeof(msg) - 1);
        (void)ignored;
        _exit(127);
    }
    close(logfd);
    close(devnull);
    free(extra);
    daemon_pid = pid;
    daemon_owner = parent;
    record_pid(pid);

    deadline = xt_now() + XT_READY_MS / 1000.0;
    for (;;) {
        pid_t r = waitpid(pid, &st, WNOHANG);
        if (r == pid) {
            daemon_pid = 0;
            print_log();
            xt__fail(__FILE__, __LINE__, "xichand exited with status %d before it was ready",
                     decode_status(st));
        }
        if (socket_ready())
            return;
        if (xt_now() >= deadline) {
            xt_kill_daemon();
            print_log();
            xt__fail(__FILE__, __LINE__, "%s/%s.sock accepted no connection within %d ms",
                     runtime_dir, ns_name, XT_READY_MS);
        }
        xt_sleep_ms(5);
    }
}

pid_t xt_daemon_pid(void)
{
    return daemon_pid;
}

int xt_stop_daemon(void)
{
    pid_t pid = daemon_pid;
    int rc;

    if (!pid)
        return 0;
    if (getpid() != daemon_owner)
        xt__fail(__FILE__, __LINE__, "xt_stop_daemon: only the process that started it can");
    daemon_pid = 0;
    kill(pid, SIGTERM);
    rc = xt_wait(pid, XT_STOP_MS);
    if (rc == -1)
        fprintf(stderr, "harness: xichand (pid %d) ignored SIGTERM for %d ms; killed it\n",
                (int)pid, XT_STOP_MS);
    else if (rc != 0)
        fprintf(stderr, "harness: xichand (pid %d) exited with status %d after SIGTERM\n",
                (int)pid, rc);
    if (rc != 0)
        print_log();
    return rc;
}

int xt_reap_daemon(int timeout_ms)
{
    pid_t pid = daemon_pid;

    if (!pid)
        return 0;
    if (getpid() != daemon_owner)
        xt__fail(__FILE__, __LINE__, "xt_reap_daemon: only the process that started it can");
    daemon_pid = 0;
    return xt_wait(pid, timeout_ms);
}

void xt_kill_daemon(void)
{
    pid_t pid = daemon_pid;

    if (!pid)
        return;
    if (getpid() != daemon_owner)
        xt__fail(__FILE__, __LINE__, "xt_kill_daemon: only the process that started it can");
    daemon_pid = 0;
    xt_kill9(pid);
}
