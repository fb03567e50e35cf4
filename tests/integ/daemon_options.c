/*
 * daemon_options.c -- xichand's --daemon, --pid-file, --log-file and
 * --log-level, as a service manager or a user runs them:
 *
 *   - `xichand --daemon` returns 0 only once the daemon serves: a client
 *     connects right after, with autostart off; the pid file names the
 *     detached daemon, which is no child of ours;
 *   - --log-file starts with the "serving" line and gets the session lines;
 *     --log-level debug adds the accepted connection, warn leaves out every
 *     info line, and $XICHAN_LOG_LEVEL does the same as the option;
 *   - SIGTERM to the pid in the pid file stops it and removes the segment;
 *   - a bad --log-level is a usage error (2), and a --daemon launcher for a
 *     namespace already served exits 3, as the daemon itself does.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "harness.h"

static char cmd[4096], text[65536];

/* Runs a shell command line; its exit status. */
static int sh(const char *line)
{
    int st;

    fflush(NULL);
    st = system(line);
    XT_CHECK(st != -1);
    return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

/* `xichand --daemon` for the test's namespace, with more options; its status. */
static int start_daemon(const char *env, const char *opts)
{
    snprintf(cmd, sizeof(cmd),
             "%s '%s' --daemon --name '%s' --runtime-dir '%s' --pid-file '%s/d.pid' %s "
             "</dev/null >'%s/launch.out' 2>&1",
             env, xt_daemon_path(), xt_name(), xt_runtime_dir(), xt_runtime_dir(), opts,
             xt_runtime_dir());
    return sh(cmd);
}

/* A file of the runtime dir into text (empty if missing). */
static const char *slurp(const char *name)
{
    xt_read_file(xt_path(name), text, sizeof(text));
    return text;
}

static pid_t pid_from_file(void)
{
    long pid = strtol(slurp("d.pid"), NULL, 10);

    XT_CHECK(pid > 1);
    return (pid_t)pid;
}

/* One session opened and closed, so that the daemon has something to log. */
static void touch_session(void)
{
    xichan_client *cl;

    XT_OK(xichan_client_open(&cl, &(xichan_client_opts){.autostart = XICHAN_AUTOSTART_OFF}));
    xichan_client_close(cl);
}

/* Waits (at most 5 s) until the daemon's log contains what. */
static const char *await_log(const char *log, const char *what)
{
    for (int i = 0; i < 500; i++) {
        if (strstr(slurp(log), what))
            return text;
        usleep(10000);
    }
    xt__fail(__FILE__, __LINE__, "%s never showed '%s'; it has:\n%s", log, what, text);
}

/* Running, and not a zombie: the detached daemon is init's child, and init
 * may take a while to reap it. */
static int alive(pid_t pid)
{
    char path[64], stat[512], *close_paren;

    snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
    if (xt_read_file(path, stat, sizeof(stat)) < 0)
        return 0;
    close_paren = strrchr(stat, ')');
    return close_paren && close_paren[1] == ' ' && close_paren[2] != 'Z' && close_paren[2] != 'X';
}

/* SIGTERM by the pid file; the daemon must be gone in 5 s, its segment kept. */
static void stop_by_pid_file(void)
{
    pid_t pid = pid_from_file();

    XT_EQ_INT(kill(pid, SIGTERM), 0);
    for (int i = 0; i < 500 && alive(pid); i++)
        usleep(10000);
    XT_CHECK(!alive(pid));
    XT_CHECK(xt_shm_exists());
}

static void test_daemon_debug_log(void)
{
    const char *serving;
    pid_t pid;

    XT_EQ_INT(start_daemon("", "--log-level debug --log-file \"$XICHAN_RUNTIME_DIR/d.log\""), 0);
    /* Serving already: no retry loop, autostart off. */
    touch_session();
    pid = pid_from_file();
    XT_CHECK(waitpid(pid, NULL, WNOHANG) < 0 && errno == ECHILD); /* detached, not our child */
    await_log("d.log", "released in");
    serving = strstr(text, ": info: serving namespace");
    XT_CHECK(serving != NULL && serving < strchr(text, '\n')); /* the first line */
    XT_CHECK(strstr(text, "debug: accepted a connection from pid") != NULL);
    XT_CHECK(strstr(text, "debug: session 1: cleanup started") != NULL);

    /* A second launcher for the same namespace: 3, like the daemon itself. */
    XT_EQ_INT(start_daemon("", ""), 3);
    XT_CHECK(strstr(slurp("launch.out"), "already serves") != NULL);
    stop_by_pid_file();
}

static void test_log_levels(void)
{
    const char *log;

    /* --log-level warn: no info line at all, the "serving" one included. */
    XT_EQ_INT(start_daemon("", "--log-level warn --log-file \"$XICHAN_RUNTIME_DIR/w.log\""), 0);
    touch_session();
    stop_by_pid_file();
    log = slurp("w.log");
    XT_CHECK(strstr(log, ": info: ") == NULL && strstr(log, ": debug: ") == NULL);

    /* $XICHAN_LOG_LEVEL=debug does what --log-level debug does. */
    XT_EQ_INT(start_daemon("XICHAN_LOG_LEVEL=debug",
                           "--log-file \"$XICHAN_RUNTIME_DIR/e.log\""), 0);
    touch_session();
    await_log("e.log", "debug: accepted a connection");
    stop_by_pid_file();

    /* The default, info: sessions yes, debug no. */
    XT_EQ_INT(start_daemon("", "--log-file \"$XICHAN_RUNTIME_DIR/i.log\""), 0);
    touch_session();
    log = await_log("i.log", "released in");
    XT_CHECK(strstr(log, ": debug: ") == NULL);
    stop_by_pid_file();
}

int main(void)
{
    xt_name(); /* fills in the environment, so that $XICHAN_RUNTIME_DIR is set */

    XT_EQ_INT(start_daemon("", "--log-level loud"), 2);
    XT_CHECK(strstr(slurp("launch.out"), "--log-level: error, warn, info or debug") != NULL);
    test_daemon_debug_log();
    test_log_levels();
    printf("daemon_options: --daemon readiness and exit status, --pid-file, --log-file, "
           "--log-level and XICHAN_LOG_LEVEL\n");
    return 0;
}
