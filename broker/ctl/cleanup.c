/*
 * cleanup.c -- xichanctl cleanup (alias gc): find, and with --yes remove,
 * what dead daemons of this user left behind.
 *
 * A daemon that is killed (kill -9, OOM, a reboot of a persistent
 * /dev/shm) leaves its segment /dev/shm/xichan-<uid>-<ns> and, in its
 * runtime dir, <ns>.sock and <ns>.lock.  They cost memory and confuse a
 * reader, but they are also what a restarted daemon adopts without losing
 * an item (xichand(8)), so the rule is: remove nothing anyone may still use.
 *
 *   lock file  A serving daemon holds an flock on <ns>.lock for its whole
 *              life.  We try flock(LOCK_EX | LOCK_NB): if that fails, the
 *              namespace is live and nothing of it is touched.  If it
 *              succeeds, we keep holding it while we remove that
 *              namespace's files, so a daemon starting meanwhile fails its
 *              own LOCK_NB (exit 3, "already served") instead of running
 *              on files we are deleting; and two cleanups exclude each
 *              other.  (A shared lock would be enough to test; exclusive is
 *              what removal needs.)
 *   socket     Stale when its lock file is not held, or absent: a daemon
 *              takes the lock before it creates the socket.
 *   segment    The lock test only covers the runtime dir we look at, and a
 *              daemon may serve the namespace from another one.  Clients
 *              also keep working on a segment whose daemon died, waiting for
 *              a new one to adopt it.  So a segment is stale only when no
 *              process maps it or holds it open: /proc/<pid>/maps and
 *              /proc/<pid>/fd of every process we may read.  A process of
 *              another user cannot open a 0600 segment of ours (root
 *              aside), so what we cannot read cannot be using it.  And a
 *              stopped daemon leaves its segment on purpose, data and all,
 *              for the next one (xichand(8)): a segment that holds any
 *              queue, channel or buffer is data, not litter, and is left
 *              for `xichanctl stop --discard`.  Only an empty one, or one
 *              no daemon of this build could adopt (corrupt, another
 *              layout), is stale.  The test holds the segment's own flock
 *              (shm.c, tag-seg-lock), so no daemon adopts it meanwhile.
 *
 * An optional glob limits the namespaces looked at (tests use it so as not
 * to touch anything else on the machine).
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <fnmatch.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "ctl.h"
#include "paths.h"

#define MAX_NS 4096

struct ns {
    char name[64];
    int seg, sock, lock;   /* which files exist */
    pid_t user;            /* a process mapping the segment, or 0 */
};

struct scan {
    struct ns *v;
    size_t n;
    char prefix[80];       /* "xichan-<uid>-": segment names in /dev/shm */
    char dir[400];         /* the runtime dir */
    int have_dir;
    int dir_errno;         /* why it could not be read (ENOENT: it does not exist) */
    int dir_fd;            /* the dir as checked: its files are opened and removed through it */
};

/* ------------------------------------------------------------ finding */

static struct ns *ns_get(struct scan *s, const char *name, size_t len)
{
    char buf[64], check[64];

    if (len == 0 || len >= sizeof(buf))
        return NULL;
    memcpy(buf, name, len);
    buf[len] = '\0';
    if (xichan__ns_name(check, sizeof(check), buf) != 0)
        return NULL; /* not a namespace name: not ours */
    for (size_t i = 0; i < s->n; i++)
        if (!strcmp(s->v[i].name, buf))
            return &s->v[i];
    if (s->n == MAX_NS)
        return NULL;
    memset(&s->v[s->n], 0, sizeof(s->v[0]));
    memcpy(s->v[s->n].name, buf, len + 1);
    return &s->v[s->n++];
}

static void scan_shm(struct scan *s)
{
    size_t plen = strlen(s->prefix);
    struct dirent *e;
    struct ns *ns;
    DIR *d = opendir("/dev/shm");

    if (!d)
        return;
    while ((e = readdir(d)))
        if (!strncmp(e->d_name, s->prefix, plen) &&
            (ns = ns_get(s, e->d_name + plen, strlen(e->d_name + plen))))
            ns->seg = 1;
    closedir(d);
}

