/*
 * daemon_second_refused.c -- one daemon per namespace.
 *
 * A second xichand for a namespace that one already serves must exit with
 * status 3 and say "already serves" on stderr, leaving the first daemon
 * untouched; when the first is stopped with SIGTERM it removes its segment.
 */
#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "harness.h"

extern char **environ;

int main(void)
{
    char errpath[512], err[8192];
    char *argv[] = {(char *)xt_daemon_path(), "--foreground", "--name", (char *)xt_name(),
                    "--runtime-dir", (char *)xt_runtime_dir(), NULL};
    posix_spawn_file_actions_t fa;
    xichan_client *cl = NULL;
    pid_t first, second;
    int status;

    xt_start_daemon("--size 8M");
    first = xt_daemon_pid();
    XT_CHECK(first > 0);
    XT_CHECK(xt_shm_exists());

    snprintf(errpath, sizeof(errpath), "%s/second.err", xt_runtime_dir());
    XT_EQ_INT(posix_spawn_file_actions_init(&fa), 0);
    XT_EQ_INT(posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0), 0);
    XT_EQ_INT(posix_spawn_file_actions_addopen(&fa, 1, errpath, O_WRONLY | O_CREAT | O_TRUNC, 0600),
              0);
    XT_EQ_INT(posix_spawn_file_actions_adddup2(&fa, 1, 2), 0);
    XT_EQ_INT(posix_spawn(&second, argv[0], &fa, NULL, argv, environ), 0);
    posix_spawn_file_actions_destroy(&fa);

    status = xt_wait(second, 5000);
    XT_CHECK(xt_read_file(errpath, err, sizeof(err)) >= 0);
    if (status != 3 || !strstr(err, "already serves"))
        fprintf(stderr, "second xichand's output:\n%s\n", err);
    XT_EQ_INT(status, 3);
    XT_CHECK(strstr(err, "already serves") != NULL);

    /* The first daemon is unharmed and still serves. */
    XT_EQ_INT(kill(first, 0), 0);
    XT_EQ_INT(xt_daemon_pid(), first);
    XT_CHECK(xt_shm_exists());
    XT_OK(xichan_client_open(&cl, NULL));
    xichan_client_close(cl);

    /* Stopped, it keeps the segment for the next daemon. */
    XT_EQ_INT(xt_stop_daemon(), 0);
    XT_CHECK(xt_shm_exists());
    printf("daemon_second_refused: ok\n");
    return 0;
}
