/*
 * security_group.c -- a namespace shared with a group (xichand --group G;
 * broker/access.c, libclient/access.c).  Needs root: every party is a
 * forked child with a fresh uid (users.h), the daemon included, so that
 * "the owner" is not root (whom the daemon always lets in).
 *
 *   owner     uid O, groups {G, H}: starts xichand --group G under umask
 *             077; checks runtime dir 0710, socket 0660, segment 0660, all
 *             of group G, lock file 0600; checks that --group K (not a
 *             member) and a second namespace in the same dir with group H
 *             are refused, and that a dir the daemon creates is shared
 *             alike; passes an item each way with a member.
 *   member    uid M, supplementary group G: connects through the owner's
 *             runtime dir (the segment's name, with O's uid in it, comes
 *             from the daemon), gets the owner's item, puts one back.
 *   member2   uid M2, primary gid G, no supplementary groups: connects.
 *   stranger  uid S, not in G: refused by the kernel, then -- with the
 *             socket and dir opened up by hand -- by the daemon, each time
 *             XICHAN_EACCES with the group in the message.
 *   And a member refuses a daemon whose uid does not own the runtime dir.
 */
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "harness.h"
#include "users.h"

static uid_t owner, member, member2, stranger;
static gid_t group_g, group_h, group_k;
static xt_pipe_t ready, taken, done;
static char seg_path[256];

static void expect_in(const char *text, const char *needle)
{
    if (!strstr(text, needle))
        xt__fail(__FILE__, __LINE__, "expected \"%s\" in: %s", needle, text);
}

static void check_file(const char *path, unsigned mode, uid_t uid, gid_t gid)
{
    struct stat st;

    if (lstat(path, &st) != 0)
        xt__fail(__FILE__, __LINE__, "%s: %s", path, strerror(errno));
    if ((st.st_mode & 07777) != mode || st.st_uid != uid || st.st_gid != gid)
        xt__fail(__FILE__, __LINE__, "%s is %04o uid %u gid %u; expected %04o uid %u gid %u", path,
                 (unsigned)(st.st_mode & 07777), (unsigned)st.st_uid, (unsigned)st.st_gid, mode,
                 (unsigned)uid, (unsigned)gid);
}

static void check_group_modes(void)
{
    char path[512];

    check_file(xt_runtime_dir(), 0710, owner, group_g);
    snprintf(path, sizeof(path), "%s/%s.sock", xt_runtime_dir(), xt_name());
    check_file(path, 0660, owner, group_g);
    snprintf(path, sizeof(path), "%s/%s.lock", xt_runtime_dir(), xt_name());
    check_file(path, 0600, owner, owner);
    check_file(seg_path, 0660, owner, group_g);
}

/* xichand --group gid for another namespace in our dir: must exit 1 saying why. */
static void refused_config(gid_t gid, const char *suffix, const char *why)
{
    char ns[80], grp[32], out[4096];
    char *argv[] = {(char *)xt_daemon_path(), "--name", ns, "--runtime-dir",
                    (char *)xt_runtime_dir(), "--group", grp, "--size", "8M", NULL};

    snprintf(ns, sizeof(ns), "%s-%s", xt_name(), suffix);
    snprintf(grp, sizeof(grp), "%u", (unsigned)gid);
    XT_EQ_INT(xt_run(argv, out, sizeof(out), 10000), 1);
    printf("xichand --group %s: %s", grp, out);
    expect_in(out, why);
}

