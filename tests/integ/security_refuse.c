/*
 * security_refuse.c -- a private namespace keeps every other uid out, and
 * says so (broker/access.c, libclient/access.c).  Needs root: clients run
 * as a fresh uid in forked children (users.h).
 *
 *   1. A stranger's connect fails in the kernel (runtime dir 0700): the
 *      client gets XICHAN_EACCES and a message naming namespace and uid.
 *   2. With the files opened up by hand (dir 0711, socket 0666), the
 *      daemon's own SO_PEERCRED check refuses it, with its message over
 *      the protocol, and logs it.
 *   3. xichanctl run by the stranger prints the refusal.
 *   4. The stranger may not autostart a daemon in the owner's dir.
 *   5. A segment another uid planted under the daemon's name is not adopted.
 * Throughout, the daemon keeps serving the owner: an item round trip at
 * the end, on a session opened after the refusals.
 */
#include <fcntl.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "harness.h"
#include "internal.h"
#include "users.h"

static uid_t stranger;
static char planted[128];

static void expect_in(const char *text, const char *needle)
{
    if (!strstr(text, needle))
        xt__fail(__FILE__, __LINE__, "expected \"%s\" in: %s", needle, text);
}

/* In a child: open as the stranger, expect code, and a message with the uid in it. */
static void stranger_open(void *arg)
{
    int want = (int)(long)arg;
    xichan_client_opts o = {.autostart = XICHAN_AUTOSTART_OFF};
    xichan_client *cl = NULL;
    char uid_text[64];

    xt_become(stranger, stranger, NULL, 0);
    XT_ERR(xichan_client_open(&cl, &o), want);
    XT_CHECK(cl == NULL);
    snprintf(uid_text, sizeof(uid_text), "refused uid %u", (unsigned)stranger);
    printf("stranger sees: %s\n", xichan_strerror(want));
    expect_in(xichan_strerror(want), uid_text);
    expect_in(xichan_strerror(want), xt_name());
}

static void stranger_ctl(void *arg)
{
    char *argv[] = {(char *)xt_bin("xichanctl"), "list", NULL}, out[4096], uid_text[64];

    xt_become(stranger, stranger, NULL, 0);
    XT_EQ_INT(xt_run(argv, out, sizeof(out), 10000), 2);
    printf("xichanctl as the stranger: %s", out);
    snprintf(uid_text, sizeof(uid_text), "refused uid %u", (unsigned)stranger);
    expect_in(out, uid_text);
}

/* Autostart is on, no daemon serves ns: the stranger must not start one. */
static void stranger_autostart(void *arg)
{
    const char *ns = arg;
    xichan_client_opts o = {.name = ns, .autostart = XICHAN_AUTOSTART_ON};
    xichan_client *cl = NULL;

    xt_become(stranger, stranger, NULL, 0);
    XT_ERR(xichan_client_open(&cl, &o), XICHAN_ENODAEMON);
    printf("stranger's autostart: %s\n", xichan_strerror(XICHAN_ENODAEMON));
    expect_in(xichan_strerror(XICHAN_ENODAEMON), "will not start one");
}

/* The daemon logged the refusal it sent. */
static void daemon_logged_refusal(void)
{
    char log[16384];

    XT_CHECK(xt_read_file(xt_path("xichand.log"), log, sizeof(log)) >= 0);
    expect_in(log, "refused pid");
    expect_in(log, "not the owner (uid 0)");
}

static void run_child(void (*fn)(void *), void *arg)
{
    XT_EQ_INT(xt_wait(xt_fork(fn, arg), 20000), 0);
}

static void remove_planted(void)
{
    if (planted[0])
        shm_unlink(planted);
}

