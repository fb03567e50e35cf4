/*
 * inspect.c -- xichanctl list, show, stats, sessions and watch: read-only
 * views of a namespace.
 *
 * Everything is read through the library's inspection calls: objects as
 * locked snapshots (xichan_list, xichan_info), so each row is consistent,
 * the segment's figures through xichan_stats_get and the session table
 * through xichan_sessions.  Rates (watch, stats --interval) are the
 * differences of the per-object counters between two snapshots.
 * An object whose lock a stopped process holds is shown as "locked" with
 * that pid, after the short bound (xichan.h, XICHAN_LOCK_GRACE_MS), never
 * waited for.
 */
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "ctl.h"

/* The namespace's xichan-bridge, if any (bridge.c), read once per command. */
static struct ctl_bridge bridge;

static const struct ctl_bridge_q *spanned(const xichan_obj_info *o)
{
    return o->kind == XICHAN_KIND_QUEUE && o->name[0] ? ctl_bridge_find(&bridge, o->name) : NULL;
}

static void print_sessions(struct ctl *c, const xichan_obj_info *o)
{
    uint32_t sids[64];
    int n = xichan_obj_sessions(c->cl, o->kind, o->id, sids, 64);

    for (int i = 0; i < n && i < 64; i++)
        printf("%s%u", i ? "," : "", sids[i]);
    if (n > 64 && !c->json)
        printf(",...");
}

/* ------------------------------------------------------------ rates */

/*
 * A list snapshot, and the rates between two of them: the put/get counters
 * an object keeps (puts, gets, put_bytes) differenced over the monotonic
 * time between the snapshots.  An object absent from the earlier one, or
 * whose counters went back (destroyed and made again), has no rate yet.
 */
struct snap {
    xichan_obj_info *v;   /* oldest first, as xichan_list gives them */
    xichan_obj_info *by;  /* the same records by (kind, id), for lookups */
    int n;
    int64_t t;            /* xichan_now_ns() when taken */
};

struct rate {
    int have;
    double puts, gets, put_bytes; /* per second */
};

static int by_kind_id(const void *a, const void *b)
{
    const xichan_obj_info *x = a, *y = b;

    if (x->kind != y->kind)
        return x->kind < y->kind ? -1 : 1;
    return x->id < y->id ? -1 : x->id > y->id;
}

static void snap_free(struct snap *s)
{
    free(s->v);
    free(s->by);
    memset(s, 0, sizeof(*s));
}

static int snap_take(struct ctl *c, struct snap *s)
{
    int n = xichan_list(c->cl, NULL, 0), m;

    memset(s, 0, sizeof(*s));
    if (n < 0)
        return ctl_fail(c, n, "cannot list objects");
    s->v = calloc((size_t)n + 1, sizeof(*s->v));
    s->by = calloc((size_t)n + 1, sizeof(*s->by));
    if (!s->v || !s->by) {
        snap_free(s);
        return ctl_fail(c, XICHAN_ENOMEM, "list");
    }
    s->t = xichan_now_ns();
    if ((m = xichan_list(c->cl, s->v, (size_t)n)) < 0) {
        snap_free(s);
        return ctl_fail(c, m, "cannot list objects");
    }
    s->n = m > n ? n : m; /* created in between: what we have room for */
    memcpy(s->by, s->v, sizeof(*s->v) * (size_t)s->n);
    qsort(s->by, (size_t)s->n, sizeof(*s->by), by_kind_id);
    return CTL_OK;
}

static struct rate rate_of(const struct snap *prev, const struct snap *cur,
                           const xichan_obj_info *o)
{
    struct rate r = {0};
    const xichan_obj_info *p;
    double dt;

    if (!prev || !prev->n || cur->t <= prev->t ||
        !(p = bsearch(o, prev->by, (size_t)prev->n, sizeof(*p), by_kind_id)) ||
        o->puts < p->puts || o->gets < p->gets || o->put_bytes < p->put_bytes)
        return r;
    dt = (double)(cur->t - prev->t) / 1e9;
    r.have = 1;
    r.puts = (double)(o->puts - p->puts) / dt;
    r.gets = (double)(o->gets - p->gets) / dt;
    r.put_bytes = (double)(o->put_bytes - p->put_bytes) / dt;
    return r;
}

