/*
 * std_fds.c -- closed standard descriptors are never taken by xichan's
 * own sockets or files.
 *
 * A process started with stdin or stdout closed gets the next file it
 * opens as fd 0 or 1.  If that were the daemon connection, `xichanctl put
 * jobs <&-` would read its value from the daemon (and never return), and a
 * C client's printf with stdout closed would write into the connection.
 *   - libxichan: a client opened with 0, 1 and 2 closed has its socket
 *     above 2, and works;
 *   - xichanctl with stdin closed reads an empty value, with stdout closed
 *     it still ends, each within the hang bound;
 *   - xichand with all three closed starts and serves.
 */
#include <fcntl.h>
#include <unistd.h>

#include "harness.h"
#include "internal.h"

static void closed_stdio_client(void *arg)
{
    xichan_client *cl;
    xichan_queue_id q;
    xichan_item it;
    int err;

    (void)arg;
    close(0);
    close(1);
    close(2);
    err = xichan_client_open(&cl, NULL);
    if (err)
        _exit(10);
    if (cl->fd <= 2)
        _exit(11); /* the connection took a standard descriptor */
    if (xichan_queue_open(cl, "jobs", &q) ||
        xichan_queue_put(cl, q, 0, "c", 1, 0, XICHAN_NOWAIT) ||
        xichan_queue_get(cl, q, &it, XICHAN_NOWAIT))
        _exit(12);
    xichan_item_release(&it);
    xichan_client_close(cl);
    _exit(0);
}

int main(void)
{
    xichan_queue_opts qo = {.name = "jobs"};
    xichan_client *cl;
    xichan_queue_id q;
    char out[4096];

    xt_start_daemon(NULL);
    XT_OK(xichan_client_open(&cl, NULL));
    XT_OK(xichan_queue_create(cl, &qo, &q));

    XT_EQ_INT(xt_wait(xt_fork(closed_stdio_client, NULL), 5000), 0);

    XT_EQ_INT(xt_sh(out, sizeof(out), "{ timeout 5 xichanctl put --nowait jobs <&- ; }"), 0);
    XT_EQ_INT(xichan_queue_count(cl, q), 1);
    XT_EQ_INT(xt_sh(out, sizeof(out), "{ timeout 5 xichanctl list >&- ; }"), 0);
    XT_EQ_INT(xt_sh(out, sizeof(out), "{ timeout 5 xichanctl get jobs >&- 2>&- ; }"), 0);
    XT_EQ_INT(xichan_queue_count(cl, q), 0);

    /* A daemon of its own, with every standard descriptor closed; stopped
     * with its namespace discarded (a stop alone keeps the segment). */
    XT_EQ_INT(xt_sh(out, sizeof(out),
                    "{ timeout 5 xichand --name %s-b --runtime-dir %s --size 16M --daemon "
                    "<&- >&- 2>&- ; } && timeout 5 xichanctl --name %s-b --runtime-dir %s stats "
                    ">/dev/null && timeout 15 xichanctl --name %s-b --runtime-dir %s stop "
                    "--discard >/dev/null",
                    xt_name(), xt_runtime_dir(), xt_name(), xt_runtime_dir(), xt_name(),
                    xt_runtime_dir()), 0);
    xichan_client_close(cl);
    printf("std_fds: ok\n");
    return 0;
}
