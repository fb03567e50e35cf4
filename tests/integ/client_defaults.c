/*
 * client_defaults.c -- zeroed xichan_client_opts mean what NULL means.
 *
 * Once, `xichan_client_opts o = {0}` turned autostart off while NULL
 * options turned it on.  Now 0 is XICHAN_AUTOSTART_DEFAULT: with
 * $XICHAN_AUTOSTART unset both start a daemon; with XICHAN_AUTOSTART=0
 * both fail with XICHAN_ENODAEMON; XICHAN_AUTOSTART_OFF and _ON override
 * the environment either way.  The daemons a client starts here are
 * stopped through the pid in their lock file.
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "harness.h"

/* SIGTERMs the daemon that holds the namespace's lock file, if any; waits
 * until its socket is gone. */
static void stop_autostarted(void)
{
    char path[1024];
    FILE *f;
    int pid = 0;

    snprintf(path, sizeof(path), "%s/%s.lock", xt_runtime_dir(), xt_name());
    if (!(f = fopen(path, "r")))
        return;
    if (fscanf(f, "%d", &pid) != 1)
        pid = 0;
    fclose(f);
    XT_CHECK(pid > 1);
    XT_CHECK(kill(pid, SIGTERM) == 0);
    snprintf(path, sizeof(path), "%s/%s.sock", xt_runtime_dir(), xt_name());
    for (int i = 0; i < 200 && access(path, F_OK) == 0; i++)
        xt_sleep_ms(25);
    XT_CHECK(access(path, F_OK) != 0);
}

/* Opens with opts (NULL or a pointer) under XICHAN_AUTOSTART=env (NULL:
 * unset); the open's result, with the client closed and any daemon it
 * started stopped. */
static int open_with(const xichan_client_opts *opts, const char *env)
{
    xichan_client *cl = NULL;
    int err;

    if (env)
        setenv("XICHAN_AUTOSTART", env, 1);
    else
        unsetenv("XICHAN_AUTOSTART");
    err = xichan_client_open(&cl, opts);
    xichan_client_close(cl);
    stop_autostarted();
    return err;
}

int main(void)
{
    xichan_client_opts zero = {0}, off = {.autostart = XICHAN_AUTOSTART_OFF},
                       on = {.autostart = XICHAN_AUTOSTART_ON};

    XT_EQ_INT(XICHAN_AUTOSTART_DEFAULT, 0);
    (void)xt_name(); /* settle the environment (namespace, daemon path) first */
    XT_OK(open_with(NULL, NULL));
    XT_OK(open_with(&zero, NULL)); /* the defect: this was XICHAN_ENODAEMON */
    XT_ERR(open_with(NULL, "0"), XICHAN_ENODAEMON);
    XT_ERR(open_with(&zero, "0"), XICHAN_ENODAEMON);
    XT_ERR(open_with(&off, NULL), XICHAN_ENODAEMON);
    XT_OK(open_with(&on, "0"));
    printf("client_defaults: zeroed options autostart as NULL does; ON/OFF override the "
           "environment\n");
    return 0;
}