/* 1234.5 as "1234.5", 12345678 as "12.3M": a rate in a narrow column. */
static const char *rate_str(double v, char *buf, size_t cap)
{
    if (v < 10000)
        snprintf(buf, cap, "%.1f", v);
    else if (v < 1e7)
        snprintf(buf, cap, "%.1fk", v / 1e3);
    else
        snprintf(buf, cap, "%.1fM", v / 1e6);
    return buf;
}

/* --------------------------------------------------------------- list */

static void print_json_obj(struct ctl *c, const xichan_obj_info *o, const struct rate *r)
{
    xichan_chan_info ci;

    printf("{\"kind\":\"%s\",\"id\":%llu,\"name\":", ctl_kind_name(o->kind),
           (unsigned long long)o->id);
    if (o->name[0])
        ctl_json_str(stdout, o->name);
    else
        printf("null");
    printf(",\"state\":\"%s\",\"count\":%llu,\"maxsize\":%lld,\"bytes\":%llu,\"bound\":%u,"
           "\"unbounditems\":\"%s\",\"sessions\":[",
           ctl_state_name(o->state), (unsigned long long)o->count, (long long)o->maxsize,
           (unsigned long long)o->bytes, o->nbound, ctl_op_name(o->unboundop));
    print_sessions(c, o);
    printf("]");
    if (o->state == XICHAN_STATE_LOCKED)
        printf(",\"locked_by\":%u", o->locked_by);
    if (o->kind == XICHAN_KIND_QUEUE)
        ctl_bridge_print_q(c, spanned(o));
    if (o->kind != XICHAN_KIND_BUFFER)
        printf(",\"puts\":%llu,\"gets\":%llu,\"put_bytes\":%llu", (unsigned long long)o->puts,
               (unsigned long long)o->gets, (unsigned long long)o->put_bytes);
    if (r && r->have)
        printf(",\"puts_per_s\":%.3f,\"gets_per_s\":%.3f,\"put_bytes_per_s\":%.3f", r->puts,
               r->gets, r->put_bytes);
    if (o->kind == XICHAN_KIND_CHANNEL && o->state != XICHAN_STATE_CLOSED &&
        xichan_chan_info_get(c->cl, (xichan_chan_id){o->id}, &ci) == 0)
        printf(",\"send_sessions\":%u,\"recv_sessions\":%u,\"send_released\":%u,"
               "\"recv_released\":%u",
               ci.num_send, ci.num_recv, ci.num_send_released, ci.num_recv_released);
    printf("}");
}

static void print_row(struct ctl *c, const xichan_obj_info *o, int namew, const struct rate *r)
{
    char maxsize[24], name[4 * 64 + 8], a[16], b[16], d[16];

    if (o->kind == XICHAN_KIND_QUEUE && o->maxsize > 0)
        snprintf(maxsize, sizeof(maxsize), "%lld", (long long)o->maxsize);
    else
        snprintf(maxsize, sizeof(maxsize), "-");
    printf("%-8s %6llu  %-*s %-8s %8llu %8s %10llu %6u  ", ctl_kind_name(o->kind),
           (unsigned long long)o->id, namew, o->name[0] ? ctl_esc(o->name, name, sizeof(name)) : "-",
           ctl_state_name(o->state),
           (unsigned long long)o->count, maxsize, (unsigned long long)o->bytes, o->nbound);
    if (r) { /* watch: the rates instead of the sessions */
        printf("%8s %8s %9s", r->have ? rate_str(r->puts, a, sizeof(a)) : "-",
               r->have ? rate_str(r->gets, b, sizeof(b)) : "-",
               r->have ? rate_str(r->put_bytes, d, sizeof(d)) : "-");
    } else {
        print_sessions(c, o);
    }
    if (o->state == XICHAN_STATE_LOCKED)
        printf("  (locked by pid %u: counts unknown)", o->locked_by);
    printf("%s\n", spanned(o) ? "  [spanned]" : "");
}