static void scan_dir(struct scan *s)
{
    struct dirent *e;
    struct ns *ns;
    struct stat st;
    DIR *d;
    int fd;

    /*
     * One descriptor, never through a symlink, and only a dir of ours: the
     * lock files are tested and the stale files removed through it, so a
     * swap of the path cannot aim the removal elsewhere.
     */
    s->dir_fd = open(s->dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC | O_NOFOLLOW);
    if (s->dir_fd < 0 || fstat(s->dir_fd, &st) < 0 || st.st_uid != geteuid()) {
        s->dir_errno = s->dir_fd < 0 ? errno : EPERM;
        if (s->dir_fd >= 0)
            close(s->dir_fd);
        s->dir_fd = -1;
        return;
    }
    if ((fd = dup(s->dir_fd)) < 0 || !(d = fdopendir(fd))) {
        s->dir_errno = errno;
        if (fd >= 0)
            close(fd);
        return;
    }
    s->have_dir = 1;
    while ((e = readdir(d))) {
        size_t n = strlen(e->d_name);
        int sock = n > 5 && !strcmp(e->d_name + n - 5, ".sock");
        int lock = n > 5 && !strcmp(e->d_name + n - 5, ".lock");
        if ((sock || lock) && (ns = ns_get(s, e->d_name, n - 5)))
            *(sock ? &ns->sock : &ns->lock) = 1;
    }
    closedir(d);
}

/* Records pid as a user of the segment named by path, if it is one of ours. */
static void note_user(struct scan *s, const char *path, pid_t pid)
{
    size_t plen = strlen(s->prefix), n;
    const char *name;

    if (strncmp(path, "/dev/shm/", 9) || strncmp(path + 9, s->prefix, plen))
        return;
    name = path + 9 + plen;
    n = strcspn(name, " \n");  /* maps lines may end in " (deleted)" */
    for (size_t i = 0; i < s->n; i++)
        if (strlen(s->v[i].name) == n && !strncmp(s->v[i].name, name, n) && !s->v[i].user)
            s->v[i].user = pid;
}

static void scan_proc(struct scan *s)
{
    char path[64], line[1024], link[512];
    struct dirent *e, *f;
    DIR *d = opendir("/proc"), *fd;
    FILE *m;
    ssize_t n;

    if (!d)
        return;
    while ((e = readdir(d))) {
        pid_t pid = (pid_t)atoi(e->d_name);
        if (pid <= 0 || pid == getpid())
            continue;
        snprintf(path, sizeof(path), "/proc/%d/maps", (int)pid);
        if ((m = fopen(path, "r"))) {
            while (fgets(line, sizeof(line), m)) {
                char *p = strstr(line, "/dev/shm/");
                if (p)
                    note_user(s, p, pid);
            }
            fclose(m);
        }
        snprintf(path, sizeof(path), "/proc/%d/fd", (int)pid);
        if (!(fd = opendir(path)))
            continue;
        while ((f = readdir(fd))) {
            char fpath[330];
            snprintf(fpath, sizeof(fpath), "%s/%s", path, f->d_name);
            if ((n = readlink(fpath, link, sizeof(link) - 1)) > 0) {
                link[n] = '\0';
                note_user(s, link, pid);
            }
        }
        closedir(fd);
    }
    closedir(d);
}

static int by_name(const void *a, const void *b)
{
    return strcmp(((const struct ns *)a)->name, ((const struct ns *)b)->name);
}

/* ----------------------------------------------------------- reporting */

struct report {
    struct ctl *c;
    int rows, stale, removed, failed;
    int dir_fd;
};

static void row(struct report *r, const char *ns, const char *what, const char *path,
                const char *state, const char *why, int removed)
{
    if (r->c->json) {
        printf("%s{\"namespace\":", r->rows ? "," : "");
        ctl_json_str(stdout, ns);
        printf(",\"what\":\"%s\",\"path\":", what);
        ctl_json_str(stdout, path);
        printf(",\"state\":\"%s\",\"why\":", state);
        ctl_json_str(stdout, why);
        printf(",\"removed\":%s}", removed ? "true" : "false");
    } else {
        if (!r->rows)
            printf("%-20s %-8s %-8s %s\n", "NAMESPACE", "WHAT", "STATE", "PATH (WHY)");
        printf("%-20s %-8s %-8s %s\n%-39s (%s)\n", ns, what, removed ? "removed" : state, path,
               "", why);
    }
    r->rows++;
}

