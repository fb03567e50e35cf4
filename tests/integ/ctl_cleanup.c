/*
 * ctl_cleanup.c -- xichanctl cleanup (gc) finds what dead daemons left and,
 * with --yes, removes it, and nothing else:
 *
 *   - in the live daemon's runtime dir, a fake stale namespace: a segment
 *     /dev/shm/xichan-<uid>-<ns>-stale (a few bytes, no process maps it), a
 *     socket file bound and closed, a lock file nobody holds.  The dry run
 *     lists all three and removes nothing; --yes removes them; the live
 *     daemon's segment, socket and lock file stay, and it still serves.
 *   - a segment some process maps (clients outliving their daemon) is
 *     "in-use" and stays, even with --yes;
 *   - a segment a stopped daemon left with a queue in it is "kept" (data,
 *     not litter) until xichanctl stop --discard;
 *   - in a second runtime dir, a namespace whose lock file this test holds
 *     with flock (as a daemon would) is "live" and left alone, while a
 *     stale socket and lock beside it go.
 * Every run passes a glob naming only this test's namespaces, so nothing
 * else on the machine is touched.
 */
#include <fcntl.h>
#include <stdarg.h>
#include <string.h>
#include <sys/file.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include "ctl.h"

static int exists(const char *path)
{
    struct stat st;

    return lstat(path, &st) == 0;
}

/* A segment with a few bytes, as a crash in the middle of a create leaves. */
static void make_segment(const char *ns, char *path, size_t cap)
{
    char name[128];
    int fd;

    snprintf(name, sizeof(name), "/xichan-%u-%s", (unsigned)getuid(), ns);
    snprintf(path, cap, "/dev/shm%s", name);
    XT_CHECK((fd = shm_open(name, O_CREAT | O_EXCL | O_RDWR, 0600)) >= 0);
    XT_EQ_INT(write(fd, "junk", 4), 4);
    close(fd);
}

/* A socket file whose listener is gone, as a killed daemon leaves. */
static void make_socket(const char *dir, const char *ns, char *path, size_t cap)
{
    struct sockaddr_un a = {.sun_family = AF_UNIX};
    int fd = socket(AF_UNIX, SOCK_STREAM, 0);

    snprintf(path, cap, "%s/%s.sock", dir, ns);
    XT_CHECK(fd >= 0 && strlen(path) < sizeof(a.sun_path));
    strcpy(a.sun_path, path);
    XT_OK(bind(fd, (struct sockaddr *)&a, sizeof(a)));
    close(fd);
}

static void make_file(const char *dir, const char *ns, const char *ext, char *path, size_t cap)
{
    FILE *f;

    snprintf(path, cap, "%s/%s%s", dir, ns, ext);
    XT_CHECK((f = fopen(path, "w")) != NULL);
    fprintf(f, "%d\n", 999999);
    fclose(f);
}

static char dir2[64];

/* Whatever a failed run leaves: the fake segments (run-integ.sh removes
 * only the test's own namespace) and the second runtime dir. */
static void remove_fakes(void)
{
    const char *kinds[] = {"stale", "used"};
    char name[128], cmd[128];

    for (int i = 0; i < 2; i++) {
        snprintf(name, sizeof(name), "/xichan-%u-%s-%s", (unsigned)getuid(), xt_name(), kinds[i]);
        shm_unlink(name);
    }
    if (dir2[0] && strncmp(dir2, "/tmp/xichan-cleanup.", 20) == 0) {
        snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir2);
        if (system(cmd) != 0)
            fprintf(stderr, "note: could not remove %s\n", dir2);
    }
}