/* xichand --group G --daemon in a dir it creates, umask 0: 0710 of group G; then stopped. */
static void fresh_dir_shared(void)
{
    char ns[80], grp[32], dir[512], log[600], out[4096], path[700];
    char *argv[] = {(char *)xt_daemon_path(), "--name", ns, "--runtime-dir", dir, "--group", grp,
                    "--size", "8M", "--daemon", "--log-file", log, NULL};
    int pid = 0, rc;
    FILE *f;

    snprintf(ns, sizeof(ns), "%s-fresh", xt_name());
    snprintf(grp, sizeof(grp), "%u", (unsigned)group_g);
    snprintf(dir, sizeof(dir), "%s/fresh", xt_runtime_dir());
    snprintf(log, sizeof(log), "%s/fresh.log", xt_runtime_dir());
    /* A umask that lets mkdir() give group rights (under 077 it would not). */
    umask(0);
    rc = xt_run(argv, out, sizeof(out), 10000);
    umask(077);
    if (rc != 0)
        xt__fail(__FILE__, __LINE__, "xichand --group in a fresh dir failed: %s", out);
    check_file(dir, 0710, owner, group_g);
    snprintf(path, sizeof(path), "%s/%s.sock", dir, ns);
    check_file(path, 0660, owner, group_g);
    snprintf(path, sizeof(path), "/dev/shm/xichan-%u-%s", (unsigned)owner, ns);
    check_file(path, 0660, owner, group_g);
    snprintf(path, sizeof(path), "%s/%s.lock", dir, ns);
    XT_CHECK((f = fopen(path, "r")) != NULL);
    XT_EQ_INT(fscanf(f, "%d", &pid), 1);
    fclose(f);
    XT_OK(kill(pid, SIGTERM));
    for (double t0 = xt_now(); access(path, F_OK) == 0; xt_sleep_ms(10))
        if (xt_now() - t0 > 5)
            xt__fail(__FILE__, __LINE__, "xichand (pid %d) kept %s after SIGTERM", pid, path);
    XT_OK(rmdir(dir));
}

static void owner_main(void *arg)
{
    gid_t groups[] = {group_g, group_h};
    char grp[64];
    xichan_client *cl;
    xichan_queue_id q, r;
    xichan_item it;

    xt_become(owner, owner, groups, 2);
    if (access(xt_daemon_path(), X_OK) != 0)
        _exit(77);
    umask(077);
    snprintf(grp, sizeof(grp), "--size 8M --group %u", (unsigned)group_g);
    xt_start_daemon(grp);
    check_group_modes();
    refused_config(group_k, "k", "is not a member of group");
    refused_config(group_h, "h", "is already shared with gid");
    fresh_dir_shared();

    XT_OK(xichan_client_open(&cl, NULL));
    XT_OK(xichan_queue_create(cl, &(xichan_queue_opts){.name = "handoff"}, &q));
    XT_OK(xichan_queue_create(cl, &(xichan_queue_opts){.name = "reply"}, &r));
    XT_OK(xichan_queue_put(cl, q, XICHAN_FMT_RAW, "from the owner", 14, 0, xichan_deadline(5)));
    xt_signal(&ready);
    XT_OK(xichan_queue_get(cl, r, &it, xichan_deadline(20)));
    XT_CHECK(it.len == 13 && memcmp(it.data, "from a member", 13) == 0);
    xichan_item_release(&it);
    xt_signal(&taken);
    XT_CHECK(xt_await(&done, 30000) == 0);
    xichan_client_close(cl);
    XT_EQ_INT(xt_stop_daemon(), 0);
}

static void member_main(void *arg)
{
    gid_t groups[] = {group_g};
    xichan_client *cl;
    xichan_queue_id q;
    xichan_item it;

    xt_become(member, member, groups, 1);
    XT_OK(xichan_client_open(&cl, NULL));
    XT_OK(xichan_queue_open(cl, "handoff", &q));
    XT_OK(xichan_queue_get(cl, q, &it, xichan_deadline(10)));
    XT_CHECK(it.len == 14 && memcmp(it.data, "from the owner", 14) == 0);
    xichan_item_release(&it);
    XT_OK(xichan_queue_open(cl, "reply", &q));
    XT_OK(xichan_queue_put(cl, q, XICHAN_FMT_RAW, "from a member", 13, 0, xichan_deadline(5)));
    /* Our items turn UNBOUND when our session ends: stay until the owner has it. */
    XT_CHECK(xt_await(&taken, 10000) == 0);
    xichan_client_close(cl);
}

static void member2_main(void *arg)
{
    xichan_client *cl;

    xt_become(member2, group_g, NULL, 0);
    XT_OK(xichan_client_open(&cl, NULL));
    XT_CHECK(xichan_client_session(cl) > 0);
    xichan_client_close(cl);
}

