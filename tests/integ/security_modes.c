/*
 * security_modes.c -- the default, private modes of a namespace's files
 * (broker/access.c): socket 0600, lock file 0600, segment
 * /dev/shm/xichan-$UID-$NAME 0600 of our uid, and a runtime dir the daemon
 * creates is 0700, --log-file 0600 and --pid-file 0644 -- all whatever
 * the umask (here 0, the worst case).  A restart without --group brings a
 * segment a group daemon left back to 0600, and a daemon of the same
 * namespace in another runtime dir does not adopt a segment still served.
 * Needs no root.
 */
#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "harness.h"
#include "users.h"

#define MODE(st) ((unsigned)((st).st_mode & 07777))

static void check_file(const char *path, unsigned mode)
{
    struct stat st;

    if (lstat(path, &st) != 0)
        xt__fail(__FILE__, __LINE__, "%s: %s", path, strerror(errno));
    if (MODE(st) != mode || st.st_uid != geteuid())
        xt__fail(__FILE__, __LINE__, "%s is mode %04o, uid %u; expected %04o, uid %u", path,
                 MODE(st), (unsigned)st.st_uid, mode, (unsigned)geteuid());
}

static void check_ns_files(const char *dir, const char *ns)
{
    char path[512];

    snprintf(path, sizeof(path), "%s/%s.sock", dir, ns);
    check_file(path, 0600);
    snprintf(path, sizeof(path), "%s/%s.lock", dir, ns);
    check_file(path, 0600);
    snprintf(path, sizeof(path), "/dev/shm/xichan-%u-%s", (unsigned)getuid(), ns);
    check_file(path, 0600);
}

/* A daemon started with --daemon in a dir that does not exist yet. */
static void fresh_dir_is_0700(void)
{
    char dir[512], ns[80], out[4096], path[600], log[600], pidf[600];
    /* --log-file: the detached daemon must not keep our pipe as its stderr. */
    char *argv[] = {(char *)xt_daemon_path(), "--name", ns, "--runtime-dir", dir, "--size", "8M",
                    "--daemon", "--log-file", log, "--pid-file", pidf, NULL};
    FILE *f;
    int pid = 0;

    snprintf(dir, sizeof(dir), "%s/fresh", xt_runtime_dir());
    snprintf(ns, sizeof(ns), "%s-fresh", xt_name());
    snprintf(log, sizeof(log), "%s/fresh.log", xt_runtime_dir());
    snprintf(pidf, sizeof(pidf), "%s/fresh.pid", xt_runtime_dir());
    if (xt_run(argv, out, sizeof(out), 10000) != 0)
        xt__fail(__FILE__, __LINE__, "xichand --daemon failed: %s", out);
    check_file(dir, 0700);
    check_ns_files(dir, ns);
    check_file(log, 0600);
    check_file(pidf, 0644); /* readable, as pid files are; writable by nobody else */

    /* The lock file holds the detached daemon's pid: stop it. */
    snprintf(path, sizeof(path), "%s/%s.lock", dir, ns);
    XT_CHECK((f = fopen(path, "r")) != NULL);
    XT_EQ_INT(fscanf(f, "%d", &pid), 1);
    fclose(f);
    XT_CHECK(pid > 1);
    XT_OK(kill(pid, SIGTERM));
    /* The lock file goes last (xd_remove_files). */
    for (double t0 = xt_now(); access(path, F_OK) == 0; xt_sleep_ms(10))
        if (xt_now() - t0 > 5)
            xt__fail(__FILE__, __LINE__, "detached xichand (pid %d) kept %s after SIGTERM", pid,
                     path);
    /* The segment stays for the next daemon, still 0600 whatever the umask. */
    snprintf(path, sizeof(path), "/dev/shm/xichan-%u-%s", (unsigned)getuid(), ns);
    check_file(path, 0600);
    XT_OK(unlink(path));
    XT_OK(rmdir(dir));
}

/* Same namespace, another runtime dir: must not adopt the segment being served. */
static void other_dir_refused(void)
{
    char dir[512], out[4096];
    char *argv[] = {(char *)xt_daemon_path(), "--name", (char *)xt_name(), "--runtime-dir", dir,
                    "--size", "8M", "--foreground", NULL};

    snprintf(dir, sizeof(dir), "%s/other", xt_runtime_dir());
    XT_EQ_INT(xt_run(argv, out, sizeof(out), 10000), 3);
    printf("second daemon in another dir: %s", out);
    XT_CHECK(strstr(out, "another xichand (pid ") != NULL && strstr(out, " serves segment") != NULL);
    check_ns_files(xt_runtime_dir(), xt_name());
    /* A failed start leaves nothing: not its lock file, not the dir it made. */
    snprintf(out, sizeof(out), "%s/%s.lock", dir, xt_name());
    XT_CHECK(access(out, F_OK) != 0);
    XT_CHECK(access(dir, F_OK) != 0);
}

int main(void)
{
    xichan_client *cl;
    int fd;

    umask(0);
    xt_start_daemon("--size 8M");
    check_ns_files(xt_runtime_dir(), xt_name());
    XT_OK(xichan_client_open(&cl, NULL));
    xichan_client_close(cl);

    /* A segment left wider (as by a --group daemon, then kill -9) is narrowed on adoption. */
    xt_kill_daemon();
    XT_CHECK((fd = open(xt_shm_path(), O_RDWR)) >= 0);
    XT_OK(fchmod(fd, 0666));
    close(fd);
    xt_start_daemon("--size 8M");
    check_ns_files(xt_runtime_dir(), xt_name());
    other_dir_refused();
    XT_OK(xichan_client_open(&cl, NULL));
    xichan_client_close(cl);
    XT_EQ_INT(xt_stop_daemon(), 0);

    fresh_dir_is_0700();
    printf("security_modes: ok\n");
    return 0;
}
