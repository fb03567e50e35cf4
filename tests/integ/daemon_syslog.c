/*
 * daemon_syslog.c -- xichand --syslog, received by a syslog socket of the
 * test's own: what a syslog daemon gets is checked line by line.
 *
 * glibc's syslog(3) always sends to /dev/log.  So the daemon runs in a
 * private mount namespace (`unshare -rm`: a user namespace too, so no
 * privilege is needed) whose /dev is a fresh tmpfs holding the usual
 * device nodes (bound from the real /dev), the real /dev/shm (where the
 * segment lives, shared with this process) and, as /dev/log, a datagram
 * socket this test bound in the runtime dir.  Nothing outside the namespace
 * changes.  Where namespaces or mounts in them are not permitted (some
 * containers), the test is skipped with the reason.
 *
 * Checked, for each level the daemon logs at (--log-level debug):
 *   - every datagram reads "<PRI>Mmm dd hh:mm:ss xichand[PID]: text", the
 *     BSD syslog format of glibc: facility LOG_DAEMON, ident "xichand",
 *     LOG_PID with the daemon's own pid;
 *   - a warning (an unwritable --pid-file) is <28> (daemon.warning), the
 *     start-up and session lines <30> (daemon.info), a connection accepted
 *     <31> (daemon.debug), the SIGTERM line <30>;
 *   - the text is the same as in the file log, without its timestamp and
 *     level words, and none of these lines reaches stderr.
 */
#include <errno.h>
#include <regex.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "harness.h"

/*
 * Run by `unshare -rm sh -c`: $1 the socket to serve as /dev/log, $2 a
 * scratch dir, then the command to exec there.  set -e: any step that is
 * refused ends it with the reason on stderr.
 */
static const char ns_script[] =
    "set -e\n"
    "sock=$1 old=$2\n"
    "shift 2\n"
    "mount --rbind /dev \"$old\"\n"
    "mount -t tmpfs -o mode=0755 xichan-test-dev /dev\n"
    "for n in null zero full random urandom tty; do\n"
    "    [ -e \"$old/$n\" ] || continue\n"
    "    : >\"/dev/$n\"\n"
    "    mount --bind \"$old/$n\" \"/dev/$n\"\n"
    "done\n"
    "mkdir /dev/shm\n"
    "mount --rbind \"$old/shm\" /dev/shm\n"
    "ln -s /proc/self/fd /dev/fd\n"
    ": >/dev/log\n"
    "mount --bind \"$sock\" /dev/log\n"
    "exec \"$@\"\n";

static char out[65536];
static char logs[64][2048]; /* the datagrams received, in order */
static int nlogs;

/* Starts cmd (a NULL-terminated argv) in the namespace, stdout+stderr to
 * the file err of the runtime dir: its pid, which cmd keeps (each step
 * execs the next). */
static pid_t start_in_namespace(const char *err, const char *const *cmd)
{
    const char *argv[32] = {"unshare", "-rm", "sh", "-c", ns_script, "sh", xt_path("log.sock"),
                            xt_path("olddev")};
    int n = 8;
    pid_t pid;

    while (*cmd && n < 31)
        argv[n++] = *cmd++;
    argv[n] = NULL;
    fflush(NULL);
    XT_CHECK((pid = fork()) >= 0);
    if (pid == 0) {
        XT_CHECK(freopen(xt_path(err), "w", stdout) && dup2(1, 2) == 2);
        execvp("unshare", (char *const *)argv);
        fprintf(stderr, "cannot run unshare: %s\n", strerror(errno));
        _exit(127);
    }
    return pid;
}

/* A file of the runtime dir, in out. */
static const char *slurp(const char *name)
{
    xt_read_file(xt_path(name), out, sizeof(out));
    return out;
}

