/*
 * bridge.c -- what xichanctl shows of xichan-bridge: the state file the
 * bridge rewrites every second (<runtime-dir>/<ns>.bridge, its format at the
 * top of bridge/status.c), read line by line.  list and show mark the
 * spanned queues; list, show and stats print the bridge's state and, per
 * spanned queue, the items out and in.  A file whose writer is gone (its
 * pid no longer runs) is shown as a bridge that is not running.
 */
#include <errno.h>
#include <inttypes.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>

#include "ctl.h"

/* Strips the newline; returns the rest after "key ", or NULL. */
static const char *value_of(char *line, const char *key)
{
    size_t k = strlen(key);

    line[strcspn(line, "\n")] = '\0';
    return strncmp(line, key, k) == 0 && line[k] == ' ' ? line + k + 1 : NULL;
}

int ctl_bridge_load(struct ctl *c, struct ctl_bridge *b)
{
    char dir[400], ns[64], path[512], line[512];
    const char *v;
    FILE *f;

    memset(b, 0, sizeof(*b));
    if (xichan__runtime_dir(dir, sizeof(dir), c->co.runtime_dir) ||
        xichan__ns_name(ns, sizeof(ns), c->co.name))
        return 0;
    snprintf(path, sizeof(path), "%s/%s.bridge", dir, ns);
    if (!(f = fopen(path, "re")))
        return 0;
    if (!fgets(line, sizeof(line), f) || !value_of(line, "xichan-bridge-status") ||
        strcmp(value_of(line, "xichan-bridge-status"), "1") != 0) {
        fclose(f);
        return 0;
    }
    b->present = 1;
    while (fgets(line, sizeof(line), f)) {
        struct ctl_bridge_q *q;
        int used = 0;

        if ((v = value_of(line, "pid")))
            b->pid = atoi(v);
        else if ((v = value_of(line, "state")))
            snprintf(b->state, sizeof(b->state), "%s", v);
        else if ((v = value_of(line, "connected")))
            b->connected = atoi(v);
        else if ((v = value_of(line, "server")))
            snprintf(b->server, sizeof(b->server), "%s", v);
        else if ((v = value_of(line, "max_payload")))
            b->max_payload = strtoll(v, NULL, 10);
        else if ((v = value_of(line, "last_error")))
            snprintf(b->last_error, sizeof(b->last_error), "%s", v);
        else if ((v = value_of(line, "queue")) && b->nq < CTL_BRIDGE_MAXQ) {
            q = &b->q[b->nq];
            if (sscanf(v, "%" SCNd64 " %" SCNu64 " %" SCNu64 " %" SCNu64 " %" SCNu64 " %" SCNu64
                          " %" SCNu64 " %" SCNu64 " %d %d %95s %n",
                       &q->maxsize, &q->out, &q->in, &q->dups_out, &q->dups_in, &q->refused,
                       &q->unbound, &q->full_waits, &q->held, &q->pending_acks, q->stream,
                       &used) >= 11 && used > 0) {
                snprintf(q->name, sizeof(q->name), "%s", v + used);
                b->nq++;
            }
        }
    }
    fclose(f);
    /* A state file a dead bridge left says "running": ask the pid. */
    b->running = strcmp(b->state, "running") == 0 && b->pid > 0 &&
                 (kill(b->pid, 0) == 0 || errno == EPERM);
    return 1;
}

const struct ctl_bridge_q *ctl_bridge_find(const struct ctl_bridge *b, const char *name)
{
    for (int i = 0; b->running && i < b->nq; i++)
        if (strcmp(b->q[i].name, name) == 0)
            return &b->q[i];
    return NULL;
}

static void print_q_json(const struct ctl_bridge_q *q)
{
    printf("{\"name\":");
    ctl_json_str(stdout, q->name);
    printf(",\"stream\":");
    ctl_json_str(stdout, q->stream);
    printf(",\"maxsize\":%" PRId64 ",\"out\":%" PRIu64 ",\"in\":%" PRIu64 ",\"dups_out\":%" PRIu64
           ",\"dups_in\":%" PRIu64 ",\"refused\":%" PRIu64 ",\"unbound\":%" PRIu64
           ",\"full_waits\":%" PRIu64 ",\"held\":%d,\"pending_acks\":%d}",
           q->maxsize, q->out, q->in, q->dups_out, q->dups_in, q->refused, q->unbound,
           q->full_waits, q->held, q->pending_acks);
}

void ctl_bridge_print(struct ctl *c, const struct ctl_bridge *b)
{
    int pending = 0;

    if (!b->present)
        return;
    for (int i = 0; i < b->nq; i++)
        pending += b->q[i].pending_acks + b->q[i].held;
    if (c->json) {
        printf(",\"bridge\":{\"pid\":%d,\"running\":%s,\"connected\":%s,\"server\":", b->pid,
               b->running ? "true" : "false", b->running && b->connected ? "true" : "false");
        ctl_json_str(stdout, b->server);
        printf(",\"max_payload\":%" PRId64 ",\"pending_acks\":%d,\"last_error\":", b->max_payload,
               pending);
        ctl_json_str(stdout, b->last_error);
        printf(",\"queues\":[");
        for (int i = 0; i < b->nq; i++) {
            if (i)
                putchar(',');
            print_q_json(&b->q[i]);
        }
        printf("]}");
        return;
    }
    if (!b->running) {
        printf("bridge:    not running (pid %d, last state %s)\n", b->pid, b->state);
        return;
    }
    printf("bridge:    pid %d, %s %s, %d pending (held or unacknowledged), max payload %" PRId64
           "\n", b->pid, b->connected ? "connected to" : "reconnecting; last server", b->server,
           pending, b->max_payload);
    if (b->last_error[0])
        printf("           last error: %s\n", b->last_error);
    for (int i = 0; i < b->nq; i++)
        printf("           spans '%s' (stream %s): out %" PRIu64 ", in %" PRIu64
               ", duplicates dropped %" PRIu64 ", refused %" PRIu64 "\n",
               b->q[i].name, b->q[i].stream, b->q[i].out, b->q[i].in,
               b->q[i].dups_out + b->q[i].dups_in, b->q[i].refused);
}

void ctl_bridge_print_q(struct ctl *c, const struct ctl_bridge_q *q)
{
    if (c->json) {
        printf(",\"spanned\":");
        if (q)
            print_q_json(q);
        else
            printf("null");
        return;
    }
    if (q)
        printf("  spanned:       stream %s; out %" PRIu64 ", in %" PRIu64 ", %d held, %d "
               "unacknowledged\n", q->stream, q->out, q->in, q->held, q->pending_acks);
}
