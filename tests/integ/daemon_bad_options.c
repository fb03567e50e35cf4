/*
 * daemon_bad_options.c -- xichand's and xichanctl's numeric options, and
 * the start-ups that must fail, fail clearly and leave nothing behind.
 *
 *   - every bad --size (negative, a fraction, garbage, past 64 bits, past
 *     64G, wrapping with a suffix) and every bad --sessions/--objects/
 *     --bindings exits 2 (xichand(8)) with a message, before any file is
 *     made; a --size too small for the tables says the minimum;
 *   - xichanctl --maxsize past 64 bits is refused, not clamped;
 *   - a segment another uid planted under our name: exit 4, the message
 *     names its owner and the root action, and the runtime dir is left as
 *     empty as it was (needs root; skipped otherwise);
 *   - a daemon whose socket was deleted: clients and xichanctl say that
 *     xichand (pid N) runs but cannot be reached, not "no xichand runs";
 *   - xichanctl cleanup by a group member in a 0710 dir says it cannot read
 *     it, not that it does not exist (needs root).
 */
#include <dirent.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include "harness.h"
#include "users.h"

static char out[16384];

/* Entries in dir other than . and .., or -1 if it cannot be opened. */
static int entries(const char *dir)
{
    struct dirent *e;
    DIR *d = opendir(dir);
    int n = 0;

    if (!d)
        return -1;
    while ((e = readdir(d)))
        n += strcmp(e->d_name, ".") && strcmp(e->d_name, "..");
    closedir(d);
    return n;
}

static void bad_numbers(void)
{
    static const char *sizes[] = {"-1", "-64M", "99999999999999999999", "17179869185G",
                                  "1e9", "64.5M", "", "M", " 64M", "+64M", "65G", "16384T"};
    static const char *counts[] = {"--sessions 1", "--sessions 0", "--sessions -3",
                                   "--objects 0", "--objects abc", "--bindings 99999999999",
                                   "--bindings 16777217", "--sessions 18446744073709551617"};
    char dir[512];

    snprintf(dir, sizeof(dir), "%s/opts", xt_runtime_dir());
    for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
        XT_EQ_INT(xt_sh(out, sizeof(out), "xichand --foreground --name bad --runtime-dir %s "
                                          "--size '%s'", dir, sizes[i]), 2);
        XT_HAS(out, "--size");
        XT_CHECK(entries(dir) == -1); /* not even the runtime dir */
    }
    for (size_t i = 0; i < sizeof(counts) / sizeof(counts[0]); i++) {
        XT_EQ_INT(xt_sh(out, sizeof(out), "xichand --foreground --name bad --runtime-dir %s %s",
                        dir, counts[i]), 2);
        XT_HAS(out, "whole number from");
        XT_CHECK(entries(dir) == -1);
    }
    XT_EQ_INT(xt_sh(out, sizeof(out), "xichand --foreground --name bad --runtime-dir %s "
                                      "--size 4M", dir), 2);
    XT_HAS(out, "too small");
    XT_HAS(out, "at least");
    XT_CHECK(access("/dev/shm/xichan-0-bad", F_OK) != 0 || getuid() != 0);
    printf("bad numbers: all exit 2 with a message, no file made\n");
}

static void ctl_numbers(void)
{
    XT_EQ_INT(xt_sh(out, sizeof(out),
                    "xichanctl create queue --name big --maxsize 99999999999999999999"), 1);
    XT_HAS(out, "too large");
    XT_EQ_INT(xt_sh(out, sizeof(out), "xichanctl create queue --name big --maxsize -1"), 1);
    XT_EQ_INT(xt_sh(out, sizeof(out), "xichanctl get big --timeout nan"), 1);
}

static void planted_segment(void)
{
    char dir[512], seg[256];
    unsigned other;
    int fd;

    if (geteuid() != 0) {
        printf("planted segment: skipped (needs root to plant a file as another uid)\n");
        return;
    }
    other = xt_free_id(21000);
    snprintf(dir, sizeof(dir), "%s/planted", xt_runtime_dir());
    snprintf(seg, sizeof(seg), "/dev/shm/xichan-%u-planted", (unsigned)geteuid());
    XT_OK(mkdir(dir, 0700));
    fd = open(seg, O_WRONLY | O_CREAT | O_EXCL, 0644);
    XT_CHECK(fd >= 0);
    XT_EQ_INT(write(fd, "not a segment", 13), 13);
    XT_OK(fchown(fd, other, other));
    close(fd);
    XT_EQ_INT(xt_sh(out, sizeof(out), "xichand --foreground --name planted --runtime-dir %s "
                                      "--size 16M", dir), 4);
    printf("planted: %s", out);
    {
        char want[64];
        snprintf(want, sizeof(want), "belongs to uid %u", other);
        XT_HAS(out, want);
    }
    XT_HAS(out, "sudo rm");
    XT_EQ_INT(entries(dir), 0); /* no lock file left */
    XT_OK(unlink(seg));
    XT_OK(rmdir(dir));
}

static void socket_deleted(void)
{
    xichan_client_opts o = {.autostart = 0};
    xichan_client *cl;
    char sock[512], want[64];

    snprintf(sock, sizeof(sock), "%s/%s.sock", xt_runtime_dir(), xt_name());
    XT_OK(unlink(sock));
    XT_ERR(xichan_client_open(&cl, &o), XICHAN_ENODAEMON);
    snprintf(want, sizeof(want), "xichand (pid %d)", (int)xt_daemon_pid());
    XT_HAS(xichan_strerror(XICHAN_ENODAEMON), want);
    XT_HAS(xichan_strerror(XICHAN_ENODAEMON), "gone");
    XT_EQ_INT(xt_sh(out, sizeof(out), "xichanctl list"), 2);
    XT_HAS(out, want);
    printf("socket deleted: %s", out);
}

static void cleanup_unreadable_dir(void)
{
    char dir[512];
    unsigned owner, member;

    if (geteuid() != 0) {
        printf("cleanup as a group member: skipped (needs root)\n");
        return;
    }
    xt_need_other_uids(xt_free_id(22000));
    owner = xt_free_id(22000);
    member = xt_free_id(owner + 1);
    /* Reachable by the member: not under the harness's 0700 dir. */
    snprintf(dir, sizeof(dir), "/tmp/xichan-gm-%d", (int)getpid());
    XT_OK(mkdir(dir, 0710));
    XT_OK(chown(dir, owner, owner));
    XT_OK(chmod(dir, 0710));
    XT_EQ_INT(xt_sh(out, sizeof(out),
                    "setpriv --reuid %u --regid %u --groups %u -- "
                    "xichanctl cleanup --runtime-dir %s 'nomatch*'",
                    member, member, owner, dir), 0);
    rmdir(dir);
    XT_HAS(out, "cannot be read by this user");
    XT_CHECK(!strstr(out, "does not exist"));
}

int main(void)
{
    bad_numbers();
    xt_start_daemon(NULL);
    ctl_numbers();
    planted_segment();
    socket_deleted();
    cleanup_unreadable_dir();
    printf("daemon_bad_options: ok\n");
    return 0;
}
