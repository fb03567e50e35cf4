/*
 * daemon_adopt_race.c -- at most one daemon serves a segment, whatever
 * runtime dirs daemons are started from.
 *
 * The lock file lives in the runtime dir, so it cannot keep apart two
 * daemons of one namespace started from different dirs; the segment's own
 * flock does (shm.c, tag-seg-lock).  After a daemon is killed, 200 times
 * over, two daemons are started at the same moment from two runtime dirs:
 * exactly one must adopt the segment and serve, the other must exit 3
 * ("another xichand serves"), and a client attached all along must keep
 * its session and its queue's items through every round.
 */
#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include "harness.h"

#define ROUNDS 200

extern char **environ;

static char dirs[2][64];

static pid_t spawn_daemon(const char *dir)
{
    char *argv[] = {(char *)xt_daemon_path(), "--foreground", "--name", (char *)xt_name(),
                    "--runtime-dir", (char *)dir, "--log-level", "error", NULL};
    posix_spawn_file_actions_t fa;
    pid_t pid;

    XT_EQ_INT(posix_spawn_file_actions_init(&fa), 0);
    XT_EQ_INT(posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0), 0);
    XT_EQ_INT(posix_spawn_file_actions_addopen(&fa, 1, "/dev/null", O_WRONLY, 0), 0);
    XT_EQ_INT(posix_spawn_file_actions_addopen(&fa, 2, "/dev/null", O_WRONLY, 0), 0);
    XT_EQ_INT(posix_spawn(&pid, argv[0], &fa, NULL, argv, environ), 0);
    posix_spawn_file_actions_destroy(&fa);
    return pid;
}

/* 1 if a daemon accepts connections on dir's socket. */
static int serving(const char *dir)
{
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    int fd, ok;

    snprintf(sa.sun_path, sizeof(sa.sun_path), "%s/%s.sock", dir, xt_name());
    fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
    XT_CHECK(fd >= 0);
    ok = connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0;
    close(fd);
    return ok;
}

int main(void)
{
    xichan_client *cl;
    xichan_queue_id q;
    int refused = 0;

    for (int i = 0; i < 2; i++) {
        snprintf(dirs[i], sizeof(dirs[i]), "%s/d%d", xt_runtime_dir(), i);
        XT_EQ_INT(mkdir(dirs[i], 0700), 0);
    }
    xt_start_daemon(NULL);
    XT_OK(xichan_client_open(&cl, NULL));
    XT_OK(xichan_queue_create(cl, &(xichan_queue_opts){.name = "held"}, &q));
    for (int i = 0; i < 3; i++)
        XT_OK(xichan_queue_put(cl, q, 0, "x", 1, 0, XICHAN_NOWAIT));
    xt_kill_daemon();

    for (int round = 0; round < ROUNDS; round++) {
        pid_t pid[2];
        int status[2], alive = 0, winner = -1;
        double t0 = xt_now();

        pid[0] = spawn_daemon(dirs[0]);
        pid[1] = spawn_daemon(dirs[1]);
        /* One serves and the other exits; wait for both facts. */
        for (;;) {
            int done = 0;
            alive = 0;
            for (int i = 0; i < 2; i++) {
                if (pid[i] && waitpid(pid[i], &status[i], WNOHANG) == pid[i]) {
                    XT_CHECK(WIFEXITED(status[i]));
                    if (WEXITSTATUS(status[i]) != 3)
                        xt__fail(__FILE__, __LINE__, "round %d: daemon %d exited %d, not 3",
                                 round, i, WEXITSTATUS(status[i]));
                    pid[i] = 0;
                    refused++;
                }
                if (pid[i]) {
                    alive++;
                    winner = i;
                }
                done += !pid[i];
            }
            if (done == 1 && serving(dirs[winner]))
                break;
            if (done == 2)
                xt__fail(__FILE__, __LINE__, "round %d: both daemons exited", round);
            if (xt_now() - t0 > 10)
                xt__fail(__FILE__, __LINE__, "round %d: %d daemons still running, none "
                         "serving alone", round, alive);
            xt_sleep_ms(1);
        }
        XT_EQ_INT(alive, 1);
        /* The loser left the segment alone: the items are all there. */
        XT_EQ_INT(xichan_queue_count(cl, q), 3);
        kill(pid[winner], SIGKILL);
        XT_CHECK(waitpid(pid[winner], &status[winner], 0) == pid[winner]);
    }
    XT_EQ_INT(refused, ROUNDS);
    /* A last daemon adopts; our session is still ours. */
    xt_start_daemon(NULL);
    XT_EQ_INT(xichan_queue_count(cl, q), 3);
    xichan_client_close(cl);
    printf("adopt race: %d rounds of two daemons from two runtime dirs, one adopter each time\n",
           ROUNDS);
    return 0;
}
