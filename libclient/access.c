/*
 * access.c -- the client's half of the trust model (xichan(7), TRUST
 * MODEL; the daemon's half is broker/access.c).
 *
 * Being kept out must read as such: when the kernel refuses connect() with
 * EACCES, or the daemon refuses with a WELCOME of XICHAN_EACCES, the
 * client's error is XICHAN_EACCES and xichan_strerror() names the
 * namespace, the uid and what would have let it in (errors.c keeps that
 * text per thread).
 *
 * A client also decides whom it trusts.  Decisions:
 *   - The daemon (its uid from SO_PEERCRED on our connection) must be our
 *     own uid or root, or, when the runtime dir was named explicitly
 *     (opts->runtime_dir or $XICHAN_RUNTIME_DIR, which is how one joins a
 *     namespace another user shares), the uid that owns that dir.  So a
 *     stranger who created /tmp/xichan-$UID before us cannot serve us a
 *     segment of theirs: the default dir must be served by ourselves.
 *   - The segment the daemon names must belong to the daemon's uid: anyone
 *     can create files in /dev/shm, and a planted one would see our items.
 *   - We never autostart a daemon in a runtime dir another uid owns: it
 *     would refuse the dir anyway, and a namespace someone shares is theirs
 *     to start.
 * Either refusal of the daemon or its segment is XICHAN_EPERM.
 */
#include <errno.h>
#include <grp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "internal.h"

/* "'name' (gid N)" or "gid N" into buf. */
static void group_label(char *buf, size_t cap, gid_t gid)
{
    struct group gr, *res = NULL;
    char tmp[1024];

    if (getgrgid_r(gid, &gr, tmp, sizeof(tmp), &res) == 0 && res)
        snprintf(buf, cap, "'%s' (gid %u)", res->gr_name, (unsigned)gid);
    else
        snprintf(buf, cap, "gid %u", (unsigned)gid);
}

void xichan__explain_denied(const char *sock, const char *dir, const char *ns)
{
    unsigned me = (unsigned)geteuid();
    char grp[128];
    struct stat st;

    if (stat(sock, &st) == 0) {
        group_label(grp, sizeof(grp), st.st_gid);
        if (st.st_mode & 060)
            xichan__set_refusal(XICHAN_EACCES,
                                "the daemon of namespace '%s' refused uid %u: not the owner "
                                "(uid %u) and not in group %s",
                                ns, me, (unsigned)st.st_uid, grp);
        else
            xichan__set_refusal(XICHAN_EACCES,
                                "the daemon of namespace '%s' refused uid %u: not the owner "
                                "(uid %u), and the namespace is shared with no group",
                                ns, me, (unsigned)st.st_uid);
    } else if (stat(dir, &st) == 0) {
        group_label(grp, sizeof(grp), st.st_gid);
        if (st.st_mode & 010)
            xichan__set_refusal(XICHAN_EACCES,
                                "the daemon of namespace '%s' refused uid %u: not the owner "
                                "(uid %u) of runtime dir %s and not in its group %s",
                                ns, me, (unsigned)st.st_uid, dir, grp);
        else
            xichan__set_refusal(XICHAN_EACCES,
                                "the daemon of namespace '%s' refused uid %u: runtime dir %s "
                                "belongs to uid %u (mode %04o) and is shared with no group",
                                ns, me, dir, (unsigned)st.st_uid, (unsigned)(st.st_mode & 07777));
    } else {
        xichan__set_refusal(XICHAN_EACCES,
                            "the daemon of namespace '%s' refused uid %u: %s cannot be reached "
                            "(%s)",
                            ns, me, dir, strerror(errno));
    }
}

int xichan__may_autostart(const char *dir, const char *ns)
{
    struct stat st;

    /* A dir that does not exist yet, the daemon creates as ours. */
    if (stat(dir, &st) != 0 || st.st_uid == geteuid())
        return 0;
    xichan__set_refusal(XICHAN_ENODAEMON,
                        "no xichand serves namespace '%s' in %s, and uid %u will not start one "
                        "there: the runtime dir belongs to uid %u, who must start it",
                        ns, dir, (unsigned)geteuid(), (unsigned)st.st_uid);
    return XICHAN_ENODAEMON;
}

int xichan__trust_daemon(int fd, const char *dir, int explicit_dir, const char *ns, uid_t *uid)
{
    struct ucred cred;
    socklen_t len = sizeof(cred);
    struct stat st;

    if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) < 0)
        return XICHAN_EIO;
    *uid = cred.uid;
    if (cred.uid == geteuid() || cred.uid == 0)
        return 0;
    if (explicit_dir && stat(dir, &st) == 0 && st.st_uid == cred.uid)
        return 0;
    xichan__set_refusal(XICHAN_EPERM,
                        "refusing the daemon of namespace '%s' in %s: it runs as uid %u, which "
                        "is neither this process's uid %u nor root%s",
                        ns, dir, (unsigned)cred.uid, (unsigned)geteuid(),
                        explicit_dir ? " nor the runtime dir's owner"
                                     : " (name a runtime dir explicitly to use another user's "
                                       "namespace)");
    return XICHAN_EPERM;
}

int xichan__trust_segment(const struct xichan_shm *shm, uid_t daemon_uid, const char *ns)
{
    if (shm->owner == daemon_uid)
        return 0;
    xichan__set_refusal(XICHAN_EPERM,
                        "refusing segment /dev/shm%s of namespace '%s': it belongs to uid %u, "
                        "not to the daemon's uid %u",
                        shm->name, ns, (unsigned)shm->owner, (unsigned)daemon_uid);
    return XICHAN_EPERM;
}
