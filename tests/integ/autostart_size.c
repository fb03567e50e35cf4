/*
 * autostart_size.c -- a daemon a client starts is sized by the client's
 * environment: XICHAN_SIZE, XICHAN_SESSIONS, XICHAN_OBJECTS and
 * XICHAN_BINDINGS are xichand's defaults for --size and the table sizes.
 * A bad value is a clear error at once: xichand names the variable, and
 * the client that tried to start it says why it did not start instead of
 * waiting for a socket that will never come.
 */
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "harness.h"

/* Autostarts the namespace ns with the environment as it is; returns the
 * client's open result, the client in *out. */
static int open_autostart(const char *ns, xichan_client **out)
{
    xichan_client_opts o = {.name = ns, .autostart = 1};

    return xichan_client_open(out, &o);
}

/* The namespace's segment, which a stopped daemon keeps: a throw-away here. */
static void discard(const char *ns)
{
    char path[256];

    snprintf(path, sizeof(path), "/dev/shm/xichan-%u-%s", (unsigned)getuid(), ns);
    unlink(path);
}

/* Stops the daemon cl's namespace was autostarted with. */
static void stop(xichan_client *cl)
{
    xichan_stats st;

    XT_OK(xichan_stats_get(cl, &st));
    xichan_client_close(cl);
    XT_CHECK(st.daemon_pid > 0);
    kill((pid_t)st.daemon_pid, SIGTERM);
    /* Not our child (it detached): wait for it to go, bounded. */
    for (int i = 0; i < 500 && kill((pid_t)st.daemon_pid, 0) == 0; i++)
        xt_sleep_ms(10);
    XT_CHECK(kill((pid_t)st.daemon_pid, 0) != 0);
}

int main(void)
{
    char ns[64], out[4096];
    xichan_client *cl;
    xichan_stats st;
    int err;

    alarm(60);
    (void)xt_name(); /* the harness's environment first */
    snprintf(ns, sizeof(ns), "%s-sized", xt_name());
    setenv("XICHAN_SIZE", "6M", 1);
    setenv("XICHAN_SESSIONS", "24", 1);
    setenv("XICHAN_OBJECTS", "100", 1);
    setenv("XICHAN_BINDINGS", "300", 1);
    XT_OK(open_autostart(ns, &cl));
    XT_OK(xichan_stats_get(cl, &st));
    XT_EQ_INT(st.segment_size, 6u << 20);
    XT_EQ_INT(st.max_sessions, 24);
    XT_EQ_INT(st.max_objects, 100);
    stop(cl);
    discard(ns);
    printf("autostart: XICHAN_SIZE=6M, XICHAN_SESSIONS=24, XICHAN_OBJECTS=100 honoured\n");

    /* An option wins over its variable, which is then not even read. */
    XT_EQ_INT(xt_sh(out, sizeof(out), "XICHAN_SIZE=junk '%s' --help", xt_daemon_path()), 0);
    XT_EQ_INT(xt_sh(out, sizeof(out),
                    "XICHAN_SIZE=junk '%s' --size 4M --name %s-opt --runtime-dir '%s' --daemon "
                    "--pid-file '%s/opt.pid' && kill $(cat '%s/opt.pid')",
                    xt_daemon_path(), xt_name(), xt_runtime_dir(), xt_runtime_dir(),
                    xt_runtime_dir()),
              0);
    snprintf(ns, sizeof(ns), "%s-opt", xt_name());
    discard(ns);

    /* Bad values: xichand names them; the client says so at once. */
    for (int i = 0; i < 4; i++) {
        static const char *const vars[] = {"XICHAN_SIZE", "XICHAN_SESSIONS", "XICHAN_OBJECTS",
                                           "XICHAN_BINDINGS"};
        static const char *const bad[] = {"lots", "0", "-3", "99999999999"};
        char want[128];

        XT_EQ_INT(xt_sh(out, sizeof(out), "%s='%s' '%s' --name %s-bad --runtime-dir '%s'",
                        vars[i], bad[i], xt_daemon_path(), xt_name(), xt_runtime_dir()),
                  2);
        snprintf(want, sizeof(want), "xichand: %s", vars[i]);
        XT_HAS(out, want);
        snprintf(want, sizeof(want), "'%s'", bad[i]);
        XT_HAS(out, want);
    }
    setenv("XICHAN_SIZE", "lots", 1);
    snprintf(ns, sizeof(ns), "%s-bad", xt_name());
    err = open_autostart(ns, &cl);
    XT_ERR(err, XICHAN_ENODAEMON);
    XT_HAS(xichan_strerror(err), "XICHAN_SIZE");
    XT_HAS(xichan_strerror(err), "exit status 2");
    printf("bad XICHAN_* values: xichand names the variable, autostart says so: %s\n",
           xichan_strerror(err));
    return 0;
}
