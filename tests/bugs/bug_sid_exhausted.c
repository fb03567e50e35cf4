/*
 * bug_sid_exhausted.c -- KNOWN BUG (fails until fixed): once session ids
 * run out, every new client is refused as if the session table were full.
 *
 * Session ids come from hdr->next_sid and are never reused (28 bits:
 * XICHAN_SID_MAX = 268,435,455).  xichan__session_new returns XICHAN_ELIMIT
 * both when no slot is free and when the counter is past the maximum, and
 * the daemon answers both with "session table full (N sessions); restart
 * xichand with a larger --sessions" -- here with 2 of 1024 slots in use.
 * The counter survives daemon restarts (an adopted segment keeps it), so
 * raising --sessions on a restart after a crash changes nothing (the
 * adopted segment keeps its geometry too); only a clean stop, which
 * removes the segment, helps.  A namespace whose clients come and go
 * (short-lived Python processes: 1000 sessions/s) meets this after three
 * days.  The test jumps the counter to its last value instead.
 *
 * Passes once the refusal names the real cause (the log line does not ask
 * for a larger --sessions), or once sessions keep opening.
 */
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "internal.h"
#include "../integ/harness.h"

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
    buf[n > 0 ? n : 0] = '\0';
    return strstr(buf, needle) != NULL;
}

int main(void)
{
    xichan_client *a, *b, *c;
    xichan_stats st;
    int err;

    xt_start_daemon(NULL);
    XT_OK(xichan_client_open(&a, NULL));
    xa_store_relaxed(&a->shm->hdr->next_sid, XICHAN_SID_MAX); /* 2^28 sessions later */
    XT_OK(xichan_client_open(&b, NULL));
    XT_EQ_INT(xichan_client_session(b), XICHAN_SID_MAX);
    err = xichan_client_open(&c, NULL);
    if (err == 0) {
        printf("sessions keep opening after the last session id\n");
        xichan_client_close(c);
        return 0;
    }
    XT_ERR(err, XICHAN_ELIMIT);
    XT_OK(xichan_stats_get(a, &st));
    xt_sleep_ms(100);
    if (log_has("larger --sessions")) {
        printf("KNOWN BUG (sessions.c/server.c): session ids exhausted, and the daemon says "
               "\"session table full ... larger --sessions\" with %u of %u slots in use\n",
               st.sessions, st.max_sessions);
        return 1;
    }
    printf("refused, and the daemon names the cause\n");
    return 0;
}