/* The NAME column is as wide as the longest name (16 at least), so that a
 * long name never pushes the rest of its row out of line. */
static int name_width(const xichan_obj_info *v, int m)
{
    char name[4 * 64 + 8];
    int w = 16;

    for (int i = 0; i < m; i++) {
        int len = (int)strlen(ctl_esc(v[i].name, name, sizeof(name)));
        if (len > w)
            w = len;
    }
    return w;
}

/*
 * The object list as a table or as "objects":[...] (no braces around).
 * With prev (watch, from the second refresh on), each object's put/get
 * rates since prev; the table then shows them instead of the sessions.
 */
static void print_snap(struct ctl *c, const struct snap *cur, const struct snap *prev)
{
    const xichan_obj_info *v = cur->v;
    int m = cur->n;

    if (c->json) {
        printf("\"objects\":[");
        for (int i = 0; i < m; i++) {
            struct rate r = rate_of(prev, cur, &v[i]);
            if (i)
                putchar(',');
            print_json_obj(c, &v[i], &r);
        }
        printf("]");
    } else {
        int namew = name_width(v, m);

        printf("%-8s %6s  %-*s %-8s %8s %8s %10s %6s  ", "KIND", "ID", namew, "NAME", "STATE",
               "COUNT", "MAXSIZE", "BYTES", "BOUND");
        if (prev)
            printf("%8s %8s %9s\n", "PUT/s", "GET/s", "BYTES/s");
        else
            printf("SESSIONS\n");
        for (int i = 0; i < m; i++) {
            struct rate r = rate_of(prev, cur, &v[i]);
            print_row(c, &v[i], namew, prev ? &r : NULL);
        }
        if (m == 0)
            printf("(no queues or channels)\n");
    }
    ctl_bridge_print(c, &bridge);
}

static int print_list(struct ctl *c)
{
    struct snap s;
    int rc = snap_take(c, &s);

    if (rc != CTL_OK)
        return rc;
    ctl_bridge_load(c, &bridge);
    print_snap(c, &s, NULL);
    snap_free(&s);
    return CTL_OK;
}

int ctl_cmd_list(struct ctl *c)
{
    int rc;

    if (c->json)
        putchar('{');
    rc = print_list(c);
    if (c->json && rc == CTL_OK)
        printf("}\n");
    return rc;
}

/* --------------------------------------------------------------- show */

static void show_one(struct ctl *c, const xichan_obj_info *o)
{
    xichan_chan_info ci;
    char name[4 * 64 + 8];

    printf("%s %llu\n", ctl_kind_name(o->kind), (unsigned long long)o->id);
    printf("  name:          %s\n", o->name[0] ? ctl_esc(o->name, name, sizeof(name)) : "-");
    if (o->state == XICHAN_STATE_LOCKED)
        printf("  state:         locked by pid %u, which is stopped or slow (counts unknown)\n",
               o->locked_by);
    else
        printf("  state:         %s\n", ctl_state_name(o->state));
    printf("  items:         %llu (%llu bytes)\n", (unsigned long long)o->count,
           (unsigned long long)o->bytes);
    if (o->kind == XICHAN_KIND_QUEUE)
        printf("  maxsize:       %lld%s\n", (long long)o->maxsize,
               o->maxsize > 0 ? "" : " (unbounded)");
    printf("  unbounditems:  %s\n", ctl_op_name(o->unboundop));
    printf("  bindings:      %u\n", o->nbound);
    if (o->kind != XICHAN_KIND_BUFFER)
        printf("  traffic:       %llu puts, %llu gets, %llu bytes put (since created)\n",
               (unsigned long long)o->puts, (unsigned long long)o->gets,
               (unsigned long long)o->put_bytes);
    printf("  sessions:      ");
    print_sessions(c, o);
    printf("\n");
    if (o->kind == XICHAN_KIND_QUEUE)
        ctl_bridge_print_q(c, spanned(o));
    if (o->kind == XICHAN_KIND_CHANNEL && o->state != XICHAN_STATE_CLOSED &&
        xichan_chan_info_get(c->cl, (xichan_chan_id){o->id}, &ci) == 0)
        printf("  send end:      %u associated, %u released\n"
               "  recv end:      %u associated, %u released\n",
               ci.num_send, ci.num_send_released, ci.num_recv, ci.num_recv_released);
}

