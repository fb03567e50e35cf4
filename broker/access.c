/*
 * access.c -- who may use the namespace: the modes and group of its files,
 * and the check of every peer that connects.
 *
 * Two modes (xichan(7), TRUST MODEL):
 *
 *   private (the default)   runtime dir 0700 when the daemon creates it,
 *                           socket 0600, lock file 0600, segment 0600.
 *   --group G ($XICHAN_GROUP)
 *                           runtime dir 0710 with group G, socket 0660 and
 *                           segment 0660 with group G, lock file 0600.
 *
 * Decisions:
 *   - The shared runtime dir is 0710, not 0750: a client needs only to
 *     reach the socket (x), never to list the dir (r).  An existing dir of
 *     ours gets group G and mode 0710 (g+r kept if it had it); one whose
 *     group is another group -- neither G nor our own gid -- that has
 *     rights in it is refused: that is someone else's sharing (another
 *     --group daemon's), which changing the group would break.  Rights of
 *     our own gid only mean a umask of 022, and are taken over.  A dir group- or
 *     world-writable is always refused: anyone who may write in it may
 *     replace the socket.  In private mode an existing dir's mode is left
 *     alone: the files in it are 0600, which is what keeps others out, and
 *     the dir may serve other namespaces of the same user.
 *   - No file is ever wider than intended, not even for an instant: the
 *     segment is created 0600 (O_EXCL) and widened with fchown + fchmod on
 *     its descriptor; the socket is bound under umask 0177 (so it is born
 *     0600) and widened before listen().  The lock file stays 0600: only
 *     daemons of the owner take it.
 *   - The file modes are the first gate (the kernel refuses connect() with
 *     EACCES); the SO_PEERCRED check on accept is the second, for peers the
 *     modes let through (a socket chmod'ed by hand, CAP_DAC_OVERRIDE, a dir
 *     with an ACL): the daemon's own uid and root always pass; with a
 *     group, a peer whose primary gid is G or whose supplementary groups
 *     hold G passes; anyone else gets a WELCOME with XICHAN_EACCES and a
 *     message naming the namespace, the uid and the group, and is closed.
 *   - Supplementary groups come from SO_PEERGROUPS (Linux >= 4.13), which,
 *     like SO_PEERCRED, the kernel captured at connect().  Only where the
 *     kernel lacks it do we read the Groups: line of /proc/<pid>/status,
 *     which describes the process now (it may have changed groups since, or
 *     its pid been reused): good enough for an old kernel, and only ever
 *     asked about a peer that already got past the file modes.
 *   - An adopted segment must belong to our uid: /dev/shm is writable by
 *     all, and a segment someone else planted under our name would hand
 *     them every item.  It is then brought to the current mode, so a
 *     restart with or without --group takes effect.
 */
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "daemon.h"

#define DIR_MODE_PRIVATE 0700
#define DIR_MODE_GROUP 0710
#define FILE_MODE_PRIVATE 0600
#define FILE_MODE_GROUP 0660

#ifndef SO_PEERGROUPS
#define SO_PEERGROUPS 59 /* Linux 4.13 */
#endif

/* ------------------------------------------------------------- group */

/* 1 if this process may give files to gid (root, or a member of it). */
static int may_chgrp(gid_t gid)
{
    gid_t *groups;
    int n, member = 0;

    if (geteuid() == 0 || getegid() == gid)
        return 1;
    n = getgroups(0, NULL);
    if (n <= 0 || !(groups = calloc((size_t)n, sizeof(*groups))))
        return 0;
    n = getgroups(n, groups);
    for (int i = 0; i < n; i++)
        member |= groups[i] == gid;
    free(groups);
    return member;
}

int xd_access_init(const char *group)
{
    struct group *gr;
    char *end;
    unsigned long v;

    xd.grouped = 0;
    if (!group || !*group)
        return 0;
    if ((gr = getgrnam(group))) {
        xd.gid = gr->gr_gid;
    } else {
        errno = 0;
        v = strtoul(group, &end, 10);
        if (*end || end == group || errno || v >= (gid_t)-1) {
            fprintf(stderr, "xichand: --group: no group '%s' (a group name or a numeric gid)\n",
                    group);
            return -2;
        }
        xd.gid = (gid_t)v;
        gr = getgrgid(xd.gid);
    }
    if (gr)
        snprintf(xd.group_name, sizeof(xd.group_name), "%s", gr->gr_name);
    else
        snprintf(xd.group_name, sizeof(xd.group_name), "%u", (unsigned)xd.gid);
    if (!may_chgrp(xd.gid)) {
        fprintf(stderr,
                "xichand: --group %s: uid %u is not a member of group '%s' (gid %u), so it cannot\n"
                "give the namespace's socket and segment to that group\n",
                group, (unsigned)geteuid(), xd.group_name, (unsigned)xd.gid);
        return -1;
    }
    xd.grouped = 1;
    return 0;
}

