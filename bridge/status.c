/*
 * status.c -- the bridge's state, for xichanctl and people: a small JSON
 * file <runtime-dir>/<ns>.bridge, rewritten every second (and at exit) by
 * write-then-rename, so a reader sees a whole old or a whole new file.
 *
 *   {"pid":123,"state":"running","connected":true,"server":"nats://...",
 *    "max_payload":1048576,"last_error":"...","updated_ns":...,
 *    "queues":[{"name":"jobs","stream":"XQ_jobs","maxsize":0,"out":5,"in":3,
 *               "dups_out":0,"dups_in":0,"refused":0,"unbound":0,"full_waits":0,
 *               "held":0,"pending_acks":0}]}
 *
 * Names are escaped for JSON (quote, backslash, control characters).
 */
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "bridge.h"

static void json_str(FILE *f, const char *s)
{
    fputc('"', f);
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (c == '"' || c == '\\')
            fprintf(f, "\\%c", c);
        else if (c < 0x20 || c == 0x7f)
            fprintf(f, "\\u%04x", c);
        else
            fputc(c, f);
    }
    fputc('"', f);
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
    fprintf(f, "{\"pid\":%d,\"state\":\"%s\",\"connected\":%s,\"server\":", (int)getpid(),
            final ? "stopped" : "running", atomic_load(&br->connected) ? "true" : "false");
    json_str(f, url);
    fprintf(f, ",\"max_payload\":%lld,\"last_error\":", (long long)br->max_payload);
    json_str(f, err);
    fprintf(f, ",\"updated_ns\":%lld,\"queues\":[",
            (long long)now.tv_sec * 1000000000ll + now.tv_nsec);
    for (int i = 0; i < br->nspans; i++) {
        struct span *sp = &br->spans[i];
        fprintf(f, "%s{\"name\":", i ? "," : "");
        json_str(f, sp->name);
        fprintf(f, ",\"stream\":");
        json_str(f, sp->stream);
        fprintf(f,
                ",\"maxsize\":%lld,\"out\":%llu,\"in\":%llu,\"dups_out\":%llu,\"dups_in\":%llu,"
                "\"refused\":%llu,\"unbound\":%llu,\"full_waits\":%llu,\"held\":%d,"
                "\"pending_acks\":%d}",
                (long long)sp->maxsize, (unsigned long long)atomic_load(&sp->out),
                (unsigned long long)atomic_load(&sp->in),
                (unsigned long long)atomic_load(&sp->dups_out),
                (unsigned long long)atomic_load(&sp->dups_in),
                (unsigned long long)atomic_load(&sp->refused),
                (unsigned long long)atomic_load(&sp->unbound),
                (unsigned long long)atomic_load(&sp->full_waits), atomic_load(&sp->held),
                atomic_load(&sp->pending_acks));
    }
    fprintf(f, "]}\n");
    if (fclose(f) == 0)
        rename(tmp, br->status_path);
    else
        unlink(tmp);
}
