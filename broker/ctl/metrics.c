/*
 * metrics.c -- xichanctl metrics: the namespace in the Prometheus text
 * exposition format (version 0.0.4).
 *
 * One scrape is one xichan_stats_get and one xichan_list: each object's
 * samples come from one locked snapshot of it (inspect.c), the namespace's
 * from the segment header.  Counters are the per-object totals kept in the
 * segment (puts, gets, put_bytes).  Object ids are never reused, so an
 * object made again under an old name is a new series (its id label), and
 * no series ever goes back.
 *
 * Decision: no HTTP server.  node_exporter's textfile collector is the
 * ecosystem's way to publish what a command prints; `--output FILE` writes
 * FILE.tmp and renames it, as that collector asks, and a timer or cron job
 * runs it (xichanctl(1), METRICS).  A scrape needs a live daemon like every
 * attached command; without one, xichanctl exits 2 and the collector keeps
 * the last file -- its mtime metric shows the age.
 *
 * An object whose lock a stopped process holds (XICHAN_STATE_LOCKED) has
 * no items, bytes or counter samples in that scrape: they are unknown.
 *
 * Labels: namespace, kind, id, name.  A name is bytes from the segment:
 * label values escape '\', '"' and newline as the format says, and any byte
 * that is not part of valid UTF-8 becomes U+FFFD, so a scrape never fails
 * on a name.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "ctl.h"

/* A label value, escaped (\\, \", \n) and made valid UTF-8. */
static void label_value(FILE *f, const char *s, size_t len)
{
    size_t i = 0;

    while (i < len) {
        unsigned char ch = (unsigned char)s[i];
        size_t n = ch < 0x80 ? 1 : (ch >> 5) == 6 ? 2 : (ch >> 4) == 14 ? 3 : (ch >> 3) == 30 ? 4 : 0;

        if (n > 1 && i + n <= len && ctl_utf8_valid(s + i, n)) {
            fwrite(s + i, 1, n, f);
            i += n;
            continue;
        }
        if (n != 1)
            fputs("\xef\xbf\xbd", f); /* U+FFFD */
        else if (ch == '\\')
            fputs("\\\\", f);
        else if (ch == '"')
            fputs("\\\"", f);
        else if (ch == '\n')
            fputs("\\n", f);
        else
            fputc(ch, f);
        i++;
    }
}

struct fam {
    const char *name, *type, *help;
};

static void family(FILE *f, const struct fam *m)
{
    fprintf(f, "# HELP %s %s\n# TYPE %s %s\n", m->name, m->help, m->name, m->type);
}

static void ns_sample(FILE *f, const char *metric, const char *ns, double v)
{
    fprintf(f, "%s{namespace=\"", metric);
    label_value(f, ns, strlen(ns));
    fprintf(f, "\"} %.17g\n", v);
}

static void obj_sample(FILE *f, const char *metric, const char *ns, const xichan_obj_info *o,
                       uint64_t v)
{
    fprintf(f, "%s{namespace=\"", metric);
    label_value(f, ns, strlen(ns));
    fprintf(f, "\",kind=\"%s\",id=\"%llu\",name=\"", ctl_kind_name(o->kind),
            (unsigned long long)o->id);
    label_value(f, o->name, strnlen(o->name, sizeof(o->name)));
    fprintf(f, "\"} %llu\n", (unsigned long long)v);
}

/* Per-object families: which value of the record each one shows. */
enum { M_ITEMS, M_BYTES, M_MAXSIZE, M_BINDINGS, M_SESSIONS, M_PUTS, M_GETS, M_PUT_BYTES, M_NOBJ };

static const struct fam obj_fams[M_NOBJ] = {
    {"xichan_items", "gauge", "Items queued in the queue or channel."},
    {"xichan_items_bytes", "gauge", "Payload bytes queued in the queue or channel."},
    {"xichan_maxsize", "gauge", "Most items the queue holds; 0 is unbounded."},
    {"xichan_bindings", "gauge", "Bindings the object holds, of all sessions."},
    {"xichan_object_sessions", "gauge", "Sessions bound to or associated with the object."},
    {"xichan_puts_total", "counter", "Items put or sent since the object was created."},
    {"xichan_gets_total", "counter", "Items taken by a get or recv since the object was created."},
    {"xichan_put_bytes_total", "counter",
     "Payload bytes put or sent since the object was created."},
};

static uint64_t obj_value(const xichan_obj_info *o, int m)
{
    switch (m) {
    case M_ITEMS: return o->count;
    case M_BYTES: return o->bytes;
    case M_MAXSIZE: return o->maxsize > 0 ? (uint64_t)o->maxsize : 0;
    case M_BINDINGS: return o->nbound;
    case M_SESSIONS: return o->nsessions;
    case M_PUTS: return o->puts;
    case M_GETS: return o->gets;
    default: return o->put_bytes;
    }
}