/* A stale file: report it, and remove it with --yes. */
static void stale(struct report *r, const char *ns, const char *what, const char *path,
                  const char *why, int is_seg)
{
    const char *base = strrchr(path, '/');
    int removed = 0;

    r->stale++;
    if (r->c->a.yes) {
        /* Segments go through shm_unlink, as the daemon removes them; the
         * dir's files through the descriptor scan_dir checked. */
        if ((is_seg ? shm_unlink(path + 8) : unlinkat(r->dir_fd, base ? base + 1 : path, 0)) ==
                0 ||
            errno == ENOENT) {
            removed = 1;
            r->removed++;
        } else {
            fprintf(stderr, "xichanctl cleanup: cannot remove %s: %s\n", path, strerror(errno));
            r->failed++;
        }
    }
    row(r, ns, what, path, "stale", why, removed);
}

/* Reads the pid a daemon wrote into its lock file (0 if none). */
static long lock_pid(int fd)
{
    char buf[32];
    ssize_t n = pread(fd, buf, sizeof(buf) - 1, 0);

    if (n <= 0)
        return 0;
    buf[n] = '\0';
    return strtol(buf, NULL, 10);
}

/* The process's name, for the report. */
static const char *comm(pid_t pid, char *buf, size_t cap)
{
    char path[64];
    FILE *f;

    snprintf(path, sizeof(path), "/proc/%d/comm", (int)pid);
    if (!(f = fopen(path, "r")) || !fgets(buf, (int)cap, f))
        snprintf(buf, cap, "?");
    if (f)
        fclose(f);
    buf[strcspn(buf, "\n")] = '\0';
    return buf;
}

/* A segment no process maps: stale if it holds nothing anyone could want. */
static void segment(struct report *r, const struct scan *s, const struct ns *ns, const char *path)
{
    struct xichan_census cs;
    struct xichan_shm *shm;
    char shm_name[160], why[320]; /* "/" + prefix + name always fit */
    int err;

    snprintf(shm_name, sizeof(shm_name), "/%s%s", s->prefix, ns->name);
    err = xichan__shm_claim(shm_name, &shm);
    if (err == XICHAN_EBUSY) {
        row(r, ns->name, "segment", path, "live",
            "a daemon serves it from another runtime dir; left alone", 0);
        return;
    }
    if (err == XICHAN_ENOTFOUND)
        return;
    if (err) {
        snprintf(why, sizeof(why), "no daemon serves it, no process maps it, and no daemon "
                 "could adopt it: %s", xichan_strerror(err));
        stale(r, ns->name, "segment", path, why, 1);
        return;
    }
    xichan__census(shm, &cs);
    if (cs.objects) {
        snprintf(why, sizeof(why), "holds %u objects (%u named) with %llu items: kept for the "
                 "next `xichand --name %s`; `xichanctl --name %s stop --discard` removes it",
                 cs.objects, cs.named, (unsigned long long)cs.items, ns->name, ns->name);
        row(r, ns->name, "segment", path, "kept", why, 0);
    } else {
        stale(r, ns->name, "segment", path, "empty, no daemon serves it and no process maps it", 1);
    }
    xichan__shm_unmap(shm); /* after the removal: no daemon adopted it meanwhile */
}