/* A valid segment under the name the daemon of ns will use, owned by the stranger. */
static void plant_segment(const char *ns)
{
    struct xichan_shm_geometry g = {8u << 20, 16, 16, 64};
    struct xichan_shm *shm;
    int fd;

    snprintf(planted, sizeof(planted), "/xichan-%u-%s", (unsigned)getuid(), ns);
    atexit(remove_planted);
    XT_OK(xichan__shm_create(planted, &g, &shm));
    xichan__shm_unmap(shm);
    XT_CHECK((fd = shm_open(planted, O_RDWR, 0)) >= 0);
    XT_OK(fchown(fd, stranger, stranger));
    XT_OK(fchmod(fd, 0666));
    close(fd);
}

static void planted_segment_refused(void)
{
    char ns[80], out[4096], path[200], uid_text[64];
    char *argv[] = {(char *)xt_daemon_path(), "--name", ns, "--runtime-dir",
                    (char *)xt_runtime_dir(), "--foreground", NULL};
    struct stat st;

    snprintf(ns, sizeof(ns), "%s-planted", xt_name());
    plant_segment(ns);
    XT_EQ_INT(xt_run(argv, out, sizeof(out), 10000), 4);
    printf("daemon over a planted segment: %s", out);
    snprintf(uid_text, sizeof(uid_text), "belongs to uid %u", (unsigned)stranger);
    expect_in(out, uid_text);
    /* Left as it was: neither adopted nor removed. */
    snprintf(path, sizeof(path), "/dev/shm%s", planted);
    XT_OK(stat(path, &st));
    XT_EQ_INT(st.st_uid, stranger);
    XT_EQ_INT(st.st_mode & 07777, 0666);
}

int main(void)
{
    char sock[512], ns_auto[80], auto_sock[600];
    xichan_client *owner, *again;
    xichan_queue_id q;
    xichan_item it;

    stranger = xt_free_id(64100);
    xt_need_other_uids(stranger);
    xt_start_daemon("--size 8M");
    XT_OK(xichan_client_open(&owner, NULL));
    XT_OK(xichan_queue_create(owner, &(xichan_queue_opts){.name = "kept"}, &q));

    /* 1: the kernel keeps it out; the client explains. */
    run_child(stranger_open, (void *)(long)XICHAN_EACCES);

    /* 2: the daemon keeps it out even when the modes would not. */
    snprintf(sock, sizeof(sock), "%s/%s.sock", xt_runtime_dir(), xt_name());
    XT_OK(chmod(xt_runtime_dir(), 0711));
    XT_OK(chmod(sock, 0666));
    run_child(stranger_open, (void *)(long)XICHAN_EACCES);
    daemon_logged_refusal();

    /* 3: and xichanctl says it too. */
    run_child(stranger_ctl, NULL);

    /* 4: no autostart in a dir of another uid. */
    snprintf(ns_auto, sizeof(ns_auto), "%s-auto", xt_name());
    run_child(stranger_autostart, ns_auto);
    snprintf(auto_sock, sizeof(auto_sock), "%s/%s.sock", xt_runtime_dir(), ns_auto);
    XT_CHECK(access(auto_sock, F_OK) != 0);

    XT_OK(chmod(sock, 0600));
    XT_OK(chmod(xt_runtime_dir(), 0700));

    /* 5: a segment planted by another uid is not adopted. */
    planted_segment_refused();

    /* The daemon still serves the owner, old session and new. */
    XT_CHECK(xt_daemon_pid() > 0 && kill(xt_daemon_pid(), 0) == 0);
    XT_OK(xichan_client_open(&again, NULL));
    XT_OK(xichan_queue_put(again, q, XICHAN_FMT_RAW, "still here", 10, 0, xichan_deadline(5)));
    XT_OK(xichan_queue_get(owner, q, &it, xichan_deadline(5)));
    XT_CHECK(it.len == 10 && memcmp(it.data, "still here", 10) == 0);
    xichan_item_release(&it);
    xichan_client_close(again);
    xichan_client_close(owner);
    XT_EQ_INT(xt_stop_daemon(), 0);
    printf("security_refuse: ok\n");
    return 0;
}