/* ------------------------------------------------------- runtime dir */

/*
 * Group members must be able to walk down to the dir ($XDG_RUNTIME_DIR is
 * 0700, for one): say so at start rather than let every member's connect
 * fail with EACCES.  Only a warning: an ACL may grant what the mode bits
 * do not show.
 */
static void warn_unreachable(const char *dir)
{
    char path[sizeof(xd.dir)], *slash;
    struct stat st;

    snprintf(path, sizeof(path), "%s", dir);
    while ((slash = strrchr(path, '/'))) {
        *(slash == path ? slash + 1 : slash) = '\0';
        if (stat(path, &st) == 0 && !(st.st_mode & S_IXOTH) &&
            !((st.st_mode & S_IXGRP) && st.st_gid == xd.gid)) {
            xd_log(XD_WARN,
                   "members of group '%s' cannot reach %s: %s is mode %04o (uid %u, gid %u); "
                   "use a --runtime-dir they can reach",
                   xd.group_name, dir, path, (unsigned)(st.st_mode & 07777),
                   (unsigned)st.st_uid, (unsigned)st.st_gid);
            return;
        }
        if (slash == path)
            return;
    }
}

/* Gives our dir to the group: group G, g+x, nothing for others. */
static int share_dir(int dfd, const struct stat *st, const char *dir)
{
    mode_t mode = DIR_MODE_GROUP | (st->st_mode & S_IRGRP);

    /* Our own gid's rights come from a umask (mkdir -m 755), not from sharing. */
    if (st->st_gid != xd.gid && st->st_gid != getegid() && (st->st_mode & 070)) {
        xd_log(XD_ERROR,
               "runtime dir %s is already shared with gid %u (mode %04o): give group '%s' a "
               "runtime dir of its own (--runtime-dir)",
               dir, (unsigned)st->st_gid, (unsigned)(st->st_mode & 07777), xd.group_name);
        return -1;
    }
    if (fchown(dfd, (uid_t)-1, xd.gid) < 0 || fchmod(dfd, mode) < 0) {
        xd_log(XD_ERROR, "cannot give runtime dir %s to group '%s': %s", dir, xd.group_name,
               strerror(errno));
        return -1;
    }
    warn_unreachable(dir);
    return 0;
}

int xd_prepare_dir(const char *dir)
{
    struct stat st;
    int dfd, rc;

    /* Born private in any mode: share_dir() widens it, like any dir of ours. */
    if (mkdir(dir, DIR_MODE_PRIVATE) == 0)
        xd.made_dir = 1;
    else if (errno != EEXIST) {
        xd_log(XD_ERROR, "cannot create runtime dir %s: %s", dir, strerror(errno));
        return -1;
    }
    /*
     * One descriptor for the checks, the changes and every file in it (the
     * caller keeps it; openat, O_NOFOLLOW): nobody can swap the dir, or a
     * symlink in it, between the check and the use.
     */
    dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC | O_NOFOLLOW);
    if (dfd < 0 || fstat(dfd, &st) < 0) {
        xd_log(XD_ERROR, "runtime dir %s is not a directory we can open%s: %s", dir,
               errno == ELOOP || errno == ENOTDIR ? " (a symlink is refused)" : "",
               strerror(errno));
        if (dfd >= 0)
            close(dfd);
        return -1;
    }
    if (st.st_uid != geteuid() || (st.st_mode & 022)) {
        xd_log(XD_ERROR,
               "runtime dir %s must belong to uid %u and not be group- or world-writable "
               "(mode is %04o, owner %u)",
               dir, (unsigned)geteuid(), (unsigned)(st.st_mode & 07777), (unsigned)st.st_uid);
        close(dfd);
        return -1;
    }
    rc = xd.grouped ? share_dir(dfd, &st, dir) : 0;
    if (rc < 0) {
        close(dfd);
        return -1;
    }
    return dfd;
}

/* ------------------------------------------------- socket and segment */