static int write_metrics(struct ctl *c, FILE *f)
{
    static const struct fam up = {"xichan_up", "gauge",
                                  "1 while a daemon serves the namespace, else 0."},
                            start = {"xichan_daemon_start_time_seconds", "gauge",
                                     "When the serving daemon started, in seconds since the Epoch."},
                            seg = {"xichan_segment_bytes", "gauge", "Size of the shared segment."},
                            heap = {"xichan_heap_bytes", "gauge", "Size of the segment's heap."},
                            used = {"xichan_heap_used_bytes", "gauge",
                                    "Heap bytes in use, block headers included."},
                            objs = {"xichan_objects", "gauge", "Queues, channels and buffers."},
                            objmax = {"xichan_objects_max", "gauge", "Size of the object table."},
                            sess = {"xichan_sessions", "gauge", "Live sessions (xichanctl's own included)."},
                            sessmax = {"xichan_sessions_max", "gauge", "Size of the session table."};
    char ns[64];
    xichan_stats st;
    xichan_obj_info *v;
    int n, m, err;

    if (xichan__ns_name(ns, sizeof(ns), c->co.name))
        snprintf(ns, sizeof(ns), "%s", c->co.name ? c->co.name : "?");
    if ((err = xichan_stats_get(c->cl, &st)))
        return ctl_fail(c, err, "cannot read the segment's statistics");
    if ((n = xichan_list(c->cl, NULL, 0)) < 0)
        return ctl_fail(c, n, "cannot list objects");
    if (!(v = calloc((size_t)n + 1, sizeof(*v))))
        return ctl_fail(c, XICHAN_ENOMEM, "metrics");
    if ((m = xichan_list(c->cl, v, (size_t)n)) < 0) {
        free(v);
        return ctl_fail(c, m, "cannot list objects");
    }
    if (m > n)
        m = n; /* created in between: they show at the next scrape */

    family(f, &up);
    ns_sample(f, up.name, ns, st.daemon_pid ? 1 : 0);
    if (st.daemon_start_ns) {
        family(f, &start);
        ns_sample(f, start.name, ns, (double)st.daemon_start_ns / 1e9);
    }
    family(f, &seg);
    ns_sample(f, seg.name, ns, (double)st.segment_size);
    family(f, &heap);
    ns_sample(f, heap.name, ns, (double)st.heap_size);
    family(f, &used);
    ns_sample(f, used.name, ns, (double)st.heap_used);
    family(f, &objs);
    ns_sample(f, objs.name, ns, st.objects);
    family(f, &objmax);
    ns_sample(f, objmax.name, ns, st.max_objects);
    family(f, &sess);
    ns_sample(f, sess.name, ns, st.sessions);
    family(f, &sessmax);
    ns_sample(f, sessmax.name, ns, st.max_sessions);
    for (int k = 0; k < M_NOBJ; k++) {
        family(f, &obj_fams[k]);
        for (int i = 0; i < m; i++) {
            if (v[i].kind == XICHAN_KIND_BUFFER)
                continue; /* no items, no traffic */
            if (k == M_MAXSIZE && v[i].kind != XICHAN_KIND_QUEUE)
                continue;
            /* A stopped process holds its lock: items and counters unknown
             * this time; a missing sample says so, a 0 would lie. */
            if (v[i].state == XICHAN_STATE_LOCKED && k != M_MAXSIZE && k != M_BINDINGS &&
                k != M_SESSIONS)
                continue;
            obj_sample(f, obj_fams[k].name, ns, &v[i], obj_value(&v[i], k));
        }
    }
    free(v);
    return CTL_OK;
}

int ctl_check_metrics(struct ctl *c)
{
    if (c->json)
        return ctl_usage(c, "metrics prints the Prometheus text format; --json does not apply "
                            "(xichanctl list --json and stats --json are the JSON views)");
    return CTL_OK;
}

int ctl_cmd_metrics(struct ctl *c)
{
    char tmp[4200];
    const char *path = c->a.output;
    FILE *f;
    int rc, bad;

    if (!path)
        return write_metrics(c, stdout);
    /* The textfile collector reads *.prom: write beside it, then rename,
     * so that it never reads half a file. */
    if (snprintf(tmp, sizeof(tmp), "%s.%d.tmp", path, (int)getpid()) >= (int)sizeof(tmp))
        return ctl_usage(c, "--output: path too long");
    if (!(f = fopen(tmp, "wx")))
        return ctl_fail(c, 0, "cannot create %s: %s", tmp, strerror(errno));
    rc = write_metrics(c, f);
    bad = ferror(f);
    if (fclose(f) != 0)
        bad = 1;
    if (rc == CTL_OK && bad)
        rc = ctl_fail(c, 0, "cannot write %s: %s", tmp, strerror(errno));
    if (rc == CTL_OK && rename(tmp, path) != 0)
        rc = ctl_fail(c, 0, "cannot rename %s to %s: %s", tmp, path, strerror(errno));
    if (rc != CTL_OK)
        unlink(tmp);
    return rc;
}
