/*
 * daemon_log.c -- xichand's log and its service-manager protocol, as
 * logrotate and systemd use them:
 *
 *   - every --log-file line starts with a UTC timestamp with milliseconds
 *     and "xichand[PID]: LEVEL: ";
 *   - logrotate's create: the file is renamed, SIGHUP makes the daemon
 *     open the path again; the daemon lives on, the old file keeps the old
 *     lines and the new one gets the reopen line and later session lines;
 *     a SIGHUP without --log-file only says so;
 *   - a --log-file that is a symbolic link is refused (exit 1, saying so),
 *     and --log-file with --syslog is a usage error (2);
 *   - under systemd: with $NOTIFY_SOCKET the daemon sends READY=1 with its
 *     MAINPID once it serves and STOPPING=1 on SIGTERM; with stderr being
 *     the journal ($JOURNAL_STREAM names it) lines carry "<6>" priority
 *     prefixes and no timestamp.
 */
#include <errno.h>
#include <fcntl.h>
#include <regex.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include "harness.h"

static char out[65536], text[65536];

#define run(...) xt_sh(out, sizeof(out), __VA_ARGS__)

/* A file of the runtime dir, in text ("" if missing). */
static const char *slurp(const char *name)
{
    xt_read_file(xt_path(name), text, sizeof(text));
    return text;
}

/* Waits up to 5 s for a file of the runtime dir to hold s. */
static void await_text(const char *name, const char *s)
{
    for (int i = 0; i < 100; i++) {
        if (strstr(slurp(name), s))
            return;
        xt_sleep_ms(50);
    }
    xt__fail(__FILE__, __LINE__, "%s never said '%s':\n%s", name, s, text);
}

static void test_timestamps_and_sighup(void)
{
    regex_t re;
    xichan_client *cl;
    pid_t pid;
    char *line, *save, opt[1100];
    int lines = 0;

    snprintf(opt, sizeof(opt), "--log-file %s", xt_path("d.log"));
    xt_start_daemon(opt);
    pid = xt_daemon_pid();
    await_text("d.log", "serving namespace");
    XT_OK(xichan_client_open(&cl, NULL));
    xichan_client_close(cl);
    await_text("d.log", "connected");
    XT_CHECK(regcomp(&re,
                     "^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}\\.[0-9]{3}Z "
                     "xichand\\[[0-9]+\\]: (error|warn|info|debug): ",
                     REG_EXTENDED | REG_NOSUB) == 0);
    slurp("d.log");
    for (line = strtok_r(text, "\n", &save); line; line = strtok_r(NULL, "\n", &save), lines++)
        if (regexec(&re, line, 0, NULL, 0) != 0)
            xt__fail(__FILE__, __LINE__, "log line without a timestamp: '%s'", line);
    regfree(&re);
    XT_CHECK(lines >= 3);

    /* logrotate: rename, then SIGHUP. */
    XT_CHECK(rename(xt_path("d.log"), xt_path("d.log.1")) == 0);
    XT_CHECK(kill(pid, SIGHUP) == 0);
    await_text("d.log", "SIGHUP: log file ");
    XT_CHECK(kill(pid, 0) == 0); /* SIGHUP did not stop it */
    XT_EQ_INT(xt_daemon_pid(), pid);
    XT_OK(xichan_client_open(&cl, NULL));
    xichan_client_close(cl);
    await_text("d.log", "connected");
    XT_CHECK(strstr(slurp("d.log.1"), "serving namespace") != NULL);
    XT_CHECK(strstr(text, "SIGHUP") == NULL); /* nothing more went to the old file */
    XT_EQ_INT(xt_stop_daemon(), 0);
    await_text("d.log", "SIGTERM: stopping");

    /* Without --log-file (the harness's own log), SIGHUP only says so. */
    xt_start_daemon(NULL);
    pid = xt_daemon_pid();
    XT_CHECK(kill(pid, SIGHUP) == 0);
    await_text("xichand.log", "SIGHUP: no --log-file to reopen");
    XT_CHECK(kill(pid, 0) == 0);
    XT_EQ_INT(xt_stop_daemon(), 0);
}

static void test_bad_log_options(void)
{
    XT_CHECK(symlink(xt_path("target.log"), xt_path("link.log")) == 0);
    XT_EQ_INT(run("'%s' --foreground --name %s --runtime-dir '%s' --log-file '%s'",
                  xt_daemon_path(), xt_name(), xt_runtime_dir(), xt_path("link.log")),
              1);
    XT_HAS(out, "is a symbolic link");
    XT_CHECK(access(xt_path("target.log"), F_OK) != 0); /* nothing was created through it */
    XT_EQ_INT(run("'%s' --foreground --name %s --runtime-dir '%s' --log-file x --syslog",
                  xt_daemon_path(), xt_name(), xt_runtime_dir()),
              2);
    XT_HAS(out, "choose one");
}

/* Reads one datagram (5 s at most) into buf as a string; its length or -1. */
static int recv_notify(int fd, char *buf, size_t cap)
{
    struct timeval tv = {5, 0};
    ssize_t n;

    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    n = recv(fd, buf, cap - 1, 0);
    if (n < 0)
        return -1;
    buf[n] = '\0';
    return (int)n;
}

/* The child: stderr is j.log, announced as the journal, NOTIFY_SOCKET set. */
static void systemd_child(void *arg)
{
    char js[64];
    struct stat st;
    int fd = open(xt_path("j.log"), O_WRONLY | O_CREAT | O_TRUNC, 0600);

    XT_CHECK(fd >= 0 && dup2(fd, 2) == 2 && fstat(2, &st) == 0);
    snprintf(js, sizeof(js), "%llu:%llu", (unsigned long long)st.st_dev,
             (unsigned long long)st.st_ino);
    setenv("JOURNAL_STREAM", js, 1);
    setenv("NOTIFY_SOCKET", xt_path("notify"), 1);
    execl(xt_daemon_path(), "xichand", "--foreground", "--name", xt_name(), "--runtime-dir",
          xt_runtime_dir(), (char *)NULL);
    _exit(127);
}

static void test_systemd(void)
{
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    char msg[512], want[64];
    int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    pid_t pid;

    XT_CHECK(fd >= 0);
    snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", xt_path("notify"));
    XT_CHECK(bind(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0);
    pid = xt_fork(systemd_child, NULL);
    XT_CHECK(recv_notify(fd, msg, sizeof(msg)) > 0);
    XT_HAS(msg, "READY=1");
    snprintf(want, sizeof(want), "MAINPID=%d", (int)pid);
    XT_HAS(msg, want);
    XT_HAS(msg, "STATUS=serving namespace");
    /* Ready means ready: a session is accepted at once. */
    {
        xichan_client *cl;
        XT_OK(xichan_client_open(&cl, NULL));
        xichan_client_close(cl);
    }
    XT_CHECK(kill(pid, SIGTERM) == 0);
    XT_CHECK(recv_notify(fd, msg, sizeof(msg)) > 0);
    XT_HAS(msg, "STOPPING=1");
    XT_EQ_INT(xt_wait(pid, 10000), 0);
    close(fd);
    /* The journal reads priorities from "<N>" and stamps lines itself. */
    slurp("j.log");
    XT_CHECK(!strncmp(text, "<6>", 3));
    XT_HAS(text, "\n<6>serving namespace");
    XT_CHECK(strstr(text, "xichand[") == NULL);
}

int main(void)
{
    test_timestamps_and_sighup();
    test_bad_log_options();
    test_systemd();
    printf("daemon_log: timestamps, SIGHUP reopen, symlink refused, sd_notify, journal\n");
    return 0;
}
