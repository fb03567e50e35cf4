/*
 * status.c -- the bridge's state, for xichanctl and people: a small text
 * file <runtime-dir>/<ns>.bridge, rewritten every second (and at exit) by
 * write-then-rename, so a reader sees a whole old or a whole new file.  One
 * "key value" per line (xichanctl reads it with no parser of its own to
 * trust; `xichanctl --json` gives it as JSON):
 *
 *   xichan-bridge-status 1
 *   pid 123
 *   state running                       (or stopped)
 *   connected 1
 *   server nats://127.0.0.1:4222
 *   max_payload 1048576
 *   updated_ns 1796562127772241021
 *   last_error <text to the end of the line>
 *   queue <maxsize> <out> <in> <dups_out> <dups_in> <refused> <unbound>
 *         <full_waits> <held> <pending_acks> <stream> <name to the end of the line>
 *
 * (the queue line is one line).  Control characters in text become '?'.
 */
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "bridge.h"

static void text(FILE *f, const char *s)
{
    for (; *s; s++)
        fputc((unsigned char)*s < 0x20 || *s == 0x7f ? '?' : *s, f);
    fputc('\n', f);
}

void status_write(struct bridge *br, int final)
{
    char tmp[600], url[256] = "", err[256];
    struct timespec now;
    FILE *f;

    snprintf(tmp, sizeof(tmp), "%s.tmp", br->status_path);
    if (!(f = fopen(tmp, "w")))
        return;
    if (br->nc && atomic_load(&br->connected) &&
        natsConnection_GetConnectedUrl(br->nc, url, sizeof(url)) != NATS_OK)
        url[0] = '\0';
    pthread_mutex_lock(&br->err_lock);
    memcpy(err, br->last_error, sizeof(err));
    pthread_mutex_unlock(&br->err_lock);
    clock_gettime(CLOCK_REALTIME, &now);
    fprintf(f, "xichan-bridge-status 1\npid %d\nstate %s\nconnected %d\nserver ", (int)getpid(),
            final ? "stopped" : "running", final ? 0 : atomic_load(&br->connected));
    text(f, url[0] ? url : "-");
    fprintf(f, "max_payload %lld\nupdated_ns %lld\nlast_error ", (long long)br->max_payload,
            (long long)now.tv_sec * 1000000000ll + now.tv_nsec);
    text(f, err);
    for (int i = 0; i < br->nspans; i++) {
        struct span *sp = &br->spans[i];
        fprintf(f, "queue %lld %llu %llu %llu %llu %llu %llu %llu %d %d %s ",
                (long long)sp->maxsize, (unsigned long long)atomic_load(&sp->out),
                (unsigned long long)atomic_load(&sp->in),
                (unsigned long long)atomic_load(&sp->dups_out),
                (unsigned long long)atomic_load(&sp->dups_in),
                (unsigned long long)atomic_load(&sp->refused),
                (unsigned long long)atomic_load(&sp->unbound),
                (unsigned long long)atomic_load(&sp->full_waits), atomic_load(&sp->held),
                atomic_load(&sp->pending_acks), sp->stream[0] ? sp->stream : "-");
        text(f, sp->name);
    }
    if (fclose(f) == 0)
        rename(tmp, br->status_path);
    else
        unlink(tmp);
}