int main(void)
{
    char stale[64], seg[256], sock[512], lock[512], glob[80];
    char live_seg[256], live_sock[512], live_lock[512];
    char used[64], used_seg[256], held[64], held_lock[512], s2[512], l2[512];
    void *map;
    int fd;

    atexit(remove_fakes);
    snprintf(stale, sizeof(stale), "%s-stale", xt_name());
    snprintf(used, sizeof(used), "%s-used", xt_name());
    snprintf(glob, sizeof(glob), "'%s*'", xt_name());
    snprintf(live_seg, sizeof(live_seg), "%s", xt_shm_path());
    snprintf(live_sock, sizeof(live_sock), "%s/%s.sock", xt_runtime_dir(), xt_name());
    snprintf(live_lock, sizeof(live_lock), "%s/%s.lock", xt_runtime_dir(), xt_name());

    /* No daemon is needed, and with nothing stale it says so. */
    XT_EQ_INT(run("xichanctl cleanup %s", glob), 0);
    HAS("nothing stale");

    xt_start_daemon(NULL);
    make_segment(stale, seg, sizeof(seg));
    make_socket(xt_runtime_dir(), stale, sock, sizeof(sock));
    make_file(xt_runtime_dir(), stale, ".lock", lock, sizeof(lock));
    /* A segment this process maps, as clients of a dead daemon do. */
    make_segment(used, used_seg, sizeof(used_seg));
    XT_CHECK((fd = open(used_seg, O_RDWR)) >= 0);
    XT_CHECK((map = mmap(NULL, 4, PROT_READ, MAP_SHARED, fd, 0)) != MAP_FAILED);
    close(fd);

    /* Dry run: listed, nothing removed. */
    XT_EQ_INT(run("xichanctl cleanup %s", glob), 0);
    HAS("3 stale files; `xichanctl cleanup --yes` removes them");
    HAS("live");
    HAS("holds ");
    HAS(seg);
    HAS(sock);
    HAS(lock);
    HAS("in-use");
    XT_CHECK(exists(seg) && exists(sock) && exists(lock));
    XT_EQ_INT(run("xichanctl --json gc %s", glob), 0);
    HAS("\"state\":\"live\"");
    HAS("\"what\":\"segment\"");
    HAS("\"state\":\"in-use\"");
    HAS("\"stale\":3,\"removed\":0,\"failed\":0}");

    /* --yes: the stale files go, the live and the mapped ones stay. */
    XT_EQ_INT(run("xichanctl cleanup --yes %s", glob), 0);
    HAS("removed 3 of 3 stale files");
    XT_CHECK(!exists(seg) && !exists(sock) && !exists(lock));
    XT_CHECK(exists(live_seg) && exists(live_sock) && exists(live_lock));
    XT_CHECK(exists(used_seg));
    XT_EQ_INT(run("xichanctl list"), 0); /* the daemon still serves */
    XT_EQ_INT(run("xichanctl cleanup %s", glob), 0);
    HAS("nothing stale");

    /* Unmapped, the segment is stale. */
    munmap(map, 4);
    XT_EQ_INT(run("xichanctl cleanup -y %s", glob), 0);
    HAS("removed 1 of 1");
    XT_CHECK(!exists(used_seg));

    /* Another runtime dir: a lock held (by us, standing in for a daemon)
     * protects its namespace; beside it, leftovers of a dead one go. */
    snprintf(dir2, sizeof(dir2), "/tmp/xichan-cleanup.XXXXXX");
    XT_CHECK(mkdtemp(dir2) != NULL);
    snprintf(held, sizeof(held), "%s-held", xt_name());
    make_file(dir2, held, ".lock", held_lock, sizeof(held_lock));
    XT_CHECK((fd = open(held_lock, O_RDONLY)) >= 0);
    XT_OK(flock(fd, LOCK_EX | LOCK_NB));
    make_socket(dir2, held, s2, sizeof(s2));
    make_socket(dir2, stale, sock, sizeof(sock));
    make_file(dir2, stale, ".lock", l2, sizeof(l2));
    XT_EQ_INT(run("xichanctl --runtime-dir %s cleanup --yes --json %s", dir2, glob), 0);
    HAS("\"state\":\"live\"");
    HAS("\"stale\":2,\"removed\":2,\"failed\":0}");
    XT_CHECK(exists(held_lock) && exists(s2));
    XT_CHECK(!exists(sock) && !exists(l2));
    /* Released, the held namespace's files are stale too. */
    close(fd);
    XT_EQ_INT(run("xichanctl cleanup --runtime-dir %s --yes %s", dir2, glob), 0);
    HAS("removed 2 of 2");
    XT_CHECK(!exists(held_lock) && !exists(s2));
    XT_OK(rmdir(dir2));
    dir2[0] = '\0';

    /* A stopped daemon's segment holds data: kept, even with --yes, until
     * stop --discard. */
    XT_EQ_INT(run("xichanctl create queue --name kept && xichanctl put kept v"), 0);
    XT_EQ_INT(run("xichanctl stop"), 0);
    XT_EQ_INT(xt_reap_daemon(5000), 0);
    XT_EQ_INT(run("xichanctl cleanup --yes %s", glob), 0);
    HAS("kept");
    HAS("holds 1 objects (1 named) with 1 items");
    XT_CHECK(exists(live_seg));
    XT_EQ_INT(run("xichanctl stop --discard"), 0);
    XT_CHECK(!exists(live_seg));

    XT_EQ_INT(run("xichanctl cleanup --yes extra args"), 1);
    XT_EQ_INT(run("xichanctl cleanup --kind queue"), 1);
    printf("ctl_cleanup: stale segment, socket and lock listed and removed; live, mapped, "
           "locked and data-holding namespaces left alone\n");
    return 0;
}