/* Receives datagrams until one holds s (10 s at most); that one's index. */
static int await_log(int fd, const char *s)
{
    for (int i = 0; i < nlogs; i++)
        if (strstr(logs[i], s))
            return i;
    while (nlogs < (int)(sizeof(logs) / sizeof(logs[0]))) {
        struct timeval tv = {10, 0};
        ssize_t n;

        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
        n = recv(fd, logs[nlogs], sizeof(logs[0]) - 1, 0);
        if (n < 0)
            break;
        logs[nlogs][n] = '\0';
        if (strstr(logs[nlogs++], s))
            return nlogs - 1;
    }
    xt__fail(__FILE__, __LINE__, "no syslog datagram says '%s' (%d received; daemon output: %s)",
             s, nlogs, slurp("daemon.out"));
}

/* logs[i] is "<prio>Mmm dd hh:mm:ss xichand[pid]: " then text; prio -1:
 * any of facility LOG_DAEMON's (24 to 31). */
static void check_line(int i, int prio, pid_t pid, const char *text)
{
    char pattern[512], pri[16];
    regex_t re;

    if (prio < 0)
        snprintf(pri, sizeof(pri), "(2[4-9]|3[01])");
    else
        snprintf(pri, sizeof(pri), "%d", prio);
    snprintf(pattern, sizeof(pattern),
             "^<%s>[A-Z][a-z]{2} [ 1-3][0-9] [0-2][0-9]:[0-5][0-9]:[0-6][0-9] xichand\\[%d\\]: %s",
             pri, (int)pid, text);
    XT_CHECK(regcomp(&re, pattern, REG_EXTENDED | REG_NOSUB) == 0);
    if (regexec(&re, logs[i], 0, NULL, 0) != 0)
        xt__fail(__FILE__, __LINE__, "syslog datagram '%s' does not match '%s'", logs[i], pattern);
    regfree(&re);
}

int main(void)
{
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    const char *probe[] = {"true", NULL};
    char pidfile[1100];
    const char *daemon[] = {xt_daemon_path(), "--foreground", "--syslog", "--log-level", "debug",
                            "--pid-file", pidfile, "--name", xt_name(), "--runtime-dir",
                            xt_runtime_dir(), NULL};
    xichan_client *cl;
    int fd, st, i;
    pid_t pid;

    snprintf(pidfile, sizeof(pidfile), "%s", xt_path("no/such/dir/xichand.pid"));
    XT_CHECK(mkdir(xt_path("olddev"), 0700) == 0);
    fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    XT_CHECK(fd >= 0);
    snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", xt_path("log.sock"));
    XT_CHECK(bind(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0);

    /* The same namespace set-up with nothing to run: may we at all? */
    st = xt_wait(start_in_namespace("probe.out", probe), 10000);
    if (st != 0) {
        char why[600];

        snprintf(why, sizeof(why), "cannot make a private /dev/log here (status %d): %.500s", st,
                 slurp("probe.out"));
        xt_skip(why);
    }

    pid = start_in_namespace("daemon.out", daemon);
    check_line(await_log(fd, "cannot write pid file"), 24 + 4, pid, "cannot write pid file ");
    check_line(await_log(fd, "serving namespace"), 24 + 6, pid,
               "serving namespace '[^']+' on /");
    XT_OK(xichan_client_open(&cl, NULL));
    xichan_client_close(cl);
    check_line(await_log(fd, "accepted a connection"), 24 + 7, pid,
               "accepted a connection from pid [0-9]+");
    check_line(await_log(fd, "connected"), 24 + 6, pid, "session [0-9]+ \\(pid [0-9]+, ");
    XT_CHECK(kill(pid, SIGTERM) == 0);
    check_line(await_log(fd, "SIGTERM: stopping"), 24 + 6, pid, "SIGTERM: stopping");
    XT_EQ_INT(xt_wait(pid, 10000), 0);
    for (i = 0; i < nlogs; i++) /* and every other line */
        check_line(i, -1, pid, "[^ ]");
    close(fd);
    for (i = 0; i < nlogs; i++)
        printf("  %s\n", logs[i]);
    /* syslog alone: nothing of this went to stderr. */
    XT_CHECK(strstr(slurp("daemon.out"), "serving namespace") == NULL);
    printf("daemon_syslog: %d datagrams, each <PRI>timestamp xichand[%d]: text, "
           "priorities daemon.warning/info/debug\n",
           nlogs, (int)pid);
    return 0;
}