int ctl_cmd_show(struct ctl *c)
{
    struct ctl_ref refs[2];
    const char *arg = c->a.pos[0];
    int n = ctl_find(c, arg, c->a.kind, refs, 2);

    if (n < 0)
        return ctl_fail(c, n, "cannot look up '%s'", arg);
    if (n == 0) {
        fprintf(stderr, "xichanctl show: no queue or channel '%s' (see: xichanctl list)\n", arg);
        return CTL_ENOTFOUND;
    }
    ctl_bridge_load(c, &bridge);
    if (c->json)
        printf("{\"objects\":[");
    for (int i = 0; i < n && i < 2; i++) {
        if (c->json) {
            if (i)
                putchar(',');
            print_json_obj(c, &refs[i].info, NULL);
        } else {
            show_one(c, &refs[i].info);
        }
    }
    if (c->json)
        printf("]}\n");
    return CTL_OK;
}

/* -------------------------------------------------------------- stats */

static uint64_t realtime_ns(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_REALTIME, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* The namespace's traffic: the live objects' counters summed, and their
 * rates since prev when there is one. */
struct traffic {
    uint64_t puts, gets, put_bytes;
    struct rate r;
};

static struct traffic traffic_of(const struct snap *cur, const struct snap *prev)
{
    struct traffic t = {0};
    int rated = 0;

    for (int i = 0; i < cur->n; i++) {
        const xichan_obj_info *o = &cur->v[i];
        struct rate r = rate_of(prev, cur, o);

        t.puts += o->puts;
        t.gets += o->gets;
        t.put_bytes += o->put_bytes;
        if (r.have) {
            t.r.puts += r.puts;
            t.r.gets += r.gets;
            t.r.put_bytes += r.put_bytes;
            rated = 1;
        }
    }
    t.r.have = rated || (prev && cur->t > prev->t);
    return t;
}

/* The stats as text lines or as "stats":{...}; the traffic from cur (and
 * its rates since prev, if any). */
static int print_stats(struct ctl *c, const struct snap *cur, const struct snap *prev)
{
    char t1[40], t2[40], up[40], a[16], b[16], d[16];
    xichan_stats st;
    uint64_t now = realtime_ns();
    struct traffic tr = traffic_of(cur, prev);
    int err = xichan_stats_get(c->cl, &st);
    double uptime;

    if (err)
        return ctl_fail(c, err, "cannot read the segment's statistics");
    uptime = st.daemon_start_ns && now > st.daemon_start_ns
                 ? (double)(now - st.daemon_start_ns) / 1e9
                 : 0;
    if (c->json) {
        printf("\"stats\":{\"segment\":");
        ctl_json_str(stdout, st.segment_name);
        printf(",\"segment_size\":%llu,\"heap_size\":%llu,\"heap_used\":%llu,\"heap_free\":%llu,"
               "\"objects\":%u,\"max_objects\":%u,\"sessions\":%u,\"max_sessions\":%u,"
               "\"puts\":%llu,\"gets\":%llu,\"put_bytes\":%llu,",
               (unsigned long long)st.segment_size, (unsigned long long)st.heap_size,
               (unsigned long long)st.heap_used, (unsigned long long)st.heap_free, st.objects,
               st.max_objects, st.sessions, st.max_sessions, (unsigned long long)tr.puts,
               (unsigned long long)tr.gets, (unsigned long long)tr.put_bytes);
        if (tr.r.have)
            printf("\"puts_per_s\":%.3f,\"gets_per_s\":%.3f,\"put_bytes_per_s\":%.3f,", tr.r.puts,
                   tr.r.gets, tr.r.put_bytes);
        printf("\"daemon_pid\":%u,\"daemon_started\":", st.daemon_pid);
        if (st.daemon_start_ns)
            printf("\"%s\",\"uptime_s\":%.3f", ctl_time_str(st.daemon_start_ns, 1, t1, sizeof(t1)),
                   uptime);
        else
            printf("null,\"uptime_s\":null");
        printf(",\"segment_created\":\"%s\"}", ctl_time_str(st.created_ns, 1, t2, sizeof(t2)));
        if (ctl_bridge_load(c, &bridge))
            ctl_bridge_print(c, &bridge);
        return CTL_OK;
    }
    printf("segment:   %s (%llu bytes), created %s\n", st.segment_name,
           (unsigned long long)st.segment_size, ctl_time_str(st.created_ns, 0, t2, sizeof(t2)));
    printf("heap:      %llu used, %llu free of %llu bytes\n", (unsigned long long)st.heap_used,
           (unsigned long long)st.heap_free, (unsigned long long)st.heap_size);
    printf("objects:   %u of %u\n", st.objects, st.max_objects);
    printf("sessions:  %u of %u (this one included)\n", st.sessions, st.max_sessions);
    printf("traffic:   %llu puts, %llu gets, %llu bytes put (the live objects, since each was "
           "created)\n",
           (unsigned long long)tr.puts, (unsigned long long)tr.gets,
           (unsigned long long)tr.put_bytes);
    if (tr.r.have)
        printf("rates:     %s puts/s, %s gets/s, %s bytes/s put (over the last %.2f s)\n",
               rate_str(tr.r.puts, a, sizeof(a)), rate_str(tr.r.gets, b, sizeof(b)),
               rate_str(tr.r.put_bytes, d, sizeof(d)), (double)(cur->t - prev->t) / 1e9);
    if (st.daemon_pid)
        printf("daemon:    pid %u, up %s (since %s)\n", st.daemon_pid,
               ctl_duration_str(uptime, up, sizeof(up)),
               ctl_time_str(st.daemon_start_ns, 0, t1, sizeof(t1)));
    else
        printf("daemon:    none (clients keep working; a new xichand adopts the segment)\n");
    if (ctl_bridge_load(c, &bridge))
        ctl_bridge_print(c, &bridge);
    return CTL_OK;
}

/* Sleeps s seconds; 0 when done, -1 when a signal asked us to stop. */
static int pause_for(double s)
{
    struct timespec ts = {(time_t)s, (long)((s - (double)(time_t)s) * 1e9)};

    while (!ctl_interrupted && nanosleep(&ts, &ts) != 0)
        ;
    return ctl_interrupted ? -1 : 0;
}

/* stats [--interval S]: with S, two snapshots S apart, and the rates. */
int ctl_cmd_stats(struct ctl *c)
{
    struct snap prev = {0}, cur;
    int rc, rated = c->a.interval_given;

    if (rated) {
        ctl_catch_signals(c);
        if ((rc = snap_take(c, &prev)) != CTL_OK)
            return rc;
        if (pause_for(c->a.interval) < 0) {
            snap_free(&prev);
            return ctl_fail(c, XICHAN_EINTR, "stats");
        }
    }
    if ((rc = snap_take(c, &cur)) != CTL_OK) {
        snap_free(&prev);
        return rc;
    }
    if (c->json)
        putchar('{');
    rc = print_stats(c, &cur, rated ? &prev : NULL);
    if (c->json && rc == CTL_OK)
        printf("}\n");
    snap_free(&prev);
    snap_free(&cur);
    return rc;
}

/* ----------------------------------------------------------- sessions */

int ctl_cmd_sessions(struct ctl *c)
{
    xichan_session_info *rows = NULL;
    char t[40], objs[16];
    int n = xichan_sessions(c->cl, NULL, 0), m;

    if (n < 0)
        return ctl_fail(c, n, "cannot read the sessions");
    if (!(rows = calloc((size_t)n + 1, sizeof(*rows))))
        return ctl_fail(c, XICHAN_ENOMEM, "sessions");
    if ((m = xichan_sessions(c->cl, rows, (size_t)n + 1)) < 0) {
        free(rows);
        return ctl_fail(c, m, "cannot read the sessions");
    }
    if (m > n + 1)
        m = n + 1; /* attached in between: what we have room for */
    if (c->json)
        printf("{\"sessions\":[");
    else
        printf("%8s %8s  %-8s %-9s %-19s %7s\n", "SID", "PID", "KIND", "STATE", "STARTED",
               "OBJECTS");
    for (int i = 0; i < m; i++) {
        const xichan_session_info *s = &rows[i];
        const char *state = s->state == XICHAN_SESSION_LIVE ? "live" : "ending";
        int self = s->sid == xichan_client_session(c->cl);

        if (c->json) {
            printf("%s{\"sid\":%u,\"pid\":%u,\"uid\":%u,\"kind\":", i ? "," : "", s->sid, s->pid,
                   s->uid);
            ctl_json_str(stdout, s->kind);
            printf(",\"state\":\"%s\",\"started\":\"%s\",\"objects\":", state,
                   ctl_time_str(s->start_ns, 1, t, sizeof(t)));
            if (s->nobjects >= 0)
                printf("%d", s->nobjects);
            else
                printf("null");
            printf(",\"self\":%s}", self ? "true" : "false");
            continue;
        }
        if (s->nobjects >= 0)
            snprintf(objs, sizeof(objs), "%d", s->nobjects);
        else
            snprintf(objs, sizeof(objs), "?");
        printf("%8u %8u  %-8s %-9s %-19s %7s%s\n", s->sid, s->pid, s->kind, state,
               ctl_time_str(s->start_ns, 0, t, sizeof(t)), objs, self ? "  (this xichanctl)" : "");
    }
    if (c->json)
        printf("]}\n");
    free(rows);
    return CTL_OK;
}

/*
 * A display refresh, not a blocking operation: polling at the user's
 * interval is the point.  On a terminal each refresh redraws the screen;
 * otherwise (a pipe, a test) refreshes follow each other, and with --json
 * each is one line: {"time":...,"stats":{...},"objects":[...]}.
 */
int ctl_cmd_watch(struct ctl *c)
{
    int tty = isatty(STDOUT_FILENO) && !c->json, rc = CTL_OK;
    struct snap prev = {0}, cur = {0};
    char t[40];

    ctl_catch_signals(c);
    for (long i = 0; !c->a.count || i < c->a.count; i++) {
        if (i && pause_for(c->a.interval) < 0)
            break;
        snap_free(&prev);
        prev = cur;
        if ((rc = snap_take(c, &cur)) != CTL_OK)
            break;
        if (tty)
            printf("\033[H\033[2J");
        if (c->json) {
            printf("{\"time\":\"%s\",", ctl_time_str(realtime_ns(), 1, t, sizeof(t)));
            if ((rc = print_stats(c, &cur, i ? &prev : NULL)) != CTL_OK)
                break;
            putchar(',');
            print_snap(c, &cur, i ? &prev : NULL);
            printf("}\n");
        } else {
            printf("xichanctl watch: every %gs%s   %s\n\n", c->a.interval,
                   c->a.count ? "" : " (Ctrl-C stops)", ctl_time_str(realtime_ns(), 0, t, sizeof(t)));
            if ((rc = print_stats(c, &cur, i ? &prev : NULL)) != CTL_OK)
                break;
            printf("\n");
            print_snap(c, &cur, i ? &prev : NULL);
            if (!tty)
                printf("\n");
        }
        fflush(stdout);
    }
    snap_free(&prev);
    snap_free(&cur);
    return rc;
}
