/*
 * security_symlink.c -- the daemon opens the files of its runtime dir only
 * through the directory it checked, and never through a symlink.
 *
 * 1. The race (needs root to run as two other uids; skips otherwise): an
 *    attacker (uid A) owns the path given as --runtime-dir, a symlink in a
 *    directory of A's, and swaps it as fast as it can between the victim's
 *    real runtime dir (uid V, 0700: it passes every check) and a dir of A's
 *    whose <ns>.lock is a symlink to a file of V's.  A daemon that checked
 *    the dir through one descriptor and then opened "<dir>/<ns>.lock" by
 *    path would, now and then, truncate V's file and write its pid there.
 *    The victim starts its daemon 40 times during the swaps: every start
 *    must refuse the symlinked dir, and V's file must stay as it was.
 *    (The attacker's dir is not sticky, so fs.protected_symlinks, which
 *    guards /tmp, does not hide the bug this checks for.)
 * 2. A symlink planted as <ns>.lock in the daemon's own dir is refused, and
 *    its target untouched.
 * 3. A failed start leaves no file behind in the runtime dir.
 */
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <sys/stat.h>
#include <unistd.h>

#include "harness.h"
#include "users.h"

#define STARTS 40

static char base[64], vdir[128], adir[128], evil[192], link_path[192], secret[128];
static uid_t V, A;
static pid_t main_pid;

static void write_file(const char *path, const char *text, uid_t owner, mode_t mode)
{
    FILE *f = fopen(path, "w");

    XT_CHECK(f != NULL);
    fputs(text, f);
    XT_OK(fclose(f));
    XT_OK(chown(path, owner, owner));
    XT_OK(chmod(path, mode));
}

static void remove_base(void)
{
    char out[256];

    if (base[0] && getpid() == main_pid)
        xt_sh(out, sizeof(out), "rm -rf '%s'", base);
}

/* The attacker: swaps link_path between the victim's dir and its own, forever. */
static void attacker(void *arg)
{
    char tmp[320];

    (void)arg;
    xt_become(A, A, NULL, 0);
    snprintf(tmp, sizeof(tmp), "%s.tmp", link_path);
    for (unsigned i = 0;; i++) {
        unlink(tmp);
        if (symlink(i & 1 ? evil : vdir, tmp) == 0)
            (void)rename(tmp, link_path);
    }
}

/* One start of the victim's daemon: its exit status, or -1 if it served. */
static int victim_start(const char *name)
{
    char log[320];
    pid_t pid;
    int fd;

    snprintf(log, sizeof(log), "%s/victim.log", base);
    fflush(NULL);
    pid = fork();
    XT_CHECK(pid >= 0);
    if (pid == 0) {
        fd = open(log, O_WRONLY | O_APPEND | O_CREAT, 0600); /* as root, before */
        if (fd >= 0) {
            dup2(fd, 1);
            dup2(fd, 2);
        }
        xt_become(V, V, NULL, 0);
        execl(xt_daemon_path(), "xichand", "--foreground", "--size", "16M", "--name", name,
              "--runtime-dir", link_path, (char *)NULL);
        _exit(127);
    }
    return xt_wait(pid, 3000); /* a daemon that got through serves: killed, -1 */
}

static void race(void)
{
    char name[64], buf[512], seg[128], log[320];
    int refused = 0;
    pid_t att;

    xt_need_other_uids(xt_free_id(20000));
    V = xt_free_id(20000);
    A = xt_free_id(V + 1);
    /* Out of the harness's 0700 dir: both uids must reach their dirs. */
    snprintf(base, sizeof(base), "/tmp/xichan-symrace.XXXXXX");
    XT_CHECK(mkdtemp(base) != NULL);
    atexit(remove_base);
    snprintf(vdir, sizeof(vdir), "%s/victim-run", base);
    snprintf(adir, sizeof(adir), "%s/attacker", base);
    snprintf(evil, sizeof(evil), "%s/evil", adir);
    snprintf(link_path, sizeof(link_path), "%s/run", adir);
    snprintf(secret, sizeof(secret), "%s/victim-secret", base);
    snprintf(name, sizeof(name), "%s", xt_name());
    XT_OK(chmod(base, 0755));
    XT_OK(mkdir(vdir, 0700));
    XT_OK(chown(vdir, V, V));
    write_file(secret, "precious\n", V, 0600);
    XT_OK(mkdir(adir, 0755));
    XT_OK(chown(adir, A, A));
    XT_OK(mkdir(evil, 0777));
    XT_OK(chown(evil, A, A));
    snprintf(buf, sizeof(buf), "%s/%s.lock", evil, name);
    XT_OK(symlink(secret, buf));
    XT_OK(lchown(buf, A, A));

    att = xt_fork(attacker, NULL);
    for (int i = 0; i < STARTS; i++) {
        int rc = victim_start(name);
        XT_CHECK(rc != -1); /* never serves from a symlinked dir */
        refused += rc == 1;
    }
    xt_kill9(att);
    XT_CHECK(xt_read_file(secret, buf, sizeof(buf)) >= 0);
    XT_CHECK(strcmp(buf, "precious\n") == 0);
    XT_EQ_INT(refused, STARTS);
    snprintf(log, sizeof(log), "%s/victim.log", base);
    XT_CHECK(xt_read_file(log, buf, sizeof(buf)) >= 0);
    XT_HAS(buf, "symlink");
    snprintf(seg, sizeof(seg), "/dev/shm/xichan-%u-%s", (unsigned)V, name);
    XT_CHECK(access(seg, F_OK) != 0);
    printf("race: %d starts during the swaps, all refused; the victim's file is intact\n",
           STARTS);
}

static void planted_lock(void)
{
    char dir[300], target[300], lock[400], out[4096], text[64];
    char *argv[] = {(char *)xt_daemon_path(), "--foreground", "--size", "16M", "--name",
                    "planted", "--runtime-dir", dir, NULL};

    snprintf(dir, sizeof(dir), "%s/planted", xt_runtime_dir());
    snprintf(target, sizeof(target), "%s/target", xt_runtime_dir());
    snprintf(lock, sizeof(lock), "%s/planted.lock", dir);
    XT_OK(mkdir(dir, 0700));
    write_file(target, "keep\n", getuid(), 0600);
    XT_OK(symlink(target, lock));
    XT_EQ_INT(xt_run(argv, out, sizeof(out), 10000), 1);
    XT_HAS(out, "symlink");
    XT_CHECK(xt_read_file(target, text, sizeof(text)) >= 0);
    XT_CHECK(strcmp(text, "keep\n") == 0);
    /* The planted link is not ours to remove; nothing else was left. */
    XT_OK(unlink(lock));
    XT_OK(rmdir(dir));
    XT_OK(unlink(target));
    printf("planted: a symlinked lock file is refused, its target intact\n");
}

int main(void)
{
    main_pid = getpid();
    planted_lock();
    race();
    return 0;
}