mode_t xd_socket_umask(void)
{
    return 0177;
}

int xd_share_socket(const char *name)
{
    /* Our dir, where no one else may create a file: the name is the socket we bound. */
    if (xd.grouped && fchownat(xd.dir_fd, name, (uid_t)-1, xd.gid, AT_SYMLINK_NOFOLLOW) < 0)
        return -1;
    return fchmodat(xd.dir_fd, name, xd.grouped ? FILE_MODE_GROUP : FILE_MODE_PRIVATE, 0);
}

int xd_share_segment(void)
{
    struct stat st;
    int fd = shm_open(xd.seg_name, O_RDWR | O_CLOEXEC, 0), rc = -1;

    if (fd < 0) {
        fprintf(stderr, "xichand: cannot reopen segment /dev/shm%s: %s\n", xd.seg_name,
                strerror(errno));
        return -1;
    }
    if (fstat(fd, &st) < 0 || (uint64_t)st.st_ino != xd.shm->ino) {
        fprintf(stderr, "xichand: segment /dev/shm%s was replaced under us\n", xd.seg_name);
    } else if (st.st_uid != geteuid()) {
        fprintf(stderr,
                "xichand: segment /dev/shm%s belongs to uid %u, not to uid %u: someone else\n"
                "created it, so it is not adopted.  Remove it (as root) if it is not in use.\n",
                xd.seg_name, (unsigned)st.st_uid, (unsigned)geteuid());
    } else if (fchown(fd, (uid_t)-1, xd.grouped ? xd.gid : getegid()) < 0 ||
               fchmod(fd, xd.grouped ? FILE_MODE_GROUP : FILE_MODE_PRIVATE) < 0) {
        fprintf(stderr, "xichand: cannot set the mode of segment /dev/shm%s: %s\n", xd.seg_name,
                strerror(errno));
    } else {
        rc = 0;
    }
    close(fd);
    return rc;
}

/* ------------------------------------------------------------- peers */

/* Supplementary groups from /proc, for kernels without SO_PEERGROUPS. */
static int proc_in_group(pid_t pid)
{
    char path[64], line[4096];
    int found = -1;
    FILE *f;

    snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
    if (!(f = fopen(path, "re")))
        return -1;
    while (fgets(line, sizeof(line), f)) {
        char *p = line + 7, *end;
        if (strncmp(line, "Groups:", 7))
            continue;
        found = 0;
        for (;;) {
            unsigned long g = strtoul(p, &end, 10);
            if (end == p)
                break;
            found |= (gid_t)g == xd.gid;
            p = end;
        }
        break;
    }
    fclose(f);
    return found;
}

/* 1 if the peer's supplementary groups hold G, 0 if not, -1 if unknown. */
static int peer_in_group(int fd, pid_t pid)
{
    gid_t small[64], *groups = small;
    socklen_t len = sizeof(small);
    int rc = 0;

    if (getsockopt(fd, SOL_SOCKET, SO_PEERGROUPS, groups, &len) < 0) {
        if (errno == ENOPROTOOPT)
            return proc_in_group(pid);
        if (errno != ERANGE || !(groups = malloc(len)))
            return -1;
        if (getsockopt(fd, SOL_SOCKET, SO_PEERGROUPS, groups, &len) < 0) {
            free(groups);
            return -1;
        }
    }
    for (size_t i = 0; i < len / sizeof(gid_t); i++)
        rc |= groups[i] == xd.gid;
    if (groups != small)
        free(groups);
    return rc;
}

int xd_peer_allowed(int fd, const struct ucred *cred, char *why, size_t cap)
{
    if (cred->uid == geteuid() || cred->uid == 0)
        return 1;
    if (xd.grouped && (cred->gid == xd.gid || peer_in_group(fd, cred->pid) == 1))
        return 1;
    if (xd.grouped)
        snprintf(why, cap,
                 "the daemon of namespace '%s' refused uid %u: not the owner (uid %u) and not in "
                 "group '%s' (gid %u)",
                 xd.ns, (unsigned)cred->uid, (unsigned)geteuid(), xd.group_name,
                 (unsigned)xd.gid);
    else
        snprintf(why, cap,
                 "the daemon of namespace '%s' refused uid %u: not the owner (uid %u), and the "
                 "namespace is shared with no group",
                 xd.ns, (unsigned)cred->uid, (unsigned)geteuid());
    return 0;
}
