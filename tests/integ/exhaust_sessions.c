/*
 * exhaust_sessions.c -- a full session table.  With xichand --sessions 8,
 * eight clients open; the ninth fails with XICHAN_ELIMIT at once (no hang),
 * and the daemon's log says to raise --sessions.  Closing one client lets
 * the next open succeed; so does the death of a process that held one
 * (its slot comes back once the daemon has cleaned up after it).  The
 * sessions that stayed open work throughout.
 */
#include <fcntl.h>
#include <signal.h>
#include <string.h>
#include <unistd.h>

#include "harness.h"

#define NSESS 8

static int log_has(const char *needle)
{
    char path[512], buf[1 << 16];
    ssize_t n;
    int fd;

    snprintf(path, sizeof(path), "%s/xichand.log", xt_runtime_dir());
    if ((fd = open(path, O_RDONLY)) < 0)
        return 0;
    n = read(fd, buf, sizeof(buf) - 1);
    close(fd);
    if (n <= 0)
        return 0;
    buf[n] = '\0';
    return strstr(buf, needle) != NULL;
}

static xt_pipe_t opened, die;

static void holder(void *arg)
{
    xichan_client *cl;

    XT_OK(xichan_client_open(&cl, NULL));
    xt_signal(&opened);
    xt_await(&die, -1); /* until killed */
}

int main(void)
{
    xichan_client *cl[NSESS + 1], *extra;
    xichan_queue_id q;
    xichan_item it;
    xichan_stats st;
    double t0;
    pid_t pid;
    int err;

    xt_start_daemon("--sessions 8");
    xt_pipe_init(&opened);
    xt_pipe_init(&die);
    for (int i = 0; i < NSESS; i++)
        XT_OK(xichan_client_open(&cl[i], NULL));
    XT_OK(xichan_stats_get(cl[0], &st));
    XT_EQ_INT(st.max_sessions, NSESS);
    XT_EQ_INT(st.sessions, NSESS);

    /* The ninth: refused at once, with a message in the log. */
    t0 = xt_now();
    err = xichan_client_open(&extra, NULL);
    XT_ERR(err, XICHAN_ELIMIT);
    XT_CHECK(extra == NULL);
    XT_CHECK(xt_now() - t0 < 2.0);
    XT_CHECK(strstr(xichan_strerror(err), "sessions") != NULL);
    t0 = xt_now();
    while (!log_has("larger --sessions")) {
        XT_CHECK(xt_now() - t0 < 5.0);
        xt_sleep_ms(10);
    }
    XT_ERR(xichan_client_open(&extra, NULL), XICHAN_ELIMIT); /* and again */

    /* The open sessions still work. */
    XT_OK(xichan_queue_create(cl[0], NULL, &q));
    XT_OK(xichan_queue_bind(cl[7], q));
    XT_OK(xichan_queue_put(cl[7], q, 0, "x", 1, 0, XICHAN_NOWAIT));
    XT_OK(xichan_queue_get(cl[0], q, &it, XICHAN_NOWAIT));
    xichan_item_release(&it);

    /* One closes: the next open succeeds, and the table is full again. */
    xichan_client_close(cl[3]);
    XT_OK(xichan_client_open(&cl[3], NULL));
    XT_ERR(xichan_client_open(&extra, NULL), XICHAN_ELIMIT);

    /* A process holding a session dies: its slot comes back. */
    xichan_client_close(cl[5]);
    pid = xt_fork(holder, NULL);
    XT_EQ_INT(xt_await(&opened, 5000), 0);
    XT_ERR(xichan_client_open(&extra, NULL), XICHAN_ELIMIT);
    xt_kill9(pid);
    t0 = xt_now();
    while ((err = xichan_client_open(&cl[5], NULL)) == XICHAN_ELIMIT) {
        XT_CHECK(xt_now() - t0 < 5.0);
        xt_sleep_ms(5);
    }
    XT_OK(err);
    printf("ninth session refused with ELIMIT and a log line; a slot freed by close and by "
           "kill -9 (%.0f ms) is reused\n", (xt_now() - t0) * 1000);

    for (int i = 0; i < NSESS; i++)
        xichan_client_close(cl[i]);
    /* All closed: the table is empty again. */
    XT_OK(xichan_client_open(&extra, NULL));
    XT_OK(xichan_stats_get(extra, &st));
    XT_EQ_INT(st.sessions, 1);
    XT_EQ_INT(st.objects, 0); /* q went with its last binding */
    XT_EQ_INT(st.heap_used, 0);
    xichan_client_close(extra);
    return 0;
}