/* arg: the text the refusal must contain besides the uid. */
static void stranger_main(void *arg)
{
    xichan_client *cl = NULL;
    char uid_text[64];

    xt_become(stranger, stranger, NULL, 0);
    XT_ERR(xichan_client_open(&cl, NULL), XICHAN_EACCES);
    printf("stranger sees: %s\n", xichan_strerror(XICHAN_EACCES));
    snprintf(uid_text, sizeof(uid_text), "refused uid %u", (unsigned)stranger);
    expect_in(xichan_strerror(XICHAN_EACCES), uid_text);
    expect_in(xichan_strerror(XICHAN_EACCES), (const char *)arg);
}

/* The runtime dir now belongs to the stranger: the member must not trust the daemon. */
static void member_distrusts(void *arg)
{
    gid_t groups[] = {group_g};
    xichan_client *cl = NULL;

    xt_become(member, member, groups, 1);
    XT_ERR(xichan_client_open(&cl, NULL), XICHAN_EPERM);
    printf("member sees: %s\n", xichan_strerror(XICHAN_EPERM));
    expect_in(xichan_strerror(XICHAN_EPERM), "refusing the daemon");
}

static void run_child(void (*fn)(void *), void *arg)
{
    XT_EQ_INT(xt_wait(xt_fork(fn, arg), 20000), 0);
}

static void remove_segment(void)
{
    char fresh[300];

    /* A stopped daemon keeps its segment (xichand(8)): the test removes it. */
    unlink(seg_path);
    snprintf(fresh, sizeof(fresh), "%s-fresh", seg_path);
    unlink(fresh);
}

int main(void)
{
    char sock[512], in_group[64];
    pid_t opid;
    int rc;

    owner = xt_free_id(64200);
    xt_need_other_uids(owner);
    member = xt_free_id(owner + 1);
    member2 = xt_free_id(member + 1);
    stranger = xt_free_id(member2 + 1);
    group_g = xt_free_id(stranger + 1);
    group_h = xt_free_id(group_g + 1);
    group_k = xt_free_id(group_h + 1);
    snprintf(seg_path, sizeof(seg_path), "/dev/shm/xichan-%u-%s", (unsigned)owner, xt_name());
    atexit(remove_segment);
    snprintf(sock, sizeof(sock), "%s/%s.sock", xt_runtime_dir(), xt_name());

    /* The owner's runtime dir, as it would make it. */
    XT_OK(chown(xt_runtime_dir(), owner, owner));
    XT_OK(chmod(xt_runtime_dir(), 0700));
    xt_pipe_init(&ready);
    xt_pipe_init(&taken);
    xt_pipe_init(&done);
    opid = xt_fork(owner_main, NULL);
    if (xt_await(&ready, 15000) != 0) {
        rc = xt_wait(opid, 5000);
        if (rc == 77)
            xt_skip("xichand is not executable by other uids (a checkout in a private dir?)");
        xt__fail(__FILE__, __LINE__, "the owner never got ready (status %d)", rc);
    }

    run_child(member_main, NULL);
    run_child(member2_main, NULL);
    run_child(stranger_main, "not in its group");

    /* Opened up by hand: the daemon's own check still refuses. */
    XT_OK(chmod(xt_runtime_dir(), 0711));
    XT_OK(chmod(sock, 0666));
    snprintf(in_group, sizeof(in_group), "not in group '%u' (gid %u)", (unsigned)group_g,
             (unsigned)group_g);
    run_child(stranger_main, in_group);
    XT_OK(chmod(sock, 0660));
    XT_OK(chmod(xt_runtime_dir(), 0710));

    XT_OK(chown(xt_runtime_dir(), stranger, group_g));
    run_child(member_distrusts, NULL);
    XT_OK(chown(xt_runtime_dir(), owner, group_g));
    run_child(member2_main, NULL);

    xt_signal(&done);
    XT_EQ_INT(xt_wait(opid, 30000), 0);
    /* Stopped, the owner's daemon kept the segment, still 0660 of the group. */
    check_file(seg_path, 0660, owner, group_g);
    printf("security_group: ok\n");
    return 0;
}