static void one_namespace(struct report *r, struct scan *s, const struct ns *ns)
{
    char seg[160], sock[512], lock[512], why[320], name[32];
    int fd = -1;

    snprintf(seg, sizeof(seg), "/dev/shm/%s%s", s->prefix, ns->name);
    if (xichan__sock_path(sock, sizeof(sock), s->dir, ns->name) ||
        xichan__lock_path(lock, sizeof(lock), s->dir, ns->name))
        return;
    if (ns->lock) {
        char lname[sizeof(ns->name) + 8];
        snprintf(lname, sizeof(lname), "%s.lock", ns->name);
        fd = openat(s->dir_fd, lname, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
        if (fd < 0) {
            snprintf(why, sizeof(why), "cannot open the lock file to test it: %s", strerror(errno));
            row(r, ns->name, "lock", lock, "unknown", why, 0);
            return;
        }
        if (flock(fd, LOCK_EX | LOCK_NB) < 0) {
            snprintf(why, sizeof(why), "xichand pid %ld holds %s.lock; left alone", lock_pid(fd),
                     ns->name);
            row(r, ns->name, "-", ns->seg ? seg : sock, "live", why, 0);
            close(fd);
            return;
        }
    }
    if (ns->seg && ns->user) {
        snprintf(why, sizeof(why), "pid %d (%s) maps it: a daemon serving it from another "
                 "runtime dir, or clients waiting for `xichand --name %s` to adopt it; left alone",
                 (int)ns->user, comm(ns->user, name, sizeof(name)), ns->name);
        row(r, ns->name, "segment", seg, "in-use", why, 0);
    } else if (ns->seg) {
        segment(r, s, ns, seg);
    }
    if (ns->sock)
        stale(r, ns->name, "socket", sock,
              ns->lock ? "its lock file is not held: no daemon listens" : "no lock file: no daemon",
              0);
    /* The lock file goes last, while we still hold it. */
    if (ns->lock)
        stale(r, ns->name, "lock", lock, "not held by any daemon", 0);
    if (fd >= 0)
        close(fd);
}

int ctl_cmd_cleanup(struct ctl *c)
{
    const char *glob = c->a.npos ? c->a.pos[0] : NULL;
    struct report r = {c, 0, 0, 0, 0, -1};
    struct scan s = {.dir_fd = -1};
    size_t k = 0;
    int err;

    if ((err = xichan__runtime_dir(s.dir, sizeof(s.dir), c->co.runtime_dir)))
        return ctl_fail(c, err, "runtime dir");
    if ((err = xichan__shm_name(s.prefix, sizeof(s.prefix), "x")))
        return ctl_fail(c, err, "segment names");
    memmove(s.prefix, s.prefix + 1, strlen(s.prefix)); /* no leading '/' */
    s.prefix[strlen(s.prefix) - 1] = '\0';              /* no "x" */
    if (!(s.v = calloc(MAX_NS, sizeof(*s.v))))
        return ctl_fail(c, XICHAN_ENOMEM, "cleanup");
    scan_shm(&s);
    scan_dir(&s);
    /* Keep only the namespaces the glob names. */
    for (size_t i = 0; i < s.n; i++)
        if (!glob || fnmatch(glob, s.v[i].name, 0) == 0)
            s.v[k++] = s.v[i];
    s.n = k;
    qsort(s.v, s.n, sizeof(*s.v), by_name);
    scan_proc(&s);

    if (c->json) {
        printf("{\"runtime_dir\":");
        ctl_json_str(stdout, s.dir);
        printf(",\"runtime_dir_exists\":%s,\"removing\":%s,\"entries\":[",
               s.have_dir || s.dir_errno != ENOENT ? "true" : "false",
               c->a.yes ? "true" : "false");
    }
    r.dir_fd = s.dir_fd;
    for (size_t i = 0; i < s.n; i++)
        one_namespace(&r, &s, &s.v[i]);
    if (c->json) {
        printf("],\"stale\":%d,\"removed\":%d,\"failed\":%d}\n", r.stale, r.removed, r.failed);
    } else {
        if (!s.have_dir && s.dir_errno == ENOENT)
            printf("(runtime dir %s does not exist: only segments were checked)\n", s.dir);
        else if (!s.have_dir)
            printf("(runtime dir %s cannot be read by this user (%s): only segments were "
                   "checked; its owner can clean it up)\n",
                   s.dir, strerror(s.dir_errno));
        if (!r.stale)
            printf("nothing stale%s (runtime dir %s)\n", r.rows ? " to remove" : "", s.dir);
        else if (c->a.yes)
            printf("removed %d of %d stale files\n", r.removed, r.stale);
        else
            printf("%d stale files; `xichanctl cleanup --yes` removes them\n", r.stale);
    }
    free(s.v);
    if (s.dir_fd >= 0)
        close(s.dir_fd);
    return r.failed ? CTL_EFAIL : CTL_OK;
}
